// ipc_port: a port's rights counted, and its death. Send rights are
// counted on the port (srights, sorights, mscount) so that the last one
// going fires no-senders; a port dies when its receive right is destroyed
// with no backup, and then its queue, its waiting senders and the names
// that asked to hear of it are settled here.
import { Errno } from "@hurdmesh/mach";
import { R_RECEIVE, R_SEND, R_SEND_ONCE, type KMsg, type KRight, type Port } from "./objects.js";
import { notifyDeadName, notifyNoSenders, notifyPortDestroyed, notifySendOnce } from "./notify.js";
import { unchargeQueued } from "./quota.js";
import type { KernelState } from "./state.js";

/** ipc_port_make_send: one more send right, held by the kernel until it is copied out. */
export function makeSend(p: Port): Port {
  p.srights++;
  return p;
}

/** ipc_port_release_send: a send right went away; the last one fires no-senders (Mach: srights reached 0). */
export function releaseSend(k: KernelState, p: Port): void {
  if (--p.srights === 0 && p.active && p.nsrequest) notifyNoSenders(k, p);
}

/** ipc_port_release_sonce: an unused send-once right was destroyed; its port gets a send-once notification through it. */
export function destroySendOnce(k: KernelState, p: Port): void {
  if (!p.active) {
    p.sorights--;
    return;
  }
  notifySendOnce(k, p);
}

/** Releases one right the kernel holds (in a message or on its way to a space). */
export function releaseRight(k: KernelState, r: KRight): void {
  switch (r.type) {
    case R_SEND:
      releaseSend(k, r.port!);
      break;
    case R_SEND_ONCE:
      destroySendOnce(k, r.port!);
      break;
    case R_RECEIVE:
      destroyReceive(k, r.port!);
      break;
  }
}

/** ipc_pset_remove: the receive right leaves its port set. */
export function leaveSet(port: Port): void {
  if (port.pset) {
    port.pset.members!.delete(port);
    port.pset = null;
  }
}

/**
 * ipc_port_destroy: a receive right is being destroyed. With a
 * port-destroyed request the right goes to the backup instead; otherwise
 * the port dies: queued messages are destroyed (their reply rights notify
 * their senders), waiting senders fail, and holders with dead-name requests
 * are told.
 */
export function destroyReceive(k: KernelState, p: Port): void {
  if (!p.active) return;
  p.receiver = null;
  p.ready = false;
  if (p.pdrequest?.active) {
    const so = p.pdrequest;
    p.pdrequest = null;
    notifyPortDestroyed(k, so, p);
    return;
  }
  destroyPort(k, p);
}

/** The port dies (its receive right is gone, or it was a task's kernel port). */
export function destroyPort(k: KernelState, p: Port): void {
  if (!p.active) return;
  p.active = false;
  p.receiver = null;
  leaveSet(p);
  if (p.pdrequest) {
    const so = p.pdrequest;
    p.pdrequest = null;
    destroySendOnce(k, so);
  }
  if (p.nsrequest) {
    const so = p.nsrequest;
    p.nsrequest = null;
    destroySendOnce(k, so);
  }
  for (const m of p.takeAll()) destroyMsg(k, m);
  if (p.blocked) {
    const b = p.blocked;
    p.blocked = null;
    for (const w of b) {
      if (w.timer) clearTimeout(w.timer);
      k.failSend(w.msg, Errno.MACH_SEND_INVALID_DEST);
    }
  }
  if (p.dnrequests) {
    const dns = p.dnrequests;
    p.dnrequests = null;
    for (const e of dns) {
      const so = e.dnrequest;
      const sp = k.dnSpaces.get(e);
      e.dnrequest = null;
      if (sp && sp.entries.get(e.name) === e) sp.toDeadName(e, 1);
      if (so) notifyDeadName(k, so, e.name);
    }
  }
}

/** ipc_kmsg_destroy: a message that will never be received; every right it carries is released. */
export function destroyMsg(k: KernelState, m: KMsg): void {
  if (m.charged !== 0) unchargeQueued(m);
  if (m.destType === R_SEND) releaseSend(k, m.dest);
  else if (m.destType === R_SEND_ONCE) m.dest.sorights--;
  if (m.reply) {
    if (m.replyType === R_SEND) releaseSend(k, m.reply);
    else if (m.replyType === R_SEND_ONCE) destroySendOnce(k, m.reply);
  }
  if (m.rights) for (const r of m.rights) releaseRight(k, r);
}

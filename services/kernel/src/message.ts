// ipc_kmsg: a message's rights copied in from the sender's space and out
// into the receiver's. A copyin is all or nothing: every entry it touches is
// snapshotted in the undo log first, and a message that fails is rolled back
// so the sender's space is as it was; the port-deleted notifications a
// copyin owes are sent only at commit. The message itself (KMsg) and its
// rights are declared in objects.ts.
import { MsgType, type Message } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { ErrnoName } from "@hurdmesh/mach";
import {
  MACH_PORT_DEAD,
  MOVED,
  newEntry,
  R_DEAD,
  R_NAME,
  R_RECEIVE,
  R_SEND,
  R_SEND_ONCE,
  TYPE_DEAD_NAME,
  TYPE_RECEIVE,
  TYPE_SEND,
  TYPE_SEND_ONCE,
  type Entry,
  type KMsg,
  type KRight,
  type KTask,
  type Port,
  type Space,
} from "./objects.js";
import { notifyPortDeleted } from "./notify.js";
import { leaveSet, releaseRight } from "./port.js";
import { deliveryBound, roomForName } from "./quota.js";
import { err, type KernelState } from "./state.js";

// ---------------------------------------------------------------- the undo log

function snapshot(k: KernelState, sp: Space, e: Entry): void {
  const p = e.port;
  k.undo.push({
    space: sp,
    e,
    bits: e.bits,
    urefs: e.urefs,
    present: true,
    port: p,
    srights: p ? p.srights : 0,
    sorights: p ? p.sorights : 0,
    mscount: p ? p.mscount : 0,
    receiver: p ? p.receiver : null,
    pset: p ? p.pset : null,
  });
}

/** The copyin failed: every entry and port it touched is put back as it was. */
export function rollback(k: KernelState): void {
  const undo = k.undo;
  for (let i = undo.length - 1; i >= 0; i--) {
    const u = undo[i]!;
    u.e.bits = u.bits;
    u.e.urefs = u.urefs;
    if (u.present && u.space.entries.get(u.e.name) !== u.e) u.space.insert(u.e);
    if (u.port) {
      u.port.srights = u.srights;
      u.port.sorights = u.sorights;
      u.port.mscount = u.mscount;
      u.port.receiver = u.receiver;
      if (u.pset && !u.port.pset) {
        u.port.pset = u.pset;
        u.pset.members!.add(u.port);
      }
    }
  }
  undo.length = 0;
  k.deletedLater.length = 0;
}

/** The copyin succeeded as a whole: send the port-deleted notifications it owes. */
export function commit(k: KernelState): void {
  k.undo.length = 0;
  if (k.deletedLater.length === 0) return;
  const later = k.deletedLater.splice(0);
  for (const { e, dn } of later) {
    e.port?.dnrequests?.delete(e);
    if (e.dnrequest === dn) e.dnrequest = null;
    notifyPortDeleted(k, dn, e.name);
  }
}

/** Takes an entry out of its space during a copyin (undoable; its dead-name request is settled at commit). */
function takeEntry(k: KernelState, sp: Space, e: Entry): void {
  sp.remove(e);
  if (e.dnrequest) k.deletedLater.push({ space: sp, e, dn: e.dnrequest });
}

// ---------------------------------------------------------------- copyin

/**
 * ipc_right_copyin: copies one right out of a space by disposition
 * (undoable until commit or rollback). Throws `bad` when the name does not
 * hold what the disposition needs.
 */
export function copyin(k: KernelState, t: KTask, name: number, disp: number, bad: ErrnoName): KRight {
  if (disp === MsgType.MSG_TYPE_PORT_NAME) return { type: R_NAME, port: null, value: name >>> 0 };
  const sp = t.space;
  const e = sp.lookup(name);
  if (!e) throw err(bad, `name ${name} is not in the sender's space`);
  const p = e.port;
  switch (disp) {
    case MsgType.MSG_TYPE_COPY_SEND:
      if (e.bits & TYPE_SEND) {
        snapshot(k, sp, e);
        p!.srights++;
        return { type: R_SEND, port: p, value: 0 };
      }
      if (e.bits & TYPE_DEAD_NAME) return { type: R_DEAD, port: null, value: 0 };
      throw err(bad, `name ${name} holds no send right`);
    case MsgType.MSG_TYPE_MOVE_SEND:
      if (e.bits & TYPE_SEND) {
        snapshot(k, sp, e);
        if (--e.urefs === 0) {
          e.bits &= ~TYPE_SEND;
          if (!(e.bits & TYPE_RECEIVE)) takeEntry(k, sp, e);
        } else p!.srights++;
        return { type: R_SEND, port: p, value: MOVED };
      }
      if (e.bits & TYPE_DEAD_NAME) {
        snapshot(k, sp, e);
        if (--e.urefs === 0) takeEntry(k, sp, e);
        return { type: R_DEAD, port: null, value: 0 };
      }
      throw err(bad, `name ${name} holds no send right`);
    case MsgType.MSG_TYPE_MAKE_SEND:
      if (e.bits & TYPE_RECEIVE) {
        snapshot(k, sp, e);
        p!.mscount++;
        p!.srights++;
        return { type: R_SEND, port: p, value: 0 };
      }
      throw err(bad, `name ${name} holds no receive right to make a send right from`);
    case MsgType.MSG_TYPE_MAKE_SEND_ONCE:
      if (e.bits & TYPE_RECEIVE) {
        snapshot(k, sp, e);
        p!.sorights++;
        return { type: R_SEND_ONCE, port: p, value: 0 };
      }
      throw err(bad, `name ${name} holds no receive right to make a send-once right from`);
    case MsgType.MSG_TYPE_MOVE_SEND_ONCE:
      if (e.bits & TYPE_SEND_ONCE) {
        snapshot(k, sp, e);
        takeEntry(k, sp, e);
        return { type: R_SEND_ONCE, port: p, value: MOVED };
      }
      if (e.bits & TYPE_DEAD_NAME) {
        snapshot(k, sp, e);
        if (--e.urefs === 0) takeEntry(k, sp, e);
        return { type: R_DEAD, port: null, value: 0 };
      }
      throw err(bad, `name ${name} holds no send-once right`);
    case MsgType.MSG_TYPE_MOVE_RECEIVE:
      if (e.bits & TYPE_RECEIVE) {
        snapshot(k, sp, e);
        e.bits &= ~TYPE_RECEIVE;
        if (!(e.bits & TYPE_SEND)) takeEntry(k, sp, e);
        p!.receiver = null;
        p!.mscount = 0;
        p!.ready = false;
        leaveSet(p!);
        return { type: R_RECEIVE, port: p, value: MOVED };
      }
      throw err(bad, `name ${name} holds no receive right`);
    default:
      throw err("MACH_SEND_INVALID_TYPE", `disposition ${disp}`);
  }
}

/** A single copyin that commits at once (kernel calls). */
export function copyinOne(k: KernelState, t: KTask, name: number, disp: number, bad: ErrnoName): KRight {
  try {
    const r = copyin(k, t, name, disp, bad);
    commit(k);
    return r;
  } catch (e) {
    rollback(k);
    throw e;
  }
}

/**
 * A single copyin of a notify right, which must be live and of type `want`.
 * A dead name is refused before anything is committed, so a refused
 * request does not eat the caller's dead-name uref.
 */
export function copyinLive(k: KernelState, t: KTask, name: number, disp: number, want: number): KRight {
  try {
    const r = copyin(k, t, name, disp, "KERN_INVALID_CAPABILITY");
    if (r.type !== want) throw err("KERN_INVALID_CAPABILITY", "notify port is dead");
    commit(k);
    return r;
  } catch (e) {
    rollback(k);
    throw e;
  }
}

/**
 * ipc_kmsg_copyin: the header's and the body's rights out of the sender's
 * space, as one message. Leaves the undo log open: the caller commits once
 * the message is queued or waits, or rolls back if anything throws.
 */
export function copyinMessage(k: KernelState, t: KTask, m: Message): KMsg {
  if (m.body.length > k.config.maxBodyBytes) throw err("MACH_SEND_NO_BUFFER", `body of ${m.body.length} bytes exceeds ${k.config.maxBodyBytes}`);
  if (m.ports.length > k.config.maxPortsPerMessage) throw err("MACH_SEND_NO_BUFFER", `${m.ports.length} rights exceed ${k.config.maxPortsPerMessage}`);
  // Nothing is accepted that the bus could not deliver in one message: a
  // delivery that fails to publish would have nowhere to go.
  if (deliveryBound(m.body.length, m.ports.length, m.traceContext.length) > k.busLimit)
    throw err("MACH_SEND_NO_BUFFER", `a body of ${m.body.length} bytes with ${m.ports.length} rights exceeds the bus's ${k.busLimit}-byte messages`);
  const dd = m.destinationDisposition || MsgType.MSG_TYPE_COPY_SEND;
  if (dd !== MsgType.MSG_TYPE_COPY_SEND && dd !== MsgType.MSG_TYPE_MOVE_SEND && dd !== MsgType.MSG_TYPE_MAKE_SEND && dd !== MsgType.MSG_TYPE_MOVE_SEND_ONCE && dd !== MsgType.MSG_TYPE_MAKE_SEND_ONCE)
    throw err("MACH_SEND_INVALID_HEADER", `destination disposition ${dd}`);
  const d = copyin(k, t, m.destination, dd, "MACH_SEND_INVALID_DEST");
  if (d.type !== R_SEND && d.type !== R_SEND_ONCE) throw err("MACH_SEND_INVALID_DEST", `name ${m.destination} is a dead name`);
  const dest = d.port!;
  if (!dest.active) throw err("MACH_SEND_INVALID_DEST", "port is dead");
  let reply: Port | null = null;
  let replyType = 0;
  if (m.reply === MACH_PORT_DEAD) {
    // MACH_PORT_DEAD is legal in place of a right: the receiver sees it as the reply.
    replyType = R_DEAD;
  } else if (m.reply !== 0) {
    const rd = m.replyDisposition || MsgType.MSG_TYPE_MAKE_SEND_ONCE;
    if (rd === MsgType.MSG_TYPE_MOVE_RECEIVE || rd === MsgType.MSG_TYPE_PORT_NAME) throw err("MACH_SEND_INVALID_REPLY", `reply disposition ${rd}`);
    const r = copyin(k, t, m.reply, rd, "MACH_SEND_INVALID_REPLY");
    reply = r.port;
    replyType = r.type;
  }
  let rights: KRight[] | null = null;
  if (m.ports.length > 0) {
    rights = new Array<KRight>(m.ports.length);
    for (let i = 0; i < m.ports.length; i++) {
      const mp = m.ports[i]!;
      if (mp.name === 0 || (mp.name === MACH_PORT_DEAD && mp.disposition !== MsgType.MSG_TYPE_PORT_NAME)) {
        rights[i] = { type: mp.name === 0 ? R_NAME : R_DEAD, port: null, value: mp.name };
        continue;
      }
      const r = copyin(k, t, mp.name, mp.disposition, "MACH_SEND_INVALID_RIGHT");
      if (r.type === R_RECEIVE && r.port === dest) throw err("MACH_SEND_INVALID_RIGHT", "a receive right cannot travel to its own port");
      rights[i] = r;
    }
  }
  return {
    dest,
    destType: d.type,
    destMoved: dd === MsgType.MSG_TYPE_MOVE_SEND,
    reply,
    replyType,
    id: m.id,
    code: m.code,
    body: m.body,
    rights,
    sender: t,
    kernel: false,
    seq: m.seq,
    traceContext: m.traceContext,
    trace: null,
    payer: null,
    charged: 0,
  };
}

// ---------------------------------------------------------------- copyout

/** ipc_object_copyout: puts a right into a task's space under a name the kernel picks; returns the name. */
export function copyoutRight(k: KernelState, t: KTask, type: number, port: Port | null): number {
  const sp = t.space;
  if (type === R_DEAD || !port) return MACH_PORT_DEAD;
  if (!t.active) {
    releaseRight(k, { type, port, value: 0 });
    return MACH_PORT_DEAD;
  }
  // A right that needs a new name in a space (or hurd) with no room for one
  // is destroyed and arrives as MACH_PORT_DEAD, as Mach's copyout into a full
  // space gives up the right (MACH_MSG_IPC_SPACE) rather than the message.
  if (type === R_SEND) {
    if (!port.active) {
      port.srights--;
      return MACH_PORT_DEAD;
    }
    const e = sp.byPort.get(port);
    if (e) {
      if (e.bits & TYPE_SEND) {
        // Merging into the existing name: the space still holds one send right.
        if (e.urefs < k.config.maxUrefs) e.urefs++;
        port.srights--;
      } else {
        e.bits |= TYPE_SEND;
        e.urefs = 1;
      }
      return e.name;
    }
    if (!roomForName(k, sp)) {
      releaseRight(k, { type, port, value: 0 });
      return MACH_PORT_DEAD;
    }
    const ne = newEntry(sp.newName(), port, TYPE_SEND, 1);
    sp.insert(ne);
    return ne.name;
  }
  if (type === R_SEND_ONCE) {
    if (!port.active) {
      port.sorights--;
      return MACH_PORT_DEAD;
    }
    if (!roomForName(k, sp)) {
      releaseRight(k, { type, port, value: 0 });
      return MACH_PORT_DEAD;
    }
    const ne = newEntry(sp.newName(), port, TYPE_SEND_ONCE, 0);
    sp.insert(ne);
    return ne.name;
  }
  // R_RECEIVE
  let e = sp.byPort.get(port);
  if (e) e.bits |= TYPE_RECEIVE;
  else {
    if (!roomForName(k, sp)) {
      releaseRight(k, { type, port, value: 0 });
      return MACH_PORT_DEAD;
    }
    e = newEntry(sp.newName(), port, TYPE_RECEIVE, 0);
    sp.insert(e);
  }
  setReceiver(k, port, t);
  return e.name;
}

// ---------------------------------------------------------------- a delivery undone

/**
 * copyoutRight for a delivery, logged so that `undoCopyouts` can take the
 * right back out of the receiver's space if the hand-over then fails (the
 * bus refuses the publish). `index` is the right's place in the message
 * (-1: the reply right). A delivery logs from where the log stood when it
 * began (`mark`): one may start inside another (a notification sent while
 * a right is copied out). What the name held before is all the log keeps:
 * no allocation, eight slots a right, in an array reused for every delivery.
 */
export function copyoutLogged(k: KernelState, t: KTask, type: number, port: Port, index: number): number {
  const pre = type === R_SEND_ONCE ? null : (t.space.byPort.get(port) ?? null);
  const bits = pre !== null ? pre.bits : 0;
  const urefs = pre !== null ? pre.urefs : 0;
  const srights = port.srights;
  const name = copyoutRight(k, t, type, port);
  k.outLog.push(index, type, port, pre, bits, urefs, srights, name);
  return name;
}

/**
 * The hand-over of `m` to `t` failed after its rights were copied out: each
 * goes back into the message, as it was before the copyout (a right that
 * arrived as MACH_PORT_DEAD was already given up, and stays given up).
 */
export function undoCopyouts(k: KernelState, t: KTask, m: KMsg, mark: number): void {
  const log = k.outLog;
  const sp = t.space;
  for (let i = log.length - 8; i >= mark; i -= 8) {
    const index = log[i] as number;
    const type = log[i + 1] as number;
    const port = log[i + 2] as Port;
    const pre = log[i + 3] as Entry | null;
    const name = log[i + 7] as number;
    if (name === MACH_PORT_DEAD) {
      if (index < 0) {
        m.reply = null;
        m.replyType = R_DEAD;
      } else m.rights![index] = { type: R_DEAD, port: null, value: 0 };
      continue;
    }
    const e = sp.entries.get(name);
    if (!e) continue;
    if (pre === null) sp.remove(e);
    else {
      e.bits = log[i + 4] as number;
      e.urefs = log[i + 5] as number;
      if (type === R_SEND) port.srights = log[i + 6] as number;
    }
    if (type === R_RECEIVE) {
      // Its queue stays on the port; the stale entry in t's ready list is skipped.
      port.receiver = null;
      port.ready = false;
    }
  }
  log.length = mark;
}

/** ipc_object_copyout_name (mach_port_insert_right): like copyoutRight but at a name the caller chose (already validated). */
export function copyoutAt(k: KernelState, t: KTask, r: KRight, name: number): void {
  const sp = t.space;
  const port = r.port!;
  const existing = sp.entries.get(name);
  if (r.type === R_SEND) {
    if (existing) {
      if (existing.bits & TYPE_SEND) {
        existing.urefs = Math.min(existing.urefs + 1, k.config.maxUrefs);
        port.srights--;
      } else {
        existing.bits |= TYPE_SEND;
        existing.urefs = 1;
      }
      return;
    }
    sp.insert(newEntry(name, port, TYPE_SEND, 1));
  } else if (r.type === R_SEND_ONCE) {
    sp.insert(newEntry(name, port, TYPE_SEND_ONCE, 0));
  } else if (r.type === R_RECEIVE) {
    if (existing) existing.bits |= TYPE_RECEIVE;
    else sp.insert(newEntry(name, port, TYPE_RECEIVE, 0));
    setReceiver(k, port, t);
  }
}

/** A receive right arrived in `t`'s space: what is queued on the port is now `t`'s to receive. */
function setReceiver(k: KernelState, port: Port, t: KTask): void {
  port.receiver = t;
  if (port.msgcount > 0) {
    port.ready = true;
    t.ready.push(port);
    // Not while a message is being copied out: the queue of a receive right
    // travelling in that message must not overtake it (the receiver learns
    // the new name from it). It is drained once the delivery is done.
    if (k.delivering > 0) k.drainLater.add(t);
    else if (t.credit > 0) k.drain(t);
  }
}

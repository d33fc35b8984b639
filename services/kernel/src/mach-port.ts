// The mach_port_* calls (gnumach's ipc/mach_port.c): what a task may do
// with the names in its own space, and, holding a task port, with another
// task's. Each is a user-visible routine, named in a comment as Mach names
// it; calls.ts dispatches the trap and the edge here.
import { MsgType, NotifyId, PortRight } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { copyinLive, copyinOne, copyoutAt, copyoutRight } from "./message.js";
import { admitBlocked } from "./mqueue.js";
import { notifyDeadName, notifyNoSenders } from "./notify.js";
import {
  MACH_PORT_DEAD,
  newEntry,
  Port,
  R_DEAD,
  R_SEND_ONCE,
  TYPE_DEAD_NAME,
  TYPE_DNREQUEST,
  TYPE_PORT_SET,
  TYPE_RECEIVE,
  TYPE_SEND,
  TYPE_SEND_ONCE,
  type Entry,
  type KTask,
} from "./objects.js";
import { destroyReceive, destroySendOnce, leaveSet } from "./port.js";
import { destroyEntry, dropSend, entryOf, need, removeEntry } from "./space.js";
import { err, type KernelState } from "./state.js";
import { taskFromPort } from "./task.js";

// mach_port_allocate (3204)
export function portAllocate(k: KernelState, t: KTask, right: PortRight): number {
  need(k, t.space, t);
  const sp = t.space;
  switch (right) {
    case PortRight.PORT_RIGHT_RECEIVE: {
      const p = new Port(k.config.qlimit);
      p.receiver = t;
      const e = newEntry(sp.newName(), p, TYPE_RECEIVE, 0);
      sp.insert(e);
      return e.name;
    }
    case PortRight.PORT_RIGHT_PORT_SET: {
      const e = newEntry(sp.newName(), null, TYPE_PORT_SET, 0);
      e.members = new Set();
      sp.insert(e);
      return e.name;
    }
    case PortRight.PORT_RIGHT_DEAD_NAME: {
      const e = newEntry(sp.newName(), null, TYPE_DEAD_NAME, 1);
      sp.insert(e);
      return e.name;
    }
    default:
      throw err("KERN_INVALID_VALUE", `cannot allocate right ${right}`);
  }
}

// mach_port_deallocate (3206): one uref of a send, send-once or dead name.
export function portDeallocate(k: KernelState, t: KTask, name: number): void {
  const sp = t.space;
  const e = entryOf(sp, name);
  if (e.bits & TYPE_SEND) {
    if (--e.urefs === 0) dropSend(k, sp, e);
  } else if (e.bits & TYPE_SEND_ONCE) {
    removeEntry(k, sp, e);
    destroySendOnce(k, e.port!);
  } else if (e.bits & TYPE_DEAD_NAME) {
    if (--e.urefs === 0) removeEntry(k, sp, e);
  } else throw err("KERN_INVALID_RIGHT", `name ${name} holds no send, send-once or dead name`);
}

// mach_port_destroy (3205)
export function portDestroy(k: KernelState, t: KTask, name: number): void {
  const e = entryOf(t.space, name);
  destroyEntry(k, t.space, e);
}

// mach_port_mod_refs (3208)
export function portModRefs(k: KernelState, t: KTask, name: number, right: PortRight, delta: number): void {
  const sp = t.space;
  const e = entryOf(sp, name);
  switch (right) {
    case PortRight.PORT_RIGHT_SEND: {
      if (!(e.bits & TYPE_SEND)) throw err("KERN_INVALID_RIGHT", `name ${name} holds no send right`);
      const n = e.urefs + delta;
      if (n < 0) throw err("KERN_INVALID_VALUE", `urefs ${e.urefs} + ${delta}`);
      if (n > k.config.maxUrefs) throw err("KERN_UREFS_OVERFLOW");
      e.urefs = n;
      if (n === 0) dropSend(k, sp, e);
      return;
    }
    case PortRight.PORT_RIGHT_DEAD_NAME: {
      if (!(e.bits & TYPE_DEAD_NAME)) throw err("KERN_INVALID_RIGHT", `name ${name} is not a dead name`);
      const n = e.urefs + delta;
      if (n < 0) throw err("KERN_INVALID_VALUE", `urefs ${e.urefs} + ${delta}`);
      if (n > k.config.maxUrefs) throw err("KERN_UREFS_OVERFLOW");
      e.urefs = n;
      if (n === 0) removeEntry(k, sp, e);
      return;
    }
    case PortRight.PORT_RIGHT_RECEIVE:
    case PortRight.PORT_RIGHT_SEND_ONCE:
    case PortRight.PORT_RIGHT_PORT_SET: {
      const bit = right === PortRight.PORT_RIGHT_RECEIVE ? TYPE_RECEIVE : right === PortRight.PORT_RIGHT_SEND_ONCE ? TYPE_SEND_ONCE : TYPE_PORT_SET;
      if (!(e.bits & bit)) throw err("KERN_INVALID_RIGHT", `name ${name} lacks that right`);
      if (delta === 0) return;
      if (delta !== -1) throw err("KERN_INVALID_VALUE", "this right has exactly one reference");
      if (bit === TYPE_RECEIVE) {
        const port = e.port!;
        e.bits &= ~TYPE_RECEIVE;
        if (!(e.bits & TYPE_SEND)) removeEntry(k, sp, e);
        port.receiver = null;
        leaveSet(port);
        destroyReceive(k, port);
      } else destroyEntry(k, sp, e);
      return;
    }
    default:
      throw err("KERN_INVALID_VALUE", `right ${right}`);
  }
}

// mach_port_get_refs (3207)
export function portGetRefs(t: KTask, name: number, right: PortRight): number {
  const e = entryOf(t.space, name);
  switch (right) {
    case PortRight.PORT_RIGHT_SEND:
      return e.bits & TYPE_SEND ? e.urefs : 0;
    case PortRight.PORT_RIGHT_DEAD_NAME:
      return e.bits & TYPE_DEAD_NAME ? e.urefs : 0;
    case PortRight.PORT_RIGHT_RECEIVE:
      return e.bits & TYPE_RECEIVE ? 1 : 0;
    case PortRight.PORT_RIGHT_SEND_ONCE:
      return e.bits & TYPE_SEND_ONCE ? 1 : 0;
    case PortRight.PORT_RIGHT_PORT_SET:
      return e.bits & TYPE_PORT_SET ? 1 : 0;
    default:
      throw err("KERN_INVALID_VALUE", `right ${right}`);
  }
}

// mach_port_type (3201)
export function portType(t: KTask, name: number): number {
  const e = entryOf(t.space, name);
  return (e.bits | (e.dnrequest ? TYPE_DNREQUEST : 0)) >>> 0;
}

// mach_port_names (3200)
export function portNames(t: KTask): { names: number[]; types: number[] } {
  const names: number[] = [];
  const types: number[] = [];
  for (const name of [...t.space.entries.keys()]) {
    const e = t.space.lookup(name)!;
    names.push(name);
    types.push((e.bits | (e.dnrequest ? TYPE_DNREQUEST : 0)) >>> 0);
  }
  return { names, types };
}

function receivePort(t: KTask, name: number): Port {
  const e = entryOf(t.space, name);
  if (!(e.bits & TYPE_RECEIVE)) throw err("KERN_INVALID_RIGHT", `name ${name} holds no receive right`);
  return e.port!;
}

// mach_port_set_qlimit (3210)
export function portSetQlimit(k: KernelState, t: KTask, name: number, qlimit: number): void {
  const p = receivePort(t, name);
  if (qlimit < 1 || qlimit > k.config.qlimitMax) throw err("KERN_INVALID_VALUE", `qlimit must be 1..${k.config.qlimitMax}`);
  p.qlimit = qlimit;
  admitBlocked(k, p);
}

// mach_port_move_member (3213)
export function portMoveMember(t: KTask, member: number, after: number): void {
  const port = receivePort(t, member);
  let set: Entry | null = null;
  if (after !== 0) {
    set = entryOf(t.space, after);
    if (!(set.bits & TYPE_PORT_SET)) throw err("KERN_INVALID_RIGHT", `name ${after} is not a port set`);
  }
  leaveSet(port);
  if (set) {
    set.members!.add(port);
    port.pset = set;
  }
}

// mach_port_get_set_status (3212)
export function portGetSetStatus(t: KTask, name: number): number[] {
  const e = entryOf(t.space, name);
  if (!(e.bits & TYPE_PORT_SET)) throw err("KERN_INVALID_RIGHT", `name ${name} is not a port set`);
  const out: number[] = [];
  for (const p of e.members!) {
    const m = t.space.byPort.get(p);
    if (m) out.push(m.name);
  }
  return out;
}

// mach_port_get_receive_status (3217)
export function portGetReceiveStatus(t: KTask, name: number) {
  const p = receivePort(t, name);
  return {
    pset: p.pset ? p.pset.name : 0,
    seqno: p.seqno,
    mscount: p.mscount,
    qlimit: p.qlimit,
    msgcount: p.msgcount,
    sorights: p.sorights,
    srights: p.srights > 0,
    pdrequest: p.pdrequest !== null,
    nsrequest: p.nsrequest !== null,
  };
}

/**
 * mach_port_request_notification (3214). Registration is an atomic swap:
 * the previous send-once right comes back as a name in the caller's space.
 */
export function requestNotification(k: KernelState, t: KTask, name: number, variant: NotifyId, sync: number, notify: number, disp: MsgType): number {
  const sp = t.space;
  const e = entryOf(sp, name);
  // Validate everything before the notify right is copied in.
  switch (variant) {
    case NotifyId.NOTIFY_NO_SENDERS:
    case NotifyId.NOTIFY_PORT_DESTROYED:
      if (!(e.bits & TYPE_RECEIVE)) throw err("KERN_INVALID_RIGHT", `name ${name} holds no receive right`);
      if (variant === NotifyId.NOTIFY_PORT_DESTROYED && sync !== 0) throw err("KERN_INVALID_VALUE", "port-destroyed takes sync 0");
      break;
    case NotifyId.NOTIFY_DEAD_NAME:
      if (!(e.bits & (TYPE_SEND | TYPE_SEND_ONCE | TYPE_DEAD_NAME))) throw err("KERN_INVALID_RIGHT", `name ${name} holds no send, send-once or dead name`);
      if (e.bits & TYPE_DEAD_NAME && (notify === 0 || sync === 0)) throw err("KERN_INVALID_ARGUMENT", `name ${name} is already dead`);
      break;
    default:
      throw err("KERN_INVALID_VALUE", `notification variant ${variant}`);
  }
  let so: Port | null = null;
  if (notify !== 0) {
    if (disp !== MsgType.MSG_TYPE_MAKE_SEND_ONCE && disp !== MsgType.MSG_TYPE_MOVE_SEND_ONCE)
      throw err("KERN_INVALID_VALUE", "notify must travel as a send-once right");
    so = copyinLive(k, t, notify, disp, R_SEND_ONCE).port!;
  }
  let prev: Port | null = null;
  const port = e.port;
  switch (variant) {
    case NotifyId.NOTIFY_NO_SENDERS:
      prev = port!.nsrequest;
      port!.nsrequest = so;
      if (so && port!.srights === 0 && port!.mscount >= sync) notifyNoSenders(k, port!);
      break;
    case NotifyId.NOTIFY_PORT_DESTROYED:
      prev = port!.pdrequest;
      port!.pdrequest = so;
      break;
    case NotifyId.NOTIFY_DEAD_NAME:
      if (e.bits & TYPE_DEAD_NAME) {
        // Already dead with sync set: the notification fires at once, with its uref.
        e.urefs++;
        notifyDeadName(k, so!, name);
        break;
      }
      prev = e.dnrequest;
      e.dnrequest = so;
      if (so) (port!.dnrequests ??= new Set()).add(e);
      else port!.dnrequests?.delete(e);
      k.dnSpaces.set(e, sp);
      break;
  }
  if (!prev) return 0;
  if (!prev.active) {
    prev.sorights--;
    return MACH_PORT_DEAD;
  }
  return copyoutRight(k, t, R_SEND_ONCE, prev);
}

// mach_port_insert_right (3215)
export function insertRight(k: KernelState, caller: KTask, taskName: number, name: number, right: number, disp: MsgType): void {
  const target = taskFromPort(caller, taskName);
  if (name === 0 || name === MACH_PORT_DEAD) throw err("KERN_INVALID_VALUE", "cannot insert at MACH_PORT_NULL or MACH_PORT_DEAD");
  if (disp === MsgType.MSG_TYPE_PORT_NAME || !(disp >= 16 && disp <= 21)) throw err("KERN_INVALID_VALUE", `disposition ${disp}`);
  const src = caller.space.lookup(right);
  if (!src) throw err("KERN_INVALID_NAME", `name ${right}`);
  const port = src.port;
  const existing = target.space.entries.get(name);
  const sendish = disp === MsgType.MSG_TYPE_COPY_SEND || disp === MsgType.MSG_TYPE_MAKE_SEND || disp === MsgType.MSG_TYPE_MOVE_SEND;
  if (existing) {
    // A name may gain a right only to the port it already names: send rights
    // merge with the send or receive right there, and a receive right joins
    // the send right (send and receive rights for one port share one name).
    const merges = existing.port === port && ((sendish && existing.bits & (TYPE_SEND | TYPE_RECEIVE)) || (disp === MsgType.MSG_TYPE_MOVE_RECEIVE && existing.bits & TYPE_SEND));
    if (!merges) throw err("KERN_NAME_EXISTS", `name ${name} is in use`);
  } else {
    if (port && (sendish || disp === MsgType.MSG_TYPE_MOVE_RECEIVE) && target.space.byPort.has(port))
      throw err("KERN_RIGHT_EXISTS", "the task already names that port");
    need(k, target.space, caller);
  }
  const r = copyinOne(k, caller, right, disp, "KERN_INVALID_RIGHT");
  if (r.type === R_DEAD) {
    const e = newEntry(name, null, TYPE_DEAD_NAME, 1);
    target.space.insert(e);
    return;
  }
  copyoutAt(k, target, r, name);
}

// mach_port_extract_right (3216)
export function extractRight(k: KernelState, caller: KTask, taskName: number, name: number, disp: MsgType): { name: number; type: MsgType } {
  const target = taskFromPort(caller, taskName);
  if (disp === MsgType.MSG_TYPE_PORT_NAME || !(disp >= 16 && disp <= 21)) throw err("KERN_INVALID_VALUE", `disposition ${disp}`);
  need(k, caller.space, caller);
  const r = copyinOne(k, target, name, disp, "KERN_INVALID_RIGHT");
  const type = r.type === R_DEAD ? MsgType.MSG_TYPE_MOVE_SEND : (r.type as MsgType);
  return { name: copyoutRight(k, caller, r.type, r.port), type };
}

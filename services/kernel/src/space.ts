// ipc_entry and ipc_right: names in a task's space and the rights they
// hold. A name goes away with its last reference; a dead-name request on it
// then becomes a port-deleted notification, and the right it held is
// released to its port (port.ts). The Space and its entries are declared in
// objects.ts, with the lookup that turns rights to dead ports into dead names.
import { TYPE_PORT_SET, TYPE_RECEIVE, TYPE_SEND, TYPE_SEND_ONCE, type Entry, type KTask, type Space } from "./objects.js";
import { notifyPortDeleted } from "./notify.js";
import { destroyReceive, destroySendOnce, leaveSet, releaseSend } from "./port.js";
import { needName } from "./quota.js";
import { err, type KernelState } from "./state.js";

/**
 * Refuses a new name, before anything is changed, in a full space
 * (KERN_NO_SPACE) or a hurd at its port limit (KERN_RESOURCE_SHORTAGE);
 * `caller` is the task whose call it is (quota.ts: a kill-on-limit hurd ends it).
 */
export function need(k: KernelState, sp: Space, caller: KTask | null): void {
  needName(k, sp, caller);
}

/** ipc_entry_lookup for a call: the entry of `name`, or KERN_INVALID_NAME. */
export function entryOf(sp: Space, name: number): Entry {
  const e = sp.lookup(name);
  if (!e) throw err("KERN_INVALID_NAME", `name ${name}`);
  return e;
}

/** ipc_entry_dealloc: removes a name; a dead-name request on it becomes a port-deleted notification. */
export function removeEntry(k: KernelState, sp: Space, e: Entry): void {
  sp.remove(e);
  if (e.dnrequest) {
    const dn = e.dnrequest;
    e.port?.dnrequests?.delete(e);
    e.dnrequest = null;
    notifyPortDeleted(k, dn, e.name);
  }
}

/** The last send uref of an entry went: the entry goes unless it also holds the receive right. */
export function dropSend(k: KernelState, sp: Space, e: Entry): void {
  const port = e.port!;
  e.bits &= ~TYPE_SEND;
  e.urefs = 0;
  if (!(e.bits & TYPE_RECEIVE)) removeEntry(k, sp, e);
  releaseSend(k, port);
}

/** ipc_right_destroy: the name and every right it holds go (a receive right kills its port or hands it to the backup). */
export function destroyEntry(k: KernelState, sp: Space, e: Entry): void {
  const port = e.port;
  const bits = e.bits;
  removeEntry(k, sp, e);
  if (bits & TYPE_PORT_SET) {
    for (const m of e.members!) m.pset = null;
    e.members!.clear();
    return;
  }
  if (!port) return;
  if (bits & TYPE_SEND) releaseSend(k, port);
  if (bits & TYPE_SEND_ONCE) destroySendOnce(k, port);
  if (bits & TYPE_RECEIVE) {
    port.receiver = null;
    leaveSet(port);
    destroyReceive(k, port);
  }
}

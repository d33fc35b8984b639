// Restart in place: what MINIX 3's reincarnation server does for its
// drivers, in the kernel's terms. A task is not a process: when the OS
// process holding an essential task (proc, auth: one whose death crashes its
// hurd, task_set_essential) goes away, its lease lapses but the task, its
// space and its receive rights stay for restartGraceMs, messages queuing on
// its ports (within the quotas), so that a new process can attach to the
// same task with the same token and serve the same port names. Past the
// grace the task is terminated as any task whose lease expired, and its
// hurd crashes as it did before.
//
// One process holds a task at a time. A second attach while the holder's
// lease is fresh is refused (EBUSY) rather than taken over: the kernel
// cannot tell a restarted process from a second copy started by mistake,
// and a takeover would leave two processes serving one set of ports (on
// NATS both would receive every delivery, as the delivery subject is the
// task's) with nothing to fence the older. A refused process retries; it
// gets the task once the holder's lease lapses, which a dead holder's
// always does. A holder that was only slow (a pause past its lease) finds
// itself detached: its sends still route, and on the bus it still gets the
// task's deliveries (the subject is the task's), so its runtime, once it
// notices its stall, handles nothing more until task_info says whose the
// task is: lapsed, it takes the task back; held by a later attach (the
// attach number, AttachReply.holder), it ends. Over NATS with a fresh login
// per process the newer login also revokes the older's connection.
//
// What a lapse costs the callers (the in-flight RPC outcomes):
//  - a request still queued in the kernel when the process died keeps its
//    reply right in the message: the new process receives and answers it
//    (a slower answer, not an error);
//  - a request the kernel had pushed to the dead process had its reply
//    right copied out into the task's space, where no one will use it: at
//    the lapse (or when a new process takes the task before the sweep
//    lapsed it) every send-once right in the space is destroyed, so each such
//    caller gets the send-once notification, MIG_SERVER_DIED (the request
//    may or may not have taken effect: as with EINTR after a signal, the
//    caller asks again); the same goes for replies the server was holding
//    back on purpose (proc_wait with no zombie yet);
//  - one-way messages (notifications) pushed to the dead process are lost
//    with it; the restarted server reconciles what it cares about (proc asks
//    the kernel whether its processes' tasks still live).
import { Errno, HurdError } from "@hurdmesh/mach";
import { TYPE_SEND_ONCE, type KTask } from "./objects.js";
import { destroyEntry } from "./space.js";
import type { KernelState } from "./state.js";

/**
 * Called by the lease sweep for a task whose lease ran out: an essential
 * task, with a grace configured, is kept for a restart (true); any other
 * task is for the caller to terminate (false).
 */
export function lapse(k: KernelState, t: KTask): boolean {
  if (!t.essential || k.config.restartGraceMs <= 0) return false;
  t.attached = false;
  t.sink = null;
  t.credit = 0;
  k.leased.delete(t);
  k.lapsed.set(t, k.now());
  const owed = answerOwed(k, t);
  k.log(`task ${t.id} (${t.name}) lost its process; kept ${k.config.restartGraceMs} ms for a restart (${owed} replies owed answered MIG_SERVER_DIED)`);
  return true;
}

/**
 * The replies a dead process owed (send-once rights copied out into its
 * task's space with the requests pushed to it): their callers hear
 * MIG_SERVER_DIED now, not at their deadlines. Once per lapse, over one
 * task's space. Returns how many.
 */
function answerOwed(k: KernelState, t: KTask): number {
  const sp = t.space;
  let owed = 0;
  for (const e of [...sp.entries.values()]) {
    if (e.bits & TYPE_SEND_ONCE && sp.entries.get(e.name) === e) {
      destroyEntry(k, sp, e);
      owed++;
    }
  }
  return owed;
}

/** The lapsed tasks whose grace is over, oldest first, for the sweep to terminate. */
export function* overGrace(k: KernelState, now: number): Generator<KTask> {
  for (const [t, since] of k.lapsed) {
    if (now - since <= k.config.restartGraceMs) return;
    yield t;
  }
}

/**
 * attach's check: one process holds a task at a time. A lapsed task is
 * taken by the new process; an attached one whose holder was heard from
 * within the lease is refused. A task that never attached, or whose holder
 * went quiet past the lease (the sweep has not run yet), is free to take.
 */
export function claim(k: KernelState, t: KTask, stream: boolean): void {
  if (k.lapsed.delete(t)) {
    k.log(`task ${t.id} (${t.name}) re-attached by a new process`);
    return;
  }
  // Only essential tasks are held this strictly: every other task keeps
  // attach as it was (an edge client re-opening its stream attaches again).
  if (!t.essential || stream || !t.attached) return;
  const quiet = k.now() - t.lastSeen;
  if (quiet <= k.config.leaseMs)
    throw new HurdError(Errno.EBUSY, `task ${t.id} is held by a process heard from ${quiet} ms ago; attach again once its lease (${k.config.leaseMs} ms) lapses`);
  // The holder went quiet past its lease and the sweep has not lapsed it
  // yet (a sweep runs every lease/4, and a late one judges nothing: on a
  // loaded machine the new process often comes first). The lapse's work is
  // done here: the requests pushed to the dead process (or to this one's
  // own attempts refused EBUSY, which dropped what they got) would
  // otherwise leave their reply rights in the space, and their callers
  // waiting to their deadlines.
  const owed = answerOwed(k, t);
  k.log(`task ${t.id} (${t.name}) taken by a new process ${quiet} ms after its holder was last heard from (${owed} replies owed answered MIG_SERVER_DIED)`);
}

/** The task ended (terminated, its hurd torn down): it is no longer waiting for a restart. */
export function forget(k: KernelState, t: KTask): void {
  k.lapsed.delete(t);
}

// Deliveries across a failover (docs/kernel-log.md, "Deliveries across a
// failover"). A logged kernel publishes what a burst caused only once the
// burst is in the log; a leader that dies between the PubAck and its
// publishes leaves deliveries the log says were made and the task never
// had. So a logged kernel, leader and standby alike, keeps each delivery
// to a task on the bus until the task pays it back in credit (the runtime
// returns one credit per message it received, and messages arrive in the
// order they were published, so the oldest are the ones paid for), and a
// kernel that takes over publishes the unpaid ones again. Each carries its
// number (Delivery.seq), so the runtime drops the ones it already had.
// Bounded by the task's window: an unpaid delivery is one the task's
// credit still counts against it.
import type { Bus } from "@hurdmesh/mach";
import type { KernelState } from "./state.js";

/**
 * A new leader's first output: every delivery its old leader made that no
 * task has paid for, published again on `bus` (the journal's held bus, so
 * they go before anything the new leader's own traps cause). Once per
 * takeover, over every task; answers how many were sent.
 */
export function redeliver(k: KernelState, bus: Bus): number {
  let n = 0;
  for (const t of k.tasks.values()) {
    const u = t.unpaid;
    if (u === null || u.size === 0 || !t.attached || t.sink !== null) continue;
    u.each((bytes, local) => {
      bus.publish(t.subject + local, bytes);
      n++;
    });
  }
  return n;
}

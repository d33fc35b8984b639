// What a failed reply leaves behind. When auth answers a caller whose reply
// port has died (it gave up or exited), the kernel refuses the send and
// rolls it back: the dead reply name, and a new handle's never-made send
// right, stay with auth. The runtime reports only that some send failed, not
// which, so auth sweeps: recent handles nobody ever got, and dead names it
// does not track. Sweeps are coalesced, at most one per interval.
//
// A reply that fails after a rendezvous also brings back the server's port
// it was handing over. So the sweep also drops send rights under the names
// of ports handed over lately, unless a request in progress, a waiting
// rendezvous or a hand-over accounts for them; any other send right auth
// holds (its task port, rights its creator gave it) is not the sweep's.
// A sweep runs in a timer turn, after every reply sent so far has been
// processed by the kernel (auth's traps are ordered), so a right on its way
// out is never taken.
import { PortRight, type Task } from "@hurdmesh/mach";
import type { Handles } from "./handles.js";

const TYPE_SEND = 1 << 16;
const TYPE_RECEIVE = 1 << 17;
const TYPE_DEAD_NAME = 1 << 20;
/** At most one sweep per this many ms: a burst of failures costs one sweep. */
const INTERVAL_MS = 1000;

export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private closed = false;
  /** Sweeps done and names reclaimed (tests, health). */
  readonly stats = { sweeps: 0, deadNames: 0, sendRights: 0 };

  constructor(
    private readonly task: Task,
    private readonly handles: Handles,
    /** Names auth holds on purpose right now: requests in progress, waiting and paired rendezvous, its own ports. */
    private readonly keep: () => Set<number>,
    /** Names of send rights lately handed over in replies: the only send rights the sweep may drop. */
    private readonly handed: () => number[],
  ) {}

  /** Schedules a sweep (a send of auth's failed). */
  soon(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.sweep();
    }, this.running ? INTERVAL_MS : 0);
    this.timer.unref();
  }

  async sweep(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      this.stats.sweeps++;
      await this.handles.audit();
      const handed = new Set(this.handed());
      const { names, types } = await this.task.names();
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        const type = types[i]!;
        if (type & TYPE_RECEIVE) continue;
        const right = type & TYPE_DEAD_NAME ? PortRight.PORT_RIGHT_DEAD_NAME : type & TYPE_SEND && handed.has(name) ? PortRight.PORT_RIGHT_SEND : null;
        if (right === null) continue;
        // Asked again before each step: requests keep arriving during the sweep.
        if (this.keep().has(name)) continue;
        try {
          const refs = await this.task.getRefs(name, right);
          if (refs === 0 || this.keep().has(name)) continue;
          // Only the urefs counted: one that arrives meanwhile stays.
          await this.task.modRefs(name, right, -refs);
          if (right === PortRight.PORT_RIGHT_DEAD_NAME) this.stats.deadNames++;
          else this.stats.sendRights++;
        } catch {
          // Released meanwhile (a dead-name notification or a late drop did it).
        }
      }
    } catch {
      // Detached or the kernel is gone: nothing left to reclaim.
    } finally {
      this.running = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

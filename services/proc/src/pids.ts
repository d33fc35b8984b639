import { Errno, HurdError } from "@hurdmesh/mach";

/**
 * PID allocation (the Hurd's genpid, with Linux's bounds). A pid is in use
 * while anything refers to it — a process (zombies too), a process group, a
 * session, or a process handle — and is never handed out again until the
 * last of them lets go. Allocation is sequential from the last pid and wraps
 * to a floor; it skips pids in use, so it costs O(1) amortised while the
 * table is not nearly full, and EAGAIN when it is.
 */
export class Pids {
  /** pid -> number of references (process, pgrp, session, handles). */
  private readonly refs = new Map<number, number>();
  private next: number;

  constructor(
    readonly max: number,
    readonly floor: number,
  ) {
    this.next = Math.min(floor, max - 1);
  }

  /** Takes a specific pid (the well-known ones); it must be free. */
  take(pid: number): number {
    if (this.refs.has(pid)) throw new HurdError(Errno.EEXIST, `pid ${pid} in use`);
    this.refs.set(pid, 1);
    return pid;
  }

  alloc(): number {
    const span = this.max - this.floor;
    if (this.refs.size >= this.max - 1) throw new HurdError(Errno.EAGAIN, `all ${this.max - 1} pids in use`);
    for (let tries = 0; tries <= span; tries++) {
      const pid = this.next;
      this.next = pid + 1 >= this.max ? this.floor : pid + 1;
      if (!this.refs.has(pid)) {
        this.refs.set(pid, 1);
        return pid;
      }
    }
    throw new HurdError(Errno.EAGAIN, `no free pid between ${this.floor} and ${this.max - 1}`);
  }

  /** Another reference to a pid in use (a pgrp, a session, a handle). */
  pin(pid: number): void {
    this.refs.set(pid, (this.refs.get(pid) ?? 0) + 1);
  }

  /** Drops one reference; the pid becomes free with the last one. */
  unpin(pid: number): void {
    const n = this.refs.get(pid);
    if (n === undefined) return;
    if (n <= 1) this.refs.delete(pid);
    else this.refs.set(pid, n - 1);
  }

  /** Where the next allocation starts (proc's store keeps it, so a restarted proc hands out no pid twice). */
  get position(): number {
    return this.next;
  }
  set position(pid: number) {
    if (Number.isInteger(pid) && pid >= this.floor && pid < this.max) this.next = pid;
  }

  inUse(pid: number): boolean {
    return this.refs.has(pid);
  }

  get size(): number {
    return this.refs.size;
  }
}

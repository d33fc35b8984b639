// Coarse deadlines: one timer for any number of pending calls.
//
// A setTimeout/clearTimeout pair per RPC costs a Timeout object, a timer-list
// insert that reads libuv's clock, and an unlink: measurable per call and
// garbage for the collector. Here deadlines are rounded up to a grain
// boundary and kept in buckets by that boundary, so tracking a call is a Set
// add and settling it a Set delete; one timer is armed for the earliest
// bucket, found at the head of a sorted list of due times. An entry expires
// no earlier than its timeout and at most one grain (plus event-loop delay)
// after it: the slack any timer has anyway.
//
// The timer is not cleared when the last entry settles (one call at a time
// would otherwise mean a setTimeout per call again): it is unref'd, so that,
// like a cleared per-call timer, it no longer keeps the process alive, and
// ref'd again when an entry arrives. When it fires with nothing left it is
// dropped.

/** Bucket width, ms: the most an expiry can be late by the rounding. */
export const DEADLINE_GRAIN_MS = 5;
const TIMEOUT_MAX = 2 ** 31 - 1;

export class Deadlines<T> {
  /** Due time (performance.now() clock, a multiple of the grain) -> entries due then. */
  private readonly buckets = new Map<number, Set<T>>();
  /**
   * The buckets' due times, ascending, from `head`. Calls with one timeout
   * are due in the order they are made, so a new time is almost always
   * appended; a shorter timeout than earlier ones is inserted in place.
   */
  private order: number[] = [];
  private head = 0;
  /** Entries in all buckets (a bucket that empties stays until its time, for reuse). */
  private pending = 0;
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;

  /** `expire` is called once for each entry whose deadline passed without `cancel`. */
  constructor(
    private readonly expire: (entry: T) => void,
    private readonly grainMs = DEADLINE_GRAIN_MS,
  ) {}

  /** Tracks `entry` for `timeoutMs`; answers the handle `cancel` needs. */
  add(entry: T, timeoutMs: number): number {
    // As setTimeout does: a duration that is not a number of ms from 1 to
    // 2^31-1 (0, negative, NaN, too large) means 1 ms.
    if (!(timeoutMs >= 1 && timeoutMs <= TIMEOUT_MAX)) timeoutMs = 1;
    const due = Math.ceil((performance.now() + timeoutMs) / this.grainMs) * this.grainMs;
    if (this.pending++ === 0) this.timer?.ref();
    let b = this.buckets.get(due);
    if (!b) {
      b = new Set();
      this.buckets.set(due, b);
      this.insertDue(due);
      if (due < this.armedFor) this.arm(due);
    }
    b.add(entry);
    return due;
  }

  /** Forgets `entry` (settled in time). */
  cancel(entry: T, due: number): void {
    const b = this.buckets.get(due);
    if (!b || !b.delete(entry)) return;
    // The bucket, even empty, stays until its time (the next call due in the
    // same grain reuses it) and the timer stays armed; but with nothing left
    // to wait for, the timer must not keep the process alive.
    if (--this.pending === 0) this.timer?.unref();
  }

  /** Forgets every entry without expiring any. */
  clear(): void {
    this.buckets.clear();
    this.order = [];
    this.head = 0;
    this.pending = 0;
    this.disarm();
  }

  /** Entries waiting. */
  get size(): number {
    return this.pending;
  }

  private insertDue(due: number): void {
    const o = this.order;
    if (o.length === this.head || o[o.length - 1]! < due) {
      o.push(due);
      return;
    }
    let lo = this.head;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (o[mid]! < due) lo = mid + 1;
      else hi = mid;
    }
    o.splice(lo, 0, due);
  }

  private arm(due: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = due;
    // Whole ms: Node keeps a timer list per distinct duration.
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(due - performance.now())));
    if (this.pending === 0) this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Infinity;
    // Timers may fire a little early by performance.now(): compared here,
    // so nothing ever expires before its time.
    const now = performance.now();
    const o = this.order;
    let expired: Set<T>[] | null = null;
    while (this.head < o.length && o[this.head]! <= now) {
      const t = o[this.head++]!;
      const b = this.buckets.get(t)!;
      this.buckets.delete(t);
      if (b.size === 0) continue;
      this.pending -= b.size;
      (expired ??= []).push(b);
    }
    if (this.head === o.length) {
      this.order = [];
      this.head = 0;
    } else {
      if (this.head > 1024 && this.head * 2 > o.length) {
        this.order = o.slice(this.head);
        this.head = 0;
      }
      this.arm(this.order[this.head]!);
    }
    if (!expired) return;
    // Re-armed (or dropped) first: an expiry callback may add deadlines.
    for (const b of expired) {
      for (const e of b) {
        try {
          this.expire(e);
        } catch (err) {
          // One failing callback must not strand the others.
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    }
  };
}

// Which kernel leads a system: a key in a JetStream key-value bucket
// (hurd_<system>_<root>_kernel, key "leader"), written only by
// compare-and-set on its last revision. The leader rewrites it every
// leaseMs/3; a standby that sees the same revision for longer than leaseMs
// (by its own clock, from when it first saw it) takes it by writing over
// that revision, and of two standbys doing so at once exactly one wins.
//
// A leader counts its lease from before each rewrite it sent, so it always
// believes itself deposed before any standby can have taken over (both
// clocks running at the same rate: a paused process's clock does not stop,
// it only stops looking). It checks the lease before every log write
// (journal.ts), and the log itself refuses a write that does not follow the
// new leader's TAKEOVER entry: two fences, one by time and one by sequence.
import type { JetStreamKv } from "@hurdmesh/mach/nats";

const KEY = "leader";

interface LeaderValue {
  id: string;
  /** A leader that stopped on purpose: a standby may take over at once. */
  released?: boolean;
}

export class Lease {
  /** The revision this kernel last wrote (while it leads). */
  private revision = 0;
  /** Until when (Date.now()) this kernel may act as the leader. */
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  // What a standby last saw.
  private seenRevision = -1;
  private seenAt = 0;
  /** Who waits for a lapsed lease to be renewed (true) or lost (false). */
  private waiters: ((leads: boolean) => void)[] = [];

  constructor(
    private readonly kv: JetStreamKv,
    readonly id: string,
    readonly leaseMs: number,
  ) {}

  /** Whether this kernel leads, by its own clock. */
  leading(): boolean {
    return Date.now() < this.validUntil;
  }

  /**
   * One look at the key, and a takeover if it is free: never written
   * (only if `takeEmpty`: a standby waits for a leader to have existed),
   * released, or unchanged for longer than the lease. True once this kernel leads.
   */
  async tryAcquire(takeEmpty: boolean): Promise<boolean> {
    let cur;
    try {
      cur = await this.kv.get(KEY);
    } catch (e) {
      // Unread, the key says nothing of the leader: its silence is counted from when it can be read again.
      this.seenAt = Date.now();
      throw e;
    }
    const now = Date.now();
    let free: boolean;
    if (cur === null) free = takeEmpty || this.seenRevision >= 0;
    else {
      const v = JSON.parse(new TextDecoder().decode(cur.value)) as LeaderValue;
      if (cur.revision !== this.seenRevision) {
        this.seenRevision = cur.revision;
        this.seenAt = now;
      }
      free = v.released === true || now - this.seenAt > this.leaseMs;
    }
    if (!free) return false;
    return this.write(cur === null ? 0 : cur.revision);
  }

  private async write(expected: number, released = false): Promise<boolean> {
    const sent = Date.now();
    const value: LeaderValue = released ? { id: this.id, released } : { id: this.id };
    const rev = await this.kv.update(KEY, new TextEncoder().encode(JSON.stringify(value)), expected);
    if (rev === null) {
      this.validUntil = 0;
      return false;
    }
    this.revision = rev;
    this.validUntil = released ? 0 : sent + this.leaseMs;
    return true;
  }

  /**
   * Renews every leaseMs/3 until stopped (and, once lapsed, every
   * leaseMs/10 until the key can be written); `lost` hears of a renewal
   * refused: another kernel wrote the key.
   */
  keep(lost: (why: string) => void, lapsed?: (why: string) => void): void {
    const every = Math.max(20, Math.floor(this.leaseMs / 3));
    const retry = Math.max(20, Math.floor(this.leaseMs / 10));
    let said = false;
    const renew = async () => {
      let next = every;
      try {
        if (!(await this.write(this.revision))) {
          this.wake(false);
          return lost("another kernel took the lead");
        }
        said = false;
        this.wake(true);
      } catch (e) {
        if (!this.leading()) {
          if (!said) lapsed?.(`the lead could not be renewed within its lease (${(e as Error).message}): writing nothing until it is`);
          said = true;
          next = retry;
        }
      }
      if (this.timer !== null) this.timer = setTimeout(() => void renew(), next);
    };
    this.timer = setTimeout(() => void renew(), every);
  }

  /** Resolves once this kernel leads again (a lapsed lease renewed: true) or never will (refused, or stopped: false). */
  regained(): Promise<boolean> {
    if (this.leading()) return Promise.resolve(true);
    if (this.timer === null) return Promise.resolve(false);
    return new Promise((r) => this.waiters.push(r));
  }

  private wake(leads: boolean): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(leads);
  }

  /** Stops renewing; `release`: says so in the key, so a standby need not wait out the lease. */
  async stop(release: boolean): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.wake(false);
    if (release && this.leading()) await this.write(this.revision, true).catch(() => false);
    this.validUntil = 0;
  }
}

// A standby's side of the kernel log (docs/kernel-log.md): each burst its
// leader appended is applied to the standby's own Kernel, record by record,
// with the leader's clock and random bytes, so that it makes the same
// changes: the same tasks with the same ids and tokens, the same names in
// the same spaces, the same queues. A standby says nothing while it
// replays (its bus drops what the kernel publishes) and decides nothing by
// its own clock or timers; at takeover it starts its timers and its leases
// afresh, as a TAKEOVER record, which its own standbys replay the same way.
import { Errno, type Bus, type BusHandler, type BusSubscription } from "@hurdmesh/mach";
import type { Kernel } from "./kernel.js";
import { EdgeOp, readBurst, Rec } from "./log-format.js";
import { armBlocked, timeOut } from "./mqueue.js";
import { sendNestedTaskEvents } from "./notify.js";
import type { Blocked, KMsg, Port } from "./objects.js";
import type { KernelJournal, KernelState } from "./state.js";
import { attach, lostSink, restartLeases, sweepLeases, touch, type Sink } from "./task.js";
import { attachReply, handleTrap } from "./trap.js";
import type { NatsUsersState } from "./nats-users.js";
import { encodeSnapshot, restoreSnapshot } from "./snapshot.js";

const NO_ANSWER = () => {};

/**
 * A snapshot of `k` as a standby holds it after the entry it was taken at:
 * the kernel's tables, and what replay keeps besides (the leader's clock as
 * of that entry, random bytes logged and not yet drawn), the NATS users and
 * the boot claims.
 */
function snapshotOf(k: Kernel, clock: number, pool: Buffer<ArrayBuffer>[], claims: Replica["claims"]): Buffer {
  return encodeSnapshot(k, { replica: { clock, pool }, natsUsers: k.natsUsers?.snapshotState() ?? null, claims: claims?.snapshotState() ?? null });
}

/**
 * A leader's snapshot of its own state, taken while its journal is idle
 * (everything it did is in the log up to journal.lastSeq): the same bytes a
 * standby's snapshot after that entry has. No random bytes wait: the
 * leader's records each draw's bytes just before the record that drew them,
 * so a burst written whole has had all its bytes drawn.
 */
export function leaderSnapshot(k: Kernel, clock: number, claims: Replica["claims"]): Buffer {
  return snapshotOf(k, clock, [], claims);
}

export class Replica implements KernelJournal {
  readonly replica = true;
  /** The leader's clock as of the last CLOCK record. */
  clock = 0;
  /** Entries (log sequences) applied so far. */
  applied = 0;
  private pool: Buffer<ArrayBuffer>[] = [];
  /** Blocked senders by sender and seq, for the leader's TIMEOUT records; pruned as they get in. */
  private waiting = new Map<string, { dest: Port; w: Blocked }>();
  private pruneAt = 1024;

  constructor(private readonly k: Kernel) {}

  now(): number {
    return this.clock;
  }

  random(n: number): Buffer<ArrayBuffer> {
    const b = this.pool.shift();
    if (b === undefined || b.length !== n) throw new Error(`kernel log diverged: ${n} random bytes asked for, ${b ? b.length : "none"} logged`);
    return b;
  }

  blocked(dest: Port, w: Blocked): void {
    this.waiting.set(keyOf(w.msg), { dest, w });
    if (this.waiting.size >= this.pruneAt) {
      for (const [key, { dest: d, w: b }] of this.waiting) if (!d.blocked?.includes(b)) this.waiting.delete(key);
      this.pruneAt = Math.max(1024, this.waiting.size * 2);
    }
  }

  timedOut(): void {}
  eventsSent(): void {}
  trap(): void {}
  swept(): void {}
  resumed(): void {}
  booted(): void {}
  userMinted(): void {}
  edge(): void {}
  claim(): void {}
  /** A standby answers nobody: its leader did. */
  after(): void {}
  /** The boot claims this kernel serves once it leads (boot-claim.ts): their CLAIM records replay into it. */
  claims: { replay(op: number, payload: Buffer): void; snapshotState(): unknown; restoreState(s: never): void } | null = null;

  /** The state as of the last entry applied, for a snapshot (snapshot.ts): the kernel's, and what replay holds besides. */
  snapshot(): Buffer {
    return snapshotOf(this.k, this.clock, this.pool, this.claims);
  }

  /** Starts from a snapshot of the state after entry `seq` (a kernel just made, nothing applied yet). */
  restore(seq: number, data: Uint8Array): void {
    if (this.applied !== 0) throw new Error(`a snapshot restored after entry ${this.applied} was applied`);
    const r = restoreSnapshot(this.k, data);
    if (!r.replica) throw new Error("kernel snapshot without its replay state");
    if ((r.natsUsers !== null) !== (this.k.natsUsers !== null)) throw new Error(r.natsUsers !== null ? "kernel log diverged: the leader mints NATS users and this kernel has no keys (--nats-keys)" : "kernel snapshot without NATS users, and this kernel mints them");
    if ((r.claims !== null) !== (this.claims !== null)) throw new Error(r.claims !== null ? "kernel log diverged: the leader serves boot claims and this kernel has no boot secret (HURD_BOOT_SECRET)" : "kernel snapshot without boot claims, and this kernel serves them");
    this.clock = r.replica.clock;
    this.pool = r.replica.pool;
    if (r.natsUsers) this.k.natsUsers!.restoreState(r.natsUsers as NatsUsersState);
    if (r.claims) this.claims!.restoreState(r.claims as never);
    this.waiting.clear();
    for (const p of r.blocked) for (const w of p.blocked!) this.waiting.set(keyOf(w.msg), { dest: p, w });
    this.applied = seq;
  }

  /** Applies one entry of the log (sequence `seq`, the next one: entries are applied in order, each once). */
  apply(seq: number, data: Uint8Array): void {
    if (seq !== this.applied + 1 && this.applied !== 0) throw new Error(`kernel log entry ${seq} applied after ${this.applied}`);
    const k = this.k;
    for (const r of readBurst(data)) {
      switch (r.kind) {
        case Rec.CLOCK:
          this.clock = r.payload.readDoubleLE(0);
          break;
        case Rec.RAND:
          this.pool.push(Buffer.from(r.payload));
          break;
        case Rec.TRAP: {
          const flags = r.payload[0]!;
          handleTrap(k, r.payload.subarray(1), flags & 1 ? NO_ANSWER : null, (flags & 2) !== 0);
          break;
        }
        case Rec.SWEEP:
          sweepLeases(k);
          break;
        case Rec.TIMEOUT: {
          const key = `${r.payload.readUInt32LE(0)}:${r.payload.readDoubleLE(4)}`;
          const b = this.waiting.get(key);
          this.waiting.delete(key);
          if (b === undefined || !timeOut(k, b.dest, b.w)) k.log(`kernel log: a timeout for a sender not blocked here (${key}): the replica may have diverged`);
          break;
        }
        case Rec.EVENTS:
          sendNestedTaskEvents(k);
          break;
        case Rec.BOOT: {
          const o = JSON.parse(r.payload.toString()) as { name: string; hostPriv: boolean; ns: number };
          const ns = k.namespaces.get(o.ns);
          if (!ns) throw new Error(`kernel log diverged: boot task in hurd ${o.ns}, which is not here`);
          k.bootTask({ name: o.name, hostPriv: o.hostPriv, ns });
          break;
        }
        case Rec.USER: {
          const t = k.tasks.get(r.payload.readUInt32LE(0));
          if (k.natsUsers === null) throw new Error("kernel log diverged: the leader mints NATS users and this kernel has no keys (--nats-keys)");
          if (!t) throw new Error(`kernel log diverged: a NATS user for task ${r.payload.readUInt32LE(0)}, which is not here`);
          k.natsUsers.task(t);
          break;
        }
        case Rec.EDGE: {
          const op = r.payload[0]! as EdgeOp;
          const id = r.payload.readUInt32LE(1);
          const t = k.tasks.get(id);
          // A stream's end or heartbeat may come after its task ended (the leader logs what it saw).
          if (!t) {
            if (op === EdgeOp.SINK || op === EdgeOp.ATTACHED) throw new Error(`kernel log diverged: the edge attached task ${id}, which is not here`);
            break;
          }
          if (op === EdgeOp.SINK) attach(k, t, replicaSink(), r.payload.readUInt32LE(5));
          else if (op === EdgeOp.UNSINK) {
            if (t.sink !== null) lostSink(t, t.sink);
          } else if (op === EdgeOp.TOUCH) touch(k, t);
          else if (op === EdgeOp.ATTACHED) attachReply(k, t);
          else throw new Error(`kernel log edge record of unknown op ${op as number}`);
          break;
        }
        case Rec.CLAIM:
          if (this.claims === null) throw new Error("kernel log diverged: the leader serves boot claims and this kernel has no boot secret (HURD_BOOT_SECRET)");
          this.claims.replay(r.payload[0]!, r.payload.subarray(1));
          break;
        case Rec.TAKEOVER:
          freshLeases(k, this.clock);
          break;
        case Rec.RESUMED:
          restartLeases(k, this.clock);
          break;
        default:
          throw new Error(`kernel log record of unknown kind ${r.kind as number}`);
      }
    }
    this.applied = seq;
  }

  /** The senders still blocked, for the new leader to arm their timeouts. */
  armTimers(): number {
    let n = 0;
    for (const { dest, w } of this.waiting.values()) {
      if (!dest.blocked?.includes(w)) continue;
      armBlocked(this.k, dest, w);
      n++;
    }
    this.waiting.clear();
    return n;
  }
}

/**
 * A Receive stream as a standby has it: deliveries go nowhere (the
 * leader's stream carried them), but the task has a stream, so its credit
 * and queue move as the leader's did. One per attach: a stream's end is
 * told apart from a newer stream's as the leader tells them.
 */
function replicaSink(): Sink {
  return () => {};
}

function keyOf(m: KMsg): string {
  return `${m.sender?.id ?? 0}:${m.seq}`;
}

/**
 * A takeover's effect on the state (leader and standbys alike): every lease
 * and restart grace runs from `now`, as if every task had just been heard
 * from, since none could reach a kernel while none led; and tasks whose
 * deliveries went to an edge stream of the old kernel's lose it (their
 * clients reconnect).
 */
export function freshLeases(k: KernelState, now: number): void {
  const leased = [...k.leased.keys()];
  k.leased.clear();
  for (const t of leased) {
    t.lastSeen = now;
    k.leased.set(t, true);
    if (t.sink !== null) {
      t.sink = null;
      t.credit = 0;
    }
  }
  for (const t of [...k.lapsed.keys()]) k.lapsed.set(t, now);
}

/** The standby's bus: what its kernel publishes while it replays is dropped (its leader sent it). */
export class SilentBus implements Bus {
  readonly kind: "local" | "nats";
  constructor(private readonly bus: Bus) {
    this.kind = bus.kind;
  }
  get closed(): boolean {
    return this.bus.closed;
  }
  get maxPayload(): number | undefined {
    return this.bus.maxPayload;
  }
  publish(): void {}
  subscribe(_subject: string, _handler: BusHandler): BusSubscription {
    return { unsubscribe() {} };
  }
  request(): Promise<Uint8Array> {
    return Promise.reject(Object.assign(new Error("a standby kernel sends nothing"), { code: Errno.EPERM }));
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

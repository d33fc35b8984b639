// A kernel whose state is its log (hurd-kernel --journal, --standby;
// docs/kernel-log.md): it starts as a standby, replaying the log into its
// Kernel while another kernel leads, and takes over when that kernel's lease
// lapses: it catches up to the log's end, appends a TAKEOVER entry
// conditioned on that end (the fence: an old leader's next append fails),
// and only then takes the trap subject. From then on it leads: every burst
// of traps is logged before anything it caused is sent (journal.ts). A
// leader that is deposed (its lease lost, an append refused) stops serving
// at once and tells its process, which exits: it restarts as a standby.
import { Errno, type Bus } from "@hurdmesh/mach";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { JetStreamKv, JetStreamLog, JetStreamSnapshots, type LogTail, type NatsBus } from "@hurdmesh/mach/nats";
import { Journal, PassBus } from "./journal.js";
import type { Kernel } from "./kernel.js";
import { Lease } from "./leadership.js";
import { redeliver } from "./redeliver.js";
import { freshLeases, leaderSnapshot, Replica, SilentBus } from "./replay.js";
import { TrapServer } from "./trap.js";

export interface FailoverOptions {
  /** This kernel's name in the leadership key (host and pid). */
  id: string;
  /** The lead's lease (ms): a dead leader is replaced after about this long. */
  leaseMs: number;
  /** Wait for a leader to have existed before taking over (a second kernel); false: lead at once if none does. */
  standby: boolean;
  /** JetStream replicas of the log and the leadership bucket. */
  replicas?: number;
  /** The kernel's connection's inbox prefix, with NATS authorization on (its user subscribes only there). */
  inboxPrefix?: string;
  log?: (line: string) => void;
  /** This kernel began to lead; `fresh`: the log was empty (a new system: make the boot tasks). */
  leading?: (fresh: boolean) => void;
  /** This kernel was deposed, or its log failed: the process should exit. */
  deposed?: (e: Error) => void;
  /** The boot claims this kernel serves once it leads: its leader's claims replay into them (boot-claim.ts). */
  claims?: Replica["claims"];
  /**
   * A test's fault (HURD_KERNEL_FAULT=kill-at-delivery:N): the leader
   * SIGKILLs itself in place of its (N+1)th delivery, so the deliveries of
   * that burst are in the log and never sent (the window between a PubAck
   * and its publishes, which a SIGKILL from outside hits only by chance).
   */
  killAtDelivery?: number;
  /**
   * A standby writes a snapshot of its state once this many bytes of log
   * entries were applied since the last one (and at least twice the last
   * snapshot's size), then drops the log before the snapshot before it
   * (docs/kernel-log.md, "Snapshots"). 0: none. Default 1 MiB. A leader
   * whose log grew LEADER_SNAPSHOT_FACTOR times this with no snapshot from
   * anyone (it has no standby, or none keeps up) writes one itself.
   */
  snapshotBytes?: number;
}

/** FailoverOptions.snapshotBytes's default. */
export const SNAPSHOT_BYTES = 1 << 20;

/**
 * A leader writes its own snapshot only when its log grew this many times
 * snapshotBytes with none written: encoding one stalls its event loop (the
 * tables walked and compressed, about 10 ms per MiB of snapshot here), which
 * a standby pays instead whenever there is one that keeps up.
 */
export const LEADER_SNAPSHOT_FACTOR = 4;

/** How long a new leader may take to catch up to the log's end before it gives up (exits; another kernel takes over). */
const CATCH_UP_LIMIT_MS = 60_000;

/** How long a kernel starting tries to open its log before it gives up (and its supervisor starts it again). */
const OPEN_TRIES_MS = 60_000;

/** `f`, tried again on an EIO (JetStream unreachable or timing out) until `ms` have passed. */
async function retried<T>(f: () => Promise<T>, ms: number, said: (e: Error) => void): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if ((e as { code?: number }).code !== Errno.EIO || Date.now() > until) throw e;
      said(e as Error);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export class Failover {
  readonly replica: Replica;
  journal: Journal | null = null;
  traps: TrapServer | null = null;
  /** The bus a leader speaks on besides its traps' answers (boot claims): held back as they are (journal.ts). */
  held: Bus | null = null;
  /** When the takeover began and ended (Date.now()), and the deliveries it sent again, for the tests and the bench. */
  takeover = { began: 0, served: 0, redelivered: 0 };
  private tail: LogTail | null = null;
  private poll: NodeJS.Timeout | null = null;
  private stopped = false;
  private failure: Error | null = null;
  /** The snapshot this kernel started from (log entry; 0: it replayed from the log's first entry). */
  private readonly restoredFrom: number;
  /** Snapshots: the newest this kernel wrote or saw, bytes applied since, the last one's size, and one being written. */
  private snap = { seq: 0, since: 0, bytes: 0, writing: false };
  /** A leader's own snapshots: bytes it had written to the log when it last wrote or saw one, and one due at its next idle moment. */
  private leaderSnap = { mark: 0, due: false };

  private constructor(
    readonly kernel: Kernel,
    private readonly bus: NatsBus,
    private readonly logStream: JetStreamLog,
    private readonly snaps: JetStreamSnapshots,
    readonly lease: Lease,
    private readonly o: FailoverOptions,
    private readonly first: number,
    restored: { seq: number; data: Uint8Array } | null,
  ) {
    this.replica = new Replica(kernel);
    this.replica.claims = o.claims ?? null;
    this.restoredFrom = restored?.seq ?? 0;
    if (restored) {
      this.replica.restore(restored.seq, restored.data);
      this.snap.seq = restored.seq;
      this.snap.bytes = restored.data.length;
    } else this.replica.applied = first - 1;
  }

  /**
   * Opens the log, its snapshots and the leadership bucket, starts from
   * the newest snapshot (if any) and replays the log after it, and takes
   * the lead when it is free.
   */
  static async start(kernel: Kernel, bus: NatsBus, o: FailoverOptions): Promise<Failover> {
    const system = kernel.config.system;
    // A JetStream cluster electing leaders (a node just lost or started) times calls out for a while: tried again, not given up on.
    const again = <T>(f: () => Promise<T>) => retried(f, OPEN_TRIES_MS, (e) => o.log?.(`kernel log: ${e.message}; trying again`));
    const log = await again(() => JetStreamLog.open(bus.nc, system, { replicas: o.replicas, inboxPrefix: o.inboxPrefix }));
    const snaps = await again(() => JetStreamSnapshots.open(bus.nc, system, { replicas: o.replicas, maxPart: Math.max(4096, (bus.maxPayload ?? 1 << 20) - 4096) }));
    const kv = await again(() => JetStreamKv.open(bus.nc, system, "", "kernel", { replicas: o.replicas, inboxPrefix: o.inboxPrefix }));
    const { first, last } = await again(() => log.state());
    const snap = await again(() => snaps.latest());
    // The log is cut only below a snapshot older than the newest, so the newest always reaches it.
    if (snap !== null && snap.seq + 1 < first) throw new Error(`kernel log ${system}: its entries begin at ${first}, past the newest snapshot (after entry ${snap.seq}): entries ${snap.seq + 1}..${first - 1} are lost`);
    if (snap === null && first > 1 && first <= last) throw new Error(`kernel log ${system}: its entries begin at ${first} and no snapshot holds what came before`);
    const t0 = Date.now();
    const f = new Failover(kernel, bus, log, snaps, new Lease(kv, o.id, o.leaseMs), o, first, snap);
    if (snap !== null) f.say(`restored the snapshot after log entry ${snap.seq} (${snap.data.length} bytes, ${kernel.tasks.size} tasks) in ${Date.now() - t0} ms; replaying from entry ${snap.seq + 1} (the log's last is ${last})`);
    kernel.useJournal(f.replica);
    kernel.useBus(new SilentBus(bus));
    f.tail = log.tail(f.replica.applied + 1, (seq, data) => f.apply(seq, data), (e) => f.fail(e));
    f.watch();
    return f;
  }

  private say(line: string): void {
    this.o.log?.(line);
  }

  private apply(seq: number, data: Uint8Array): void {
    try {
      this.replica.apply(seq, data);
    } catch (e) {
      this.fail(new Error(`kernel log entry ${seq}: ${(e as Error).message}`));
      return;
    }
    this.snap.since += data.byteLength;
    const every = this.o.snapshotBytes ?? SNAPSHOT_BYTES;
    if (every > 0 && !this.snap.writing && this.snap.since >= Math.max(every, 2 * this.snap.bytes)) void this.snapshot();
  }

  /**
   * Writes a snapshot of the state as it is now (after the last entry
   * applied), unless another standby wrote one since this one last looked:
   * one standby does the writing, the others follow its snapshots. Then the
   * log before the snapshot that was newest until now is dropped (a kernel
   * starting meanwhile may have read that one). A failure is a log line: the
   * log is only longer until the next one.
   */
  private async snapshot(): Promise<void> {
    this.snap.writing = true;
    try {
      const newest = await this.snaps.newestSeq();
      if (this.stopped || this.failure !== null) return;
      if (newest > this.snap.seq) {
        this.snap.seq = newest;
        return;
      }
      const t0 = Date.now();
      await this.store(this.replica.applied, this.replica.snapshot(), t0, "snapshot");
    } catch (e) {
      if (!this.stopped) this.say(`snapshot not written (the log is cut only after the next one): ${(e as Error).message}`);
    } finally {
      this.snap.since = 0;
      this.snap.writing = false;
    }
  }

  /**
   * Writes the snapshot after entry `seq` (encoded since `t0`), then drops
   * the log before the snapshot that was newest until now (a kernel
   * starting meanwhile may have read that one). Throws what the stream
   * answered; the caller says it.
   */
  private async store(seq: number, data: Buffer, t0: number, what: string): Promise<void> {
    const encoded = Date.now();
    const prev = await this.snaps.write(seq, data);
    this.snap.seq = seq;
    this.snap.bytes = data.length;
    if (prev !== null) await this.logStream.trimBefore(prev.seq + 1);
    this.say(`${what} after log entry ${seq}: ${data.length} bytes, ${this.kernel.tasks.size} tasks, encoded in ${encoded - t0} ms, written in ${Date.now() - encoded} ms${prev !== null ? `; log entries before ${prev.seq + 1} dropped` : ""}`);
  }

  /**
   * The leader's journal is idle (its state is the log's): a snapshot is
   * due if the log grew LEADER_SNAPSHOT_FACTOR × snapshotBytes since the
   * newest anyone wrote; asked of the stream first (a standby's would do),
   * then taken at the next idle moment, after the microtasks of this turn.
   */
  private leaderWritten(): void {
    const j = this.journal;
    const every = this.o.snapshotBytes ?? SNAPSHOT_BYTES;
    if (j === null || every <= 0 || this.snap.writing || this.stopped) return;
    if (this.leaderSnap.due) {
      this.leaderSnap.due = false;
      setImmediate(() => this.leaderSnapshot(j));
      return;
    }
    if (j.stats.bytes - this.leaderSnap.mark < Math.max(LEADER_SNAPSHOT_FACTOR * every, 2 * this.snap.bytes)) return;
    this.snap.writing = true;
    this.snaps.newestSeq().then(
      (newest) => {
        this.snap.writing = false;
        if (newest > this.snap.seq) {
          this.snap.seq = newest;
          this.leaderSnap.mark = j.stats.bytes;
        } else this.leaderSnap.due = true;
      },
      (e: Error) => {
        this.snap.writing = false;
        this.leaderSnap.mark = j.stats.bytes;
        if (!this.stopped) this.say(`snapshot not written: ${e.message}`);
      },
    );
  }

  /** The leader's own snapshot, encoded now if its journal is still idle (else at its next idle moment), written and the log cut as a standby's. */
  private leaderSnapshot(j: Journal): void {
    if (this.stopped || this.failure !== null || this.snap.writing) return;
    if (!j.idle) {
      this.leaderSnap.due = true;
      return;
    }
    const t0 = Date.now();
    const data = leaderSnapshot(this.kernel, j.clock, this.replica.claims);
    this.snap.writing = true;
    this.leaderSnap.mark = j.stats.bytes;
    this.store(j.lastSeq, data, t0, "snapshot of its own (leading)")
      .catch((e: Error) => {
        if (!this.stopped) this.say(`snapshot not written (the log is cut only after the next one): ${e.message}`);
      })
      .finally(() => (this.snap.writing = false));
  }

  private fail(e: Error): void {
    if (this.failure !== null || this.stopped) return;
    this.failure = e;
    this.stop(false);
    this.o.deposed?.(e);
  }

  /** Looks at the leadership key every leaseMs/4 while standing by. */
  private watch(): void {
    const every = Math.max(20, Math.floor(this.o.leaseMs / 4));
    const look = async () => {
      this.poll = null;
      if (this.stopped) return;
      let won = false;
      try {
        won = await this.lease.tryAcquire(!this.o.standby);
      } catch (e) {
        this.say(`leadership: ${(e as Error).message}`);
      }
      // Holding the key, a kernel leads or stops: one that went back to standing by would keep renewing it, and no kernel would lead.
      if (won) return void this.lead().catch((e: Error) => this.fail(new Error(`could not take the lead: ${e.message}`)));
      if (!this.stopped) this.poll = setTimeout(() => void look(), every);
    };
    void look();
  }

  /** Won the key: catch up, fence the old leader out of the log, then serve. */
  private async lead(): Promise<void> {
    this.takeover.began = Date.now();
    // The key is renewed from now on, catch-up included: a standby that must
    // replay much of the log (one started after the last warm one died) would
    // otherwise lose the key to its own lease before serving, and so would
    // every standby after it (bench/soak-kernel.ts found that hurd without a
    // kernel). The old leader is fenced by the log's sequence either way.
    this.lease.keep(
      (why) => this.fail(new Error(`deposed: ${why}`)),
      (why) => this.say(why),
    );
    const { last } = await retried(() => this.logStream.state(), CATCH_UP_LIMIT_MS, (e) => this.say(`kernel log: ${e.message}; trying again`));
    const behind = last - this.replica.applied;
    // Every entry the old leader got acknowledged is applied before this one leads.
    while (this.replica.applied < last) {
      if (this.failure !== null || this.stopped) return;
      // A tail that cannot reach the log (its consumer lost with a NATS node, and not yet made again) gets a while, not forever: another kernel may do better.
      if (Date.now() - this.takeover.began > CATCH_UP_LIMIT_MS) return this.fail(new Error(`catching up to entry ${last} took longer than ${CATCH_UP_LIMIT_MS / 1000} s (at ${this.replica.applied})`));
      if (!this.lease.leading() && !(await this.lease.regained())) return this.fail(new Error(`lost the lead while catching up to entry ${last}`));
      await new Promise((r) => setTimeout(r, 2));
    }
    const caughtUp = Date.now();
    this.tail?.stop();
    this.tail = null;
    const k = this.kernel;
    const fresh = this.restoredFrom === 0 && last < this.first;
    const out = this.o.killAtDelivery !== undefined ? new KillAtDelivery(this.bus, k.config.system, this.o.killAtDelivery) : this.bus;
    const journal = new Journal(this.logStream, out, {
      lastSeq: last,
      leading: () => this.lease.leading(),
      regain: () => this.lease.regained(),
      deposed: (e) => this.fail(e),
      maxBurstBytes: Math.max(4096, (this.bus.maxPayload ?? 1 << 20) - 4096),
      written: () => this.leaderWritten(),
    });
    this.journal = journal;
    const timers = this.replica.armTimers();
    k.useJournal(journal);
    k.leasesPaused = true;
    freshLeases(k, journal.now());
    journal.tookOver();
    k.natsUsers?.tookOver();
    const prepared = Date.now();
    // The fence: until this append is acknowledged nothing is served.
    await journal.synced();
    const fenced = Date.now();
    if (this.failure !== null) return;
    k.resumeLeases();
    const held: Bus = journal.heldBus();
    this.held = held;
    // Before any trap of its own: what the old leader logged and may not have sent.
    this.takeover.redelivered = redeliver(k, held);
    this.traps = new TrapServer(k, held);
    this.traps.start();
    await this.bus.flush();
    this.takeover.served = Date.now();
    // Where a takeover's time went (the kernel soak measures it): catch-up, the state made ready to lead, the fenced append, redelivery and the trap server.
    const spent = `catch-up ${caughtUp - this.takeover.began} ms, prepare ${prepared - caughtUp} ms, fence ${fenced - prepared} ms, redeliver ${this.takeover.served - fenced} ms`;
    this.say(`leading from log entry ${last}, ${behind} behind it when it won the lead (${k.tasks.size} tasks, ${timers} blocked senders re-armed, ${this.takeover.redelivered} unpaid deliveries sent again) after ${this.takeover.served - this.takeover.began} ms (${spent})`);
    this.o.leading?.(fresh);
  }

  /** Stops standing by or leading; `release`: a leader hands over at once (SIGTERM). */
  stop(release: boolean): Promise<void> {
    this.stopped = true;
    if (this.poll) clearTimeout(this.poll);
    this.poll = null;
    this.tail?.stop();
    this.tail = null;
    this.traps?.stop();
    this.traps = null;
    return this.lease.stop(release);
  }
}

/** The bus a leader's journal releases its outputs to, with FailoverOptions.killAtDelivery's fault. */
class KillAtDelivery extends PassBus {
  private readonly root: string;
  private left: number;
  constructor(bus: Bus, system: string, n: number) {
    super(bus);
    this.root = subjectsOf(system).deliveryRoot;
    this.left = n;
  }
  override publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    // Signalled to itself, SIGKILL is delivered before kill() returns: nothing after it runs.
    if (subject.startsWith(this.root) && this.left-- === 0) process.kill(process.pid, "SIGKILL");
    this.bus.publish(subject, data, reply, traceparent);
  }
}

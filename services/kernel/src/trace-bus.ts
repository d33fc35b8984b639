// The kernel's trace stream on the bus, hurd.<system>.trace.>: what the gRPC
// edge's Trace/Watch serves, for servers that reach the kernel over NATS.
// The protocol (subjects, messages, the order a client follows) is in
// proto/hurd/trace/v1/trace.proto; the client is watchTraceOnBus in
// @hurdmesh/mach.
//
// A bus has no call whose end ends the watch, so a watch is a lease: it lasts
// while its task renews it and lives. Recording starts at the first renewal,
// which the client sends once its subscription has reached the bus, so that
// no batch is published to nobody and a watcher that never comes back costs
// no more than a slot until its lease runs out. When the last watch ends the
// TraceHub uninstalls the kernel's tracer: routing pays nothing again.
//
// Who may start, renew and cancel a watch is the kernel's to check (the
// task's token and host_priv). With NATS authorization on, who may read it
// is the fabric's: the answer to a watch request carries a NATS user of the
// watch's own (minted here, revoked when the watch ends), the only one that
// may subscribe to its subject; requests must ask for their answers on the
// asker's own inbox. Without it (the in-process bus, anonymous NATS) anyone
// on the bus can read any subject and the watch id only keeps watches apart.
import { randomInt } from "node:crypto";
import { Errno, HurdError, type Bus, type BusSubscription } from "@hurdmesh/mach";
import { inboxOf, TRACE_LEASE, traceSubjects } from "@hurdmesh/mach/internal";
import { TraceBatch, TraceWatchCtl, TraceWatchReply, TraceWatchRequest, type TraceCount, type TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import type { Kernel } from "./kernel.js";
import { authenticate, touch, type KTask } from "./task.js";
import type { WatchFilter } from "./trace.js";

/** Tasks named in one watch's filter (tasks plus exclude) at most: each is a set entry the kernel keeps. */
const MAX_FILTER_TASKS = 4096;
/**
 * A published batch stays under this (estimated) size: NATS refuses payloads
 * over its max_payload (1 MiB by default), and a flush may hand over
 * thousands of records carrying bodies of up to 64 KiB.
 */
const MAX_BATCH_BYTES = 256 * 1024;
const NO_RECORDS: TraceRecord[] = [];
const NO_COUNTS: TraceCount[] = [];

interface BusWatch {
  readonly id: number;
  readonly task: KTask;
  readonly subject: string;
  readonly filter: WatchFilter;
  leaseMs: number;
  deadline: number;
  /** Ends the TraceHub watch; null until the first renewal starts recording. */
  stop: (() => void) | null;
  /** Records that could not be published (the bus refused): told in the next batch's dropped. */
  lost: number;
  ended: boolean;
}

export interface TraceBusOptions {
  /** How often leases and watchers' tasks are checked, ms (default 250). */
  pollMs?: number;
  log?: (line: string) => void;
}

function clampLease(ms: number): number {
  if (!ms) return TRACE_LEASE.defaultMs;
  return Math.min(TRACE_LEASE.maxMs, Math.max(TRACE_LEASE.minMs, ms));
}

/** A batch's encoded size, over- rather than underestimated (its strings are ASCII). */
function estimate(r: TraceRecord): number {
  let n = 160 + r.rpc.length + r.body.length;
  for (let i = 0; i < r.rights.length; i++) n += r.rights[i]!.length + 3;
  return n;
}

export class TraceBus {
  private readonly watches = new Map<number, BusWatch>();
  private readonly subjects: ReturnType<typeof traceSubjects>;
  private subs: BusSubscription[] = [];
  private sweeper: NodeJS.Timeout | null = null;
  private unhook: (() => void) | null = null;
  /** Watches ended, by why (tests and the log). */
  readonly stats = { started: 0, expired: 0, cancelled: 0, orphaned: 0, refused: 0 };

  constructor(
    private readonly kernel: Kernel,
    private readonly bus: Bus,
    private readonly o: TraceBusOptions = {},
  ) {
    this.subjects = traceSubjects(kernel.config.system);
  }

  /** Bus watches alive (started or waiting for their first renewal). */
  get size(): number {
    return this.watches.size;
  }

  start(): void {
    if (this.subs.length) return;
    this.subs.push(
      this.bus.subscribe(this.subjects.watch, (_s, data, reply) => {
        // Nobody would learn the watch's id: it would only hold a slot until its lease ran out.
        if (!reply) {
          this.stats.refused++;
          return;
        }
        this.serve(data, reply, (d) => this.watch(d, reply));
      }),
      // A cancel may come without a reply subject (a client that is going away).
      this.bus.subscribe(this.subjects.ctl, (_s, data, reply) => this.serve(data, reply, (d) => this.ctl(d, reply))),
    );
    // The kernel's tasks end at close, and with them every watch: end them first, and the timer with them.
    this.unhook = this.kernel.onClose(() => this.stop(Errno.KERN_TERMINATED));
  }

  /** Stops serving; every watch ends with `why` (its last batch says so). */
  stop(why: number = Errno.KERN_ABORTED): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.unhook?.();
    this.unhook = null;
    for (const w of this.watches.values()) this.end(w, why);
    this.disarm();
  }

  /**
   * One request: whatever it holds, it gets an answer (when it asked for
   * one, on an inbox it may ask on: null from `op` is no answer at all) and
   * never reaches the bus's loop as an exception.
   */
  private serve(data: Uint8Array, reply: string | undefined, op: (d: Uint8Array) => TraceWatchReply | null): void {
    let answer: TraceWatchReply | null;
    try {
      answer = op(data);
    } catch (e) {
      const h = HurdError.from(e);
      this.stats.refused++;
      answer = { errno: h.code, error: h.message, watchId: 0, subject: "", leaseMs: 0, nats: undefined };
    }
    if (!reply || !answer) return;
    try {
      this.bus.publish(reply, TraceWatchReply.encode(answer).finish());
    } catch {
      // The bus closed under us: the client's request times out and it asks again.
    }
  }

  private who(taskId: number, token: string): KTask {
    const t = authenticate(this.kernel, taskId, token);
    if (!t) {
      this.kernel.stats.rejectedTraps++;
      // A task that just ended may still renew: only a wrong token for a live task is worth a line.
      if (this.kernel.tasks.has(taskId)) this.kernel.log(`trace watch for task ${taskId} with a wrong token rejected`);
      throw new HurdError(Errno.KERN_INVALID_TASK, "unknown task or wrong token");
    }
    touch(this.kernel, t);
    return t;
  }

  /**
   * With NATS users, an answer goes only where its asker reads (`inbox`):
   * asked elsewhere, the kernel (which may answer anything it is asked)
   * would write into another party's replies. Such a request is dropped.
   */
  private misdirected(reply: string | undefined, inbox: string): boolean {
    if (this.kernel.natsUsers === null || reply === undefined || reply.startsWith(inbox)) return false;
    this.stats.refused++;
    this.kernel.log(`trace request asking for its answer outside its asker's inbox dropped`);
    return true;
  }

  /** hurd.<system>.trace.watch: a new watch, not yet recording. */
  private watch(data: Uint8Array, reply?: string): TraceWatchReply | null {
    let q: TraceWatchRequest;
    try {
      q = TraceWatchRequest.decode(data);
    } catch {
      throw new HurdError(Errno.EINVAL, "not a TraceWatchRequest");
    }
    const t = this.who(q.taskId, q.token);
    if (this.kernel.natsUsers !== null && this.misdirected(reply, this.kernel.natsUsers.taskInbox(t))) return null;
    const w = q.watch;
    // As on the edge: a trace shows every message's rights and contents, so
    // only who could control the host may watch, and only under that host.
    if (!w || !w.hostPriv) throw new HurdError(Errno.KERN_NO_ACCESS, "watching the trace stream needs a host_priv send right (watch.host_priv)");
    const ns = this.kernel.namespaceFromHost(t, w.hostPriv);
    if (w.tasks.length + w.exclude.length > MAX_FILTER_TASKS) throw new HurdError(Errno.EINVAL, `a watch names at most ${MAX_FILTER_TASKS} tasks`);
    const max = this.kernel.config.maxTraceWatches;
    if (this.watches.size >= max) throw new HurdError(Errno.EAGAIN, `${max} trace watches on the bus already`);
    if (!this.subs.length) throw new HurdError(Errno.KERN_ABORTED, "the kernel is shutting down");
    // Random rather than counted: ids do not come back after a kernel
    // restart, so a client still listening on an old watch's subject never
    // hears a new watcher's records.
    let id = randomInt(1, 2 ** 47);
    while (this.watches.has(id)) id = randomInt(1, 2 ** 47);
    const leaseMs = clampLease(q.leaseMs);
    const bw: BusWatch = {
      id,
      task: t,
      subject: this.subjects.batches(id),
      filter: { ns, tasks: w.tasks, follow: w.follow, bodies: w.bodies, recordsPerSecond: w.recordsPerSecond, exclude: w.includeSelf ? w.exclude : [t.id, ...w.exclude] },
      leaseMs,
      deadline: Date.now() + leaseMs,
      stop: null,
      lost: 0,
      ended: false,
    };
    this.watches.set(id, bw);
    this.arm();
    this.o.log?.(`trace watch ${id} for task ${t.id} (namespace ${ns.id}), lease ${leaseMs} ms`);
    // The watcher's own NATS user: the only one that may read bw.subject.
    const nats = this.kernel.natsUsers?.watcher(id);
    return { errno: 0, error: "", watchId: id, subject: bw.subject, leaseMs, nats };
  }

  /** hurd.<system>.trace.ctl: renew (the first time: start recording) or cancel. */
  private ctl(data: Uint8Array, reply?: string): TraceWatchReply | null {
    let q: TraceWatchCtl;
    try {
      q = TraceWatchCtl.decode(data);
    } catch {
      throw new HurdError(Errno.EINVAL, "not a TraceWatchCtl");
    }
    if (this.misdirected(reply, `${inboxOf(this.kernel.config.system, { kind: "trace-watcher", watchId: q.watchId })}.`)) return null;
    const t = this.who(q.taskId, q.token);
    const bw = this.watches.get(q.watchId);
    // Another task's watch is as unknown as an ended one.
    if (!bw || bw.task !== t) throw new HurdError(Errno.ENOENT, `task ${t.id} has no trace watch ${q.watchId}`);
    if (q.cancel) {
      this.end(bw, Errno.KERN_ABORTED);
      return { errno: 0, error: "", watchId: bw.id, subject: bw.subject, leaseMs: 0, nats: undefined };
    }
    bw.leaseMs = q.leaseMs ? clampLease(q.leaseMs) : bw.leaseMs;
    bw.deadline = Date.now() + bw.leaseMs;
    if (bw.stop === null) {
      this.stats.started++;
      bw.stop = this.kernel.trace.watch(bw.filter, (records, dropped, counts) => this.publish(bw, records, dropped, counts));
    }
    // A watcher's JWT expires like a task's: renewals carry a fresh one once half its life is gone.
    return { errno: 0, error: "", watchId: bw.id, subject: bw.subject, leaseMs: bw.leaseMs, nats: this.kernel.natsUsers?.renewWatcherIfDue(bw.id) };
  }

  /**
   * A batch from the TraceHub, possibly from inside routing (a full batch
   * leaves at once): it is published, in pieces the bus accepts, and never
   * throws. Nothing is queued here; the TraceHub's buffer is the bound.
   */
  private publish(bw: BusWatch, records: TraceRecord[], dropped: number, counts: TraceCount[]): void {
    if (bw.ended) return;
    dropped += bw.lost;
    bw.lost = 0;
    let from = 0;
    let size = 0;
    for (let i = 0; i < records.length; i++) {
      const n = estimate(records[i]!);
      if (size + n > MAX_BATCH_BYTES && i > from) {
        this.send(bw, records.slice(from, i), dropped, 0);
        dropped = 0;
        from = i;
        size = 0;
      }
      size += n;
    }
    // The counters go with the last records, in as many batches as they need.
    let rest = from === 0 ? records : records.slice(from);
    let c0 = 0;
    for (let i = 0; i < counts.length; i++) {
      const n = 48 + counts[i]!.rpc.length;
      if (size + n > MAX_BATCH_BYTES && i > c0) {
        this.send(bw, rest, dropped, 0, counts.slice(c0, i));
        rest = NO_RECORDS;
        dropped = 0;
        c0 = i;
        size = 0;
      }
      size += n;
    }
    if (rest.length !== 0 || dropped !== 0 || c0 < counts.length) this.send(bw, rest, dropped, 0, c0 === 0 ? counts : counts.slice(c0));
  }

  private send(bw: BusWatch, records: TraceRecord[], dropped: number, ended: number, counts: TraceCount[] = NO_COUNTS): void {
    try {
      this.bus.publish(bw.subject, TraceBatch.encode({ records, dropped, ended, counts }).finish());
    } catch {
      // A closed bus or a payload it refuses: the watcher hears of it as drops.
      bw.lost += records.length + dropped;
      for (const c of counts) bw.lost += c.count;
    }
  }

  /** Ends a watch: no more records are kept for it, and its last message says why. */
  private end(bw: BusWatch, why: number): void {
    if (bw.ended || !this.watches.delete(bw.id)) return;
    bw.ended = true;
    bw.stop?.();
    bw.stop = null;
    if (why === Errno.ETIMEDOUT) this.stats.expired++;
    else if (why === Errno.KERN_ABORTED) this.stats.cancelled++;
    else this.stats.orphaned++;
    if (!this.bus.closed) this.send(bw, NO_RECORDS, bw.lost, why);
    // Once the last batch has left: its user is revoked, and its subject is nobody's.
    const users = this.kernel.natsUsers;
    if (users !== null) {
      if (this.bus.closed) users.watcherEnded(bw.id);
      else void this.bus.flush().then(() => users.watcherEnded(bw.id), () => users.watcherEnded(bw.id));
    }
    if (this.watches.size === 0) this.disarm();
    this.o.log?.(`trace watch ${bw.id} of task ${bw.task.id} ended (${why === Errno.ETIMEDOUT ? "lease expired" : why === Errno.KERN_ABORTED ? "cancelled" : "task ended"})`);
  }

  // One timer for every lease and every watcher's death, running only while
  // watches exist: at most maxTraceWatches entries to look at, a few times a
  // second, instead of a hook on every task's termination.
  private arm(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), this.o.pollMs ?? 250);
    this.sweeper.unref();
  }

  private disarm(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  private sweep(): void {
    const now = Date.now();
    for (const bw of this.watches.values()) {
      if (!bw.task.active) this.end(bw, Errno.KERN_TERMINATED);
      else if (now > bw.deadline) this.end(bw, Errno.ETIMEDOUT);
    }
  }
}

// The kernel's side of tracing: one record per routed message for those who
// watch (`hurd rpctrace`), one OpenTelemetry span per routed message when
// telemetry is on. The kernel calls a KernelTracer only while one is set, so
// with nobody watching and telemetry off routing pays one null check.
// Nothing here changes what a task holds or receives, except that with
// telemetry on a delivery's trace context names the kernel's span (so the
// receiver's handler span is its child).
//
// Spans per RPC: one here, from the request's send until its reply is
// delivered (the reply's code and errno go on it), and the server's handler
// span under it. A reply makes no span of its own: that halves the kernel's
// spans and keeps the span tree the shape a person reads (call, handling).
import { SpanKind, type Attributes } from "@opentelemetry/api";
import { errnoName } from "@hurdmesh/mach";
import { isSampled, isTraceContext, NO_TRACE_CONTEXT, subjectsOf, traceContextOf } from "@hurdmesh/mach/internal";
import type { Message, Received } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { TraceCount, TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { registry, type Registry } from "@hurdmesh/mach/registry";
import { UNSAMPLED, type Parent } from "@hurdmesh/telemetry";
import type { SdkTelemetry as Telemetry } from "@hurdmesh/telemetry-sdk";
import { K_DELIVERED, K_FAILED, K_NOTIFY, K_REPLIED, keyBytes, LightSpan, putKernelFields, REC_KERNEL, type LightTracer, type NameTable, type Writer } from "@hurdmesh/telemetry-sdk";
import { hurdNameOf } from "./introspect.js";
import { R_SEND_ONCE, type KMsg, type KTask, type Namespace, type TraceNote } from "./objects.js";

/** What the kernel tells a tracer. Called only while kernel.tracer is set. */
export interface KernelTracer {
  /** A message left its sender (wire: as the sender wrote it) or the kernel (wire null). */
  sent(m: KMsg, wire: Message | null): void;
  /** The message was copied out to `to`; `rec` is what the receiver gets (its trace context may be set). */
  delivered(m: KMsg, to: KTask, rec: Received): void;
  /** A sent message could not be delivered (its rights went back to the sender). */
  failed(m: KMsg, code: number): void;
  /** The kernel refused a send outright (bad destination, rights, ...). */
  refused(from: KTask, wire: Message, code: number): void;
  /** A task was created (watchers following a task follow its children). */
  created(t: KTask): void;
  /**
   * The trace context of what the kernel is doing now (the trap it
   * handles), set by the trap path around each trap: notifications the
   * kernel sends meanwhile link to it (empty when nothing traced is the cause).
   */
  cause: Uint8Array;
  /**
   * The same as a text traceparent (a kernel call's header or metadata),
   * when that is the form it came in: read only if the trap makes the
   * kernel send something, which most kernel calls do not.
   */
  causeText: string;
}

export interface WatchFilter {
  /** Only messages whose tasks live in this namespace or namespaces nested in it. */
  ns?: Namespace | null;
  /** Only messages to or from these tasks. */
  tasks?: readonly number[];
  /** With tasks: also every task they create, and its children. */
  follow?: boolean;
  /** Never messages to or from these tasks (the watcher's own). */
  exclude?: readonly number[];
  /** Include message bodies (for decoding). */
  bodies?: boolean;
  /** Records kept between flushes before they are dropped (default WATCH_BUFFER). */
  buffer?: number;
  /** At most this many records a second; the rest are counted (0 or absent: every message recorded). */
  recordsPerSecond?: number;
}

/** A batch: the records, those dropped since the last, and (rate-limited watches) the messages counted instead. */
export type WatchSink = (records: TraceRecord[], dropped: number, counts: TraceCount[]) => void;

interface Watcher {
  ns: Namespace | null;
  tasks: Set<number> | null;
  follow: boolean;
  exclude: Set<number>;
  bodies: boolean;
  max: number;
  sink: WatchSink;
  buf: TraceRecord[];
  dropped: number;
  /** Records a second (0: no limit), and the token bucket that spends them. */
  rate: number;
  tokens: number;
  refilled: number;
  /** Counted messages by sender, then receiver, then msgid*2+reply: no key string made per message. */
  counts: Map<number, Map<number, Map<number, TraceCount>>>;
  counted: TraceCount[];
}

/** Distinct counters a watcher keeps between flushes; messages past them are dropped (and said so). */
export const WATCH_COUNTS = 4096;
/**
 * A rate-limited watch's batches (its counters, and the records its rate
 * allows) leave at most this often, or when BATCH records are waiting: a
 * batch per turn of the loop would cost the kernel a publish or a stream
 * write per counted (or sampled) message, what the rate is there to save.
 */
const COUNTS_EVERY_MS = 100;

/**
 * One message in flight. A delivered request's Flight stays on its reply
 * port (the port's tracePending) until the reply comes: one object per
 * request, whatever the kernel does with it.
 */
interface Flight extends TraceNote {
  readonly n: number;
  /** The message id (for a pending request: what its reply answers). */
  id: number;
  ts: number;
  sname: number;
  rpc: string | undefined;
  re: number;
  reply: boolean;
  wire: Message | null;
  /** A request's or one-way message's span; for a reply, its request's span (ended when the reply is delivered). */
  span: KernelSpan | null;
  /** With telemetry on, an unsampled message that starts a trace: the context it carries on. */
  tp: Uint8Array;
}


const K_RIGHTS = keyBytes("hurd.rights");

/**
 * The kernel's span for one routed message. Its attributes are kept as
 * fields and become an attribute object only when the exporter reads them.
 */
class KernelSpan extends LightSpan {
  receiver = 0;
  receiverName = 0;
  ns = -1;
  replied = false;
  code = 0;
  /** The receiving hurd's name (the sender's until it is delivered): hurd.name. */
  hurd = "";
  constructor(
    lt: LightTracer,
    name: string,
    parent: Parent | null,
    /** "hurd.<system>.rcv.": the receiving port's subject is this, task, ".", name. */
    private readonly rcvPrefix: string,
    private readonly migId: number,
    private readonly sender: number,
    private readonly senderName: number,
    private readonly kernel: boolean,
    private readonly rpc: string | undefined,
    private readonly rights: string[] | null,
  ) {
    super(lt, name, SpanKind.PRODUCER, parent);
  }
  // The record carries the numbers (records.ts writes the attributes from
  // them); the rights moved, rare and of any length, go in the tail.
  protected override recordFields(i32: Int32Array, wi: number, names: NameTable): number {
    putKernelFields(i32, wi, this.rpc ? names.id(this.rpc) : 0, this.migId, this.sender, this.senderName, this.receiver, this.receiverName, this.ns, this.code, names.id(this.rcvPrefix), this.hurd ? names.id(this.hurd) : 0);
    return REC_KERNEL | (this.kernel ? K_NOTIFY : 0) | (this.receiver !== 0 ? K_DELIVERED : 0) | (this.replied ? K_REPLIED : this.code !== 0 ? K_FAILED : 0);
  }
  protected override needsTail(): boolean {
    return this.rights !== null;
  }
  protected override tailAttributes(w: Writer): void {
    if (this.rights) w.kvAny(K_RIGHTS, this.rights);
  }
  protected override attrs(): Attributes {
    const a: Attributes = {
      "rpc.system.name": "hurdmesh",
      "messaging.system": "hurdmesh",
      "messaging.operation.type": "send",
      "hurd.mig.id": this.migId,
      "hurd.task.sender": this.sender,
      "hurd.port.sender_name": this.senderName,
    };
    // Every attribute is paid for again in each export's serialization:
    // the usual values are left out (hurd.kernel false, no reply code).
    if (this.kernel) a["hurd.kernel"] = true;
    if (this.rpc) a["rpc.method"] = this.rpc;
    if (this.rights) a["hurd.rights"] = this.rights;
    if (this.receiver !== 0) {
      a["hurd.task.receiver"] = this.receiver;
      a["hurd.port.receiver_name"] = this.receiverName;
      a["hurd.namespace"] = this.ns;
      a["messaging.destination.name"] = `${this.rcvPrefix}${this.receiver}.${this.receiverName}`;
      a["server.address"] = `${this.rcvPrefix}${this.receiver}`;
    }
    if (this.hurd) a["hurd.name"] = this.hurd;
    if (this.replied) {
      a["hurd.reply.code"] = this.code;
      if (this.code !== 0) a["hurd.errno"] = errnoName(this.code);
    }
    if (this.replied || this.code !== 0) {
      a["rpc.response.status_code"] = this.code === 0 ? "OK" : errnoName(this.code);
      if (this.code !== 0) a["error.type"] = errnoName(this.code);
    }
    return a;
  }
}

const DISP: Record<number, string> = {
  15: "port-name",
  16: "move-receive",
  17: "move-send",
  18: "move-send-once",
  19: "copy-send",
  20: "make-send",
  21: "make-send-once",
};
const ARRIVED: Record<number, string> = { 16: "receive", 17: "send", 18: "send-once", 15: "name" };
const DEAD = 0xffffffff;
/** Records kept per watcher between flushes: beyond this they are dropped and counted. */
export const WATCH_BUFFER = 8192;
const BODY_MAX = 64 * 1024;
const NO_BODY = new Uint8Array(0);
/** Records sent to a watcher in one batch at most (a full batch is sent at once). */
const BATCH = 256;

function blank(n: number, tsMs: number, namespaceId: number, fromTask: number, toTask: number, senderName: number, receiverName: number, msgid: number, bodyLength: number): TraceRecord {
  return { n, tsMs, namespaceId, fromTask, toTask, senderName, receiverName, msgid, rpc: "", isReply: false, replyTo: 0, code: 0, error: 0, kernel: false, rights: [], body: NO_BODY, bodyLength, traceId: NO_BODY };
}

function inNs(ns: Namespace, root: Namespace): boolean {
  for (let n: Namespace | null = ns; n; n = n.parent) if (n === root) return true;
  return false;
}

/**
 * The kernel's tracer: watchers and OpenTelemetry. `install` is called with
 * the tracer when the first watcher arrives or telemetry is set, and with
 * null when neither is left, so the kernel's hot path checks one field.
 */
export class TraceHub implements KernelTracer {
  private readonly watchers = new Set<Watcher>();
  private telemetry: Telemetry | null = null;
  private n = 0;
  private flushing = false;
  private countsDue: NodeJS.Timeout | null = null;
  readonly registry: Registry;
  readonly stats = { records: 0, dropped: 0, spans: 0 };
  cause: Uint8Array = NO_TRACE_CONTEXT;
  causeText = "";
  private readonly rcvPrefix: string;

  constructor(
    private readonly install: (t: KernelTracer | null) => void,
    readonly system: string,
    reg?: Registry,
  ) {
    this.registry = reg ?? registry();
    this.rcvPrefix = subjectsOf(system).deliveryRoot;
  }

  get active(): boolean {
    return this.watchers.size > 0 || this.telemetry !== null;
  }

  get watching(): number {
    return this.watchers.size;
  }

  /** Spans the telemetry's full export queue turned away (0 without telemetry). */
  spansDropped(): number {
    return this.telemetry ? this.telemetry.dropped : 0;
  }

  /** Turns OpenTelemetry spans on (or off with null). */
  useTelemetry(t: Telemetry | null): void {
    this.telemetry = t;
    this.install(this.active ? this : null);
  }

  /**
   * Starts a watch; the returned function ends it. Records arrive in
   * batches, once per turn of the event loop; a rate-limited watch's at
   * most every COUNTS_EVERY_MS, with its counters.
   */
  watch(f: WatchFilter, sink: WatchSink): () => void {
    const w: Watcher = {
      ns: f.ns ?? null,
      tasks: f.tasks && f.tasks.length ? new Set(f.tasks) : null,
      follow: !!f.follow,
      exclude: new Set(f.exclude ?? []),
      bodies: !!f.bodies,
      max: Math.max(1, f.buffer ?? WATCH_BUFFER),
      sink,
      buf: [],
      dropped: 0,
      rate: Math.max(0, Math.floor(f.recordsPerSecond ?? 0)),
      tokens: 0,
      refilled: Date.now(),
      counts: new Map(),
      counted: [],
    };
    w.tokens = w.rate;
    this.watchers.add(w);
    this.install(this);
    return () => {
      if (!this.watchers.has(w)) return;
      // What was recorded or counted before the end is the watcher's: counters may wait up to COUNTS_EVERY_MS.
      if (w.buf.length > 0 || w.dropped > 0 || w.counted.length > 0) this.flushOne(w);
      this.watchers.delete(w);
      if (!this.active) this.install(null);
    };
  }

  // ------------------------------------------------------------ KernelTracer

  sent(m: KMsg, wire: Message | null): void {
    let re = 0;
    let rpc: string | undefined;
    let reply = false;
    let span: KernelSpan | null = null;
    if (m.destType === R_SEND_ONCE) {
      const p = m.dest.tracePending as Flight | null;
      if (p !== null) {
        m.dest.tracePending = null;
        if (m.kernel) {
          // The reply right died unused (the kernel's send-once
          // notification): the request is over, unanswered.
          if (p.span !== null) {
            p.span.fail("reply right destroyed (MIG_SERVER_DIED)");
            p.span.end();
          }
        } else {
          re = p.n;
          reply = true;
          rpc = p.rpc ?? this.registry.name(p.id);
          span = p.span;
        }
      }
    }
    if (!reply) rpc = this.registry.name(m.id, m.kernel) ?? (m.destType === R_SEND_ONCE ? this.registry.name(m.id - 100) : undefined);
    // ts is for watchers' records only (spans keep their own clock).
    const fl: Flight = { n: ++this.n, id: m.id, ts: this.watchers.size > 0 ? Date.now() : 0, sname: wire ? wire.destination : 0, rpc, re, reply, wire, span, tp: NO_TRACE_CONTEXT };
    const tel = this.telemetry;
    if (tel !== null && !reply) this.startSpan(tel.light, m, fl);
    m.trace = fl;
  }

  delivered(m: KMsg, to: KTask, rec: Received): void {
    let fl = m.trace as Flight | null;
    if (!fl) {
      // Routed without passing sent() (a kernel object's MIG_BAD_ID answer).
      fl = { n: ++this.n, id: m.id, ts: Date.now(), sname: 0, rpc: this.registry.name(m.id - 100), re: 0, reply: true, wire: null, span: null, tp: NO_TRACE_CONTEXT };
    } else m.trace = null;
    const span = fl.span;
    const awaitsReply = m.reply !== null && m.replyType === R_SEND_ONCE;
    if (awaitsReply) m.reply!.tracePending = fl;
    if (span !== null) {
      if (fl.reply) {
        span.replied = true;
        span.code = m.code;
        if (m.code !== 0) span.fail(errnoName(m.code));
        span.end();
      } else {
        span.receiver = to.id;
        span.receiverName = rec.local;
        span.ns = to.ns.id;
        span.hurd = this.hurdOf(to.ns);
        rec.traceContext = span.context;
        if (!awaitsReply) span.end();
      }
    } else if (fl.tp.length !== 0) rec.traceContext = fl.tp;
    if (this.watchers.size > 0) this.record(m, fl, to, rec, 0, m.sender, to.ns);
    // The request's Flight waits on its reply port: it keeps no body meanwhile.
    fl.wire = null;
  }

  failed(m: KMsg, code: number): void {
    const fl = m.trace as Flight | null;
    if (!fl) return;
    m.trace = null;
    const span = fl.span;
    if (span !== null) {
      if (fl.reply) span.replied = true;
      span.code = code;
      span.fail(errnoName(code));
      span.end();
    }
    if (this.watchers.size > 0 && m.sender) this.record(m, fl, null, null, code, m.sender, m.sender.ns);
  }

  refused(from: KTask, wire: Message, code: number): void {
    if (this.watchers.size === 0) return;
    const now = Date.now();
    let rec: TraceRecord | null = null;
    for (const w of this.watchers) {
      if (!this.matches(w, from.id, 0, from.ns)) continue;
      if (w.rate !== 0 && !this.spend(w, now)) {
        this.count(w, from.ns.id, from.id, 0, wire.id, this.registry.name(wire.id), false, false);
        continue;
      }
      if (rec === null) {
        rec = blank(++this.n, now, from.ns.id, from.id, 0, wire.destination, 0, wire.id, wire.body.length);
        rec.error = code;
        rec.rpc = this.registry.name(wire.id) ?? "";
      }
      this.push(w, rec, wire.body);
    }
  }

  created(t: KTask): void {
    for (const w of this.watchers) if (w.follow && w.tasks && w.tasks.has(t.parentId)) w.tasks.add(t.id);
  }

  // ------------------------------------------------------------ records

  private matches(w: Watcher, from: number, to: number, ns: Namespace): boolean {
    if (w.exclude.has(from) || w.exclude.has(to)) return false;
    if (w.ns && !inNs(ns, w.ns)) return false;
    if (w.tasks && !w.tasks.has(from) && !w.tasks.has(to)) return false;
    return true;
  }

  private record(m: KMsg, fl: Flight, to: KTask | null, rec: Received | null, err: number, from: KTask | null, ns: Namespace): void {
    const fromId = from ? from.id : 0;
    const toId = to ? to.id : 0;
    let r: TraceRecord | null = null;
    for (const w of this.watchers) {
      if (!this.matches(w, fromId, toId, ns)) continue;
      if (w.rate !== 0 && !this.spend(w, fl.ts)) {
        this.count(w, ns.id, fromId, toId, m.id, fl.rpc, fl.reply, m.kernel);
        continue;
      }
      r ??= this.makeRecord(m, fl, toId, rec, err, fromId, ns);
      this.push(w, r, m.body);
    }
  }

  /** A record's worth of the watcher's rate, if it has one left (a token bucket holding a second's worth). */
  private spend(w: Watcher, now: number): boolean {
    if (w.tokens < 1) {
      const add = ((now - w.refilled) * w.rate) / 1000;
      if (add < 1) return false;
      w.tokens = Math.min(w.rate, w.tokens + add);
      w.refilled = now;
    }
    w.tokens--;
    return true;
  }

  private count(w: Watcher, ns: number, from: number, to: number, id: number, rpc: string | undefined, reply: boolean, kernel: boolean): void {
    let byTo = w.counts.get(from);
    if (byTo === undefined) w.counts.set(from, (byTo = new Map()));
    let byId = byTo.get(to);
    if (byId === undefined) byTo.set(to, (byId = new Map()));
    const k = id * 2 + (reply ? 1 : 0);
    let c = byId.get(k);
    if (c === undefined) {
      if (w.counted.length >= WATCH_COUNTS) {
        w.dropped++;
        this.stats.dropped++;
        return;
      }
      c = { namespaceId: ns, fromTask: from, toTask: to, msgid: id, rpc: rpc ?? "", isReply: reply, kernel, count: 0 };
      byId.set(k, c);
      w.counted.push(c);
    }
    c.count++;
    this.dueLater();
  }

  /** A flush of every watcher within COUNTS_EVERY_MS (counters, and the records of rate-limited watches). */
  private dueLater(): void {
    if (this.countsDue !== null) return;
    this.countsDue = setTimeout(() => {
      this.countsDue = null;
      this.flush(true);
    }, COUNTS_EVERY_MS);
    // What is not yet sent when the process ends is lost with the watch.
    this.countsDue.unref();
  }

  private makeRecord(m: KMsg, fl: Flight, to: number, rec: Received | null, err: number, from: number, ns: Namespace): TraceRecord {
    const r = blank(fl.n, fl.ts, ns.id, from, to, fl.sname, rec ? rec.local : 0, m.id, m.body.length);
    if (fl.rpc) r.rpc = fl.rpc;
    if (fl.reply) {
      r.isReply = true;
      r.replyTo = fl.re;
      r.code = m.code;
    }
    r.error = err;
    r.kernel = m.kernel;
    // The trace to link to (rpctrace --links, hurd web): the kernel's span's, else the sender's sampled context.
    if (fl.span !== null) r.traceId = fl.span.ids.subarray(0, 16);
    else if (m.traceContext.length !== 0 && isSampled(m.traceContext)) r.traceId = m.traceContext.subarray(0, 16);
    const rights = r.rights;
    const wire = fl.wire;
    if (wire && wire.reply && wire.reply !== DEAD) rights.push(`reply ${DISP[wire.replyDisposition || 21] ?? wire.replyDisposition} ${wire.reply}->${rec ? rec.reply : "?"}`);
    const n = m.rights ? m.rights.length : 0;
    for (let i = 0; i < n; i++) {
      const sp = wire?.ports[i];
      const rp = rec?.ports[i];
      const d = sp ? (DISP[sp.disposition] ?? String(sp.disposition)) : rp ? (ARRIVED[rp.type] ?? String(rp.type)) : "?";
      rights.push(`${d} ${sp ? sp.name : "-"}->${rp ? (rp.name === DEAD ? "dead" : rp.name) : "?"}`);
    }
    return r;
  }

  private push(w: Watcher, r: TraceRecord, body: Uint8Array): void {
    if (w.buf.length >= w.max) {
      w.dropped++;
      this.stats.dropped++;
      return;
    }
    this.stats.records++;
    w.buf.push(w.bodies && body.length && body.length <= BODY_MAX ? { ...r, body } : r);
    // A full batch leaves at once: a loop kept busy by promises (in-process
    // buses) may not reach setImmediate for a long time.
    if (w.buf.length >= BATCH) {
      this.flushOne(w);
      return;
    }
    // A rate-limited watch's records wait for its counters (at most
    // COUNTS_EVERY_MS): its token bucket hands out one record every few ms,
    // and a batch for each would cost the kernel a stream write (and the
    // watcher a batch to decode) per record, what the rate is there to save.
    if (w.rate !== 0) {
      this.dueLater();
      return;
    }
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush(false));
    }
  }

  /** Every watcher's batch (`all`), or (at the end of a turn of the loop) those of watches without a rate. */
  private flush(all: boolean): void {
    if (!all) this.flushing = false;
    for (const w of this.watchers) if ((all || w.rate === 0) && (w.buf.length > 0 || w.dropped > 0 || w.counted.length > 0)) this.flushOne(w);
  }

  private flushOne(w: Watcher): void {
    const recs = w.buf;
    const dropped = w.dropped;
    const counts = w.counted;
    w.buf = [];
    w.dropped = 0;
    if (counts.length !== 0) {
      w.counted = [];
      w.counts.clear();
    }
    try {
      w.sink(recs, dropped, counts);
    } catch {
      // A watcher's failure is its own: it never reaches routing.
    }
  }

  // ------------------------------------------------------------ spans

  /** A namespace's hurd name, made once per namespace (spans of one hurd mostly follow one another). */
  private readonly hurds = new WeakMap<Namespace, string>();
  private lastNs: Namespace | null = null;
  private lastHurd = "";
  private hurdOf(ns: Namespace): string {
    if (ns === this.lastNs) return this.lastHurd;
    let h = this.hurds.get(ns);
    if (h === undefined) this.hurds.set(ns, (h = hurdNameOf(this.system, ns)));
    this.lastNs = ns;
    this.lastHurd = h;
    return h;
  }

  private startSpan(lt: LightTracer, m: KMsg, fl: Flight): void {
    const name = m.kernel ? (fl.rpc ?? `notify ${m.id}`) : (fl.rpc ?? `msgid ${m.id}`);
    const parent = lt.parent(m.traceContext);
    if (parent === UNSAMPLED) return;
    if (parent === null && !lt.sampleRoot(name)) {
      fl.tp = lt.unsampledContext();
      return;
    }
    const sender = m.sender;
    const wire = fl.wire;
    let rights: string[] | null = null;
    if (wire !== null && wire.ports.length !== 0) {
      rights = [];
      for (const p of wire.ports) rights.push(`${DISP[p.disposition] ?? p.disposition} ${p.name}`);
    }
    const span = (fl.span = new KernelSpan(lt, name, parent, this.rcvPrefix, m.id, sender ? sender.id : 0, fl.sname, m.kernel, fl.rpc, rights));
    if (sender) span.hurd = this.hurdOf(sender.ns);
    this.stats.spans++;
    // A notification starts its own trace, linked to its cause: the span of
    // the trap that made the kernel send it (task_terminate, the message or
    // deallocation that released the last send right, ...).
    if (m.kernel) {
      const c = this.cause.length !== 0 ? this.cause : this.causeText.length !== 0 ? traceContextOf(this.causeText) : NO_TRACE_CONTEXT;
      if (c.length !== 0 && isTraceContext(c)) span.cause = c;
    }
  }
}

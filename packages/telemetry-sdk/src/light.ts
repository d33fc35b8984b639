// Spans made without the SDK's Tracer, for the per-message hot path.
//
// The SDK's Span does per span what a message router cannot afford at
// 100 % sampling: a context object per start, hrtime conversions, attribute
// sanitizing on every setAttribute, ids formatted per call, span limits. A
// LightSpan keeps raw fields only: its ids as the 25 bytes of a binary
// trace context (what messages carry, so a child's context needs no
// formatting), its parent's context by reference, times as performance.now()
// numbers, attributes as the subclass's own fields.
//
// Where an ended span goes is the telemetry's LightSink: with hurdmesh's
// own OTLP exporters a RecordSink (record-sink.ts), which writes it as a
// fixed record and lets the export worker encode it — the object dies
// young; with any other exporter the SDK's BatchSpanProcessor, which reads
// it as the ReadableSpan it also is. Both queues are bounded and count what
// they drop.
//
// Sampling is parent-based, as the SDK's default: a child follows its
// parent's sampled flag; a root asks the telemetry's root sampler. An
// unsampled child makes no span at all and forwards its parent's context.
import { SpanKind, SpanStatusCode, type Attributes, type HrTime, type Link, type SpanContext, type SpanStatus } from "@opentelemetry/api";
import type { InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan, SpanProcessor, TimedEvent } from "@opentelemetry/sdk-trace";
import { hexOf, isSampled, isTraceContext, NO_TRACE_CONTEXT, TRACE_CONTEXT_BYTES, TRACE_FLAGS_AT } from "@hurdmesh/mach/internal";
import { UNSAMPLED, type HotSpan, type HotTracer, type Parent, type ServingTask } from "@hurdmesh/telemetry";
import { Errno, errnoName } from "@hurdmesh/mach/errors";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { attributes, LD, link, status as writeStatus, Writer } from "./otlp-writer.js";
import { putRecord, putServerFields, REC_PLAIN, REC_SERVER, S_ANSWERED, type NameTable, type RecordChunk } from "./records.js";

export { UNSAMPLED, type Parent };

const ORIGIN = performance.timeOrigin;
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[];
const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
const CAUSE = Object.freeze({ "hurd.link": "cause" });

// Ids, as bytes. A span id is a random 32-bit prefix (new per process and
// whenever the counter wraps) and a counter: unique in this process, and
// across processes unless two draw the same prefix, and cheap (the
// crypto-backed pool this replaced cost more than the rest of a span). A
// trace id is 64 random bits and a span id. Math.random is what the SDK's
// own RandomIdGenerator uses: ids must be unique, not secret. Ids are made
// and kept as bytes because bytes is what both the wire (trace_context) and
// OTLP carry; hex is made only for an SDK exporter or a text header.
const rand32 = (): number => (Math.random() * 4294967296) >>> 0;
let prefix = rand32();
let counter = 0;
function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}
/** Writes a new span id (8 bytes) at `at`. */
function putSpanId(b: Uint8Array, at: number): void {
  if (++counter > 0xffffffff) {
    counter = 1;
    prefix = rand32();
  }
  put32(b, at, prefix);
  put32(b, at + 4, counter);
}
/** Writes a new trace id (16 bytes) at `at`. */
function putTraceId(b: Uint8Array, at: number): void {
  put32(b, at, rand32() || 1);
  put32(b, at + 4, rand32());
  putSpanId(b, at + 8);
}
export const newLightSpanId = (): string => {
  const b = new Uint8Array(8);
  putSpanId(b, 0);
  return hexOf(b, 0, 8);
};
export const newLightTraceId = (): string => {
  const b = new Uint8Array(16);
  putTraceId(b, 0);
  return hexOf(b, 0, 16);
};

function hr(rel: number): HrTime {
  const ms = ORIGIN + rel;
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** Where ended LightSpans go: encoded at once for hurdmesh's own OTLP exporter, or queued as objects for any other. */
export interface LightSink {
  add(span: LightSpan): void;
}

/** Where LightSpans go: the telemetry's sink, resource and scope, and its root sampling. */
export class LightTracer implements HotTracer {
  constructor(
    readonly sink: LightSink,
    readonly resource: Resource,
    readonly scope: InstrumentationScope,
    /** Whether a new trace (a span with no parent) is sampled. */
    readonly sampleRoot: (name: string) => boolean,
    /**
     * The root sampler never samples (always_off): an unsampled new trace
     * then carries no context at all. Telling the next hop "not sampled"
     * would cost a context in every message to get the answer it would
     * reach anyway.
     */
    readonly neverSampled = false,
  ) {}

  /** The context an unsampled new trace carries on (empty when it need carry none). */
  unsampledContext(): Uint8Array {
    return this.neverSampled ? NO_TRACE_CONTEXT : UNSAMPLED_CONTEXT;
  }

  /**
   * The parent of a span about to start under context `c` (binary, as
   * messages carry it): null for a root (then ask sampleRoot), `c` itself
   * when it is sampled, `UNSAMPLED` when it is not (then make no span).
   */
  parent(c: Uint8Array): Parent | null {
    if (c.length === 0 || !isTraceContext(c)) return null;
    return isSampled(c) ? c : UNSAMPLED;
  }

  startServerSpan(name: string, parent: Parent | null, method: string | undefined, migId: number, server?: ServingTask): ServerSpan {
    return new ServerSpan(this, name, parent, method, migId, server);
  }

  private readonly prefixes = new Map<string, string>();
  /** "hurd.<system>.rcv.": a task's delivery subject is this and its id (server.address). */
  deliveryRoot(system: string): string {
    let p = this.prefixes.get(system);
    if (p === undefined) this.prefixes.set(system, (p = subjectsOf(system).deliveryRoot));
    return p;
  }

  startSpan(name: string, kind: SpanKind, parent: Parent | null, given: Attributes): PlainSpan {
    return new PlainSpan(this, name, kind, parent, given);
  }
}

/**
 * A span as the exporters read it. Subclasses keep their attributes as
 * fields and build the attribute object in `attrs()` (called at export).
 */
export class LightSpan implements ReadableSpan, HotSpan {
  /** This span's own context, as messages carry it: trace id [0,16), span id [16,24), flags [24]. */
  readonly ids: Uint8Array;
  /**
   * The parent's context (its span id at [16,24)), null for a root. Kept by
   * reference, not copied: a span lives until its end, and a message's
   * context is a view of that message's own bytes, which nothing reuses.
   */
  readonly parentCtx: Uint8Array | null;
  readonly startRel: number;
  endRel = 0;
  status: SpanStatus = UNSET;
  private _links: Link[] = NO_LINKS;
  /**
   * The context of what caused this span (a notification's trap), linked to
   * it as "cause". Kept as bytes and carried by the span's record; a Link
   * object is made only for an SDK exporter.
   */
  cause: Uint8Array | null = null;
  private extra: Attributes | null = null;
  // What an SDK exporter reads, built once.
  private a: Attributes | null = null;
  private sc: SpanContext | null = null;
  private psc: SpanContext | null | undefined = undefined;

  constructor(
    private readonly lt: LightTracer,
    public name: string,
    readonly kind: SpanKind,
    parent: Parent | null,
    startRel = performance.now(),
  ) {
    const b = (this.ids = new Uint8Array(TRACE_CONTEXT_BYTES));
    if (parent !== null) for (let i = 0; i < 16; i++) b[i] = parent[i]!;
    else putTraceId(b, 0);
    this.parentCtx = parent;
    putSpanId(b, 16);
    b[TRACE_FLAGS_AT] = 1;
    this.startRel = startRel;
  }

  /** This span's binary trace context (sampled), for the messages it causes. */
  get context(): Uint8Array {
    return this.ids;
  }
  get hasParent(): boolean {
    return this.parentCtx !== null;
  }

  get traceId(): string {
    return hexOf(this.ids, 0, 16);
  }
  get spanId(): string {
    return hexOf(this.ids, 16, 24);
  }
  /** The parent's span id in hex ("" for a root). */
  get parentId(): string {
    return this.parentCtx !== null ? hexOf(this.parentCtx, 16, 24) : "";
  }

  /** Start and end, ms since the epoch (fractional). */
  get startMs(): number {
    return ORIGIN + this.startRel;
  }
  get endMs(): number {
    return ORIGIN + this.endRel;
  }

  setAttribute(k: string, v: Attributes[string]): void {
    (this.extra ??= {})[k] = v;
  }

  fail(message: string, _code?: number): void {
    this.status = { code: SpanStatusCode.ERROR, message };
  }

  end(): void {
    if (this.endRel !== 0) return;
    this.endRel = performance.now();
    this.lt.sink.add(this);
  }

  /** The span's own attributes (subclasses), for SDK exporters; records carry the same (records.ts). */
  protected attrs(): Attributes {
    return {};
  }

  /**
   * Writes the fixed attributes of the span's record type into record word
   * `wi` and returns the type and its flags (records.ts). A plain span has
   * none: its attributes go in the tail.
   */
  protected recordFields(_i32: Int32Array, _wi: number, _names: NameTable): number {
    return REC_PLAIN;
  }
  /** Whether the span has attributes of its own beyond its record fields (written by tailAttributes). */
  protected needsTail(): boolean {
    return false;
  }
  protected tailAttributes(_w: Writer): void {}

  /** Writes the span as the next record of `c` (which has room). */
  toRecord(c: RecordChunk, names: NameTable): void {
    const nameId = names.id(this.name);
    const plain = this.recordFields === LightSpan.prototype.recordFields;
    const tail =
      nameId === 0 || plain || this.extra !== null || this._links !== NO_LINKS || this.status !== UNSET || this.needsTail() ? this.tail(nameId === 0, plain) : null;
    const wi = putRecord(c, this.kind, nameId, this.ids, this.parentCtx, ORIGIN + this.startRel, ORIGIN + this.endRel, tail, this.cause);
    if (!plain) c.i32[wi] |= this.recordFields(c.i32, wi, names);
  }

  /** The rare parts, encoded now as Span fields: the name when it has no number, attributes, links, status. */
  private tail(withName: boolean, plain: boolean): Uint8Array {
    const w = (tailWriter ??= new Writer());
    w.pos = 0;
    if (withName) {
      w.tag(5, LD);
      w.string(this.name);
    }
    if (plain) attributes(w, 9, this.attributes);
    else {
      if (this.extra !== null) attributes(w, 9, this.extra);
      this.tailAttributes(w);
    }
    for (const l of this._links) link(w, l);
    writeStatus(w, this.status);
    return w.take();
  }

  // ------------------------------------------------------------ ReadableSpan

  get links(): Link[] {
    const c = this.cause;
    if (c === null) return this._links;
    return [{ context: { traceId: hexOf(c, 0, 16), spanId: hexOf(c, 16, 24), traceFlags: c[TRACE_FLAGS_AT]!, isRemote: true }, attributes: CAUSE }, ...this._links];
  }
  set links(l: Link[]) {
    this._links = l;
  }

  spanContext(): SpanContext {
    return (this.sc ??= { traceId: this.traceId, spanId: this.spanId, traceFlags: 1 });
  }
  get parentSpanContext(): SpanContext | undefined {
    if (this.psc === undefined) this.psc = this.hasParent ? { traceId: this.traceId, spanId: this.parentId, traceFlags: 1, isRemote: true } : null;
    return this.psc ?? undefined;
  }
  /** Read only once the span has ended (by exporters): built on first read. */
  get attributes(): Attributes {
    if (this.a === null) {
      const a = this.attrs();
      this.a = this.extra !== null ? Object.assign(a, this.extra) : a;
    }
    return this.a;
  }
  get startTime(): HrTime {
    return hr(this.startRel);
  }
  get endTime(): HrTime {
    return hr(this.endRel);
  }
  get duration(): HrTime {
    const d = Math.max(0, this.endRel - this.startRel);
    const s = Math.floor(d / 1000);
    return [s, Math.round((d - s * 1000) * 1e6)];
  }
  get ended(): boolean {
    return this.endRel !== 0;
  }
  get events(): TimedEvent[] {
    return NO_EVENTS;
  }
  get resource(): Resource {
    return this.lt.resource;
  }
  get instrumentationScope(): InstrumentationScope {
    return this.lt.scope;
  }
  get droppedAttributesCount(): number {
    return 0;
  }
  get droppedEventsCount(): number {
    return 0;
  }
  get droppedLinksCount(): number {
    return 0;
  }
}

let tailWriter: Writer | null = null;

/** Queues ended spans as objects on an SDK SpanProcessor (exporters other than hurdmesh's own OTLP). */
export class ProcessorSink implements LightSink {
  constructor(private readonly processor: SpanProcessor) {}
  add(span: LightSpan): void {
    this.processor.onEnd(span);
  }
}

/** A span with a plain attribute object (rare spans: boot steps, notifications). */
export class PlainSpan extends LightSpan {
  constructor(lt: LightTracer, name: string, kind: SpanKind, parent: Parent | null, private readonly given: Attributes) {
    super(lt, name, kind, parent);
  }
  protected override attrs(): Attributes {
    return { ...this.given };
  }
}

/** A request's handling in its server (the API's hooks start it); attributes become an object only at export. */
export class ServerSpan extends LightSpan {
  /** The Hurd error code the request was answered with (0: success). */
  code = 0;
  constructor(
    private readonly tracer: LightTracer,
    name: string,
    parent: Parent | null,
    private readonly method: string | undefined,
    private readonly migId: number,
    private readonly server?: ServingTask,
  ) {
    super(tracer, name, SpanKind.SERVER, parent);
  }
  override fail(message: string, code?: number): void {
    super.fail(message);
    // A failure without a Hurd code (a handler that threw something else) is answered EIO by the runtime.
    this.code = code ?? Errno.EIO;
  }
  // The kernel's span above this one names the ports, tasks and MIG id;
  // repeating them here would only add to every export's serialization.
  // What is here is the vocabulary every RPC span shares: the method, the
  // status code, the server's address and hurd.
  protected override recordFields(i32: Int32Array, wi: number, names: NameTable): number {
    const sv = this.server;
    putServerFields(i32, wi, names.id(this.method ?? String(this.migId)), sv ? names.id(sv.hurd) : 0, sv ? names.id(this.tracer.deliveryRoot(sv.system)) : 0, sv ? sv.id : 0, this.code);
    return REC_SERVER | S_ANSWERED;
  }
  protected override attrs(): Attributes {
    const a: Attributes = { "rpc.system.name": "hurdmesh", "rpc.method": this.method ?? String(this.migId), "rpc.response.status_code": this.code === 0 ? "OK" : errnoName(this.code) };
    if (this.code !== 0) a["error.type"] = errnoName(this.code);
    const sv = this.server;
    if (sv) {
      a["server.address"] = `${this.tracer.deliveryRoot(sv.system)}${sv.id}`;
      a["hurd.name"] = sv.hurd;
    }
    return a;
  }
}

/**
 * The context of every unsampled new trace this process starts: downstream
 * spans follow the decision instead of making it again. Unsampled ids are
 * never exported and mean nothing to anyone, so one valid pair per process
 * serves them all and costs nothing per message.
 */
const UNSAMPLED_CONTEXT: Uint8Array = (() => {
  const b = new Uint8Array(TRACE_CONTEXT_BYTES);
  putTraceId(b, 0);
  putSpanId(b, 16);
  b[TRACE_FLAGS_AT] = 0;
  return b;
})();
export function unsampledRoot(): Uint8Array {
  return UNSAMPLED_CONTEXT;
}

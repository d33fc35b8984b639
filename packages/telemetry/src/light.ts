// Spans made without the SDK's Tracer, for the per-message hot path.
//
// The SDK's Span does per span what a message router cannot afford at
// 100 % sampling: a context object per start, hrtime conversions, attribute
// sanitizing on every setAttribute, ids formatted per call, span
// limits. A LightSpan keeps only raw fields (ids from a counter, times as
// performance.now() numbers, attributes as the subclass's own fields) and
// turns them into the ReadableSpan the exporters
// want only when they read it — at export, off the delivery path, in
// batches. Ended spans go straight to the telemetry's (bounded, counting)
// BatchSpanProcessor, so they are exported, dropped and counted exactly as
// SDK spans are.
//
// Sampling is parent-based, as the SDK's default: a child follows its
// parent's sampled flag; a root asks the telemetry's root sampler. An
// unsampled child makes no span at all and forwards its parent's context.
import { SpanKind, SpanStatusCode, type Attributes, type HrTime, type Link, type SpanContext, type SpanStatus } from "@opentelemetry/api";
import type { InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan, SpanProcessor, TimedEvent } from "@opentelemetry/sdk-trace-base";
import { parseTraceparent } from "./traceparent.js";

const ORIGIN = performance.timeOrigin;
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[];
const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });

// Ids. A span id is a random 32-bit prefix (new per process and whenever
// the counter wraps) and a counter: unique in this process, and across
// processes unless two draw the same prefix, and cheap (the crypto-backed
// pool this replaced cost more than the rest of a span). Trace ids add 64
// more random bits on the left, so they differ between processes. Math.random
// is what the SDK's own RandomIdGenerator uses: ids must be unique, not secret.
// Number#toString(16) is a slow runtime call in V8: a byte table instead.
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const hex8 = (x: number): string => HEX2[x >>> 24]! + HEX2[(x >>> 16) & 255]! + HEX2[(x >>> 8) & 255]! + HEX2[x & 255]!;
const rand8 = (): string => hex8((Math.random() * 4294967296) >>> 0);
let prefix = rand8();
let counter = 0;
function spanId(): string {
  if (++counter > 0xffffffff) {
    counter = 1;
    prefix = rand8();
  }
  return prefix + hex8(counter);
}
function hex(n: 16 | 32): string {
  return n === 16 ? spanId() : rand8() + rand8() + spanId();
}
export const newLightSpanId = (): string => hex(16);
export const newLightTraceId = (): string => hex(32);

function hr(rel: number): HrTime {
  const ms = ORIGIN + rel;
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** Where LightSpans go: the telemetry's processor, resource and scope, and its root sampling. */
export class LightTracer {
  constructor(
    readonly processor: SpanProcessor,
    readonly resource: Resource,
    readonly scope: InstrumentationScope,
    /** Whether a new trace (a span with no parent) is sampled. */
    readonly sampleRoot: (name: string) => boolean,
    /**
     * The root sampler never samples (always_off): an unsampled new trace
     * then carries no context at all. Telling the next hop "not sampled"
     * would cost a traceparent in every message (encoded, decoded, parsed:
     * a tenth of a brokered RPC) to get the answer it would reach anyway.
     */
    readonly neverSampled = false,
  ) {}

  /** The context an unsampled new trace carries on ("" when it need carry none). */
  unsampledContext(): string {
    return this.neverSampled ? "" : unsampledRoot();
  }

  /**
   * The parent of a span about to start under `traceparent`: null for a
   * root (then ask sampleRoot), the parsed parent when it is sampled,
   * `UNSAMPLED` when it is not (then make no span).
   */
  parent(traceparent: string): Parent | null {
    if (traceparent.length !== 0) {
      const p = parseTraceparent(traceparent);
      // The parsed context is a Parent as it is (no copy per span).
      if (p !== null) return p.flags & 1 ? p : UNSAMPLED;
    }
    return null;
  }
}

export interface Parent {
  traceId: string;
  spanId: string;
}
/** The parent was not sampled: no span, its context goes on as is. */
export const UNSAMPLED: Parent = Object.freeze({ traceId: "", spanId: "" });

/**
 * A span as the exporters read it. Subclasses keep their attributes as
 * fields and build the attribute object in `attrs()` (called at export).
 */
export class LightSpan implements ReadableSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentId: string;
  readonly startRel: number;
  endRel = 0;
  status: SpanStatus = UNSET;
  links: Link[] = NO_LINKS;
  private tp: string | null = null;
  private extra: Attributes | null = null;
  // What the exporter reads, built once: the OTLP serializer reads each
  // span twice (size estimate, then write) and parentSpanContext four times.
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
    this.traceId = parent !== null ? parent.traceId : hex(32);
    this.parentId = parent !== null ? parent.spanId : "";
    this.spanId = hex(16);
    this.startRel = startRel;
  }

  /** Start and end, ms since the epoch (fractional). */
  get startMs(): number {
    return ORIGIN + this.startRel;
  }
  get endMs(): number {
    return ORIGIN + this.endRel;
  }

  /** This span's W3C traceparent (sampled), for the messages it causes. */
  get traceparent(): string {
    return (this.tp ??= `00-${this.traceId}-${this.spanId}-01`);
  }

  /** Attributes were set beyond the subclass's own (writeAttributes does not know them). */
  get hasExtra(): boolean {
    return this.extra !== null;
  }

  setAttribute(k: string, v: Attributes[string]): void {
    (this.extra ??= {})[k] = v;
  }

  fail(message: string): void {
    this.status = { code: SpanStatusCode.ERROR, message };
  }

  end(): void {
    if (this.endRel !== 0) return;
    this.endRel = performance.now();
    this.lt.processor.onEnd(this);
  }

  /**
   * Encodes the span's attributes straight into the OTLP buffer (field 9
   * KeyValues), skipping the attribute object; subclasses on the hot path
   * set it. Must write what attrs() returns.
   */
  writeAttributes?(w: import("./otlp.js").Writer): void;

  /** The span's own attributes (subclasses). */
  protected attrs(): Attributes {
    return {};
  }

  // ------------------------------------------------------------ ReadableSpan

  spanContext(): SpanContext {
    return (this.sc ??= { traceId: this.traceId, spanId: this.spanId, traceFlags: 1 });
  }
  get parentSpanContext(): SpanContext | undefined {
    if (this.psc === undefined) this.psc = this.parentId ? { traceId: this.traceId, spanId: this.parentId, traceFlags: 1, isRemote: true } : null;
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

/** A span with a plain attribute object (rare spans: boot steps, notifications). */
export class PlainSpan extends LightSpan {
  constructor(lt: LightTracer, name: string, kind: SpanKind, parent: Parent | null, private readonly given: Attributes) {
    super(lt, name, kind, parent);
  }
  protected override attrs(): Attributes {
    return { ...this.given };
  }
}

/**
 * The context of every unsampled new trace this process starts: downstream
 * spans follow the decision instead of making it again. Unsampled ids are
 * never exported and mean nothing to anyone, so one valid pair per process
 * serves them all and costs nothing per message.
 */
const UNSAMPLED_TP = `00-${hex(32)}-${hex(16)}-00`;
export function unsampledRoot(): string {
  return UNSAMPLED_TP;
}

// OpenTelemetry for hurdmesh services, configured from the standard OTEL_*
// environment. Off unless an endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or HURD_TRACE asks for it; off whenever
// OTEL_SDK_DISABLED=true. Spans leave through a BatchSpanProcessor whose
// queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE, default 2048): a stalled or
// absent collector costs at most that many spans of memory, and every span
// that did not fit is counted in `dropped`.
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { ROOT_CONTEXT, SpanKind, trace, type Attributes, type Context, type Link } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type SamplingResult,
  type SpanExporter,
} from "@opentelemetry/sdk-trace";
import { tracingEnabled, type Telemetry } from "@hurdmesh/telemetry";
import { LightTracer, newLightTraceId, ProcessorSink } from "./light.js";
import { encodeSpans, headFor, isEncodedExporter, OtlpHttpExporter, type ExporterConfig } from "./otlp.js";
import { RecordSink } from "./record-sink.js";
import { RpcConventions } from "./conventions.js";
import { programResource } from "./resource.js";

export interface TelemetryOptions {
  /** service.name (OTEL_SERVICE_NAME wins when set). */
  service: string;
  /** Export here instead of OTLP (tests, the bench). */
  exporter?: SpanExporter;
  sampler?: Sampler;
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  scheduledDelayMillis?: number;
  exportTimeoutMillis?: number;
  /**
   * Encode and send hot-path spans on a worker thread (default: see `bus`;
   * HURD_TRACE_EXPORT_THREAD=1 or 0 forces it). Only for hurdmesh's own OTLP exporters;
   * any other exporter gets span objects through a BatchSpanProcessor.
   */
  exportThread?: boolean;
  /**
   * The bus the program routes over, for exportThread's default: the
   * worker is used unless the program is on NATS on a machine of two cores
   * or fewer. There the second core is nats-server's, and a worker competing
   * with it cost more throughput than the encoding it took off the routing
   * thread (A/B, brokered Ping on NATS: about 3 % with the export inline, 10
   * to 13 % with the worker; in process the reverse: 4 to 7 % against 14 to 16 %).
   */
  bus?: "local" | "nats";
  env?: NodeJS.ProcessEnv;
  /** The hurd the program serves (hurd.name on the resource; default: from the environment). */
  hurd?: string;
  /** What this program's gRPC server spans name as server.address (the kernel's edge, host:port). */
  serverAddress?: string;
}

/** The API's Telemetry as the SDK builds it: what its own parts (the kernel's spans, tests, the bench) reach beyond the API. */
export interface SdkTelemetry extends Telemetry {
  readonly provider: TracerProvider;
  readonly processor: CountingBatchSpanProcessor;
  /** The hot path's spans (kernel routing, request handlers): same processor, resource and sampling. */
  readonly light: LightTracer;
}

/** A BatchSpanProcessor that counts the spans its full queue turned away. */
export class CountingBatchSpanProcessor extends BatchSpanProcessor {
  dropped = 0;
  private readonly max: number;
  constructor(exporter: SpanExporter, config: { maxQueueSize: number; maxExportBatchSize: number; scheduledDelayMillis: number; exportTimeoutMillis: number }) {
    super({ exporter, ...config });
    this.max = config.maxQueueSize;
  }
  get queued(): number {
    return (this as unknown as { _finishedSpans?: unknown[] })._finishedSpans?.length ?? 0;
  }
  override onEnd(span: ReadableSpan): void {
    if (span.spanContext().traceFlags & 1 && this.queued >= this.max) this.dropped++;
    super.onEnd(span);
  }
}

/** Exports nothing (HURD_TRACE=noop): spans are made, batched and thrown away. */
export class NoopExporter implements SpanExporter {
  exported = 0;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.exported += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

/**
 * Serializes every batch as the OTLP/protobuf exporter puts it on the
 * wire (encodeSpans), then throws the bytes away (HURD_TRACE=serialize, the bench): the
 * export's CPU cost without a collector.
 */
export class SerializingExporter implements SpanExporter {
  exported = 0;
  bytes = 0;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const b = encodeSpans(spans);
    this.bytes += b ? b.length : 0;
    this.exported += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  /** Light spans arrive as records encoded in batches (record-sink.ts): the same bytes OtlpHttpExporter posts. */
  sendEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    this.bytes += body.length;
    this.exported += spans;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  workerConfig(): ExporterConfig {
    return { kind: "serialize" };
  }
}

/** The OTLP exporter the environment names, loaded only when first needed. */
class LazyOtlpExporter implements SpanExporter {
  private real: Promise<SpanExporter> | null = null;
  constructor(private readonly env: NodeJS.ProcessEnv) {}
  private load(): Promise<SpanExporter> {
    // http/protobuf (the OTLP default) goes through hurdmesh's own encoder
    // and is not lazy (createTelemetry); grpc and http/json through the OTel exporters.
    const proto = (this.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? this.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf").toLowerCase();
    return (this.real ??=
      proto === "grpc"
        ? import("@opentelemetry/exporter-trace-otlp-grpc").then((m) => new m.OTLPTraceExporter() as SpanExporter)
        : import("@opentelemetry/exporter-trace-otlp-http").then((m) => new m.OTLPTraceExporter() as SpanExporter));
  }
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.load().then(
      (e) => e.export(spans, done),
      (error: Error) => done({ code: ExportResultCode.FAILED, error }),
    );
  }
  async shutdown(): Promise<void> {
    if (this.real) await (await this.real).shutdown();
  }
  async forceFlush(): Promise<void> {
    if (this.real) await (await this.real).forceFlush?.();
  }
}

/**
 * Whether a new trace is sampled: `sampler` when given, else the standard
 * OTEL_TRACES_SAMPLER (always_on, always_off, traceidratio and their
 * parentbased_ forms: children always follow their parent here).
 */
const NEVER = (): boolean => false;
const ALWAYS = (): boolean => true;

/**
 * A ratio as a root decision: Math.random() against it. The trace-id-ratio
 * sampler hashes a trace id made for the purpose, which cost a random id
 * and a hash for every root span, sampled or not. Its point, that every
 * service decides alike for one trace id, does not arise for a root: the
 * root decides once and its children follow the sampled flag it sends
 * (LightTracer.parent), so a draw gives the same ratio for less.
 */
function ratioRoot(r: number): (name: string) => boolean {
  if (!(r > 0)) return NEVER;
  if (r >= 1) return ALWAYS;
  return () => Math.random() < r;
}

function clampRatio(v: string | undefined): number {
  const r = Number(v ?? "1");
  return Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 1;
}

/** The ratio of a TraceIdRatioBasedSampler, from its documented toString ("TraceIdRatioBased{0.1}"); null for any other sampler. */
function ratioOf(sampler: Sampler): number | null {
  if (!(sampler instanceof TraceIdRatioBasedSampler)) return null;
  const m = /^TraceIdRatioBased\{([^}]*)\}$/.exec(sampler.toString());
  const r = m ? Number(m[1]) : NaN;
  return Number.isFinite(r) ? r : null;
}

function rootSampler(sampler: Sampler | undefined, env: NodeJS.ProcessEnv): (name: string) => boolean {
  if (sampler instanceof AlwaysOnSampler) return ALWAYS;
  if (sampler instanceof AlwaysOffSampler) return NEVER;
  if (sampler) {
    const r = ratioOf(sampler);
    if (r !== null) return ratioRoot(r);
    // Any other sampler sees a fresh random trace id (the span's own is made once it is sampled).
    return (name) => sampler.shouldSample(ROOT_CONTEXT, newLightTraceId(), name, SpanKind.INTERNAL, {}, []).decision === SamplingDecision.RECORD_AND_SAMPLED;
  }
  const kind = (env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on").toLowerCase();
  if (kind === "always_off" || kind === "parentbased_always_off") return NEVER;
  if (kind === "traceidratio" || kind === "parentbased_traceidratio") return ratioRoot(clampRatio(env.OTEL_TRACES_SAMPLER_ARG));
  return ALWAYS;
}

/** The SDK sampler OTEL_TRACES_SAMPLER names (parent-based always-on by default), for the SDK's own spans. */
function sdkSampler(env: NodeJS.ProcessEnv): Sampler {
  const kind = (env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on").toLowerCase();
  const ratio = () => new TraceIdRatioBasedSampler(clampRatio(env.OTEL_TRACES_SAMPLER_ARG));
  if (kind === "always_off") return new AlwaysOffSampler();
  if (kind === "always_on") return new AlwaysOnSampler();
  if (kind === "traceidratio") return ratio();
  if (kind === "parentbased_always_off") return new ParentBasedSampler({ root: new AlwaysOffSampler() });
  if (kind === "parentbased_traceidratio") return new ParentBasedSampler({ root: ratio() });
  return new ParentBasedSampler({ root: new AlwaysOnSampler() });
}

/**
 * The gRPC instrumentation makes a span for every call, and a task on the
 * kernel's edge calls it for everything (attach, heartbeats, its Receive
 * stream, each message). Those calls are traced only inside a trace (a
 * caller's traceparent); outside one they would each be a trace of their
 * own, a stream of one-span traces that says nothing the kernel's own
 * spans for the messages do not.
 */
class EdgeCallsInTracesOnly implements Sampler {
  constructor(private readonly base: Sampler) {}
  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (name.startsWith(EDGE_PREFIX) && trace.getSpanContext(ctx) === undefined) return { decision: SamplingDecision.NOT_RECORD };
    return this.base.shouldSample(ctx, traceId, name, kind, attributes, links);
  }
  toString(): string {
    return `EdgeCallsInTracesOnly{${this.base.toString()}}`;
  }
}
const EDGE_PREFIX = "grpc.hurd.mach.v1.Mach/";

function num(v: string | undefined, d: number): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : d;
}

/** Sets tracing up with `o.exporter`, or OTLP as the environment says. Its own provider: nothing global is touched. */
export function createTelemetry(o: TelemetryOptions): SdkTelemetry {
  const env = o.env ?? process.env;
  const h = (env.HURD_TRACE ?? "").toLowerCase();
  const proto = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf").toLowerCase();
  const exporter =
    o.exporter ??
    (h === "noop"
      ? new NoopExporter()
      : h === "serialize"
        ? new SerializingExporter()
        : proto === "grpc" || proto === "http/json"
          ? new LazyOtlpExporter(env)
          : new OtlpHttpExporter(env, o.exportTimeoutMillis ? { timeoutMs: o.exportTimeoutMillis } : {}));
  const cfg = {
    maxQueueSize: o.maxQueueSize ?? num(env.OTEL_BSP_MAX_QUEUE_SIZE, 2048),
    maxExportBatchSize: o.maxExportBatchSize ?? num(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512),
    scheduledDelayMillis: o.scheduledDelayMillis ?? num(env.OTEL_BSP_SCHEDULE_DELAY, 1000),
    exportTimeoutMillis: o.exportTimeoutMillis ?? num(env.OTEL_BSP_EXPORT_TIMEOUT, 10000),
  };
  const processor = new CountingBatchSpanProcessor(exporter, cfg);
  // service.name, service.instance.id, hurd.name, OTEL_RESOURCE_ATTRIBUTES (resource.ts): the same for metrics.
  const resource = programResource(o.service, env, o.hurd);
  const provider = new TracerProvider({
    resource,
    // The conventions first: they add attributes while the span can still take them.
    spanProcessors: [new RpcConventions(o.serverAddress), processor],
    sampler: new EdgeCallsInTracesOnly(o.sampler ?? sdkSampler(env)),
  });
  const tracer = provider.getTracer("@hurdmesh/telemetry", "0.1.0");
  const sampleRoot = rootSampler(o.sampler, env);
  const scope = { name: "@hurdmesh/telemetry", version: "0.1.0" };
  // The hot path's spans: encoded as they end when the exporter takes
  // bytes (hurdmesh's OTLP/protobuf), else queued as objects beside the
  // SDK's spans. Both queues have the same bounds and count their drops.
  const forced = env.HURD_TRACE_EXPORT_THREAD;
  const thread = o.exportThread ?? (forced === "0" ? false : forced === "1" ? true : o.bus !== "nats" || availableParallelism() > 2);
  const direct = isEncodedExporter(exporter)
    ? new RecordSink(exporter, headFor(resource, scope), { maxQueue: cfg.maxQueueSize, maxBatch: cfg.maxExportBatchSize, delayMs: cfg.scheduledDelayMillis, thread })
    : null;
  const light = new LightTracer(direct ?? new ProcessorSink(processor), resource, scope, sampleRoot, sampleRoot === NEVER);
  return {
    tracer,
    provider,
    processor,
    light,
    get dropped() {
      return processor.dropped + (direct ? direct.dropped : 0);
    },
    get queued() {
      return processor.queued + (direct ? direct.queued : 0);
    },
    asyncContextManager: () => new AsyncLocalStorageContextManager(),
    flush: async () => {
      await Promise.all([provider.forceFlush(), direct?.flush()]);
    },
    shutdown: async () => {
      await direct?.shutdown();
      await provider.shutdown();
    },
  };
}

/** createTelemetry when the environment turns tracing on; null (and no cost) otherwise. */
export function telemetryFromEnv(service: string, env: NodeJS.ProcessEnv = process.env, o: { bus?: "local" | "nats"; hurd?: string; serverAddress?: string } = {}): SdkTelemetry | null {
  return tracingEnabled(env) ? createTelemetry({ service, env, ...o }) : null;
}

/** The file to load with `node --import` before grpc-js (register.mjs: the gRPC instrumentation when tracing is on). */
export const REGISTER_FILE = fileURLToPath(new URL("./register.mjs", import.meta.url));

/**
 * `node` arguments that start another hurdmesh program the way this one
 * runs: from the TypeScript sources under tsx (tests; this file is .ts), or
 * compiled with source maps. Resolve the program's file in this process
 * (`import.meta.resolve("@hurdmesh/kernel/main")`) so both agree. With
 * tracing on in `env`, register.mjs comes first, so grpc-js is instrumented.
 */
export function nodeImports(env: NodeJS.ProcessEnv = process.env): string[] {
  const run = FROM_SOURCE ? ["--conditions=@hurdmesh/source", "--import", "tsx"] : ["--enable-source-maps"];
  return tracingEnabled(env) ? ["--import", REGISTER_FILE, ...run] : run;
}
const FROM_SOURCE = import.meta.url.endsWith(".ts");

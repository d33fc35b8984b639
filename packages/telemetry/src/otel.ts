// OpenTelemetry for hurdmesh services, configured from the standard OTEL_*
// environment. Off unless an endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or HURD_TRACE asks for it; off whenever
// OTEL_SDK_DISABLED=true. Spans leave through a BatchSpanProcessor whose
// queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE, default 2048): a stalled or
// absent collector costs at most that many spans of memory, and every span
// that did not fit is counted in `dropped`.
import { trace, type Tracer } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type Sampler, type SpanExporter } from "@opentelemetry/sdk-trace-base";

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
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  readonly tracer: Tracer;
  readonly provider: BasicTracerProvider;
  readonly processor: CountingBatchSpanProcessor;
  /** Spans dropped because the export queue was full. */
  readonly dropped: number;
  /** Spans currently queued for export. */
  readonly queued: number;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Whether the environment turns tracing on. */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").toLowerCase() === "true") return false;
  const h = (env.HURD_TRACE ?? "").toLowerCase();
  if (h === "0" || h === "off" || h === "false") return false;
  return !!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || h);
}

/** A BatchSpanProcessor that counts the spans its full queue turned away. */
export class CountingBatchSpanProcessor extends BatchSpanProcessor {
  dropped = 0;
  private readonly max: number;
  constructor(exporter: SpanExporter, config: { maxQueueSize: number; maxExportBatchSize: number; scheduledDelayMillis: number; exportTimeoutMillis: number }) {
    super(exporter, config);
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

/** The OTLP exporter the environment names, loaded only when first needed. */
class LazyOtlpExporter implements SpanExporter {
  private real: Promise<SpanExporter> | null = null;
  constructor(private readonly env: NodeJS.ProcessEnv) {}
  private load(): Promise<SpanExporter> {
    const proto = (this.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? this.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/json").toLowerCase();
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

function num(v: string | undefined, d: number): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : d;
}

/** Sets tracing up with `o.exporter`, or OTLP as the environment says. Its own provider: nothing global is touched. */
export function createTelemetry(o: TelemetryOptions): Telemetry {
  const env = o.env ?? process.env;
  const h = (env.HURD_TRACE ?? "").toLowerCase();
  const exporter = o.exporter ?? (h === "noop" ? new NoopExporter() : new LazyOtlpExporter(env));
  const processor = new CountingBatchSpanProcessor(exporter, {
    maxQueueSize: o.maxQueueSize ?? num(env.OTEL_BSP_MAX_QUEUE_SIZE, 2048),
    maxExportBatchSize: o.maxExportBatchSize ?? num(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512),
    scheduledDelayMillis: o.scheduledDelayMillis ?? num(env.OTEL_BSP_SCHEDULE_DELAY, 1000),
    exportTimeoutMillis: o.exportTimeoutMillis ?? num(env.OTEL_BSP_EXPORT_TIMEOUT, 10000),
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || o.service, "service.namespace": "hurdmesh" }),
    spanProcessors: [processor],
    ...(o.sampler ? { sampler: o.sampler } : {}),
  });
  const tracer = provider.getTracer("@hurdmesh/telemetry", "0.1.0");
  return {
    tracer,
    provider,
    processor,
    get dropped() {
      return processor.dropped;
    },
    get queued() {
      return processor.queued;
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** createTelemetry when the environment turns tracing on; null (and no cost) otherwise. */
export function telemetryFromEnv(service: string, env: NodeJS.ProcessEnv = process.env): Telemetry | null {
  return tracingEnabled(env) ? createTelemetry({ service, env }) : null;
}

/** The process-wide Telemetry of this program (set by whoever starts it). */
let global: Telemetry | null = null;
export function setGlobalTelemetry(t: Telemetry | null): void {
  global = t;
}
export function globalTelemetry(): Telemetry | null {
  return global;
}
export { trace };

// What instrumented code sees of a program's telemetry. The SDK
// (@hurdmesh/telemetry-sdk) implements it; servers and the runtime's hooks
// hold it through these interfaces only, so loading them never loads the
// OpenTelemetry SDK, as OTel's own API and SDK packages are split.
import type { Attributes, ContextManager, SpanContext, SpanKind, Tracer, TracerProvider } from "@opentelemetry/api";
import { TRACE_CONTEXT_BYTES } from "@hurdmesh/mach/internal";

/** A sampled parent context: 25 bytes, trace id, span id, flags (trace-context.ts in @hurdmesh/mach). */
export type Parent = Uint8Array;
/**
 * The parent was not sampled: no span, its context goes on as is. One
 * object, compared by identity: the SDK's tracer hands this very one back.
 */
export const UNSAMPLED: Parent = new Uint8Array(TRACE_CONTEXT_BYTES);

/** A span of the hot path (the SDK's LightSpan): no attribute setters, ended once. */
export interface HotSpan {
  /** This span's binary trace context (sampled), for the messages it causes. */
  readonly context: Uint8Array;
  spanContext(): SpanContext;
  /** Marks the span failed; `code` is the Hurd error code it ended with, when there is one (rpc.response.status_code). */
  fail(message: string, code?: number): void;
  end(): void;
}

/** The task serving a request, as a handler span names it: its hurd (hurd.name) and address (server.address). */
export interface ServingTask {
  readonly id: number;
  readonly hurd: string;
  readonly system: string;
}

/**
 * Where the hot path's spans come from (the SDK's LightTracer): request
 * handlers and long sequences (init's boot). Sampling is parent-based, as
 * the SDK's default: ask `parent` first, and `sampleRoot` only for a root.
 */
export interface HotTracer {
  /** Whether a new trace (a span with no parent) is sampled. */
  sampleRoot(name: string): boolean;
  /** The context an unsampled new trace carries on (empty when it need carry none). */
  unsampledContext(): Uint8Array;
  /**
   * The parent of a span about to start under context `c` (binary, as
   * messages carry it): null for a root (then ask sampleRoot), `c` itself
   * when it is sampled, UNSAMPLED when it is not (then make no span).
   */
  parent(c: Uint8Array): Parent | null;
  /** A request's handling in its server: a SERVER span named after its method (or MIG id). */
  startServerSpan(name: string, parent: Parent | null, method: string | undefined, migId: number, server?: ServingTask): HotSpan;
  /** A span with a plain attribute object (rare spans: boot steps). */
  startSpan(name: string, kind: SpanKind, parent: Parent | null, attributes: Attributes): HotSpan;
}

export interface Telemetry {
  readonly tracer: Tracer;
  readonly provider: TracerProvider;
  /** The hot path's spans (kernel routing, request handlers): same export, resource and sampling as `tracer`'s. */
  readonly light: HotTracer;
  /** Spans dropped because the export queue was full. */
  readonly dropped: number;
  /** Spans currently queued for export. */
  readonly queued: number;
  /**
   * A context manager that carries the active span across awaits
   * (AsyncLocalStorage), for installTracingHooks' `asyncContext`: the SDK
   * has it, the API only installs it.
   */
  asyncContextManager(): ContextManager;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

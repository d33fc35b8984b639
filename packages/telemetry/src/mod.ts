export { parseTraceparent, formatTraceparent, childTraceparent, newTraceId, newSpanId, type TraceParent } from "./traceparent.js";
export { Registry, registry, NOTIFICATIONS } from "./registry.js";
export { TraceHub, WATCH_BUFFER, type KernelTracer, type TraceRecord, type WatchFilter, type WatchSink, type TNs, type TTask, type TMsg, type TWire, type TReceived } from "./kernel-trace.js";
export { RpcTraceFormatter, show, errorText, type FormatOptions } from "./format.js";
export { createTelemetry, telemetryFromEnv, tracingEnabled, CountingBatchSpanProcessor, NoopExporter, SerializingExporter, setGlobalTelemetry, globalTelemetry, nodeImports, REGISTER_FILE, type Telemetry, type TelemetryOptions } from "./otel.js";
export { installTracingHooks, currentTraceparent, StepTrace, type HookOptions } from "./hooks.js";
export { LightSpan, LightTracer, PlainSpan, UNSAMPLED, unsampledRoot, newLightSpanId, newLightTraceId, type Parent } from "./light.js";
export { encodeSpans, OtlpHttpExporter } from "./otlp.js";
export { watchTraceOnBus, traceSubjects, TRACE_LEASE, type BusTraceWatch, type BusWatchOptions, type TaskCredentials } from "./bus-watch.js";

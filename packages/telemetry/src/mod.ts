export { parseTraceparent, formatTraceparent, type TraceParent } from "./traceparent.js";
export { TraceHub, WATCH_BUFFER, type KernelTracer, type TraceRecord, type WatchFilter, type WatchSink, type TNs, type TTask, type TMsg, type TWire, type TReceived } from "./kernel-trace.js";
export { createTelemetry, telemetryFromEnv, tracingEnabled, CountingBatchSpanProcessor, NoopExporter, SerializingExporter, setGlobalTelemetry, globalTelemetry, nodeImports, REGISTER_FILE, type Telemetry, type TelemetryOptions } from "./otel.js";
export { installTracingHooks, currentTraceparent, currentTraceContext, StepTrace, type HookOptions } from "./hooks.js";
export { LightSpan, LightTracer, PlainSpan, ProcessorSink, UNSAMPLED, unsampledRoot, newLightSpanId, newLightTraceId, type Parent, type LightSink } from "./light.js";
export { encodeSpans, encodeSpan, OtlpHttpExporter, isEncodedExporter, type EncodedExporter, type ExporterConfig } from "./otlp.js";
export { RecordSink, type RecordSinkOptions } from "./record-sink.js";
export { NameTable, NameBytes, RecordChunk, encodeRecord, REC_BYTES } from "./records.js";
export { watchTraceOnBus, traceSubjects, TRACE_LEASE, type BusTraceWatch, type BusWatchOptions, type TaskCredentials } from "./bus-watch.js";

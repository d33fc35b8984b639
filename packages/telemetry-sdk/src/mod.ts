// The telemetry SDK: what a program that exports spans builds (its main,
// the CLI's `up`), and the hot path's span machinery the kernel's tracer
// extends. Instrumented code needs only the API (@hurdmesh/telemetry),
// whose interfaces this implements.
export { createTelemetry, telemetryFromEnv, CountingBatchSpanProcessor, NoopExporter, SerializingExporter, nodeImports, REGISTER_FILE, type SdkTelemetry, type TelemetryOptions } from "./otel.js";
export { LightSpan, LightTracer, PlainSpan, ServerSpan, ProcessorSink, UNSAMPLED, unsampledRoot, newLightSpanId, newLightTraceId, type Parent, type LightSink } from "./light.js";
export { encodeSpans, encodeSpan, OtlpHttpExporter, isEncodedExporter, type EncodedExporter, type ExporterConfig } from "./otlp.js";
export { RecordSink, type RecordSinkOptions } from "./record-sink.js";
export { NameTable, NameBytes, RecordChunk, encodeRecord, REC_BYTES, REC_KERNEL, K_NOTIFY, K_DELIVERED, K_REPLIED, K_FAILED, putKernelFields } from "./records.js";
export { Writer, keyBytes } from "./otlp-writer.js";
export { createMetrics, metricsFromEnv, startMetrics, prometheusAddr, BoundMeter, type SdkMetrics, type MetricsOptions } from "./metrics.js";
export { programResource, resourceAttributes, parseResourceAttributes, INSTANCE_ID } from "./resource.js";

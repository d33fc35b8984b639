// The telemetry API: what servers and the runtime's hooks import. It loads
// @opentelemetry/api and the runtime, never the SDK (@hurdmesh/telemetry-sdk,
// which the programs that export spans build and set with setGlobalTelemetry).
export { parseTraceparent, formatTraceparent, type TraceParent } from "./traceparent.js";
export { UNSAMPLED, type Parent, type HotSpan, type HotTracer, type ServingTask, type Telemetry } from "./types.js";
export { tracingEnabled, setGlobalTelemetry, globalTelemetry } from "./global.js";
export { installTracingHooks, currentTraceparent, currentTraceContext, StepTrace, type HookOptions } from "./hooks.js";
export {
  installMetricsHooks,
  metricsEnabled,
  setGlobalMetrics,
  globalMetrics,
  statusCodeOf,
  rpcDurations,
  rpcSeries,
  RPC_DURATION_BUCKETS,
  type Metrics,
  type HotMeter,
  type HotHistogram,
  type HotCounter,
  type BoundHistogram,
  type BoundCounter,
  type InstrumentOptions,
} from "./metrics.js";

// The OpenTelemetry gRPC instrumentation for an ESM program, loaded before
// anything imports grpc-js:
//
//   node --import ./packages/telemetry/src/register.mjs --import tsx services/kernel/src/main.ts
//
// Plain JavaScript (it runs before tsx is registered). It does nothing at
// all unless the environment turns tracing on (the same rule as
// tracingEnabled in otel.ts: an OTLP endpoint or HURD_TRACE, and not
// OTEL_SDK_DISABLED=true), so start commands can always include it.
//
// With tracing on it registers import-in-the-middle's loader hook (ESM
// imports of grpc-js are patched only through it), registers the gRPC
// instrumentation, and installs the W3C trace-context propagator, so gRPC
// metadata carries `traceparent` both ways. The spans go to the program's
// own Telemetry once it has one: setGlobalTelemetry (otel.ts) hands its
// tracer provider to the instrumentation left here.
import { register } from "node:module";

const env = process.env;
const h = (env.HURD_TRACE ?? "").toLowerCase();
const on =
  (env.OTEL_SDK_DISABLED ?? "").toLowerCase() !== "true" &&
  h !== "0" && h !== "off" && h !== "false" &&
  !!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || h);

if (on) {
  register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
  const { propagation } = await import("@opentelemetry/api");
  const { W3CTraceContextPropagator } = await import("@opentelemetry/core");
  const { registerInstrumentations } = await import("@opentelemetry/instrumentation");
  const { GrpcInstrumentation } = await import("@opentelemetry/instrumentation-grpc");
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const grpc = new GrpcInstrumentation();
  registerInstrumentations({ instrumentations: [grpc] });
  globalThis[Symbol.for("hurdmesh.telemetry.grpcInstrumentation")] = grpc;
}

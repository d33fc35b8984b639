// The OpenTelemetry gRPC instrumentation for an ESM program, loaded before
// anything imports grpc-js:
//
//   node --import ./packages/telemetry-sdk/dist/register.mjs services/kernel/dist/main.js
//
// (nodeImports() in otel.ts gives a program's arguments, also for the
// sources under tsx.) Plain JavaScript, copied into dist/ as it is (it runs
// before anything else, and under the tests before tsx). It does nothing at
// all unless the environment turns tracing on (the same rule as
// tracingEnabled in @hurdmesh/telemetry: an OTLP endpoint or HURD_TRACE, and not
// OTEL_SDK_DISABLED=true), so start commands can always include it.
//
// With tracing on it registers import-in-the-middle's loader hook (ESM
// imports of grpc-js are patched only through it), registers the gRPC
// instrumentation, installs the W3C trace-context propagator, so gRPC
// metadata carries `traceparent` both ways, and a context manager, without
// which the client's span never reaches that metadata. The instrumentation
// is OTel's, extended (grpc-instrumentation.mjs) to patch grpc-js's
// CommonJS exports too, which is what `await import("@grpc/grpc-js")`
// returns under tsx: without it the clients built by
// makeGenericClientConstructor made no CLIENT span. The spans go to the
// program's own Telemetry once it has one: setGlobalTelemetry (@hurdmesh/telemetry)
// hands its tracer provider to the instrumentation left here.
import { register } from "node:module";

const env = process.env;
const h = (env.HURD_TRACE ?? "").toLowerCase();
const on =
  (env.OTEL_SDK_DISABLED ?? "").toLowerCase() !== "true" &&
  h !== "0" && h !== "off" && h !== "false" &&
  !!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || h);

if (on) {
  register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
  const { context, propagation } = await import("@opentelemetry/api");
  const { W3CTraceContextPropagator } = await import("@opentelemetry/core");
  const { registerInstrumentations } = await import("@opentelemetry/instrumentation");
  const { GrpcInstrumentation, SyncContextManager } = await import("./grpc-instrumentation.mjs");
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  // Synchronous scopes only, unless the program asked for async propagation
  // (the manager installTracingHooks would install; see hooks.ts in @hurdmesh/telemetry).
  if (env.HURD_TRACE_ASYNC_CONTEXT === "1") {
    const { AsyncLocalStorageContextManager } = await import("@opentelemetry/context-async-hooks");
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  } else {
    context.setGlobalContextManager(new SyncContextManager());
  }
  const grpc = new GrpcInstrumentation();
  registerInstrumentations({ instrumentations: [grpc] });
  globalThis[Symbol.for("hurdmesh.telemetry.grpcInstrumentation")] = grpc;
}

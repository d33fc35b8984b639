// The program's one Telemetry, and whether the environment asks for one.
// Whoever starts the program (its main) builds the SDK and sets it here;
// servers read it (init's boot trace) without knowing the SDK.
import type { Telemetry } from "./types.js";

/**
 * Whether the environment turns tracing on: an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or
 * HURD_TRACE, and never with OTEL_SDK_DISABLED=true. The SDK's register.mjs
 * repeats this rule in plain JavaScript.
 */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").toLowerCase() === "true") return false;
  const h = (env.HURD_TRACE ?? "").toLowerCase();
  if (h === "0" || h === "off" || h === "false") return false;
  return !!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || h);
}

/** The process-wide Telemetry of this program (set by whoever starts it). */
let global: Telemetry | null = null;
export function setGlobalTelemetry(t: Telemetry | null): void {
  global = t;
  // The gRPC instrumentation register.mjs left (started with --import): its spans go to this telemetry.
  const g = (globalThis as Record<symbol, unknown>)[GRPC_INSTRUMENTATION] as { setTracerProvider(p: unknown): void } | undefined;
  if (g && t) g.setTracerProvider(t.provider);
}

/** Where register.mjs (@hurdmesh/telemetry-sdk) leaves its gRPC instrumentation. */
const GRPC_INSTRUMENTATION = Symbol.for("hurdmesh.telemetry.grpcInstrumentation");

export function globalTelemetry(): Telemetry | null {
  return global;
}

// Metrics, the API side: what instrumented code (the runtime's hooks, the
// kernel, proc) records through, without loading the OpenTelemetry SDK.
// The program's entry point builds the SDK's Metrics (@hurdmesh/telemetry-sdk,
// metricsFromEnv) and sets it here; with none set, nothing is recorded and
// the runtime does not even read the clock.
//
// Two kinds of instrument. Rare or collected values go through the
// OpenTelemetry API's Meter (`meter`: observable gauges and counters read
// when a scrape comes). Values recorded per message go through `hot`:
// instruments bound to one attribute set up front, whose record is a few
// stores. The SDK's own synchronous instruments hash the attribute set on
// every call (a microsecond each here), which two or three times per RPC
// is more than the 3 % the bench allows metrics.
//
// Names and attributes follow OpenTelemetry's RPC conventions:
// rpc.server.call.duration and rpc.client.call.duration in seconds, with
// rpc.system.name ("hurdmesh"), rpc.method (the full
// "hurd.process.v1.Process/Getpids"), rpc.response.status_code ("OK" or the
// Hurd errno's name) and error.type (the errno's name, failures only), and
// hurd.name, the hurd the serving or calling task belongs to.
import type { Attributes, Meter } from "@opentelemetry/api";
import { errnoName } from "@hurdmesh/mach";
import { metricsHooks, type RpcSeries } from "@hurdmesh/mach/internal";

/** A histogram series bound to one attribute set. */
export interface BoundHistogram {
  record(value: number): void;
}
/** A monotonic counter bound to one attribute set. */
export interface BoundCounter {
  add(value: number): void;
}
export interface HotHistogram {
  bind(attributes: Attributes): BoundHistogram;
}
export interface HotCounter {
  bind(attributes: Attributes): BoundCounter;
}
export interface InstrumentOptions {
  description?: string;
  unit?: string;
  /** A histogram's bucket boundaries (inclusive upper bounds). */
  boundaries?: readonly number[];
}
/** Instruments for the hot path: bind once, record without allocating. */
export interface HotMeter {
  histogram(name: string, o?: InstrumentOptions): HotHistogram;
  counter(name: string, o?: InstrumentOptions): HotCounter;
}

/** A program's metrics, as the SDK builds them. */
export interface Metrics {
  /** The OpenTelemetry API's meter: observable instruments and rare recordings. */
  readonly meter: Meter;
  readonly hot: HotMeter;
  /** Where Prometheus scrapes this program ("http://host:port/metrics"; "" when it is not served). */
  readonly endpoint: string;
  shutdown(): Promise<void>;
}

/**
 * Buckets of the RPC duration histograms, seconds: from 5 µs (an
 * in-process call) to 10 s (a call's default deadline), about three per
 * decade as OpenTelemetry's defaults are for milliseconds.
 */
export const RPC_DURATION_BUCKETS: readonly number[] = [
  0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** rpc.response.status_code of a reply code: "OK", or the Hurd errno's name. */
export function statusCodeOf(code: number): string {
  return code === 0 ? "OK" : errnoName(code);
}

/**
 * Whether the environment asks for metrics: HURD_METRICS_ADDR (a Prometheus
 * endpoint at host:port), or OTEL_METRICS_EXPORTER naming prometheus or
 * otlp, or an OTLP metrics endpoint; never with OTEL_SDK_DISABLED=true.
 */
export function metricsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? "").toLowerCase() === "true") return false;
  if (env.HURD_METRICS_ADDR) return true;
  if (env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) return true;
  const names = (env.OTEL_METRICS_EXPORTER ?? "").toLowerCase().split(",").map((s) => s.trim());
  return names.includes("prometheus") || names.includes("otlp");
}

let global: Metrics | null = null;
/** The process-wide Metrics of this program (set by whoever starts it). */
export function setGlobalMetrics(m: Metrics | null): void {
  global = m;
}
export function globalMetrics(): Metrics | null {
  return global;
}

/**
 * One method's series as a task of hurd `hurd` serves or calls it: the "OK"
 * series is bound at once, an error's on its first occurrence (the errno
 * names are a small closed set, so the series stay few).
 */
class MethodSeries implements RpcSeries {
  private readonly ok: BoundHistogram;
  private errors: Map<number, BoundHistogram> | null = null;
  constructor(
    private readonly h: HotHistogram,
    private readonly method: string,
    private readonly hurd: string,
  ) {
    this.ok = h.bind({ "rpc.system.name": "hurdmesh", "rpc.method": method, "rpc.response.status_code": "OK", "hurd.name": hurd });
  }
  record(seconds: number, code: number): void {
    if (code === 0) {
      this.ok.record(seconds);
      return;
    }
    const errors = (this.errors ??= new Map());
    let b = errors.get(code);
    if (b === undefined) {
      const name = errnoName(code);
      b = this.h.bind({ "rpc.system.name": "hurdmesh", "rpc.method": this.method, "rpc.response.status_code": name, "error.type": name, "hurd.name": this.hurd });
      errors.set(code, b);
    }
    b.record(seconds);
  }
}

/** The two RPC duration histograms of `m`. */
export function rpcDurations(m: Metrics): { server: HotHistogram; client: HotHistogram } {
  return {
    server: m.hot.histogram("rpc.server.call.duration", { unit: "s", description: "Duration of RPCs served, from the request's dispatch to its reply.", boundaries: RPC_DURATION_BUCKETS }),
    client: m.hot.histogram("rpc.client.call.duration", { unit: "s", description: "Duration of RPCs called, from the request's send to its reply.", boundaries: RPC_DURATION_BUCKETS }),
  };
}

/** A series for `method` in `h`, as `hurd` records it. */
export function rpcSeries(h: HotHistogram, method: string, hurd: string): RpcSeries {
  return new MethodSeries(h, method, hurd);
}

/**
 * Turns the runtime's metrics hooks on for `m` (null turns them off):
 * every served request and every RPC called through a client is timed.
 * Returns a function that turns them off.
 */
export function installMetricsHooks(m: Metrics | null): () => void {
  if (!m) {
    metricsHooks.server = null;
    metricsHooks.client = null;
    return () => {};
  }
  const { server, client } = rpcDurations(m);
  const s = (task: { readonly hurd: string }, method: string) => rpcSeries(server, method, task.hurd);
  const c = (task: { readonly hurd: string }, method: string) => rpcSeries(client, method, task.hurd);
  metricsHooks.server = s;
  metricsHooks.client = c;
  return () => {
    if (metricsHooks.server === s) metricsHooks.server = null;
    if (metricsHooks.client === c) metricsHooks.client = null;
  };
}

// Metrics, the SDK side: a MeterProvider set up from the environment, with
// a Prometheus endpoint (HURD_METRICS_ADDR, or OTEL_METRICS_EXPORTER=prometheus
// with OTEL_EXPORTER_PROMETHEUS_HOST/PORT) and OTLP (OTEL_METRICS_EXPORTER=otlp
// or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, over http/protobuf), and the hot
// path's bound instruments (@hurdmesh/telemetry's HotMeter) beside it.
//
// A bound series is a few numbers and a typed array of bucket counts:
// recording finds the bucket by a short scan from the first (RPCs here
// take micro- to milliseconds, the first buckets) and adds. The series are
// read by a MetricProducer each reader asks at collection, so they leave
// through the same Prometheus page and OTLP export as the SDK's own
// instruments, cumulative from the series' start.
import { createServer, type Server } from "node:http";
import { ValueType, type Attributes, type HrTime } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type IMetricReader,
  type MetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import { globalTelemetry, installMetricsHooks, metricsEnabled, setGlobalMetrics, type BoundCounter, type BoundHistogram, type HotCounter, type HotHistogram, type HotMeter, type InstrumentOptions, type Metrics } from "@hurdmesh/telemetry";
import { programResource } from "./resource.js";

const SCOPE = { name: "@hurdmesh/telemetry", version: "0.1.0" };

function hrNow(): HrTime {
  return hrOf(performance.timeOrigin + performance.now());
}
function hrOf(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** The key of an attribute set, independent of key order. */
function keyOf(a: Attributes): string {
  return JSON.stringify(Object.keys(a).sort().map((k) => [k, a[k]]));
}

class HistogramSeries implements BoundHistogram {
  readonly counts: Float64Array;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  readonly start = hrNow();
  constructor(
    readonly attributes: Attributes,
    private readonly bounds: Float64Array,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  record(v: number): void {
    const b = this.bounds;
    const n = b.length;
    let i = 0;
    while (i < n && v > b[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }
}

class CounterSeries implements BoundCounter {
  value = 0;
  readonly start = hrNow();
  constructor(readonly attributes: Attributes) {}
  add(v: number): void {
    if (v > 0) this.value += v;
  }
}

/** Series per attribute set; bound ones are kept for the program's life (their sets are few by construction). */
class HotHistogramImpl implements HotHistogram {
  readonly series = new Map<string, HistogramSeries>();
  readonly bounds: Float64Array;
  constructor(
    readonly name: string,
    readonly o: InstrumentOptions,
  ) {
    this.bounds = Float64Array.from(o.boundaries ?? [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);
  }
  bind(attributes: Attributes): BoundHistogram {
    const k = keyOf(attributes);
    let s = this.series.get(k);
    if (s === undefined) this.series.set(k, (s = new HistogramSeries({ ...attributes }, this.bounds)));
    return s;
  }
  data(end: HrTime): MetricData | null {
    if (this.series.size === 0) return null;
    const boundaries = [...this.bounds];
    const points: DataPoint<Histogram>[] = [];
    for (const s of this.series.values())
      points.push({
        attributes: s.attributes,
        startTime: s.start,
        endTime: end,
        value: { buckets: { boundaries, counts: [...s.counts] }, count: s.count, sum: s.sum, ...(s.count > 0 ? { min: s.min, max: s.max } : {}) },
      });
    return { descriptor: { name: this.name, description: this.o.description ?? "", unit: this.o.unit ?? "", valueType: ValueType.DOUBLE }, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints: points };
  }
}

class HotCounterImpl implements HotCounter {
  readonly series = new Map<string, CounterSeries>();
  constructor(
    readonly name: string,
    readonly o: InstrumentOptions,
  ) {}
  bind(attributes: Attributes): BoundCounter {
    const k = keyOf(attributes);
    let s = this.series.get(k);
    if (s === undefined) this.series.set(k, (s = new CounterSeries({ ...attributes })));
    return s;
  }
  data(end: HrTime): MetricData | null {
    if (this.series.size === 0) return null;
    const points: DataPoint<number>[] = [];
    for (const s of this.series.values()) points.push({ attributes: s.attributes, startTime: s.start, endTime: end, value: s.value });
    return { descriptor: { name: this.name, description: this.o.description ?? "", unit: this.o.unit ?? "", valueType: ValueType.DOUBLE }, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points };
  }
}

/** The hot instruments of one program, and the MetricProducer its readers collect them through. */
export class BoundMeter implements HotMeter, MetricProducer {
  private readonly histograms = new Map<string, HotHistogramImpl>();
  private readonly counters = new Map<string, HotCounterImpl>();
  constructor(private readonly resource: Resource) {}
  /** The instrument called `name` (made on first use: asking twice gives the same one). */
  histogram(name: string, o: InstrumentOptions = {}): HotHistogram {
    let h = this.histograms.get(name);
    if (h === undefined) this.histograms.set(name, (h = new HotHistogramImpl(name, o)));
    return h;
  }
  counter(name: string, o: InstrumentOptions = {}): HotCounter {
    let c = this.counters.get(name);
    if (c === undefined) this.counters.set(name, (c = new HotCounterImpl(name, o)));
    return c;
  }
  async collect(): Promise<CollectionResult> {
    const end = hrNow();
    const metrics: MetricData[] = [];
    for (const i of [...this.histograms.values(), ...this.counters.values()]) {
      const d = i.data(end);
      if (d !== null) metrics.push(d);
    }
    return { resourceMetrics: { resource: this.resource, scopeMetrics: metrics.length ? [{ scope: SCOPE, metrics }] : [] }, errors: [] };
  }
}

export interface MetricsOptions {
  /** service.name (OTEL_SERVICE_NAME wins). */
  service: string;
  /** The hurd the program serves, for the resource (default: from the environment). */
  hurd?: string;
  /** Serve Prometheus's /metrics here, "host:port" (port 0 picks one); default HURD_METRICS_ADDR. */
  prometheus?: string | null;
  /** Readers besides the environment's (tests). */
  readers?: IMetricReader[];
  env?: NodeJS.ProcessEnv;
}

/** The SDK's Metrics: what the API's interface has, and what its own parts and tests reach. */
export interface SdkMetrics extends Metrics {
  readonly provider: MeterProvider;
  readonly bound: BoundMeter;
  /** Collects now and renders what a Prometheus scrape would get (tests; "" without a Prometheus endpoint). */
  scrape(): Promise<string>;
}

/** The Prometheus address the environment names: HURD_METRICS_ADDR, or OTEL_EXPORTER_PROMETHEUS_HOST/PORT with OTEL_METRICS_EXPORTER=prometheus. */
export function prometheusAddr(env: NodeJS.ProcessEnv): string | null {
  if (env.HURD_METRICS_ADDR) return env.HURD_METRICS_ADDR;
  const names = (env.OTEL_METRICS_EXPORTER ?? "").toLowerCase().split(",").map((s) => s.trim());
  if (!names.includes("prometheus")) return null;
  return `${env.OTEL_EXPORTER_PROMETHEUS_HOST || "localhost"}:${env.OTEL_EXPORTER_PROMETHEUS_PORT || "9464"}`;
}

function otlpWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) return true;
  return (env.OTEL_METRICS_EXPORTER ?? "").toLowerCase().split(",").map((s) => s.trim()).includes("otlp");
}

function splitAddr(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(":");
  const host = i > 0 ? a.slice(0, i).replace(/^\[|\]$/g, "") : "127.0.0.1";
  const port = Number(i >= 0 ? a.slice(i + 1) : a);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not a host:port for metrics: ${a}`);
  return { host, port };
}

/**
 * Builds the program's metrics: a Prometheus endpoint when asked
 * (`o.prometheus` or the environment), OTLP when the environment asks, and
 * the hot instruments. Its own provider: nothing global is touched.
 */
export async function createMetrics(o: MetricsOptions): Promise<SdkMetrics> {
  const env = o.env ?? process.env;
  const resource = programResource(o.service, env, o.hurd);
  const bound = new BoundMeter(resource);
  const readers: IMetricReader[] = [...(o.readers ?? [])];
  const addr = o.prometheus === undefined ? prometheusAddr(env) : o.prometheus;
  let endpoint = "";
  let prom: import("@opentelemetry/exporter-prometheus").PrometheusExporter | null = null;
  if (addr) {
    const { PrometheusExporter } = await import("@opentelemetry/exporter-prometheus");
    const { host, port } = splitAddr(addr);
    // Started below, once bound to the provider: port 0 needs the server's own answer.
    prom = new PrometheusExporter({ host, port, endpoint: "/metrics", preventServerStart: true, metricProducers: [bound] });
    readers.push(prom);
  }
  if (otlpWanted(env)) {
    const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-http");
    readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: Number(env.OTEL_METRIC_EXPORT_INTERVAL) || 60_000, metricProducers: [bound] }));
  }
  const provider = new MeterProvider({ resource, readers: readers as never });
  let server: Server | null = null;
  if (prom) {
    // The page is served by a server of ours, not the exporter's: its
    // options take port 0 for "the default" (9464), and tests and embedded
    // hurds need a port of their own.
    const p = prom;
    const { host, port } = splitAddr(addr!);
    server = createServer((req, res) => {
      if ((req.url ?? "").split("?")[0] === "/metrics") p.getMetricsRequestHandler(req, res);
      else {
        res.statusCode = 404;
        res.end("metrics are at /metrics\n");
      }
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server!.once("error", reject);
        server!.listen(port, host, () => resolve());
      });
      server.unref();
      const a = server.address();
      endpoint = `http://${host.includes(":") ? `[${host}]` : host}:${a && typeof a === "object" ? a.port : port}/metrics`;
    } catch (e) {
      // A server never stops for its metrics: several programs started with
      // one HURD_METRICS_ADDR on one host (`hurd up --nats`) find it taken
      // but the first; the others say so and serve none (port 0 gives each its own).
      process.stderr.write(`hurdmesh metrics: cannot serve /metrics on ${addr}: ${(e as Error).message}; no Prometheus endpoint\n`);
      server = null;
    }
  }
  const meter = provider.getMeter(SCOPE.name, SCOPE.version);
  let down = false;
  return {
    meter,
    hot: bound,
    bound,
    provider,
    endpoint,
    async scrape() {
      if (!endpoint) return "";
      const r = await fetch(endpoint);
      return r.text();
    },
    async shutdown() {
      if (down) return;
      down = true;
      await provider.shutdown().catch(() => {});
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    },
  };
}

/** createMetrics when the environment asks for metrics (metricsEnabled); null, and no cost, otherwise. */
export async function metricsFromEnv(service: string, env: NodeJS.ProcessEnv = process.env, o: Omit<MetricsOptions, "service" | "env"> = {}): Promise<SdkMetrics | null> {
  if (!metricsEnabled(env) && !o.prometheus) return null;
  return createMetrics({ service, env, ...o });
}

/**
 * A program's metrics from its environment, made the program's own: set as
 * the global Metrics (proc, the kernel) and the runtime's hooks installed
 * (every RPC served or called is timed). Null, and nothing installed, when
 * the environment asks for none.
 */
export async function startMetrics(service: string, env: NodeJS.ProcessEnv = process.env, o: Omit<MetricsOptions, "service" | "env"> = {}): Promise<SdkMetrics | null> {
  const m = await metricsFromEnv(service, env, o);
  if (!m) return null;
  setGlobalMetrics(m);
  installMetricsHooks(m);
  observeExport(m);
  return m;
}

/**
 * The program's span export, as the dashboards' "export drops" panel reads
 * it: spans dropped by a full export queue and spans waiting, of the
 * program's global Telemetry (zero while tracing is off).
 */
function observeExport(m: Metrics): void {
  const dropped = m.meter.createObservableCounter("hurd.telemetry.spans.dropped", { description: "Spans this program dropped because its export queue was full.", unit: "{span}" });
  const queued = m.meter.createObservableGauge("hurd.telemetry.spans.queued", { description: "Spans waiting in this program's export queue.", unit: "{span}" });
  m.meter.addBatchObservableCallback(
    (r) => {
      const t = globalTelemetry();
      r.observe(dropped, t ? t.dropped : 0);
      r.observe(queued, t ? t.queued : 0);
    },
    [dropped, queued],
  );
}

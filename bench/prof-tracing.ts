// Profiling driver (not part of the bench): where the time of tracing and
// of metrics goes, for the brokered Ping RPC or the process lifecycle, at
// 64 in flight. Modes: off; tracing (on, 100 % sampled, every span
// serialized as OTLP/protobuf); metrics (every RPC timed into its series,
// the kernel's and proc's tables on a Prometheus endpoint scraped every
// second, as the bench's metrics rows do). After a second's warm-up it
// measures for `ms` under the CPU profiler and prints the throughput and
// each part's share of this process's busy time: the self time of the
// profile's samples (a part's own code, not what it calls;
// performance.now() is "native:now"), idle and the profiler's own work
// left out. The bench's rows (bench/rows/tracing.ts, metrics.ts) compare
// modes in one interleaved run; this says where a mode's cost goes.
//   node --conditions=@hurdmesh/source --import tsx bench/prof-tracing.ts [off|tracing|metrics] [local|nats] [ms] [ping|lifecycle]
// (`on` is accepted for `tracing`.) nats: an anonymous nats-server of its own.
import { Session } from "node:inspector/promises";
import { WNOHANG } from "@hurdmesh/libhurd";
import { installMetricsHooks, installTracingHooks, setGlobalMetrics } from "@hurdmesh/telemetry";
import { createMetrics, createTelemetry, SerializingExporter, type SdkMetrics, type SdkTelemetry } from "@hurdmesh/telemetry-sdk";
import { startNats, type NatsServer } from "./nats.js";
import { bootRig, NATS_AUTH_OFF } from "./rig.js";
import { rig } from "./rows/kernel.js";
import { lifecycle } from "./rows/proc.js";

const USAGE = "usage: prof-tracing.ts [off|tracing|metrics] [local|nats] [ms] [ping|lifecycle]";
const modeArg = process.argv[2] ?? "tracing";
const mode = modeArg === "on" ? "tracing" : modeArg;
const bus = process.argv[3] ?? "local";
const ms = Number(process.argv[4] ?? 5000);
const workload = process.argv[5] ?? "ping";
if (!["off", "tracing", "metrics"].includes(mode) || !["local", "nats"].includes(bus) || !(ms > 0) || !["ping", "lifecycle"].includes(workload)) {
  console.error(USAGE);
  process.exit(2);
}
const IN_FLIGHT = 64;

/** Where a profile sample's function lives: tracing, metrics, or another part. */
function part(url: string, fn: string): string {
  if (url === "") return fn === "(idle)" ? "idle" : fn === "(garbage collector)" ? "gc" : fn === "(program)" ? "program" : `native:${fn}`;
  if (/\/telemetry-sdk\/(src|dist)\/metrics\.|\/telemetry\/(src|dist)\/metrics\.|\/services\/[^/]+\/(src|dist)\/metrics\.|\/mach\/(src|dist)\/hooks\.|@opentelemetry\/(sdk-metrics|exporter-prometheus)/.test(url)) return "metrics";
  if (
    /\/telemetry-sdk\/(src|dist)\/|\/telemetry\/(src|dist)\/(hooks|traceparent)\.|\/kernel\/(src|dist)\/trace(-bus)?\.|\/mach\/(src|dist)\/trace-context\.|@opentelemetry\//.test(url)
  )
    return "tracing";
  if (url.includes("/services/kernel/")) return "kernel";
  if (url.includes("@nats-io") || url.includes("/nats/")) return "nats.js";
  if (url.includes("/packages/mach/")) return "mach runtime";
  if (url.includes("/packages/proto/")) return "proto codecs";
  if (/\/services\/(proc|auth|init)\//.test(url)) return "proc/auth/init";
  if (url.includes("/packages/libhurd/")) return "libhurd";
  if (url.includes("/bench/")) return "bench";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  return url.replace(/^.*node_modules\//, "nm:").split("/").slice(0, 2).join("/");
}

let nats: NatsServer | null = null;
let tel: SdkTelemetry | null = null;
let metrics: SdkMetrics | null = null;
let scraper: NodeJS.Timeout | null = null;
const closers: (() => Promise<void>)[] = [];
try {
  if (bus === "nats") nats = await startNats();
  const ctx = { natsUrl: nats?.url ?? "", natsAuth: null, durationMs: ms, inFlight: [IN_FLIGHT], log: (l: string) => console.error(`# ${l}`) };
  const kind = bus === "nats" ? NATS_AUTH_OFF : "local";
  // proc registers its instruments at start when a global Metrics is set: before the rig boots.
  if (mode === "metrics") {
    metrics = await createMetrics({ service: "bench", prometheus: "127.0.0.1:0", env: {} });
    setGlobalMetrics(metrics);
    installMetricsHooks(metrics);
  }
  let call: () => Promise<unknown>;
  let kernel;
  if (workload === "ping") {
    const r = await rig(kind, ctx);
    closers.push(() => r.close());
    call = r.ping;
    kernel = r.kernel;
  } else {
    const life = await bootRig(kind, ctx, ctx.log);
    closers.push(async () => {
      while (await life.parent.wait(-1, WNOHANG).catch(() => null));
      await life.close();
    });
    call = lifecycle(life);
    kernel = life.kernel;
  }
  if (metrics) {
    kernel.useMetrics(metrics);
    const m = metrics;
    scraper = setInterval(() => void m.scrape().catch(() => {}), 1000);
  }
  if (mode === "tracing") {
    tel = createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200, bus: bus as "local" | "nats", env: {} });
    kernel.trace.useTelemetry(tel);
    installTracingHooks(tel);
  }

  const run = async (forMs: number) => {
    const end = performance.now() + forMs;
    let n = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await call();
          n++;
        }
      }),
    );
    return n;
  };
  await run(1000);
  const droppedBefore = tel?.dropped ?? 0;
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  // A sample a millisecond (HURD_PROF_INTERVAL_US): denser sampling cost up to a third of a loaded machine's time in the profiler itself.
  await session.post("Profiler.setSamplingInterval", { interval: Number(process.env.HURD_PROF_INTERVAL_US ?? 1000) });
  await session.post("Profiler.start");
  const t0 = performance.now();
  const n = await run(ms);
  const took = performance.now() - t0;
  const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: { nodes: { id: number; callFrame: { functionName: string; url: string } }[]; samples: number[]; timeDeltas: number[] } };
  session.disconnect();

  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const p = part(node.callFrame.url, node.callFrame.functionName);
    self.set(p, (self.get(p) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  // The profiler's own work (node:inspector, its messages to this session) is not the program's.
  const notBusy = (p: string) => p === "idle" || p === "node:inspector";
  const busy = [...self].filter(([p]) => !notBusy(p)).reduce((a, [, t]) => a + t, 0);
  const share = (p: string) => (((self.get(p) ?? 0) / busy) * 100).toFixed(1);
  console.log(`${workload} | ${mode} | ${bus}, ${IN_FLIGHT} in flight: ${Math.round((n / took) * 1000)} calls/s over ${(took / 1000).toFixed(1)} s${tel ? `, ${tel.dropped - droppedBefore} spans dropped` : ""}`);
  const all = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`  tracing code ${share("tracing")} % of busy time, metrics code ${share("metrics")} %; idle ${(((self.get("idle") ?? 0) / all) * 100).toFixed(1)} %, the profiler ${(((self.get("node:inspector") ?? 0) / all) * 100).toFixed(1)} % of the profile`);
  for (const [p, t] of [...self].filter(([x]) => !notBusy(x)).sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${p.padEnd(30)} ${((t / busy) * 100).toFixed(1).padStart(5)} %`);
} finally {
  if (scraper) clearInterval(scraper);
  installTracingHooks(null);
  installMetricsHooks(null);
  setGlobalMetrics(null);
  for (const c of closers) await c().catch(() => {});
  await tel?.shutdown().catch(() => {});
  await metrics?.shutdown().catch(() => {});
  await nats?.stop();
}
process.exit(0);

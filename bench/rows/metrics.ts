// Metrics' cost, measured in one run against metrics off: the brokered
// Ping RPC and the process lifecycle, on NATS and on the in-process hub,
// with metrics off and on (every request served and every client RPC timed
// into its bound series, the kernel's calls timed; a Prometheus endpoint
// scraped every second, as a Prometheus would, so the collection's walk
// over the kernel's and proc's tables is in the numbers too). Every "on"
// row has `overhead`: the fraction of throughput lost against "off" at the
// same concurrency. Subjects are interleaved, so the ratios share conditions.
import { metricsHooks } from "@hurdmesh/mach/internal";
import { installMetricsHooks, setGlobalMetrics } from "@hurdmesh/telemetry";
import { createMetrics, type SdkMetrics } from "@hurdmesh/telemetry-sdk";
import { WNOHANG } from "@hurdmesh/libhurd";
import { measureInterleaved, type Row, type Subject } from "../harness.js";
import { bootRig } from "../rig.js";
import { PING, rig } from "./kernel.js";
import { LIFECYCLE, lifecycle } from "./proc.js";
import type { BenchContext, RowGroup } from "./types.js";

export type MetricsMode = "off" | "on";
export const metricsName = (what: string, mode: MetricsMode) => `${what} | metrics ${mode}`;

export const metrics: RowGroup = {
  name: "metrics",
  needsNats: true,
  async run(ctx: BenchContext): Promise<Row[]> {
    // One Metrics for the "on" subjects, as a program has one; its hooks are
    // swapped in before each "on" call and out before each "off" call.
    const m: SdkMetrics = await createMetrics({ service: "bench", prometheus: "127.0.0.1:0", env: {} });
    setGlobalMetrics(m);
    installMetricsHooks(m);
    const on = { server: metricsHooks.server, client: metricsHooks.client };
    installMetricsHooks(null);
    const use = (mode: MetricsMode) => {
      metricsHooks.server = mode === "on" ? on.server : null;
      metricsHooks.client = mode === "on" ? on.client : null;
    };
    const closers: (() => Promise<void>)[] = [];
    const pings: Subject[] = [];
    const lifes: Subject[] = [];
    for (const mode of ["off", "on"] as const)
      for (const kind of ["local", "nats"] as const) {
        // proc registers its instruments at start when a global Metrics is set: only the "on" rigs'.
        setGlobalMetrics(mode === "on" ? m : null);
        const ping = await rig(kind, ctx);
        const life = await bootRig(kind, ctx.natsUrl, ctx.log);
        if (mode === "on") for (const k of [ping.kernel, life.kernel]) k.useMetrics(m);
        closers.push(() => ping.close());
        closers.push(async () => {
          while (await life.parent.wait(-1, WNOHANG).catch(() => null));
          await life.close();
        });
        const lc = lifecycle(life);
        pings.push({ name: metricsName(PING, mode), bus: kind, call: () => (use(mode), ping.ping()) });
        lifes.push({ name: metricsName(LIFECYCLE, mode), bus: kind, call: () => (use(mode), lc()) });
      }
    setGlobalMetrics(null);
    // A scrape a second, as Prometheus's default 15 s would be, only denser.
    let scrapes = 0;
    const scraper = setInterval(() => void m.scrape().then(() => scrapes++, () => {}), 1000);
    const subjects = [...pings, ...lifes];
    const rows: Row[] = [];
    try {
      for (const n of ctx.inFlight) {
        ctx.log(`metrics: ${subjects.length} subjects interleaved, ${n} in flight`);
        rows.push(...(await measureInterleaved(subjects, n, { durationMs: ctx.durationMs })));
      }
    } finally {
      clearInterval(scraper);
      use("off");
      for (const c of closers) await c().catch(() => {});
      await m.shutdown();
    }
    ctx.log(`metrics: ${scrapes} scrapes of ${m.endpoint}`);
    for (const r of rows) {
      const [what, mode] = r.name.split(" | metrics ");
      r.metrics = mode;
      if (mode === "off") continue;
      const off = rows.find((x) => x.name === metricsName(what!, "off") && x.bus === r.bus && x.in_flight === r.in_flight);
      if (off && off.calls_per_s > 0) r.overhead = Math.round((1 - r.calls_per_s / off.calls_per_s) * 1000) / 1000;
    }
    for (const r of rows) if (r.overhead !== undefined) ctx.log(`overhead ${((r.overhead as number) * 100).toFixed(1)} %: ${r.name} (${r.bus}, ${r.in_flight} in flight)`);
    return subjects.flatMap((s) => rows.filter((x) => x.name === s.name && x.bus === s.bus));
  },
};

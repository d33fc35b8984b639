// Tracing's cost, measured in one run against tracing off: the brokered Ping
// RPC and the process lifecycle (on NATS and on the in-process hub), each with tracing off; on
// but not sampled (hooks installed, spans not recorded); on with 100 %
// sampling, every span batched to an exporter that serializes each batch as
// OTLP/protobuf (the wire format's CPU cost, without a collector); and with an
// rpctrace watcher on the kernel's trace stream (records with bodies,
// encoded as the edge sends them) and spans off; and sampled at a ratio
// (HURD_BENCH_TRACE_RATIO, default SAMPLED_RATIO), the rate at which export
// keeps up at full load. Every tracing row has `overhead`: the fraction of
// throughput lost against "off" at the same concurrency; every row with
// spans has `spans_dropped`: spans its export queue turned away while it
// was measured (warm-up included). Each subject has a telemetry of its own,
// so a row's drops are its own; a row that dropped spans did not pay for
// exporting them, so its overhead is not the cost of tracing every message
// and the targets count it as a miss. Subjects are interleaved, so the
// ratios share conditions.
import { AlwaysOffSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace";
import { TraceBatch } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { installTracingHooks } from "@hurdmesh/telemetry";
import { createTelemetry, NoopExporter, SerializingExporter, type SdkTelemetry } from "@hurdmesh/telemetry-sdk";
import { measureInterleaved, type Row, type Subject } from "../harness.js";
import { bootRig } from "../rig.js";
import { PING, rig } from "./kernel.js";
import { LIFECYCLE, lifecycle } from "./proc.js";
import { WNOHANG } from "@hurdmesh/libhurd";
import type { BenchContext, RowGroup } from "./types.js";

/**
 * The sampling ratio of the "sampled" rows: the highest measured (this
 * project's 2-core machine, NATS, 64 in flight) at which export kept up
 * with nothing dropped and the throughput lost stayed within 10 %.
 */
export const SAMPLED_RATIO = Number(process.env.HURD_BENCH_TRACE_RATIO ?? "0.25");
export const SAMPLED = `on, ${Math.round(SAMPLED_RATIO * 100)}% sampled, batched export`;
type Mode = string;
export const FULL = "on, 100% sampled, batched export";
export const MODES: Mode[] = ["off", "on, not sampled", FULL, ...(SAMPLED_RATIO < 1 ? [SAMPLED] : []), "rpctrace watcher"];
export const tracingName = (what: string, mode: Mode) => `${what} | tracing ${mode}`;

/** The runtime's hooks are process-wide: each subject installs its own before its calls. */
let installed: SdkTelemetry | null = null;
function use(t: SdkTelemetry | null): void {
  if (installed === t) return;
  installTracingHooks(t);
  installed = t;
}

function telemetryFor(mode: Mode, bus: "local" | "nats"): SdkTelemetry | null {
  if (mode === "on, not sampled") return createTelemetry({ service: "bench", exporter: new NoopExporter(), sampler: new AlwaysOffSampler(), env: {} });
  if (mode === FULL) return createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200, bus, env: {} });
  if (mode === SAMPLED)
    return createTelemetry({ service: "bench", exporter: new SerializingExporter(), sampler: new TraceIdRatioBasedSampler(SAMPLED_RATIO), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200, bus, env: {} });
  return null;
}


export const tracing: RowGroup = {
  name: "tracing",
  needsNats: true,
  async run(ctx: BenchContext): Promise<Row[]> {
    const subjects: Subject[] = [];
    const closers: (() => Promise<void>)[] = [];
    const tels: SdkTelemetry[] = [];
    let records = 0;
    const pings: Subject[] = [];
    const lifes: Subject[] = [];
    // In-process subjects run on promises alone and keep timers (the NATS
    // rigs' heartbeats) waiting: alternate them with NATS subjects, so no
    // rig goes long without its event loop turn and loses its lease.
    const configs = MODES.flatMap((mode) => (["local", "nats"] as const).map((kind) => ({ kind, mode })));
    /** Each subject's own telemetry (by subject name and bus), for its drops. */
    const telOf = new Map<string, SdkTelemetry>();
    for (const { kind, mode } of configs) {
      const pingTel = telemetryFor(mode, kind);
      const lifeTel = telemetryFor(mode, kind);
      for (const t of [pingTel, lifeTel]) if (t) tels.push(t);
      const ping = await rig(kind, ctx);
      const life = await bootRig(kind, ctx, ctx.log);
      closers.push(() => ping.close());
      closers.push(async () => {
        while (await life.parent.wait(-1, WNOHANG).catch(() => null));
        await life.close();
      });
      if (pingTel) ping.kernel.trace.useTelemetry(pingTel);
      if (lifeTel) life.kernel.trace.useTelemetry(lifeTel);
      if (mode === "rpctrace watcher") {
        // What the edge does for a watcher: records with bodies, encoded in batches.
        const sink = (rs: Parameters<Parameters<typeof life.kernel.trace.watch>[1]>[0], dropped: number) => {
          records += rs.length;
          TraceBatch.encode({ records: rs, dropped, ended: 0, counts: [] }).finish();
        };
        for (const k of [life.kernel, ping.kernel]) {
          const stop = k.trace.watch({ bodies: true }, sink);
          closers.unshift(async () => {
            ctx.log(`tracing: watcher saw ${k.trace.stats.records} records (${k.trace.stats.dropped} dropped)`);
            stop();
          });
        }
      }
      const lc = lifecycle(life);
      pings.push({ name: tracingName(PING, mode), bus: kind, call: () => (use(pingTel), ping.ping()) });
      lifes.push({ name: tracingName(LIFECYCLE, mode), bus: kind, call: () => (use(lifeTel), lc()) });
      if (pingTel) telOf.set(`${tracingName(PING, mode)}|${kind}`, pingTel);
      if (lifeTel) telOf.set(`${tracingName(LIFECYCLE, mode)}|${kind}`, lifeTel);
    }
    subjects.push(...pings, ...lifes);
    const rows: Row[] = [];
    try {
      for (const n of ctx.inFlight) {
        ctx.log(`tracing: ${subjects.length} subjects interleaved, ${n} in flight`);
        const before = new Map([...telOf].map(([k, t]) => [k, t.dropped]));
        const level = await measureInterleaved(subjects, n, { durationMs: ctx.durationMs });
        for (const r of level) {
          const t = telOf.get(`${r.name}|${r.bus}`);
          if (t) r.spans_dropped = t.dropped - before.get(`${r.name}|${r.bus}`)!;
        }
        rows.push(...level);
      }
    } finally {
      use(null);
      for (const c of closers) await c().catch(() => {});
      for (const t of tels) await t.shutdown().catch(() => {});
    }
    for (const r of rows) {
      const [what, m] = r.name.split(" | tracing ");
      r.tracing = m;
      if (m === "off") continue;
      const off = rows.find((x) => x.name === tracingName(what!, "off") && x.bus === r.bus && x.in_flight === r.in_flight);
      if (off && off.calls_per_s > 0) r.overhead = Math.round((1 - r.calls_per_s / off.calls_per_s) * 1000) / 1000;
    }
    for (const r of rows) if (r.overhead !== undefined) ctx.log(`overhead ${((r.overhead as number) * 100).toFixed(1)} %: ${r.name} (${r.bus}, ${r.in_flight} in flight)${r.spans_dropped !== undefined ? `, ${r.spans_dropped} spans dropped` : ""}`);
    const dropped = tels.reduce((a, t) => a + t.dropped, 0);
    ctx.log(`tracing: ${records} trace records to the watcher; ${dropped} spans dropped by full export queues`);
    return subjects.flatMap((s) => rows.filter((r) => r.name === s.name && r.bus === s.bus));
  },
};

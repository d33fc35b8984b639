// A/B driver (not part of the bench): what the kernel alone pays for a
// watch like `hurd web`'s (every message of the hurd, bodies, 200 records
// a second, the rest counted; each batch encoded as the edge encodes it),
// no view process: the brokered Ping at 64 in flight on one rig, measured
// with and without the watch in alternating slices.
// HURD_AB_WATCH=others watches a task that sends nothing instead: the
// tracer's path per message (sent, delivered) without records or counters.
// HURD_PROF_OUT=DIR writes a CPU profile of a longer slice of each mode.
//   node --conditions=@hurdmesh/source --import tsx bench/ab-web-kernel.ts [local|nats] [slices] [sliceMs]
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { PerformanceObserver } from "node:perf_hooks";
import { TraceBatch } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { WNOHANG } from "@hurdmesh/libhurd";
import { startNats, type NatsServer } from "./nats.js";
import { bootRig, NATS_AUTH_OFF } from "./rig.js";
import { pingIn } from "./rows/web.js";

const bus = process.argv[2] ?? "local";
const slices = Number(process.argv[3] ?? 20);
const sliceMs = Number(process.argv[4] ?? 500);
const IN_FLIGHT = 64;
let nats: NatsServer | null = null;
try {
  if (bus === "nats") nats = await startNats();
  const ctx = { natsUrl: nats?.url ?? "", natsAuth: null, durationMs: sliceMs, inFlight: [IN_FLIGHT], log: () => {} };
  const r = await bootRig(bus === "nats" ? NATS_AUTH_OFF : "local", ctx, ctx.log);
  const call = await pingIn(r);
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    let n = 0;
    const c0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await call();
          n++;
        }
      }),
    );
    const c = process.cpuUsage(c0);
    return { n, cpu: c.user + c.system };
  };
  await run(1000);
  const acc = { off: { n: 0, cpu: 0, ms: 0, gc: 0 }, on: { n: 0, cpu: 0, ms: 0, gc: 0 } };
  let gcMs = 0;
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) gcMs += e.duration;
  }).observe({ entryTypes: ["gc"] });
  let bytes = 0;
  // HURD_PROF_OUT=DIR: the watched slices' and the unwatched slices' CPU profiles (on.cpuprofile, off.cpuprofile).
  const out = process.env.HURD_PROF_OUT;
  const session = out ? new Session() : null;
  const profiles: Record<string, unknown> = {};
  if (session) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 250 });
  }
  for (let i = 0; i < slices; i++) {
    for (const mode of i % 2 ? (["on", "off"] as const) : (["off", "on"] as const)) {
      // HURD_AB_WATCH=others: a watch of a task that sends nothing (the tracer's path without records or counters).
      const filter = process.env.HURD_AB_WATCH === "others" ? { tasks: [0x7fffffff] } : { ns: null, bodies: true, recordsPerSecond: 200 };
      const stop = mode === "on" ? r.kernel.trace.watch(filter, (records, dropped, counts) => (bytes += TraceBatch.encode({ records, dropped, ended: 0, counts }).finish().length)) : null;
      const prof = session !== null && i === slices - 2;
      if (prof) await session.post("Profiler.start");
      const t0 = performance.now();
      const gc0 = gcMs;
      const x = await run(prof ? sliceMs * 8 : sliceMs);
      if (prof) profiles[mode] = ((await session.post("Profiler.stop")) as unknown as { profile: unknown }).profile;
      acc[mode].ms += performance.now() - t0;
      acc[mode].n += x.n;
      acc[mode].cpu += x.cpu;
      await new Promise((res) => setImmediate(res));
      acc[mode].gc += gcMs - gc0;
      stop?.();
    }
  }
  const rate = (a: { n: number; ms: number }) => (a.n / a.ms) * 1000;
  console.log(`${bus}: off ${Math.round(rate(acc.off))} Pings/s ${(acc.off.cpu / acc.off.n).toFixed(1)} µs/Ping; watched ${Math.round(rate(acc.on))} Pings/s ${(acc.on.cpu / acc.on.n).toFixed(1)} µs/Ping; lost ${((1 - rate(acc.on) / rate(acc.off)) * 100).toFixed(1)} %, GC µs/Ping ${((acc.off.gc * 1000) / acc.off.n).toFixed(2)} -> ${((acc.on.gc * 1000) / acc.on.n).toFixed(2)}, CPU +${((acc.on.cpu / acc.on.n / (acc.off.cpu / acc.off.n) - 1) * 100).toFixed(1)} %; ${Math.round(bytes / 1024)} KiB of batches`);
  if (out) for (const [m, p] of Object.entries(profiles)) writeFileSync(`${out}/${m}.cpuprofile`, JSON.stringify(p));
  while (await r.parent.wait(-1, WNOHANG).catch(() => null));
  await r.close();
} finally {
  await nats?.stop();
}
process.exit(0);

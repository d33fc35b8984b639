import { createTelemetry, installTracingHooks, SerializingExporter, type Telemetry } from "@hurdmesh/telemetry";
import { bootRig } from "./rig.js";
import { lifecycle } from "./rows/proc.js";
const life = await bootRig("local", "");
const mk = (thread: boolean) => createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200, exportThread: thread });
const full = mk(true), inl = mk(false);
await new Promise((r) => setTimeout(r, 1500));
const modes: [string, Telemetry | null, number][] = [["off", null, 0], ["kernel only", full, 1], ["hooks only", full, 2], ["full (worker)", full, 3], ["full (inline)", inl, 3]];
const lc = lifecycle(life);
const res = new Map<string, number[][]>();
for (let round = 0; round < 10; round++) for (const [name, tel, m] of modes) {
  life.kernel.trace.useTelemetry(m & 1 ? tel : null); installTracingHooks(m & 2 ? tel : null);
  const end = Date.now() + 600; let n = 0;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await lc(); n++; } }));
  const c = process.cpuUsage(c0); const dt = performance.now() - t0;
  if (round > 0) (res.get(name) ?? res.set(name, []).get(name)!).push([(c.user + c.system) / n, n / dt * 1000]);
}
const med = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1]!;
for (const [k, v] of res) console.log(k.padEnd(16), "cpu µs/call", med(v.map((x) => x[0]!)).toFixed(1), " calls/s", med(v.map((x) => x[1]!)).toFixed(0));
process.exit(0);

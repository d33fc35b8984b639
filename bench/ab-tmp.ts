import { createTelemetry, installTracingHooks, SerializingExporter, type Telemetry } from "@hurdmesh/telemetry";
import { rig } from "./rows/kernel.js";
const ctx = { natsUrl: "", durationMs: 0, inFlight: [64], log: () => {} };
const r = await rig("local", ctx);
const full = createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200 });
const nosink = createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200 });
(nosink.light as any).sink = { add() {} };
const modes: [string, Telemetry | null, number][] = [["off", null, 0], ["kernel only", full, 1], ["hooks only", full, 2], ["spans, no encode", nosink, 3], ["full", full, 3]];
const res = new Map<string, number[]>();
for (let round = 0; round < 16; round++) for (const [name, tel, m] of modes) {
  r.kernel.trace.useTelemetry(m & 1 ? tel : null); installTracingHooks(m & 2 ? tel : null);
  const end = Date.now() + 700; let n = 0;
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await r.ping(); n++; } }));
  const c = process.cpuUsage(c0);
  if (round > 0) (res.get(name) ?? res.set(name, []).get(name)!).push((c.user + c.system) / n);
}
for (const [k, v] of res) { v.sort((a, b) => a - b); console.log(k.padEnd(20), "median cpu µs/call", v[v.length >> 1].toFixed(2)); }
await r.close(); process.exit(0);

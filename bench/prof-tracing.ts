// Profiling driver (not part of the bench): local Ping, 64 in flight, 100 % sampled.
import { installTracingHooks } from "@hurdmesh/telemetry";
import { createTelemetry, SerializingExporter } from "@hurdmesh/telemetry-sdk";
import { rig } from "./rows/kernel.js";
import { NATS_AUTH_OFF } from "./rig.js";
const on = process.argv[2] !== "off";
// NATS_URL: an anonymous nats-server (the rig's "nats, auth off").
const ctx = { natsUrl: process.env.NATS_URL ?? "", natsAuth: null, durationMs: 0, inFlight: [64], log: () => {} };
const r = await rig(process.argv[3] === "nats" ? NATS_AUTH_OFF : "local", ctx);
if (on) {
  const tel = createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200 });
  r.kernel.trace.useTelemetry(tel);
  installTracingHooks(tel);
}
const end = Date.now() + Number(process.argv[4] ?? 5000);
let n = 0;
await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await r.ping(); n++; } }));
console.log(on ? "on" : "off", n / 5, "/s");
await r.close();
process.exit(0);

import { createTelemetry, installTracingHooks, SerializingExporter } from "@hurdmesh/telemetry";
import { bootRig } from "./rig.js";
import { lifecycle } from "./rows/proc.js";
const on = process.argv[2] !== "off";
const life = await bootRig("local", "");
if (on) {
  const tel = createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200 });
  life.kernel.trace.useTelemetry(tel);
  installTracingHooks(tel);
}
const lc = lifecycle(life);
const end = Date.now() + 6000;
let n = 0;
await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await lc(); n++; } }));
console.error("N", n);
process.exit(0);

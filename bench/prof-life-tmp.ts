import { createTelemetry, installTracingHooks, SerializingExporter } from "@hurdmesh/telemetry";
import { WNOHANG } from "@hurdmesh/libhurd";
import { bootRig } from "./rig.js";
import { lifecycle } from "./rows/proc.js";
const on = process.argv[2] !== "off";
const life = await bootRig("local", "");
if (on) {
  const tel = createTelemetry({ service: "bench", exporter: new SerializingExporter(), maxQueueSize: 8192, maxExportBatchSize: 512, scheduledDelayMillis: 200 });
  life.kernel.trace.useTelemetry(tel);
  installTracingHooks(tel);
  const stats = () => console.log("spans", life.kernel.trace.stats.spans);
  process.on("exit", stats);
}
const lc = lifecycle(life);
const end = Date.now() + Number(process.argv[3] ?? 5000);
let n = 0;
await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await lc(); n++; } }));
console.log(on ? "on" : "off", n, "lifecycles");
process.exit(0);

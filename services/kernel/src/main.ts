// hurd-kernel: runs the kernel as its own process, on NATS (--nats) or on an
// in-process bus (embedded use, mostly for trying it out), with the gRPC edge.
//
//   tsx services/kernel/src/main.ts --nats nats://127.0.0.1:4222 --grpc 127.0.0.1:7400 \
//       --boot proc,auth,init --boot-file /run/hurd/boot.json
//
// Boot tasks are created at start; their ids and secret tokens are written
// (mode 0600) to the boot file, which is how the boot servers learn who they are.
// In containers, where init cannot read that file, HURD_BOOT_SECRET (or
// --boot-secret-file) lets an init claim its boot task over the bus instead
// (boot-claim.ts).
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger, LocalHub, type Bus } from "@hurdmesh/mach";
import { notifyReady } from "@hurdmesh/mach/internal";
import { NatsBus } from "@hurdmesh/mach/nats";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { BootClaims } from "./boot-claim.js";
import { Edge } from "./edge.js";
import { Kernel } from "./kernel.js";
import { TraceBus } from "./trace-bus.js";
import { TrapServer } from "./trap.js";

const { values } = parseArgs({
  options: {
    nats: { type: "string", default: process.env.NATS_URL },
    grpc: { type: "string", default: process.env.HURD_GRPC ?? "127.0.0.1:7400" },
    system: { type: "string", default: process.env.HURD_SYSTEM ?? "hurd" },
    boot: { type: "string", default: process.env.HURD_BOOT ?? "" },
    "boot-file": { type: "string", default: process.env.HURD_BOOT_FILE },
    "boot-secret-file": { type: "string", default: process.env.HURD_BOOT_SECRET_FILE },
    "lease-ms": { type: "string", default: process.env.HURD_LEASE_MS },
    "restart-grace-ms": { type: "string", default: process.env.HURD_RESTART_GRACE_MS },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  console.log("usage: hurd-kernel [--nats URL] [--grpc HOST:PORT] [--system NAME] [--boot a,b,c --boot-file PATH] [--boot-secret-file PATH] [--lease-ms N] [--restart-grace-ms N]\n(HURD_BOOT_SECRET or --boot-secret-file: inits may claim boot tasks over the bus)");
  process.exit(0);
}

// Spans for every routed message (and the edge's calls) when the OTEL_*
// environment asks for them; off, and free, otherwise.
const telemetry = telemetryFromEnv("hurd-kernel", process.env, { bus: values.nats ? "nats" : "local", hurd: values.system, serverAddress: values.grpc });
if (telemetry) {
  setGlobalTelemetry(telemetry);
  installTracingHooks(telemetry);
}
// Metrics on a Prometheus endpoint (HURD_METRICS_ADDR) and/or OTLP when the environment asks.
const metrics = await startMetrics("hurd-kernel", process.env, { hurd: values.system });
const kernel = new Kernel({ system: values.system!, bus: values.nats ? "nats" : "local", ...(values["lease-ms"] ? { leaseMs: Number(values["lease-ms"]) } : {}), ...(values["restart-grace-ms"] ? { restartGraceMs: Number(values["restart-grace-ms"]) } : {}) }, { telemetry, metrics });
const bus: Bus = values.nats ? await NatsBus.connect(values.nats, `hurd-kernel-${values.system}`) : new LocalHub().connect();
const traps = new TrapServer(kernel, bus);
traps.start();
// The trace stream for watchers on the bus (hurd.<system>.trace.>): idle until someone asks.
const traceBus = new TraceBus(kernel, bus);
traceBus.start();
await bus.flush();

const boot: Record<string, { taskId: number; token: string; hostPriv: number }> = {};
for (const name of values.boot!.split(",").filter(Boolean)) {
  const b = kernel.bootTask({ name, hostPriv: true });
  boot[name] = { taskId: b.task.id, token: b.token, hostPriv: b.hostPriv };
}
if (values["boot-file"]) writeFileSync(values["boot-file"], JSON.stringify({ system: values.system, tasks: boot }, null, 2), { mode: 0o600 });

// The secret comes from the environment or a file, never argv (ps would show it).
const secret = values["boot-secret-file"] ? readFileSync(values["boot-secret-file"], "utf8").trim() : process.env.HURD_BOOT_SECRET;
delete process.env.HURD_BOOT_SECRET;
const log = createLogger("kernel", { hurd: values.system });
const claims = secret ? new BootClaims(kernel, bus, secret, { log: log.sink }) : null;
claims?.start();

const edge = new Edge(kernel);
const port = await edge.listen(values.grpc!);
const host = values.grpc!.replace(/:\d+$/, "");
log.info(`bus ${bus.kind}${values.nats ? ` ${values.nats}` : ""}, gRPC edge on ${host}:${port}${metrics?.endpoint ? `, metrics on ${metrics.endpoint}` : ""}`, { edge: `${host}:${port}` });
// After the boot file is written and the edge listens: what `hurd up --nats` waits for.
await notifyReady({ edge: `${host}:${port}` });

let stopping = false;
async function stop(sig: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info(`${sig}, stopping`);
  await edge.close();
  claims?.stop();
  traceBus.stop();
  traps.stop();
  kernel.close();
  await bus.close();
  await metrics?.shutdown();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

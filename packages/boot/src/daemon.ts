// The boot servers as OS processes (started by ProcessLauncher):
//   node daemon.js auth|proc|runsystem   (the package export @hurdmesh/boot/daemon)
// with HURD_TASK_ID, HURD_TOKEN, HURD_SYSTEM, NATS_URL and HURD_HOST_PRIV.
import { attachFromEnv } from "@hurdmesh/libhurd";
import { createLogger, Errno, HurdError, Task } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { startBootServer } from "./servers.js";

// Spans for this server's handlers when the OTEL_* environment asks for them
// (the kernel makes the per-message spans; these are their children).
const tel = telemetryFromEnv(`hurd-${process.argv[2]}`, process.env, { bus: "nats" });
if (tel) {
  setGlobalTelemetry(tel);
  installTracingHooks(tel);
}

// Metrics (HURD_METRICS_ADDR, OTEL_METRICS_EXPORTER): proc's tables and every RPC served.
await startMetrics(`hurd-${process.argv[2]}`, process.env);

const name = process.argv[2];
const hostPriv = Number(process.env.HURD_HOST_PRIV ?? 0);
const command = process.env.HURD_COMMAND ? (JSON.parse(process.env.HURD_COMMAND) as string[]) : undefined;
const url = process.env.NATS_URL!;
const system = process.env.HURD_SYSTEM ?? "hurd";
const { task, bus } = await attachFromEnv(process.env, { window: 1024, timeoutMs: 30_000 });
const attach = async (taskId: number, token: string) => Task.attach({ bus: await NatsBus.connect(url), system, taskId, token });
try {
  await startBootServer(name!, task, { hostPriv, command, attach });
} catch (e) {
  createLogger(`hurd-${name}`, { hurd: system }).fatal(`cannot start: ${(e as Error).message}`);
  process.exit(2);
}
// The hurd ends this task (shutdown or crash), or its kernel is gone (no
// one takes the trap subject, or a new kernel knows no such task): then
// this process has nothing left to do, and must not linger as a process
// of a hurd that is no more.
const poll = setInterval(() => {
  if (task.detached || bus.closed) process.exit(0);
}, 500);
const ask = setInterval(() => {
  task.taskInfo(0).catch((e) => {
    const code = HurdError.from(e).code;
    if (code === Errno.KERN_INVALID_TASK || code === Errno.MACH_SEND_INVALID_DEST) process.exit(0);
  });
}, 2000);
ask.unref();
process.on("SIGTERM", () => {
  clearInterval(poll);
  void bus.close().then(() => process.exit(0));
});

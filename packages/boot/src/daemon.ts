// The boot servers as OS processes (started by ProcessLauncher):
//   node daemon.js auth|proc|runsystem   (the package export @hurdmesh/boot/daemon)
// with HURD_TASK_ID, HURD_TOKEN, HURD_SYSTEM, NATS_URL, HURD_NATS_CREDS (its
// own NATS user, with authorization on) and HURD_HOST_PRIV; runsystem also
// HURD_COMMAND and HURD_EDGE (for the programs it runs, which get the edge
// and never the bus). It exits when its task ends, and when the launcher
// that started it is gone (the IPC channel closes). HURD_RESTART=1 when the
// launcher starts it again on the task a killed process of it held (restart
// in place: services/kernel/src/reincarnation.ts); auth and proc read their
// state back from their JetStream buckets (HURD_NATS_STORE_CREDS: each its
// own store user). A proc whose store fails exits 75, to be started again;
// one refused because a newer process of its task holds its log exits 0.
// HURD_SPARE=1: a spare (ProcessLauncher), which waits for its launcher's
// word before it does any of that (below).
import { attachFromEnv } from "@hurdmesh/libhurd";
import { createLogger, Errno, HurdError } from "@hurdmesh/mach";
import { attachOverNats } from "@hurdmesh/mach/nats";
import { parseCreds } from "@hurdmesh/mach/nats-auth";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { Runsystem } from "./runsystem.js";
import { startBootServer } from "./servers.js";
import { serverStores, superviseStore } from "./stores.js";

// ps -ef and top show the server and its hurd, not node and a path.
const title = `hurd-${process.argv[2]} ${process.env.HURD_SYSTEM ?? "hurd"}`;
// A spare: started ahead of need by its launcher, its modules loaded (most
// of a Node process's start), it waits here for the word that the process
// of its task died, with the login minted for it then, and carries on as a
// process started again in place (HURD_RESTART=1 is in its environment). It
// holds nothing meanwhile: no NATS connection, no port, no metrics address.
if (process.env.HURD_SPARE === "1") {
  process.title = `${title} (spare)`;
  // Its launcher gone: nothing to stand behind.
  const orphaned = () => process.exit(0);
  process.on("disconnect", orphaned);
  const order = await new Promise<{ creds?: string }>((resolve) => process.once("message", (m) => resolve((m ?? {}) as { creds?: string })));
  process.off("disconnect", orphaned);
  delete process.env.HURD_SPARE;
  if (order.creds) process.env.HURD_NATS_CREDS = order.creds;
}
process.title = title;

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
const restart = process.env.HURD_RESTART === "1";
const storeCreds = process.env.HURD_NATS_STORE_CREDS;
delete process.env.HURD_NATS_STORE_CREDS;
// The process that started this one gone while it still attaches (NATS
// away: attaching retries until its deadline): nothing left to attach for.
const launcherGone = () => process.exit(1);
process.on("disconnect", launcherGone);
// A restarted process: the kernel refuses it (EBUSY) until the killed one's
// lease lapses; what queued meanwhile is held until the server is set up.
const { task, bus } = await attachFromEnv(process.env, { window: 1024, timeoutMs: 30_000, hold: restart, retryBusyMs: restart ? 60_000 : 0 });
task.onRejoined = () => createLogger(`hurd-${name}`, { hurd: system }).warn(`took task ${task.id} back after the kernel lapsed it (its connection closed, or it was stalled past its lease)`);
// The tasks it starts (runsystem's programs) attach as themselves, each with the NATS user their creator may ask for.
const attach = async (taskId: number, token: string) => attachOverNats(url, { system, taskId, token, credentials: await task.natsCredentials(taskId, token) });
let server: unknown;

try {
  const stores = await serverStores(name!, { url, system, task, storeCreds: storeCreds ? parseCreds(storeCreds) : null, restart });
  server = await startBootServer(name!, task, { hostPriv, command, attach, ...stores });
  superviseStore(server, { system, task, exit: (code) => process.exit(code) });
  // A restarted process that found nothing to carry on from must not boot
  // a second time on a running hurd.
  if (restart && !(server as { restarted?: boolean }).restarted) throw new Error("restarted, but its store holds no image of this task");
  if (restart) createLogger(`hurd-${name}`, { hurd: system }).warn(`restarted in place on task ${task.id}`);
  // Set up: its launcher's launch() ends here, as the in-process one's does (pid 1 with its args, its command started).
  process.send?.({ up: true }, (e: Error | null) => void e);
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
// Gone means unheard for longer than the task's lease: a kernel with a standby is away for a moment at a takeover.
let unanswered = 0;
const ask = setInterval(() => {
  task.taskInfo(0).then(
    (info) => {
      unanswered = 0;
      // The kernel put the task into its restart grace while this process
      // lives (its NATS connection closed, or it was stalled past its
      // lease): it takes the task back, or ends if a newer process has it
      // (then the poll above sees it detached).
      void task.heldAsSaid(info);
    },
    (e) => {
      const code = HurdError.from(e).code;
      if (code === Errno.MACH_SEND_INVALID_DEST) unanswered ||= Date.now();
      if (code === Errno.KERN_INVALID_TASK || (code === Errno.MACH_SEND_INVALID_DEST && Date.now() - unanswered > task.leaseMs)) process.exit(0);
    },
  );
}, 2000);
ask.unref();
// Stopped by its launcher (the hurd is gone or going): pid 1's program goes with it.
process.on("SIGTERM", () => {
  clearInterval(poll);
  if (server instanceof Runsystem) server.abandon();
  void bus.close().then(() => process.exit(0));
});
process.off("disconnect", launcherGone);
process.channel?.unref();
process.on("disconnect", () => {
  if (server instanceof Runsystem) server.abandon();
  process.exit(0);
});

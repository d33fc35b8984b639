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
// own store user). A proc whose store fails exits 75, to be started again.
import { KvAuthStore, MemoryAuthStore, type AuthStore } from "@hurdmesh/auth";
import { KvProcStore, type ProcServer, type ProcStore } from "@hurdmesh/proc";
import { attachFromEnv } from "@hurdmesh/libhurd";
import { createLogger, Errno, HurdError } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { attachOverNats, JetStreamKv, NatsBus } from "@hurdmesh/mach/nats";
import type { KeyValue } from "@hurdmesh/mach";
import { parseCreds } from "@hurdmesh/mach/nats-auth";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { Runsystem } from "./runsystem.js";
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
// The tasks it starts (runsystem's programs) attach as themselves, each with the NATS user their creator may ask for.
const attach = async (taskId: number, token: string) => attachOverNats(url, { system, taskId, token, credentials: await task.natsCredentials(taskId, token) });
let server: unknown;

/**
 * The server's bucket (one per server and hurd, on JetStream): auth's
 * handles and proc's table are written through to it so that a restarted
 * process carries on. With NATS authorization on, the bucket is reached as
 * the server's store user (HURD_NATS_STORE_CREDS), on a connection of its
 * own; the task's user may not.
 */
async function bucket(): Promise<KeyValue> {
  const hurd = task.hurd === system ? "" : task.hurd;
  if (storeCreds) {
    const inboxPrefix = inboxOf(system, { kind: "store", hurd, server: name! });
    const sbus = await NatsBus.connect(url, { name: `hurd-${name} store`, credentials: parseCreds(storeCreds), inboxPrefix });
    return JetStreamKv.open(sbus.nc, system, hurd, name!, { inboxPrefix });
  }
  return JetStreamKv.open((bus as NatsBus).nc, system, hurd, name!);
}

/**
 * Where the server writes through: its bucket, or nothing when the
 * nats-server has no JetStream (then a restart has nothing to carry on
 * from, and a restarted process must not start afresh on a running hurd).
 */
async function store<S>(make: (kv: KeyValue) => S, none: S, what: string): Promise<S> {
  try {
    return make(await bucket());
  } catch (e) {
    if (restart) throw new Error(`cannot restart in place: no JetStream to read ${what} back from (${(e as Error).message})`, { cause: e });
    createLogger(`hurd-${name}`, { hurd: system }).warn(`${what} in memory only, a restart of this process cannot carry on: ${(e as Error).message}`);
    return none;
  }
}

/** Exit code of a server whose store failed: its launcher starts it again in place, from what the store acknowledged. */
const EX_STORE_FAILED = 75;

try {
  const authStore = name === "auth" ? await store<AuthStore>((kv) => new KvAuthStore(kv), new MemoryAuthStore(), "auth's handles") : undefined;
  const procStore = name === "proc" ? await store<ProcStore | undefined>((kv) => new KvProcStore(kv), undefined, "proc's table") : undefined;
  server = await startBootServer(name!, task, { hostPriv, command, attach, authStore, procStore });
  const journal = name === "proc" ? (server as ProcServer).journal : null;
  if (journal)
    // proc's memory is ahead of its store: it answers EIO until a new process rebuilds from what was acknowledged.
    journal.onBroken = (e) => {
      createLogger("hurd-proc", { hurd: system }).error(`its store failed (${e.message}): exiting to restart in place`);
      setTimeout(() => process.exit(EX_STORE_FAILED), 100);
    };
  // A restarted process that found nothing to carry on from must not boot
  // a second time on a running hurd.
  if (restart && !(server as { restarted?: boolean }).restarted) throw new Error("restarted, but its store holds no image of this task");
  if (restart) createLogger(`hurd-${name}`, { hurd: system }).warn(`restarted in place on task ${task.id}`);
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
    () => (unanswered = 0),
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

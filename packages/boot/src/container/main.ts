// A boot server in a container of its own (docker compose, Kubernetes):
//
//   tsx packages/boot/src/container/main.ts init|proc|auth
//
// init claims its boot task from the kernel over the bus (boot-claim.ts in
// the kernel), boots the hurd, runs pid 1 in its own process, launches proc
// and auth in their containers (launch.ts), and writes the session file the
// `hurd` command reads. proc and auth wait for init's launch order. Each
// serves grpc.health.v1 on HURD_HEALTH_ADDR.
//
// Environment: NATS_URL (tls://… with HURD_NATS_CA_FILE, the CA of NATS's certificate), HURD_SYSTEM (default hurd), HURD_BOOT_SECRET or
// HURD_BOOT_SECRET_FILE (init), HURD_SUBHURD (a subhurd's name; empty for the root hurd),
// HURD_PARENT (a subhurd's parent subhurd), HURD_HEALTH_ADDR (default
// 0.0.0.0:7401), HURD_STATE_DIR (session files), HURD_PUBLIC_EDGE (the
// kernel's edge as the `hurd` command should dial it), HURD_EDGE_CA_FILE (the
// CA of the edge's certificate, put in the session files so that `hurd`
// verifies the edge), HURD_BOOT_TIMEOUT_MS, HURD_RELAUNCH_MS (init: how often
// it asks whether proc's or auth's container waits again, to restart the
// server in place; default 1000).
//
// NATS authorization (on unless HURD_NATS_AUTH=off): HURD_NATS_CREDS (a
// .creds file's text) or HURD_NATS_CREDS_FILE holds this container's own
// NATS user, which can do one thing: init's claims its hurd's boot task,
// proc's and auth's takes its own launch order. Every task then connects as
// the user the kernel minted for it (in the claim's answer, in the order).
//
// A server's task ends with its hurd (shutdown, crash, init gone): then its
// process exits and the container's restart policy brings it back, waiting
// for the next boot. A server process that dies while its hurd runs
// (SIGKILL, the OOM killer) is brought back the same way, and init, which
// probes for a container waiting again, re-issues its order with a fresh
// login and `restart`: it re-attaches to its task within the kernel's
// restart grace and carries on from its JetStream bucket (restart in place;
// the order carries its store user). SIGTERM: init shuts the hurd down cleanly through
// startup_reboot; proc and auth end their task, which init sees as an
// essential server's death, the crash the Hurd would have.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { createLogger, Errno, HurdError, MsgType, Task, type Bus } from "@hurdmesh/mach";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { natsClientTls, parseCreds, type UserCredentials } from "@hurdmesh/mach/nats-auth";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { BOOT_NAMES, Init, serveSubhurds, type Console } from "@hurdmesh/init";
import { serveHealth, type HealthServer } from "@hurdmesh/mach/health";
import { inboxOf, subjectsOf } from "@hurdmesh/mach/internal";
import { BootClaimReply, BootClaimRequest } from "@hurdmesh/proto/hurd/boot/v1/boot";
import { InProcessLauncher } from "../launchers.js";
import { startBootServer } from "../servers.js";
import { serverStores, superviseStore } from "../stores.js";
import { awaitLaunch, BusLauncher } from "./launch.js";

const role = process.argv[2] ?? "";
if (!["init", "proc", "auth"].includes(role)) {
  console.error("usage: container/main.ts init|proc|auth (see the file's head for the environment)");
  process.exit(2);
}
const env = process.env;
const system = env.HURD_SYSTEM || "hurd";
const hurd = env.HURD_SUBHURD ?? "";
const who = `hurd-${role}${hurd ? `@${hurd}` : ""}`;
// One JSON object a line on stdout: what docker compose logs and Kubernetes' collectors take.
const log = createLogger(`hurd-${role}`, { hurd: hurd || system });
const say = log.sink;
if (!env.NATS_URL) {
  log.fatal("NATS_URL must say where the bus is");
  process.exit(2);
}

const tel = telemetryFromEnv(`hurd-${role}`, process.env, { bus: "nats" });
if (tel) {
  setGlobalTelemetry(tel);
  installTracingHooks(tel);
}

// Metrics (HURD_METRICS_ADDR, OTEL_METRICS_EXPORTER): proc's tables and every RPC served or called.
const metrics = await startMetrics(`hurd-${role}`, process.env, { hurd: hurd || system });
if (metrics?.endpoint) say(`metrics on ${metrics.endpoint}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** This container's own NATS user (the secret is taken out of the environment); null when authorization is off. */
function roleCredentials(): UserCredentials | null {
  const text = env.HURD_NATS_CREDS || (env.HURD_NATS_CREDS_FILE ? readFileSync(env.HURD_NATS_CREDS_FILE, "utf8") : "");
  delete env.HURD_NATS_CREDS;
  if (env.HURD_NATS_AUTH === "off") {
    console.error(`${who}: NATS authorization is OFF (HURD_NATS_AUTH=off): anyone on the bus can read every task's token`);
    return null;
  }
  if (!text) {
    console.error(`${who}: HURD_NATS_CREDS or HURD_NATS_CREDS_FILE must hold this container's NATS user (or HURD_NATS_AUTH=off for a bus without authorization)`);
    process.exit(2);
  }
  return parseCreds(text);
}
const roleCreds = roleCredentials();
// The fabric's CA (HURD_NATS_CA_FILE): a wrong one stops the container now, not a "waiting for NATS" loop forever.
try {
  natsClientTls();
} catch (e) {
  log.fatal((e as Error).message);
  process.exit(2);
}

/** A task's own NATS user, as the kernel minted it; null when there is none. */
const natsUser = (c: { jwt: string; seed: string } | undefined | null) => (c?.jwt ? { jwt: c.jwt, seed: c.seed } : null);

/** This container's role connection, once NATS answers: containers start in any order. */
async function connectBus(): Promise<Bus> {
  const inbox = role === "init" ? inboxOf(system, { kind: "boot-claim", hurd }) : undefined;
  for (let i = 0; ; i++) {
    try {
      return await NatsBus.connect(env.NATS_URL!, { name: who, credentials: roleCreds ?? undefined, inboxPrefix: roleCreds ? inbox : undefined });
    } catch (e) {
      if (i % 20 === 0) say(`waiting for NATS at ${env.NATS_URL}: ${(e as Error).message}`);
      await sleep(500);
    }
  }
}

/** Asks the kernel for this hurd's boot task until it answers (it may not be up yet). */
async function claimBoot(bus: Bus, secret: string): Promise<BootClaimReply> {
  const req = BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret, hurd, parent: env.HURD_PARENT || "" })).finish();
  for (let i = 0; ; i++) {
    try {
      const a = BootClaimReply.decode(await bus.request(subjectsOf(system).bootClaim, req, 5000));
      if (a.errno === 0) return a;
      // EBUSY: the previous boot's startup has not been seen dead yet. EAGAIN: the parent subhurd is still booting.
      if (a.errno !== Errno.EBUSY && a.errno !== Errno.EAGAIN) throw new HurdError(a.errno, `the kernel refused the boot claim: ${a.error}`);
      if (i % 10 === 0) say(`boot claim: ${a.error}; asking again`);
    } catch (e) {
      const h = HurdError.from(e);
      if (h.code !== Errno.MACH_SEND_INVALID_DEST && h.code !== Errno.ETIMEDOUT) throw h;
      if (i % 10 === 0) say(`waiting for the kernel (${subjectsOf(system).bootClaim})`);
    }
    await sleep(500);
  }
}

/**
 * Calls `gone` once when this container's task is no more: the kernel said
 * so (KERN_TERMINATED), or a kernel call answers KERN_INVALID_TASK. The
 * call matters when the kernel itself restarted: a new kernel knows no old
 * task and cannot tell it, and without asking the server would report
 * healthy for a hurd that is gone.
 */
function watchTask(t: Task, gone: () => void): () => void {
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    clearInterval(timer);
    gone();
  };
  t.onTerminated = end;
  const timer = setInterval(() => {
    if (t.detached) return end();
    t.taskInfo(0).catch((e) => {
      // A slow or absent kernel (ETIMEDOUT) is not a verdict: ask again.
      if (t.detached || HurdError.from(e).code === Errno.KERN_INVALID_TASK) end();
    });
  }, 2000);
  return () => {
    done = true;
    clearInterval(timer);
  };
}

let health: HealthServer | null = null;
let task: Task | null = null;
let exiting = false;
async function exit(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    health?.set("NOT_SERVING");
    await health?.close();
  }
  process.exit(code);
}

health = await serveHealth(env.HURD_HEALTH_ADDR || "0.0.0.0:7401", [`hurdmesh.${role}`]);
const roleBus = await connectBus();
/** Attaches a task as its own NATS user; `creator` asks the kernel for that user (it holds the task's token). */
const attacher = (creator: () => Task) => async (taskId: number, token: string) =>
  attachOverNats(env.NATS_URL!, { name: who, system, taskId, token, credentials: await creator().natsCredentials(taskId, token), window: 1024, timeoutMs: 30_000 });

if (role === "init") await runInit();
else await runServer();

async function runServer(): Promise<void> {
  const subject = subjectsOf(system).launch(hurd, role);
  // Ready as soon as it listens: init launches it only once it answers.
  health!.set("SERVING");
  say(`waiting for init's launch order on ${subject}`);
  const order = await awaitLaunch(roleBus, subject, async (o) => {
    // A re-issued order (this container's process died and it waits again):
    // the kernel refuses the attach (EBUSY) until the dead process's lease
    // lapses, and what queued meanwhile is held until the server is set up.
    task = await attachOverNats(env.NATS_URL!, {
      name: who,
      system,
      taskId: o.taskId,
      token: o.token,
      credentials: natsUser(o.nats),
      window: 1024,
      timeoutMs: 30_000,
      hold: o.restart,
      retryBusyMs: o.restart ? 120_000 : 0,
    });
    const stores = await serverStores(role, { url: env.NATS_URL!, system, task, storeCreds: natsUser(o.store), restart: o.restart });
    const server = await startBootServer(role, task, { hostPriv: o.hostPriv, attach: attacher(() => task!), ...stores });
    // One that found nothing to carry on from must not boot a second time on a running hurd.
    if (o.restart && !(server as { restarted?: boolean }).restarted) throw new HurdError(Errno.ENOENT, "restarted, but its store holds no image of this task");
    superviseStore(server, { system, task, exit: (code) => void exit(code) });
    if (o.restart) say(`restarted in place on task ${o.taskId}`, "warn");
  }).catch((e) => {
    say(`launch failed: ${(e as Error).message}`, "error");
    return exit(1);
  });
  // The launch user has done its one job.
  await roleBus.flush().catch(() => {});
  await roleBus.close().catch(() => {});
  health!.set("SERVING", `hurdmesh.${role}`);
  say(`running as task ${order.taskId}`);
  const unwatch = watchTask(task!, () => {
    say("its task ended (the hurd shut down or crashed); exiting for the next boot");
    void exit(0);
  });
  const stop = async () => {
    unwatch();
    say("SIGTERM: ending the task");
    await task!.taskTerminate(0).catch(() => {});
    await task!.bus.close().catch(() => {});
    await exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

async function runInit(): Promise<void> {
  // From a file when given one (compose's keys volume): a secret in the environment shows in `docker inspect`.
  let secret = env.HURD_BOOT_SECRET;
  delete env.HURD_BOOT_SECRET;
  if (env.HURD_BOOT_SECRET_FILE) {
    try {
      secret = readFileSync(env.HURD_BOOT_SECRET_FILE, "utf8").trim();
    } catch (e) {
      say(`cannot read the boot secret (HURD_BOOT_SECRET_FILE): ${(e as Error).message}`, "fatal");
      return exit(2);
    }
  }
  if (!secret) {
    say("HURD_BOOT_SECRET must hold the kernel's boot secret (or HURD_BOOT_SECRET_FILE name a file that does)", "fatal");
    return exit(2);
  }
  // Read before the boot, so that a missing file stops init before it claims anything.
  let edgeCa: string | undefined;
  try {
    edgeCa = env.HURD_EDGE_CA_FILE ? readFileSync(env.HURD_EDGE_CA_FILE, "utf8") : undefined;
  } catch (e) {
    say(`cannot read the edge's CA (HURD_EDGE_CA_FILE): ${(e as Error).message}`, "fatal");
    return exit(2);
  }
  const c = await claimBoot(roleBus, secret);
  say(`claimed boot task ${c.taskId} (namespace ${c.namespaceId})`);
  await roleBus.close().catch(() => {});
  // init's own connection, as its task: its user may also send this hurd's launch orders.
  const creds = natsUser(c.nats);
  const bus = await NatsBus.connect(env.NATS_URL!, { name: who, credentials: creds ?? undefined, inboxPrefix: creds ? inboxOf(system, { kind: "task", taskId: c.taskId }) : undefined });
  task = await Task.attach({ bus, system, taskId: c.taskId, token: c.token, window: 1024, timeoutMs: 30_000, ownsBus: true });
  const attach = attacher(() => task!);
  const local = new InProcessLauncher(attach);
  // relaunchMs: a server container that waits again (its process died) gets its order again, and the server restarts in place.
  const launcher = new BusLauncher(bus, {
    system,
    hurd,
    remote: ["auth", "proc"],
    local,
    log: say,
    credentials: (id, token) => task!.natsCredentials(id, token),
    stores: { proc: c.procStore, auth: c.authStore },
    relaunchMs: Number(env.HURD_RELAUNCH_MS || 1000),
  });
  const init = new Init({
    task,
    hostPriv: c.hostPriv,
    launcher,
    log: say,
    config: env.HURD_BOOT_TIMEOUT_MS ? { bootTimeoutMs: Number(env.HURD_BOOT_TIMEOUT_MS) } : { bootTimeoutMs: 300_000 },
  });
  try {
    await init.boot();
  } catch (e) {
    say(`boot failed: ${(e as Error).message}`, "error");
    launcher.stop();
    await task.taskTerminate(0).catch(() => {});
    return exit(1);
  }

  const stateDir = env.HURD_STATE_DIR || "/var/lib/hurdmesh";
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const edge = env.HURD_PUBLIC_EDGE || "127.0.0.1:7400";
  // Written whole, then renamed: a `hurd` command never reads half a session.
  const publish = (name: string, con: Console, extra: object = {}) => {
    const p = join(stateDir, `${name}.json`);
    // The edge and the console's token: never the bus (a session is for the `hurd` command and workloads).
    writeFileSync(`${p}.tmp`, JSON.stringify({ system, edge, edgeCa, console: con, ...extra }, null, 2), { mode: 0o600 });
    renameSync(`${p}.tmp`, p);
  };
  const sessionName = hurd || "hurd";
  // The root hurd also manages subhurds made with `hurd subhurd create` (their servers run in this container).
  const subhurds = hurd
    ? null
    : await serveSubhurds(task, {
        root: system,
        attach,
        launcher: () => new InProcessLauncher(attach),
        publish: (name, con, parent, sys) => publish(name, con, { parent, system: sys }),
        unpublish: (name) => rmSync(join(stateDir, `${name}.json`), { force: true }),
        say,
        log,
      });
  const con = await init.makeConsole(subhurds ? [{ name: BOOT_NAMES.subhurds, port: subhurds.port, disposition: MsgType.MSG_TYPE_MAKE_SEND }] : []);
  publish(sessionName, con, hurd ? { parent: env.HURD_PARENT || system } : {});
  health!.set("SERVING");
  health!.set("SERVING", "hurdmesh.init");
  say(`ready: session ${join(stateDir, `${sessionName}.json`)}`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    health!.set("NOT_SERVING");
    say("SIGTERM: shutting the hurd down (startup_reboot)");
    launcher.stop();
    await subhurds?.removeAll();
    const code = await init.reboot();
    rmSync(join(stateDir, `${sessionName}.json`), { force: true });
    await task!.taskTerminate(0).catch(() => {});
    await exit(code);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  // Ended from outside (the parent hurd went, or the kernel restarted): nothing left to run.
  const unwatch = watchTask(task, () => {
    launcher.stop();
    if (stopping) return;
    say("startup's task ended from outside; exiting for the next boot");
    rmSync(join(stateDir, `${sessionName}.json`), { force: true });
    void exit(1);
  });
  void init.halted.then(async (code) => {
    unwatch();
    launcher.stop();
    if (stopping) return;
    say(code === 0 ? "the hurd halted" : `the hurd crashed (status ${code}); exiting so the next boot starts clean`, code === 0 ? "info" : "error");
    rmSync(join(stateDir, `${sessionName}.json`), { force: true });
    await task!.taskTerminate(0).catch(() => {});
    await exit(code === 0 ? 0 : 1);
  });
}

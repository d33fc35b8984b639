// The startup server (init) as its own OS process (`hurd up --nats`):
// attaches as the boot task the kernel made for it (its id, token, host
// port and NATS user in the boot file), boots the hurd with each server its
// own OS process (each with the NATS user the kernel mints for its task),
// writes the session file for the `hurd` command (the edge and the console:
// never the bus), and shuts the hurd down on SIGINT/SIGTERM, or when the
// `hurd up` that started it is gone.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger, Errno, HurdError, MsgType } from "@hurdmesh/mach";
import { notifyReady, READY_FD_ENV } from "@hurdmesh/mach/internal";
import { attachOverNats } from "@hurdmesh/mach/nats";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { BOOT_NAMES, Init, serveSubhurds } from "@hurdmesh/init";
import { ProcessLauncher } from "./launchers.js";

// The readiness descriptor is this process's alone: taken out of the
// environment before init starts its servers and pid 1's programs, which
// would otherwise inherit the variable without the descriptor.
const readyEnv = { [READY_FD_ENV]: process.env[READY_FD_ENV] };
delete process.env[READY_FD_ENV];
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    nats: { type: "string", default: process.env.NATS_URL },
    "boot-file": { type: "string" },
    session: { type: "string" },
    edge: { type: "string", default: "" },
    // The CA (a file) of the edge's certificate when it speaks TLS: into the session files and the programs' environment.
    "edge-ca": { type: "string" },
  },
});
const tel = telemetryFromEnv("hurd-init");
if (tel) {
  setGlobalTelemetry(tel);
  installTracingHooks(tel);
}
await startMetrics("hurd-init");
const boot = JSON.parse(readFileSync(values["boot-file"]!, "utf8")) as {
  system: string;
  tasks: Record<string, { taskId: number; token: string; hostPriv: number; nats?: { jwt: string; seed: string } }>;
  /** With NATS authorization on: the users servers write their state through with (auth's). */
  stores?: Record<string, { jwt: string; seed: string }>;
};
const me = boot.tasks.init;
const log = createLogger("init", { hurd: boot.system });
if (!me || !values.nats) {
  log.fatal("needs --nats and a boot file with an init task");
  process.exit(2);
}
const url = values.nats;
const edgeCa = values["edge-ca"] ? readFileSync(values["edge-ca"], "utf8") : undefined;
// The process that started this one gone while it still attaches (NATS
// away: attaching retries until its deadline): nothing left to attach for.
const launcherGone = () => process.exit(1);
process.on("disconnect", launcherGone);
const task = await attachOverNats(url, { name: "hurd-init", system: boot.system, taskId: me.taskId, token: me.token, credentials: me.nats, window: 1024, timeoutMs: 30_000 });
// Each task init starts gets its own NATS user from the kernel, asked for as init (it holds the task's token).
const credentials = (taskId: number, token: string) => task.natsCredentials(taskId, token);
const launcher = new ProcessLauncher({ NATS_URL: url, HURD_SYSTEM: boot.system, command: positionals.length ? positionals : undefined, credentials, stores: boot.stores, edge: values.edge || undefined, edgeCa });
const init = new Init({ task, hostPriv: me.hostPriv, launcher, log: log.sink });
await init.boot();
// Subhurds: their startup runs here, their auth, proc and pid 1 as OS processes of their own.
const launchers: ProcessLauncher[] = [];
const sessionDir = values.session ? dirname(values.session) : null;
const subhurds = await serveSubhurds(task, {
  root: boot.system,
  hostPriv: me.hostPriv,
  attach: async (taskId, token) =>
    attachOverNats(url, { name: "hurd-subhurd", system: boot.system, taskId, token, credentials: await credentials(taskId, token), window: 1024, timeoutMs: 30_000 }),
  launcher: () => {
    // No spares: a subhurd's servers keep no store of their own to restart from.
    const l = new ProcessLauncher({ NATS_URL: url, HURD_SYSTEM: boot.system, credentials, edge: values.edge || undefined, edgeCa, spares: false });
    launchers.push(l);
    return l;
  },
  publish: (name, c, parent, system) => {
    if (sessionDir) writeFileSync(join(sessionDir, `${name}.json`), JSON.stringify({ system, edge: values.edge, edgeCa, console: c, parent }, null, 2), { mode: 0o600 });
  },
  unpublish: (name) => {
    if (sessionDir) rmSync(join(sessionDir, `${name}.json`), { force: true });
  },
  say: log.sink,
  log,
});
const console_ = await init.makeConsole([{ name: BOOT_NAMES.subhurds, port: subhurds.port, disposition: MsgType.MSG_TYPE_MAKE_SEND }]);
if (values.session) writeFileSync(values.session, JSON.stringify({ system: boot.system, edge: values.edge, edgeCa, console: console_ }, null, 2), { mode: 0o600 });
log.info("ready", values.session ? { session: values.session } : {});
// What `hurd up --nats` waits for: the session is written and the hurd is booted.
await notifyReady({ session: values.session ?? "" }, readyEnv);
let stopping = false;
const killAll = () => {
  for (const l of [launcher, ...launchers]) l.killAll("SIGTERM");
};
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await subhurds.removeAll();
  const code = await init.reboot();
  killAll();
  process.exit(code);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
// Started by `hurd up` with an IPC channel: when hurd up is gone, however it went, the hurd goes too.
process.off("disconnect", launcherGone);
process.channel?.unref();
process.on("disconnect", () => {
  log.error("hurd up is gone (its IPC channel closed): ending this hurd");
  killAll();
  process.exit(1);
});
void init.halted.then((code) => {
  stopping = true;
  killAll();
  setTimeout(() => process.exit(code), 200);
});
// Its task ended from outside, or its bus (NATS) down longer than the
// lease: the kernel has ended (or will end) the hurd's tasks, so its
// servers go too rather than linger.
task.onTerminated = () => {
  // A shutdown ends init's own task too: `halted` then says how it ended.
  if (stopping || init.halting) return;
  stopping = true;
  log.error("init's task ended (its bus lost past the lease, or ended from outside)");
  killAll();
  process.exit(1);
};
// A kernel that is gone (killed; or a new one that knows no old task) ends
// this hurd: its servers go with it rather than linger. Gone means unheard
// for longer than the task's lease: a kernel with a standby (hurd up
// --standby) is away for a moment at a takeover, its tasks intact.
let unanswered = 0;
setInterval(() => {
  task.taskInfo(0).then(
    () => (unanswered = 0),
    (e) => {
      const code = HurdError.from(e).code;
      if (code === Errno.MACH_SEND_INVALID_DEST) unanswered ||= Date.now();
      // A shutdown ends init's own task too: not a kernel gone (`halted` says how it ended).
      if (!stopping && !init.halting && (code === Errno.KERN_INVALID_TASK || (code === Errno.MACH_SEND_INVALID_DEST && Date.now() - unanswered > task.leaseMs))) {
        // Said before going: an init that ends without a word leaves its operator a hurd gone and nothing to read.
        log.error(`the kernel is gone, or knows init's task no more (task_info: ${(e as Error).message}): ending this hurd`);
        killAll();
        process.exit(1);
      }
    },
  );
}, 2000).unref();

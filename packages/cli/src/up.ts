// hurd up: boots a hurd. Embedded (default): every server in this process on
// the in-process bus, the kernel's gRPC edge on a loopback port. With --nats:
// the kernel, init, proc, auth and pid 1 each run as their own OS process.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { InProcessLauncher } from "@hurdmesh/boot";
import { BOOT_NAMES, Init, serveSubhurds } from "@hurdmesh/init";
import { Edge, Kernel, TraceBus, TrapServer } from "@hurdmesh/kernel";
import { createLogger, LocalHub, MsgType, Task, type LogSink } from "@hurdmesh/mach";
import { READY_FD_ENV } from "@hurdmesh/mach/internal";
import { globalTelemetry, installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { nodeImports, startMetrics, telemetryFromEnv, type SdkMetrics } from "@hurdmesh/telemetry-sdk";
import { checkListen } from "./args.js";
import { CliError } from "./errors.js";
import { sessionPath } from "./session.js";

export interface UpOptions {
  nats?: string;
  grpc: string;
  hurd: string;
  command?: string[];
  quiet?: boolean;
  /** After an essential server's death, boot the hurd again (embedded mode). */
  rebootOnCrash?: boolean;
  /** Also serve `hurd web` (true: on 127.0.0.1:7410). */
  web?: string | boolean;
}

export async function up(o: UpOptions): Promise<number> {
  const session = sessionPath(o.hurd);
  if (typeof o.web === "string") checkListen(o.web);
  // -q: warnings and errors only, here and in the servers this starts (they inherit the environment).
  if (o.quiet && !process.env.HURD_LOG_LEVEL) process.env.HURD_LOG_LEVEL = "warn";
  const log = createLogger("hurd-up", { hurd: o.hurd });
  const say = log.sink;
  if (o.nats) return upNats(o, session, performance.now());
  let stopping = false;
  for (;;) {
    const r = await upEmbedded(o, session, say, () => stopping, () => (stopping = true));
    // A crash reboots the hurd only when asked (--reboot-on-crash); a shutdown never does.
    if (r.code === 0 || !o.rebootOnCrash || stopping) return r.code;
    say(`hurd ${o.hurd}: rebooting after the crash`);
  }
}

let metrics: Promise<SdkMetrics | null> | null = null;

/** One life of an embedded hurd: a fresh kernel, init's boot, until it halts. */
async function upEmbedded(o: UpOptions, session: string, say: LogSink, stopping: () => boolean, stop: () => void): Promise<{ code: number }> {
  const t0 = performance.now();
  // Spans when the OTEL_* environment asks for them; embedded, the servers
  // run in this process, so their handler spans too.
  const telemetry = telemetryFromEnv("hurd-kernel", process.env, { bus: "local", hurd: o.hurd, serverAddress: o.grpc });
  if (telemetry && !globalTelemetry()) {
    setGlobalTelemetry(telemetry);
    installTracingHooks(telemetry);
  }
  // Metrics only when asked (HURD_METRICS_ADDR, OTEL_METRICS_EXPORTER): one set for the process, across reboots.
  metrics ??= startMetrics("hurd", process.env, { hurd: o.hurd });
  const m = await metrics;
  const kernel = new Kernel({ system: o.hurd }, { telemetry, metrics: m });
  const hub = new LocalHub();
  const kbus = hub.connect();
  const traps = new TrapServer(kernel, kbus);
  traps.start();
  // In-process servers may watch the trace stream on the bus as they would on NATS.
  const traceBus = new TraceBus(kernel, kbus);
  traceBus.start();
  const edge = new Edge(kernel);
  const port = await edge.listen(o.grpc);
  const host = o.grpc.replace(/:\d+$/, "");
  const boot = kernel.bootTask({ name: "init", hostPriv: true });
  const attach = (taskId: number, token: string) => Task.attach({ bus: hub.connect(), system: o.hurd, taskId, token, window: 1024, timeoutMs: 30_000 });
  const initTask = await attach(boot.task.id, boot.token);
  const initLog = createLogger("init", { hurd: o.hurd });
  const init = new Init({ task: initTask, hostPriv: boot.hostPriv, launcher: new InProcessLauncher(attach, { command: o.command }) });
  await init.boot();
  const subhurds = await serveSubhurds(initTask, {
    root: o.hurd,
    hostPriv: boot.hostPriv,
    attach,
    launcher: () => new InProcessLauncher(attach),
    say: initLog.sink,
    log: initLog,
    publish: (name, c, parent, system) => writeFileSync(sessionPath(name), JSON.stringify({ system, edge: `${host}:${port}`, console: c, parent }, null, 2), { mode: 0o600 }),
    unpublish: (name) => rmSync(sessionPath(name), { force: true }),
  });
  const console_ = await init.makeConsole([{ name: BOOT_NAMES.subhurds, port: subhurds.port, disposition: MsgType.MSG_TYPE_MAKE_SEND }]);
  writeFileSync(session, JSON.stringify({ system: o.hurd, edge: `${host}:${port}`, console: console_ }, null, 2), { mode: 0o600 });
  const onSignal = () => {
    stop();
    // Subhurds first, innermost first, each cleanly; then this hurd.
    void subhurds.removeAll().then(() => init.reboot());
  };
  // Before saying it is up: a Ctrl-C from then on is a clean shutdown.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  say(`hurd ${o.hurd} is up in ${Math.round(performance.now() - t0)} ms: gRPC edge on ${host}:${port} (embedded, in-process bus)`);
  // hurd web beside it, attached through the edge as the command would be.
  const web = o.web ? await (await import("./web.js")).startWebFor(o.hurd, { listen: typeof o.web === "string" ? o.web : undefined, quiet: o.quiet }) : null;
  if (web) say(`hurd web: ${web.server.url}`);
  if (m?.endpoint) say(`metrics on ${m.endpoint}`);
  say(`try: npx hurd ps    (Ctrl-C shuts it down)`);
  const code = await init.halted;
  await web?.close().catch(() => {});
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  rmSync(session, { force: true });
  await edge.close();
  traceBus.stop();
  traps.stop();
  kernel.close();
  void stopping;
  say(`hurd ${o.hurd} halted${code ? ` (crash, status ${code})` : ""}`, code ? "error" : "info");
  return { code };
}

async function upNats(o: UpOptions, session: string, t0: number): Promise<number> {
  const log = createLogger("hurd-up", { hurd: o.hurd });
  const dir = mkdtempSync(join(tmpdir(), "hurd-up-"));
  const bootFile = join(dir, "boot.json");
  // Sources or dist/, as this process runs (the package's export conditions).
  const kmain = fileURLToPath(import.meta.resolve("@hurdmesh/kernel/main"));
  const imain = fileURLToPath(import.meta.resolve("@hurdmesh/boot/startup"));
  const kernel = spawn(process.execPath, [...nodeImports(), kmain, "--nats", o.nats!, "--grpc", o.grpc, "--system", o.hurd, "--boot", "init", "--boot-file", bootFile], readyStdio());
  // Ready, or ended: a kernel that cannot start (its port taken, NATS not
  // there) exits and says why on stderr. The time limit is only against a
  // hang, far past a start on a loaded machine (from sources, tens of seconds).
  const k = await readiness(kernel, START_LIMIT_MS);
  if (!k?.edge) {
    const why = await ended(kernel);
    rmSync(dir, { recursive: true, force: true });
    throw new CliError(`the kernel did not start (${why})`);
  }
  const edge = String(k.edge);
  const init = spawn(process.execPath, [...nodeImports(), imain, "--nats", o.nats!, "--boot-file", bootFile, "--session", session, "--edge", edge, ...(o.command ?? [])], readyStdio());
  const exited = new Promise<number>((r) => init.on("exit", (c) => r(c ?? 1)));
  if (!(await readiness(init, START_LIMIT_MS))) {
    const why = await ended(init);
    kernel.kill("SIGTERM");
    rmSync(session, { force: true });
    rmSync(dir, { recursive: true, force: true });
    throw new CliError(`init did not boot the hurd (${why})`);
  }
  log.info(`hurd ${o.hurd} is up in ${Math.round(performance.now() - t0)} ms: gRPC edge on ${edge} (each server its own process on ${o.nats})`);
  process.on("SIGINT", () => init.kill("SIGINT"));
  process.on("SIGTERM", () => init.kill("SIGTERM"));
  const code = await exited;
  kernel.kill("SIGTERM");
  rmSync(session, { force: true });
  rmSync(dir, { recursive: true, force: true });
  log[code ? "error" : "info"](`hurd ${o.hurd} halted${code ? ` (status ${code})` : ""}`);
  return code;
}

/** How long the kernel and init may take to say they are ready before hurd up gives up on them. */
const START_LIMIT_MS = 120_000;

/** Why a child never said it was ready: its exit, or the time limit (then it is killed). */
async function ended(child: ChildProcess): Promise<string> {
  // The pipe may close just before the exit is reported.
  const exit = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));
  const exitedSoon = await Promise.race([exit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
  if (exitedSoon) return child.signalCode ?? `status ${child.exitCode}`;
  child.kill("SIGKILL");
  await exit;
  return `not ready within ${START_LIMIT_MS / 1000} s`;
}

/** Their logs are the terminal's; readiness comes on fd 3 (@hurdmesh/mach/internal notifyReady). */
function readyStdio() {
  return { stdio: ["ignore", "inherit", "inherit", "pipe"] as ("ignore" | "inherit" | "pipe")[], env: { ...process.env, [READY_FD_ENV]: "3" } };
}

/** The child's readiness line, or null once it exits, closes the pipe unready, or `timeoutMs` (0: none) passes. */
function readiness(child: ChildProcess, timeoutMs: number): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    let buf = "";
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    const timer = timeoutMs ? setTimeout(() => resolve(null), timeoutMs) : null;
    const done = (v: Record<string, unknown> | null) => {
      if (timer) clearTimeout(timer);
      resolve(v);
    };
    pipe.setEncoding("utf8");
    pipe.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      try {
        done(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch {
        done(null);
      }
    });
    pipe.on("end", () => done(null));
    child.on("exit", () => done(null));
  });
}

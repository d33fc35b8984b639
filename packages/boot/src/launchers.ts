// Where boot servers run, as init's Launcher sees it. In one process (the
// embedded hurd) they attach to the kernel over the in-process bus; with
// NATS each is its own OS process (daemon.ts) started with its task id and
// token, and its own NATS user, in the environment.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Launcher, LaunchPorts } from "@hurdmesh/init";
import { createLogger, type Task } from "@hurdmesh/mach";
import type { ProcStore } from "@hurdmesh/proc";
import { credsFile } from "@hurdmesh/mach/nats-auth";
import { nodeImports } from "@hurdmesh/telemetry-sdk";
import { startBootServer } from "./servers.js";

/** Runs auth, proc and runsystem in this process. */
export class InProcessLauncher implements Launcher {
  readonly started: Record<string, unknown> = {};
  constructor(
    private readonly attach: (taskId: number, token: string) => Promise<Task>,
    /** procStore: proc writes through to it (the bench's write-through rows); none by default. */
    private readonly o: { command?: string[]; procStore?: ProcStore } = {},
  ) {}

  async launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void> {
    const task = await this.attach(taskId, token);
    this.started[name] = await startBootServer(name, task, { hostPriv: ports.hostPriv, command: this.o.command, attach: this.attach, procStore: this.o.procStore });
  }
}

// Sources or dist/, as this process runs (the package's export conditions).
const daemon = fileURLToPath(import.meta.resolve("@hurdmesh/boot/daemon"));

/** A task's NATS user, by the task's id and token (Task.natsCredentials through a task of the launcher's); null: none minted. */
export type NatsCredentialsOf = (taskId: number, token: string) => Promise<{ jwt: string; seed: string } | null>;

export interface ProcessLauncherOptions {
  NATS_URL: string;
  HURD_SYSTEM: string;
  command?: string[];
  /** With NATS authorization on: each server's own NATS user, handed to it in HURD_NATS_CREDS. */
  credentials?: NatsCredentialsOf;
  /** With NATS authorization on: the user each server writes its state through with (HURD_NATS_STORE_CREDS), by server. */
  stores?: Record<string, { jwt: string; seed: string }>;
  /** The kernel's gRPC edge, for the programs pid 1 runs (they never get the bus). */
  edge?: string;
  /** The CA (PEM) of the edge's certificate, when it speaks TLS (HURD_EDGE_CA). */
  edgeCa?: string;
  /**
   * A spare process for each server that restarts in place: started ahead,
   * its modules loaded, it waits (daemon.ts, HURD_SPARE) and takes over the
   * moment the server's process dies, so that a restart does not wait for
   * a new Node process to start (most of a restart's time on a loaded
   * machine). Costs one waiting process per such server. Default: on,
   * unless HURD_SPARE_SERVERS=0.
   */
  spares?: boolean;
}

/**
 * Servers that restart in place: their state is in a store a new process
 * reads back (auth: its handles; proc: its table; both in JetStream).
 * runsystem is not restarted: pid 1's program is a process of the hurd,
 * not a server of it.
 */
const RESTARTS_IN_PLACE = new Set(["auth", "proc"]);
/** A server's exit code for "my store failed": started again in place, as a killed one (daemon.ts). */
const EX_STORE_FAILED = 75;
/** At most this many restarts of one server within RESTART_WINDOW_MS: a server that dies as it starts is not respawned forever. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/** A spare is started this long after its server's process: not beside the boot, which it would slow on a small machine. */
const SPARE_AFTER_MS = 3_000;
/** How long a server's first process may take to say it is set up (daemon.ts): past its own attach deadline, on a loaded machine. */
const UP_WITHIN_MS = 120_000;

/**
 * Resolves when `child` says it is set up ({ up: true } on its IPC
 * channel); rejects if it exits first, or says nothing within `ms`.
 */
function setUp(child: ChildProcess, name: string, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (e?: Error) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (e) reject(e);
      else resolve();
    };
    const onMessage = (m: unknown) => {
      if ((m as { up?: boolean } | null)?.up === true) done();
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null) => done(new Error(`${name} (pid ${child.pid}) exited with ${sig ?? code} before it was set up`));
    const timer = setTimeout(() => done(new Error(`${name} (pid ${child.pid}) was not set up within ${ms / 1000} s`)), ms);
    timer.unref();
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}

/**
 * Runs each boot server as its own OS process on a NATS bus, tied to this
 * process by an IPC channel (when this one goes, however it goes, the
 * channel closes and the server exits), and supervises
 * them as MINIX 3's reincarnation server does its drivers: a server that
 * restarts in place and was killed (a signal other than the SIGTERM/SIGINT
 * of a shutdown: SIGKILL, the OOM killer) is started again with the same
 * task id and token, and re-attaches to its task within the kernel's grace.
 */
export class ProcessLauncher implements Launcher {
  /** The servers' processes. */
  readonly children: ChildProcess[] = [];
  /** Their spares, waiting (ProcessLauncherOptions.spares). */
  readonly spares: ChildProcess[] = [];
  private closing = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  constructor(private readonly env: ProcessLauncherOptions) {}

  /** Ends every process this launcher started, spares included, and starts no more (a shutdown). */
  killAll(signal: NodeJS.Signals = "SIGTERM"): void {
    this.closing = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of [...this.children, ...this.spares]) c.kill(signal);
  }

  async launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NATS_URL: this.env.NATS_URL,
      HURD_SYSTEM: this.env.HURD_SYSTEM,
      HURD_TASK_ID: String(taskId),
      HURD_TOKEN: token,
      HURD_HOST_PRIV: String(ports.hostPriv),
      HURD_COMMAND: this.env.command ? JSON.stringify(this.env.command) : "",
    };
    // The launcher's own secrets are not the server's.
    delete env.HURD_NATS_KEYS;
    delete env.HURD_NATS_CREDS;
    delete env.HURD_BOOT_SECRET;
    delete env.HURD_NATS_STORE_CREDS;
    const store = this.env.stores?.[name];
    if (store) env.HURD_NATS_STORE_CREDS = credsFile(store);
    if (this.env.edge) env.HURD_EDGE = this.env.edge;
    if (this.env.edgeCa) env.HURD_EDGE_CA = this.env.edgeCa;
    const restarts: number[] = [];
    const log = createLogger("init", { hurd: this.env.HURD_SYSTEM });
    // Each start gets a login minted then: the JWT is short-lived (the
    // kernel's NATS user TTL, 5 min by default) and a running server renews
    // its own, so the one the first process got has long expired when a
    // server is restarted later; nats-server would refuse the new process.
    const login = async (): Promise<NodeJS.ProcessEnv> => {
      const creds = this.env.credentials ? await this.env.credentials(taskId, token) : null;
      return creds ? { HURD_NATS_CREDS: credsFile(creds) } : {};
    };
    const spawnDaemon = (more: NodeJS.ProcessEnv): ChildProcess => {
      const child = spawn(process.execPath, [...nodeImports(), daemon, name], { stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...env, ...more } });
      // The channel ties the server to this process; it does not keep this one alive.
      child.channel?.unref();
      return child;
    };
    const withSpare = RESTARTS_IN_PLACE.has(name) && (this.env.spares ?? process.env.HURD_SPARE_SERVERS !== "0");
    let spare: ChildProcess | null = null;
    let spareDue = false;
    const prepareSpare = () => {
      if (!withSpare || spare !== null || spareDue || this.closing) return;
      spareDue = true;
      const t = setTimeout(() => {
        this.timers.delete(t);
        spareDue = false;
        if (this.closing) return;
        const s = spawnDaemon({ HURD_SPARE: "1", HURD_RESTART: "1" });
        spare = s;
        this.spares.push(s);
        s.on("exit", () => {
          const i = this.spares.indexOf(s);
          if (i >= 0) this.spares.splice(i, 1);
          if (spare === s) spare = null;
        });
      }, SPARE_AFTER_MS);
      t.unref();
      this.timers.add(t);
    };
    /** The waiting spare, taken out of the spares: it becomes the server's process, with `creds`, the login minted for this start. */
    const takeSpare = (creds: string): ChildProcess | null => {
      const s = spare;
      if (s === null) return null;
      spare = null;
      const i = this.spares.indexOf(s);
      if (i >= 0) this.spares.splice(i, 1);
      if (!s.connected || s.exitCode !== null || s.signalCode !== null) return null;
      // A send that fails (the spare died meanwhile) shows as that process's exit, which restarts it as any death does.
      s.send({ creds }, (e) => e && log.warn(`${name}'s spare (pid ${s.pid}) did not take the order: ${e.message}`));
      log.warn(`${name}'s spare process (pid ${s.pid}) takes over task ${taskId}`);
      return s;
    };
    const start = async (restart: boolean): Promise<ChildProcess> => {
      // One login per start, minted before a process is chosen: a mint that fails leaves the spare waiting.
      const creds = await login();
      const child = (restart ? takeSpare(creds.HURD_NATS_CREDS ?? "") : null) ?? spawnDaemon({ ...creds, HURD_RESTART: restart ? "1" : "" });
      this.children.push(child);
      child.on("exit", (code, sig) => {
        if (code !== 0) log.warn(`${name} (pid ${child.pid}) exited with ${sig ?? code}`);
        const i = this.children.indexOf(child);
        if (i >= 0) this.children.splice(i, 1);
        const died = sig ? sig !== "SIGTERM" && sig !== "SIGINT" : code === EX_STORE_FAILED;
        if (!died || !RESTARTS_IN_PLACE.has(name) || this.closing) return;
        const now = Date.now();
        while (restarts.length && now - restarts[0]! > RESTART_WINDOW_MS) restarts.shift();
        if (restarts.length >= MAX_RESTARTS) {
          log.error(`${name} died ${MAX_RESTARTS + 1} times within ${RESTART_WINDOW_MS / 1000} s: not restarted`);
          return;
        }
        restarts.push(now);
        log.warn(`restarting ${name} in place on task ${taskId}`);
        start(true).catch((e: Error) => log.error(`cannot restart ${name} in place: no login for its task (${e.message})`));
      });
      prepareSpare();
      return child;
    };
    // Launched means set up, as in one process: init says the hurd is up
    // once pid 1 is (its args set, its command started), not while its
    // Node process still loads.
    const first = await start(false);
    await setUp(first, name, UP_WITHIN_MS);
  }
}

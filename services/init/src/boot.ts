// The boot order (startup.c, adapted): init (pid 2) creates the auth and
// proc tasks with its startup port as their bootstrap port, launches them,
// holds the replies to startup_procinit and startup_authinit until both
// have arrived, wires proc and auth together, collects their
// startup_essential_task, then starts the runsystem program as pid 1.
import {
  client,
  createLogger,
  Errno,
  HurdError,
  MsgType,
  PortRight,
  Rights,
  TaskSpecialPort,
  optionalRight,
  portAt,
  serve,
  type LogSink,
  type Task,
} from "@hurdmesh/mach";
import { globalTelemetry, StepTrace } from "@hurdmesh/telemetry";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { defaultInitConfig, type InitConfig } from "./config.js";
import { Essentials } from "./essential.js";
import { Shutdown } from "./shutdown.js";

/** Where a boot server runs: in this process, or as its own OS process. */
export interface Launcher {
  /** Starts server `name` ("auth", "proc" or "runsystem") as the task `taskId`. */
  launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void>;
}

/** Names the launched task finds in its own space (the Hurd's boot script passes host ports the same way). */
export interface LaunchPorts {
  hostPriv: number;
  /** For runsystem: its process port (pid 1). */
  proc?: number;
  /** For runsystem: a root auth handle. */
  auth?: number;
}

/** Well-known names init inserts into the spaces of the tasks it launches. */
export const BOOT_NAMES = { hostPriv: 0x100, proc: 0x101, auth: 0x102, startup: 0x103, subhurds: 0x104 } as const;

/** A console: a task outside every process, for the `hurd` command to act from. */
export interface Console {
  taskId: number;
  token: string;
}

export interface InitOptions {
  task: Task;
  /** The host_priv send right in init's space. */
  hostPriv: number;
  launcher: Launcher;
  config?: Partial<InitConfig>;
  /** Where init's lines go (default: the structured log, component "init", the kernel's system as the hurd). */
  log?: LogSink;
}

export interface Booted {
  /** init's own process port (pid 2). */
  proc: number;
  /** A send right to auth's root handle. */
  auth: number;
  procTask: number;
  authTask: number;
  runsystemTask: number;
}

/**
 * The startup server. `boot()` resolves once pid 1 runs; `halted` resolves
 * when the hurd has shut down (exit status 0) or crashed (non-zero).
 */
export class Init {
  readonly config: InitConfig;
  readonly startupPort: Promise<number>;
  readonly essentials: Essentials;
  readonly shutdown: Shutdown;
  booted: Booted | null = null;
  private readonly log: LogSink;
  private procinit: { port: number; release: (rep: object) => void } | null = null;
  private authinit: { auth: number; release: (rep: object) => void } | null = null;
  private bothIn!: () => void;
  private readonly both = new Promise<void>((r) => (this.bothIn = r));
  private readonly procinitReply = new Rights();

  constructor(readonly o: InitOptions) {
    this.config = { ...defaultInitConfig, ...o.config };
    this.log = o.log ?? createLogger("init", { hurd: o.task.system }).sink;
    this.essentials = new Essentials(o.task, o.hostPriv, this.log);
    this.shutdown = new Shutdown(o.task, o.hostPriv, this.config, this.log);
    this.essentials.onCrash = (why) => void this.shutdown.crash(why);
    this.startupPort = o.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
  }

  get halted(): Promise<number> {
    return this.shutdown.halted;
  }

  /** True from the moment a shutdown or crash starts: init's own task ending then is part of it. */
  get halting(): boolean {
    return this.shutdown.halting;
  }

  /**
   * Boots the hurd: proc and auth, their wiring, their essential check-in,
   * then pid 1. With telemetry on it is one trace: a root span "hurd boot"
   * with a span per phase, every message and kernel call of the boot under them.
   */
  async boot(): Promise<Booted> {
    const steps = new StepTrace(globalTelemetry(), "hurd boot", { "hurd.system": this.o.task.system });
    try {
      const b = await this.bootSteps(steps);
      steps.end();
      return b;
    } catch (e) {
      steps.end(e);
      throw e;
    }
  }

  private async bootSteps(steps: StepTrace): Promise<Booted> {
    const { task, hostPriv, launcher } = this.o;
    steps.phase("start core servers (proc, auth)");
    const startupPort = await this.startupPort;
    await this.essentials.start();
    await this.shutdown.start();
    serve(task, StartupDefinition, {
      // startup_procinit (29003): proc's reply waits until auth has called too.
      procinit: (req, ctx) => {
        if (this.procinit) throw new HurdError(Errno.EPERM, "proc has already called startup_procinit");
        const port = ctx.right(req.proc, MsgType.MSG_TYPE_MOVE_SEND).name;
        return new Promise((release) => {
          this.procinit = { port, release };
          this.check();
        }).then((rep) => {
          for (const p of this.procinitReply.ports) ctx.reply.add(p.name, p.disposition);
          return rep as { startupTask: number; auth: number; hostPriv: number; deviceMaster: number };
        });
      },
      // startup_authinit (29004): auth's reply carries its process port, so it waits for proc.
      authinit: (req, ctx) => {
        if (this.authinit) throw new HurdError(Errno.EPERM, "auth has already called startup_authinit");
        const auth = ctx.right(req.auth, MsgType.MSG_TYPE_MOVE_SEND).name;
        return new Promise((release) => {
          this.authinit = { auth, release };
          this.check();
        }).then((rep) => {
          const r = rep as { proc: number };
          return { proc: ctx.reply.moveSend(r.proc) };
        });
      },
      essentialTask: (req, ctx) => this.essentials.essentialTask(req, ctx),
      requestNotification: (req, ctx) => this.shutdown.requestNotification(req, ctx),
      reboot: (req, ctx) => this.shutdown.reboot(req, ctx),
    }).add(startupPort, {});

    // The core servers' tasks: init holds their task ports, as startup does.
    // They die with init's task (a hurd without its startup is gone anyway),
    // which also keeps them until their server attaches, however long a
    // container takes to come up.
    const authT = await task.taskCreate("auth", { dieWithParent: true });
    const procT = await task.taskCreate("proc", { dieWithParent: true });
    for (const t of [authT, procT]) {
      await task.setSpecialPort(t.task, TaskSpecialPort.TASK_BOOTSTRAP_PORT, startupPort);
      await task.insertRight(t.task, BOOT_NAMES.hostPriv, hostPriv, MsgType.MSG_TYPE_COPY_SEND);
    }
    this.essentials.expect("auth", "proc");
    const started = Promise.all([
      launcher.launch("auth", authT.taskId, authT.token, { hostPriv: BOOT_NAMES.hostPriv }),
      launcher.launch("proc", procT.taskId, procT.token, { hostPriv: BOOT_NAMES.hostPriv }),
    ]);
    started.catch((e) => this.log(`a core server failed to start: ${(e as Error).message}`, "error"));
    await this.waitFor(this.both, () => `waiting for ${!this.procinit ? "proc (startup_procinit)" : ""}${!this.procinit && !this.authinit ? " and " : ""}${!this.authinit ? "auth (startup_authinit)" : ""}`);

    // launch_core_servers: answer proc first, then wire everything through proc.
    steps.phase("wire proc and auth");
    const procPort = this.procinit!.port;
    const authHandle = this.authinit!.auth;
    const proc = client(task, ProcessDefinition, procPort);
    const r = this.procinitReply;
    const rep = { startupTask: r.copySend(task.self), auth: r.copySend(authHandle), hostPriv: r.copySend(hostPriv), deviceMaster: 0 };
    this.procinit!.release(rep);
    await proc.markExec({});
    for (const t of [authT.task, procT.task]) {
      const c = new Rights();
      await proc.child({ child: c.copySend(t) }, { rights: c });
    }
    const authProc = await this.processPort(proc, authT.task);
    await client(task, ProcessDefinition, authProc).markImportant({});
    this.authinit!.release({ proc: authProc });
    await proc.setprocargs({ argv: ["/hurd/startup"], envp: [] });
    const procProc = await this.processPort(proc, procT.task);
    await client(task, ProcessDefinition, procProc).markImportant({});
    await task.deallocate(procProc).catch(() => {});
    const cred = new Rights();
    await proc.registerVersion({ credential: cred.copySend(hostPriv), name: "init", release: "0.1", version: "hurdmesh" }, { rights: cred });
    const msgport = await this.serveMsg();
    const mp = new Rights();
    await proc.setmsgport({ newmsgport: mp.makeSend(msgport) }, { rights: mp });

    steps.phase("essential tasks check in");
    await this.waitFor(this.essentials.allIn, () => `waiting for startup_essential_task from ${this.essentials.missing().join(", ")}`);
    this.log("core servers up: auth, proc");

    // pid 1: a task of init's, bound with proc_set_init_task.
    steps.phase("start pid 1 (runsystem)");
    const rs = await task.taskCreate("runsystem", { dieWithParent: true });
    const t = new Rights();
    await proc.setInitTask({ task: t.copySend(rs.task) }, { rights: t });
    const pid1 = await this.processPort(proc, rs.task);
    await task.insertRight(rs.task, BOOT_NAMES.proc, pid1, MsgType.MSG_TYPE_MOVE_SEND);
    await task.insertRight(rs.task, BOOT_NAMES.auth, authHandle, MsgType.MSG_TYPE_COPY_SEND);
    await task.insertRight(rs.task, BOOT_NAMES.hostPriv, hostPriv, MsgType.MSG_TYPE_COPY_SEND);
    await launcher.launch("runsystem", rs.taskId, rs.token, { hostPriv: BOOT_NAMES.hostPriv, proc: BOOT_NAMES.proc, auth: BOOT_NAMES.auth });
    await this.essentials.watch(rs.task, "runsystem (pid 1)");
    this.booted = { proc: procPort, auth: authHandle, procTask: procT.task, authTask: authT.task, runsystemTask: rs.task };
    this.shutdown.procPort = procPort;
    this.log("pid 1 started: the hurd is up");
    return this.booted;
  }

  /**
   * Makes the console task the `hurd` command acts from. It holds pid 1's
   * process port (commands become children of pid 1, which reaps them), a
   * root auth handle, and the startup port (for shutdown). Its token is as
   * powerful as root: `hurd up` writes it to a file only its user can read.
   */
  async makeConsole(extra: Array<{ name: number; port: number; disposition: MsgType }> = []): Promise<Console> {
    const b = this.booted;
    if (!b) throw new HurdError(Errno.EAGAIN, "the hurd is not up yet");
    const { task } = this.o;
    // No program runs as the console: the `hurd` command calls the kernel
    // with its token. It lives on init's lease and dies with init.
    const c = await task.taskCreate("console", { dieWithParent: true });
    const proc = client(task, ProcessDefinition, b.proc);
    const pid1 = await this.processPort(proc, b.runsystemTask);
    await task.insertRight(c.task, BOOT_NAMES.proc, pid1, MsgType.MSG_TYPE_MOVE_SEND);
    await task.insertRight(c.task, BOOT_NAMES.auth, b.auth, MsgType.MSG_TYPE_COPY_SEND);
    await task.insertRight(c.task, BOOT_NAMES.startup, await this.startupPort, MsgType.MSG_TYPE_MAKE_SEND);
    for (const x of extra) await task.insertRight(c.task, x.name, x.port, x.disposition);
    const cp = await this.processPort(proc, c.task);
    await client(task, ProcessDefinition, cp).setprocargs({ argv: ["console"], envp: [] });
    await task.deallocate(cp).catch(() => {});
    return { taskId: c.taskId, token: c.token };
  }

  /** Shuts the hurd down through startup_reboot, as `reboot` would (Ctrl-C in `hurd up`). */
  async reboot(): Promise<number> {
    const { task, hostPriv } = this.o;
    const r = new Rights();
    // init holds the startup port's receive right only: the message makes its own send right.
    await client(task, StartupDefinition, await this.startupPort)
      .reboot({ refport: r.copySend(hostPriv), code: 0 }, { rights: r, destinationDisposition: MsgType.MSG_TYPE_MAKE_SEND })
      .catch((e) => this.log(`startup_reboot failed: ${(e as Error).message}`, "error"));
    return this.halted;
  }

  private check(): void {
    if (this.procinit && this.authinit) this.bothIn();
  }

  private async processPort(proc: ReturnType<typeof client<typeof ProcessDefinition>>, task: number): Promise<number> {
    const r = new Rights();
    const rep = await proc.task2proc({ task: r.copySend(task) }, { rights: r });
    return portAt(rep, rep.proc);
  }

  /**
   * init's message port: it accepts msg_sig_post only with its own task
   * port as refport (startup.c does the same) and reaps on SIGCHLD.
   */
  private async serveMsg(): Promise<number> {
    const { task } = this.o;
    const port = await task.allocate(PortRight.PORT_RIGHT_RECEIVE);
    serve(task, MsgDefinition, {
      sigPost: (req, ctx) => {
        // A right, not a bare name (MSG_TYPE_PORT_NAME): anyone can write init's number for its task port.
        const ok = optionalRight(ctx.msg.ports, req.refport) === task.self;
        task.dropRights(ctx.msg);
        ctx.keepRights = true;
        if (!ok) throw new HurdError(Errno.EPERM, "init takes signals only from itself");
        return {};
      },
      procNewids: (_req, ctx) => {
        task.dropRights(ctx.msg);
        ctx.keepRights = true;
        return {};
      },
    }).add(port, {});
    return port;
  }

  /** Waits for `p`, saying every bootReportMs what is missing; fails after bootTimeoutMs. */
  private async waitFor(p: Promise<unknown>, what: () => string): Promise<void> {
    const start = Date.now();
    let done = false;
    void p.then(() => (done = true));
    while (!done) {
      const left = this.config.bootTimeoutMs - (Date.now() - start);
      if (left <= 0) throw new HurdError(Errno.ETIMEDOUT, `boot: ${what()} after ${this.config.bootTimeoutMs} ms`);
      await Promise.race([p, new Promise((r) => setTimeout(r, Math.min(left, this.config.bootReportMs)))]);
      if (!done) this.log(`${what()} (${Math.round((Date.now() - start) / 1000)} s)`, "warn");
    }
  }
}


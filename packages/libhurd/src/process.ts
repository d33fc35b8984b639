import { userReauthenticate } from "@hurdmesh/iohelp";
import { client, Errno, HurdError, MsgType, PortRight, Rights, isErrno, optionalRight, portAt, rightsOf, serve, type Client, type Task } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { defaultAction, SIG, W, WEXITED, NSIG } from "./signals.js";

export type ProcClient = Client<typeof ProcessDefinition>;

/**
 * A call whose effect is the same made twice (getpids, setmsgport,
 * setprocargs), asked again when the process that took it died with it in
 * hand (MIG_SERVER_DIED): proc restarts in place and its port queues
 * meanwhile, so the same call reaches the next process. A process set up
 * while proc restarts (pid 1 at boot) would otherwise die of it. Never for
 * fork's or exit's calls, which must not happen twice. Bounded: a proc that
 * is gone for good answers a dead name, which is not asked again.
 */
async function askAgainIfDied<T>(call: () => Promise<T>, tries = 3): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await call();
    } catch (e) {
      if (n >= tries || !isErrno(e, "MIG_SERVER_DIED")) throw e;
    }
  }
}

/** What a signal handler gets: the signal, its code, and who may have sent it. */
export interface SignalInfo {
  signal: number;
  sigcode: number;
}

export type SignalHandler = (info: SignalInfo) => void | Promise<void>;

export interface WaitStatus {
  pid: number;
  status: number;
  sigcode: number;
}

/** A child made by fork(): its task port in the parent's space and how to become it. */
export interface ForkedChild {
  pid: number;
  taskId: number;
  token: string;
  /** The child's task port, in the parent's space. */
  task: number;
  /** The child's process port, in the parent's space. */
  procPort: number;
}

/** Names a child finds its ports under after fork (glibc passes init ports similarly). */
export const CHILD_NAMES = { proc: 0x101, auth: 0x102 } as const;

/**
 * A Hurd process as a program sees itself: what glibc's Hurd part provides.
 * All calls are RPCs to proc (and auth) through the kernel; errors are the
 * runtime's HurdError with Hurd errno codes.
 */
export class Process {
  readonly proc: ProcClient;
  pid = 0;
  private readonly handlers = new Map<number, SignalHandler | "ignore">();
  private sidport = 0;
  /** Called when a signal's default action ends the process (after proc knows the status). */
  onTerminate: (status: number) => void = () => {};
  private exiting = false;

  private constructor(
    readonly task: Task,
    public procPort: number,
    readonly authPort: number,
  ) {
    this.proc = client(task, ProcessDefinition, () => this.procPort);
  }

  /**
   * Becomes a process: `procPort` is this task's process port (from the
   * parent, or task2proc), `auth` its auth handle if it has one. Registers a
   * message port so signals can arrive.
   */
  static async attach(task: Task, procPort: number, auth = 0, o: { msgport?: boolean } = {}): Promise<Process> {
    const p = new Process(task, procPort, auth);
    if (o.msgport ?? true) await p.serveMsgport();
    p.pid = (await askAgainIfDied(() => p.proc.getpids({}))).pid;
    return p;
  }

  private async serveMsgport(): Promise<void> {
    const port = await this.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
    serve(this.task, MsgDefinition, {
      sigPost: (req, ctx) => {
        ctx.keepRights = true;
        const refName = optionalRight(ctx.msg.ports, req.refport);
        // The refport is compared by name (same port, same name), so it is
        // released only after the comparison.
        const release = () => {
          if (refName) this.task.deallocate(refName).catch(() => {});
        };
        return this.deliver(req.signal, req.sigcode, refName).finally(release);
      },
      procNewids: (_req, ctx) => {
        this.task.dropRights(ctx.msg);
        ctx.keepRights = true;
        return {};
      },
    }).add(port, {});
    const old = await askAgainIfDied(() => {
      const r = new Rights();
      return this.proc.setmsgport({ newmsgport: r.makeSend(port) }, { rights: r });
    });
    const prev = optionalRight(rightsOf(old), old.oldmsgport);
    if (prev) this.task.deallocate(prev).catch(() => {});

  }

  /**
   * The receiving side of msg_sig_post (glibc's signal_allowed): the refport
   * decides. Our own task port allows anything; our session's port allows
   * SIGCONT; anything else is EPERM. The answer goes back once the signal
   * has been handled, so kill() is synchronous.
   */
  private async deliver(signal: number, sigcode: number, ref: number): Promise<object> {
    if (signal <= 0 || signal >= NSIG) throw new HurdError(Errno.EINVAL, `signal ${signal}`);
    if (!ref) throw new HurdError(Errno.EPERM, "no reference port");
    const own = ref === this.task.self;
    if (!own && signal === SIG.CONT && !this.sidport) {
      // Our session's port, fetched when first needed (glibc's _hurd_sidport).
      const s = await this.proc.getsidport({});
      this.sidport = portAt(s, s.sessport);
    }
    const session = !own && this.sidport !== 0 && ref === this.sidport && signal === SIG.CONT;
    if (!own && !session) throw new HurdError(Errno.EPERM, `the reference port does not allow ${signal}`);
    const h = this.handlers.get(signal);
    if (h === "ignore") return {};
    if (h) {
      await h({ signal, sigcode });
      return {};
    }
    switch (defaultAction(signal)) {
      case "ignore":
        return {};
      case "stop":
        await this.proc.markStop({ signo: signal, sigcode });
        return {};
      case "continue":
        await this.proc.markCont({});
        return {};
      case "terminate":
        setImmediate(() => void this.die(W.exitcode(0, signal)));
        return {};
    }
  }

  /** The default action ended us: proc learns the status, then the task goes. */
  private async die(status: number): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    await this.proc.markExit({ status, sigcode: 0 }).catch(() => {});
    this.onTerminate(status);
    await this.task.detach();
  }

  /** Sets what a signal does: a function, "ignore", or "default". */
  signal(sig: number, handler: SignalHandler | "ignore" | "default"): void {
    if (sig <= 0 || sig >= NSIG || sig === SIG.KILL || sig === SIG.STOP) throw new HurdError(Errno.EINVAL, `signal ${sig} cannot be caught`);
    if (handler === "default") this.handlers.delete(sig);
    else this.handlers.set(sig, handler);
  }

  // ------------------------------------------------------------ identity

  async getpids(): Promise<{ pid: number; ppid: number; orphaned: boolean }> {
    return this.proc.getpids({});
  }
  async getppid(): Promise<number> {
    return (await this.proc.getpids({})).ppid;
  }
  async getpgrp(pid = 0): Promise<number> {
    return (await this.proc.getpgrp({ pid: pid || this.pid })).pgrp;
  }
  async getsid(pid = 0): Promise<number> {
    return (await this.proc.getsid({ pid: pid || this.pid })).sid;
  }
  async setsid(): Promise<number> {
    await this.proc.setsid({});
    this.sidport = 0;
    return this.pid;
  }
  /** setpgid(pid, pgid): 0 means the caller / the target's own pid. */
  async setpgid(pid = 0, pgid = 0): Promise<void> {
    await this.proc.setpgrp({ pid, pgrp: pgid });
  }
  async setArgs(argv: string[], envp: string[] = []): Promise<void> {
    await askAgainIfDied(() => this.proc.setprocargs({ argv, envp }));
    if (argv[0]) await askAgainIfDied(() => this.proc.setExe({ path: argv[0]!.slice(0, 1024) }));
  }
  async markExec(): Promise<void> {
    await this.proc.markExec({});
  }

  /** The ids of this process's auth handle (auth_getids). */
  async getids(): Promise<{ euids: number[]; auids: number[]; egids: number[]; agids: number[] }> {
    if (!this.authPort) throw new HurdError(Errno.EOPNOTSUPP, "this process has no auth port");
    return client(this.task, AuthDefinition, this.authPort).getIds({});
  }

  /**
   * Gives proc the ids of `auth` (the 2021 protocol): proc_reauthenticate,
   * auth_user_authenticate, then proc_reauthenticate_complete on the new
   * process port, which replaces the old one.
   */
  async reauthenticate(auth: number): Promise<void> {
    const newport = await userReauthenticate(this.task, auth, (rendezvous) => {
      const r = new Rights();
      return this.proc.reauthenticate({ rendezvous: r.makeSend(rendezvous) }, { rights: r });
    });
    await client(this.task, ProcessDefinition, newport).reauthenticateComplete({});
    const old = this.procPort;
    this.procPort = newport;
    // proc switches ports when it handles the completion; until then the new
    // port answers EOPNOTSUPP. A short bounded probe waits for the switch.
    for (let i = 0; ; i++) {
      try {
        await this.proc.getpids({});
        break;
      } catch (e) {
        if (!isErrno(e, "EOPNOTSUPP") || i >= 50) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    if (old !== newport) this.task.deallocate(old).catch(() => {});
  }

  // ------------------------------------------------------------ children

  /**
   * fork's proc part (glibc's fork.c order): task_create, proc_task2proc,
   * proc_child. The child is a process of ours from here on; whoever runs it
   * attaches with `token` and finds its process port under CHILD_NAMES.proc.
   */
  async fork(name = "child", o: { dieWithParent?: boolean } = {}): Promise<ForkedChild> {
    const c = await this.task.taskCreate(name, { dieWithParent: o.dieWithParent });
    let procPort: number;
    try {
      const r = new Rights();
      const t2p = await this.proc.task2proc({ task: r.copySend(c.task) }, { rights: r });
      procPort = portAt(t2p, t2p.proc);
      const r2 = new Rights();
      await this.proc.child({ child: r2.copySend(c.task) }, { rights: r2 });
    } catch (e) {
      // fork failed (EAGAIN past RLIMIT_NPROC): the task made for it goes, as glibc's fork kills its new task.
      await this.task.taskTerminate(c.task).catch(() => {});
      this.task.deallocate(c.task).catch(() => {});
      throw e;
    }
    await this.task.insertRight(c.task, CHILD_NAMES.proc, procPort, MsgType.MSG_TYPE_COPY_SEND);
    if (this.authPort) await this.task.insertRight(c.task, CHILD_NAMES.auth, this.authPort, MsgType.MSG_TYPE_COPY_SEND);
    const r3 = new Rights();
    const { pid } = await this.proc.task2pid({ task: r3.copySend(c.task) }, { rights: r3 });
    return { pid, taskId: c.taskId, token: c.token, task: c.task, procPort };
  }

  /** exit(): proc learns the status, then the task ends. */
  async exit(code: number): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    await this.proc.markExit({ status: W.exitcode(code, 0), sigcode: 0 }).catch(() => {});
    await this.task.detach();
  }

  /** waitpid: pid > 0, 0 (our pgrp), -1 (any), < -1 (pgrp -pid). WNOHANG with nothing ready answers null. */
  async wait(pid = -1, options = 0): Promise<WaitStatus | null> {
    try {
      const r = await this.proc.waitid({ pid, options: options | WEXITED }, { timeoutMs: 0x7fffffff });
      return { pid: r.pidStatus, status: r.status, sigcode: r.sigcode };
    } catch (e) {
      if (isErrno(e, "EAGAIN")) return null;
      throw e;
    }
  }

  // ------------------------------------------------------------ kill

  /**
   * kill(2) as glibc does it on the Hurd. pid > 0: that process; 0: our
   * process group; < -1: process group -pid; -1: process group 1 (the Hurd's
   * meaning, where init and unparented tasks live — not POSIX's "everyone").
   * Group members that vanish meanwhile are skipped; important processes
   * (system servers) are never in a group's list.
   */
  async kill(pid: number, sig: number): Promise<void> {
    if (sig < 0 || sig >= NSIG) throw new HurdError(Errno.EINVAL, `signal ${sig}`);
    if (pid > 0) return this.killOne(pid, sig);
    const pgrp = pid === 0 ? 0 : pid === -1 ? 1 : -pid;
    const { pids } = await this.proc.getpgrppids({ pgrp });
    let sent = 0;
    for (const p of pids) {
      try {
        await this.killOne(p, sig);
        sent++;
      } catch (e) {
        if (!isErrno(e, "ESRCH")) throw e;
      }
    }
    if (sent === 0 && pids.length > 0) throw new HurdError(Errno.ESRCH, `no process left in pgrp ${pgrp}`);
  }

  private async killOne(pid: number, sig: number): Promise<void> {
    if (sig === SIG.KILL) {
      const rep = await this.proc.pid2task({ pid });
      const task = optionalRight(rightsOf(rep), rep.task);
      if (!task) return; // a zombie: nothing to kill
      try {
        await this.task.taskTerminate(task);
      } finally {
        this.task.deallocate(task).catch(() => {});
      }
      return;
    }
    const mp = await this.proc.getmsgport({ pid });
    const msgport = optionalRight(rightsOf(mp), mp.msgport);
    let ref = 0;
    try {
      const t = await this.proc.pid2task({ pid });
      ref = optionalRight(rightsOf(t), t.task);
    } catch (e) {
      if (!isErrno(e, "EPERM")) throw e;
    }
    if (!ref) {
      if (!this.sidport) {
        const s = await this.proc.getsidport({});
        this.sidport = portAt(s, s.sessport);
      }
    }
    try {
      if (!msgport) {
        // No message port: glibc falls back to the task for the deadly signals.
        if (ref && (sig === SIG.TERM || sig === SIG.INT || sig === SIG.QUIT)) return await this.task.taskTerminate(ref);
        if (sig === 0) return;
        throw new HurdError(Errno.EPERM, `pid ${pid} has no message port`);
      }
      if (sig === 0) return;
      const r = new Rights();
      const refport = ref ? r.copySend(ref) : r.copySend(this.sidport);
      await client(this.task, MsgDefinition, msgport).sigPost({ signal: sig, sigcode: 0, refport }, { rights: r });
    } finally {
      if (msgport) this.task.deallocate(msgport).catch(() => {});
      if (ref) this.task.deallocate(ref).catch(() => {});
    }
  }

  // ------------------------------------------------------------ handles

  /** Opens a handle on a process (pinning its pid and incarnation). */
  async open(pid: number, serial = 0): Promise<ProcessHandle> {
    const rep = await this.proc.pidOpen({ pid, serial });
    return new ProcessHandle(this.task, portAt(rep, rep.handle), rep.pid, rep.serial);
  }
}

/** A process handle: signals and waits reach its incarnation or fail, never another process. */
export class ProcessHandle {
  private readonly c: ProcClient;
  constructor(
    readonly task: Task,
    readonly port: number,
    readonly pid: number,
    readonly serial: number,
  ) {
    this.c = client(task, ProcessDefinition, port);
  }
  async signal(sig: number): Promise<void> {
    await this.c.handleSignal({ signal: sig, sigcode: 0 });
  }
  async wait(options = 0): Promise<WaitStatus> {
    const r = await this.c.handleWait({ options: options | WEXITED }, { timeoutMs: 0x7fffffff });
    return { pid: r.pidStatus, status: r.status, sigcode: r.sigcode };
  }
  async alive(): Promise<boolean> {
    return (await this.c.handleGetpid({})).alive;
  }
  /** Drops the handle: the pin goes with the last send right. */
  async close(): Promise<void> {
    await this.task.deallocate(this.port).catch(() => {});
  }
}

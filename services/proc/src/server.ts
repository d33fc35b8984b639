import { Errno, HurdError, MACH_PORT_DEAD, MsgType, serve, type Context, type Server, type Task } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { defaultProcConfig, type ProcConfig } from "./config.js";
import type { Handle } from "./handles.js";
import type { HostData } from "./host.js";
import type { ProcJournal } from "./journal.js";
import { PgrpChange, joinPgrp, leavePgrp, pgrpOf, reparent, sessionOf } from "./pgrp.js";
import { Pids } from "./pids.js";
import { Login, P, Proc, addChild, removeChild, type Pgrp, type Session } from "./proc.js";

/** What a port of proc's stands for. */
export type PortObject =
  | { kind: "proc"; p: Proc }
  | { kind: "handle"; h: Handle }
  /** A fresh port handed to auth during reauthentication, waiting for proc_reauthenticate_complete. */
  | { kind: "reauth"; p: Proc; uids: number[]; done: (ok: boolean) => void };

export type Ctx = Context<PortObject>;

export const HURD_PID_INIT = 1;
export const HURD_PID_STARTUP = 2;
export const HURD_PID_KERNEL = 3;
export const HURD_PID_PROC = 4;

/**
 * proc's state and the operations every concern shares: the tables (pid,
 * task and port to process, pgrps and sessions: the Hurd's hash.c), its
 * ports, and process creation and reaping. Process groups live in pgrp.ts,
 * signalling in msg.ts.
 */
export class ProcServer {
  readonly config: ProcConfig;
  readonly pids: Pids;
  readonly byPid = new Map<number, Proc>();
  /** Task port name in proc's space -> process (the kernel gives one port one name). */
  readonly byTask = new Map<number, Proc>();
  readonly byTaskId = new Map<number, Proc>();
  readonly pgrps = new Map<number, Pgrp>();
  readonly sessions = new Map<number, Session>();
  /** The pgrp change in progress (pgrp.ts). */
  readonly pgrpChange = new PgrpChange();
  readonly server: Server<typeof ProcessDefinition, PortObject>;
  readonly rootLogin = new Login("root");
  readonly noLogin = new Login("<none>");
  private serials = 0;
  private pool: number[] = [];
  private refilling = false;
  /** Ports proc knows: host_priv (for credentials), auth, device master. */
  hostPriv = 0;
  authPort = 0;
  deviceMaster = 0;
  /** The host RPCs' data (host.ts). */
  readonly hostData: HostData = { execPorts: null, execInts: [], notifiers: [], versions: new Map() };
  /** The port new-task and task-terminated notifications arrive on. */
  notifyPort = 0;
  init!: Proc;
  startup!: Proc;
  kernelProc!: Proc;
  self!: Proc;
  /** Write-through to proc's store (journal.ts); null: none, the embedded default. */
  journal: ProcJournal | null = null;
  /** This process took over a task a previous proc process served, from its store's image (restore.ts). */
  restarted = false;
  readonly stats = { created: 0, reaped: 0, forgedNotifications: 0, signalsSent: 0, signalFailures: 0, nestedDropped: 0 };
  /** Processes in the table (zombies included) per owner uid, for RLIMIT_NPROC (maxProcsPerUid). */
  private readonly perUid = new Map<number, number>();

  constructor(
    readonly task: Task,
    config: Partial<ProcConfig> = {},
  ) {
    this.config = { ...defaultProcConfig, ...config };
    this.pids = new Pids(this.config.pidMax, this.config.pidFloor);
    this.server = serve<typeof ProcessDefinition, PortObject>(task, ProcessDefinition, {});
  }

  // ------------------------------------------------------------ ports

  /** A receive right from the pool (refilled in the background), or a fresh one. */
  async newPort(): Promise<number> {
    const p = this.pool.pop();
    if (this.pool.length < this.config.portPool / 2) this.refill();
    return p ?? this.task.allocate();
  }

  private refill(): void {
    if (this.refilling || this.task.detached) return;
    this.refilling = true;
    const want = this.config.portPool - this.pool.length;
    void Promise.all(Array.from({ length: want }, () => this.task.allocate().then((n) => this.pool.push(n), () => {}))).finally(() => {
      this.refilling = false;
    });
  }

  /** The process port, made on first use (most processes never need one). */
  async portOf(p: Proc): Promise<number> {
    if (p.port) return p.port;
    const port = await this.newPort();
    if (p.port) {
      this.pool.push(port);
      return p.port;
    }
    if (p.has(P.REAPED)) {
      this.pool.push(port);
      throw new HurdError(Errno.ESRCH, `pid ${p.pid} is gone`);
    }
    p.port = port;
    this.server.add(port, { kind: "proc", p });
    this.touch(p);
    return port;
  }

  /** Releases a right proc received but does not keep (fire and forget). */
  drop(name: number): void {
    if (name && name !== MACH_PORT_DEAD && !this.task.detached) this.task.deallocate(name).catch(() => {});
  }

  destroyPort(name: number): void {
    if (!name) return;
    this.server.remove(name);
    if (!this.task.detached) this.task.destroy(name).catch(() => {});
  }

  // ------------------------------------------------------------ callers

  /** The calling process; unknown or dead callers get EOPNOTSUPP, as in the Hurd. */
  caller(ctx: Ctx): Proc {
    const o = ctx.object;
    if (o.kind !== "proc" || o.p.has(P.REAPED)) throw new HurdError(Errno.EOPNOTSUPP, "not a process port");
    return o.p;
  }

  /** The task right a request carries (by index), with the extra uref released. */
  taskArg(ctx: Ctx, index: number): number {
    // From here on the handler owns the right (see taskProcess); the server
    // must not release it a second time if the call then fails.
    // (Until the right is known good, a failure lets the server release the request's rights.)
    const r = ctx.right(index);
    if (r.type !== MsgType.MSG_TYPE_MOVE_SEND || r.name === MACH_PORT_DEAD) throw new HurdError(Errno.ESRCH, "not a live task port");
    ctx.keepRights = true;
    return r.name;
  }

  // ------------------------------------------------------------ the table

  /** Processes `uid` owns now (RLIMIT_NPROC counts them until they are reaped). */
  procsOf(uid: number): number {
    return this.perUid.get(uid) ?? 0;
  }

  /** Gives p its ids; every change of a process's ids goes through here, so the per-uid count stays right. */
  setUids(p: Proc, uids: readonly number[]): void {
    this.touch(p);
    const was = p.uids.length ? p.uids[0]! : -1;
    const now = uids.length ? uids[0]! : -1;
    p.uids = uids;
    if (was === now || p.has(P.REAPED)) return;
    if (was >= 0) this.countUid(was, -1);
    if (now >= 0) this.countUid(now, 1);
  }

  private countUid(uid: number, d: number): void {
    const n = (this.perUid.get(uid) ?? 0) + d;
    if (n <= 0) this.perUid.delete(uid);
    else this.perUid.set(uid, n);
  }

  nextSerial(): number {
    return ++this.serials;
  }

  /** The serial counter's position (written through; restore.ts sets it back). */
  get serialCount(): number {
    return this.serials;
  }
  set serialCount(n: number) {
    this.serials = n;
  }

  /** p's record is to be written before the RPC in progress is answered (journal.ts). */
  touch(p: Proc): void {
    this.journal?.proc(p.pid);
  }

  /** Writes what changed outside an RPC (a notification, a reauthentication's end); a failure breaks proc (journal.ts). */
  commitSoon(): void {
    this.journal?.commit().catch(() => {});
  }

  /** pid_find: the process with that pid, zombies included; ESRCH when there is none. */
  pidFind(pid: number): Proc {
    const p = this.byPid.get(pid);
    if (!p) throw new HurdError(Errno.ESRCH, `no pid ${pid}`);
    return p;
  }

  /**
   * A process for a task proc has just heard of (parent: init unless given,
   * no ids, as the Hurd does). The parent is linked before the process joins
   * init's pgrp, so its pgrp's orphan count is right at once.
   */
  createProcess(task: number, taskId: number, pid?: number, parent?: Proc): Proc {
    const n = pid ?? this.pids.alloc();
    if (pid !== undefined) this.pids.take(pid);
    const p = new Proc(n, this.nextSerial(), this.init ? this.init.login : this.rootLogin);
    p.task = task;
    p.taskId = taskId;
    this.byPid.set(n, p);
    this.touch(p);
    if (task) this.byTask.set(task, p);
    if (taskId) this.byTaskId.set(taskId, p);
    if (this.init && this.init !== p) {
      addChild(parent ?? this.init, p);
      joinPgrp(this, p, this.init.pgrp!);
    }
    this.stats.created++;
    return p;
  }

  /**
   * p's task right. A process of a nested hurd that proc heard of by id only
   * (TaskEventsNotification) gets one from the kernel the first time proc
   * acts on its task; 0 when there is none (dead, or no host port to ask with).
   */
  async taskOf(p: Proc): Promise<number> {
    if (p.task || p.ns === 0 || !p.taskId || !this.hostPriv || p.dead || this.task.detached) return p.task;
    let name: number;
    try {
      name = await this.task.taskForId(this.hostPriv, p.taskId);
    } catch {
      // The task ended meanwhile: its event is on its way.
      return p.task;
    }
    // Bound meanwhile (another caller, or a right someone passed) or gone:
    // the kernel gave one more uref of the same name, or a right no one keeps.
    if (p.task || p.dead) {
      this.drop(name);
      return p.task;
    }
    this.bindTask(p, name, p.taskId);
    return name;
  }

  bindTask(p: Proc, task: number, taskId: number): void {
    this.touch(p);
    if (p.task) this.byTask.delete(p.task);
    if (p.taskId) this.byTaskId.delete(p.taskId);
    p.task = task;
    p.taskId = taskId;
    if (task) this.byTask.set(task, p);
    if (taskId) this.byTaskId.set(taskId, p);
  }

  /**
   * Lets go of the ports proc holds for p: its message port, its process
   * port (holders see a dead name) and its task right. At the task's death,
   * or at reaping for a process that never died (a reassigned stub).
   */
  releasePorts(p: Proc): void {
    this.touch(p);
    if (p.msgport) {
      this.drop(p.msgport);
      p.msgport = 0;
    }
    if (p.port) {
      this.destroyPort(p.port);
      p.port = 0;
    }
    if (p.task) {
      this.byTask.delete(p.task);
      this.drop(p.task);
      p.task = 0;
    }
  }

  /** Removes a process from every table; its pid stays pinned by its pgrp/session/handles. */
  reap(p: Proc): void {
    if (p.has(P.REAPED)) return;
    if (p.uids.length) this.countUid(p.uids[0]!, -1);
    this.touch(p);
    p.flags |= P.REAPED | P.DEAD;
    leavePgrp(this, p);
    removeChild(p);
    this.byPid.delete(p.pid);
    this.releasePorts(p);
    if (p.taskId) this.byTaskId.delete(p.taskId);
    for (const h of p.handles ?? []) {
      h.released(p);
      this.journal?.handle(h.port);
    }
    p.handles = null;
    this.pids.unpin(p.pid);
    this.stats.reaped++;
  }

  // ------------------------------------------------------------ boot

  /** Makes the well-known processes: 1 (init, bound later), 2 (startup), 3 (kernel), 4 (proc). */
  makeBootProcesses(): void {
    const init = this.createProcess(0, 0, 1);
    init.flags |= P.IMPORTANT | P.LOGINLEADER | P.PARENTSET;
    init.login = this.rootLogin;
    this.setUids(init, [0, 0]);
    init.exe = "init";
    // pid 1 is its own parent in proc's tree, as in the Hurd.
    init.parent = null;
    this.init = init;
    joinPgrp(this, init, pgrpOf(this, 1, sessionOf(this, 1)));
    const mk = (pid: number, exe: string, task = 0, taskId = 0) => {
      const p = this.createProcess(task, taskId, pid);
      p.flags |= P.IMPORTANT;
      this.setUids(p, [0, 0]);
      p.exe = exe;
      p.args = new TextEncoder().encode(`${exe}\0`);
      return p;
    };
    this.startup = mk(HURD_PID_STARTUP, "startup");
    this.startup.flags |= P.PARENTSET;
    // The kernel has no task of its own here: pid 3 stands for it, adopted by startup.
    this.kernelProc = mk(HURD_PID_KERNEL, "kernel");
    reparent(this, this.kernelProc, this.startup);
    this.kernelProc.flags |= P.PARENTSET;
    // proc itself waits for startup's proc_child, as in the Hurd.
    this.self = mk(HURD_PID_PROC, "/hurd/proc", this.task.self, this.task.id);
    init.args = new TextEncoder().encode("init\0");
  }
}

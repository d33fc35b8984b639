import { Errno, HurdError, MsgType, Rights, client, serve, type Context, type Server, type Task } from "@hurdmesh/mach";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { defaultProcConfig, type ProcConfig } from "./config.js";
import type { Handle } from "./handles.js";
import { Pids } from "./pids.js";
import { Login, P, Pgrp, Proc, Session, addChild, removeChild } from "./proc.js";

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

const MSG_SIG_POST = 23000;
const MSG_PROC_NEWIDS = 23001;

/**
 * proc's state and the operations every concern shares: the tables (pid,
 * task and port to process), process creation and reaping, and the ways
 * proc talks to processes (signals and newids, always without waiting).
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
  /** The port new-task and task-terminated notifications arrive on. */
  notifyPort = 0;
  init!: Proc;
  startup!: Proc;
  kernelProc!: Proc;
  self!: Proc;
  readonly stats = { created: 0, reaped: 0, forgedNotifications: 0, signalsSent: 0, signalFailures: 0, nestedDropped: 0 };

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
    return port;
  }

  /** Releases a right proc received but does not keep (fire and forget). */
  drop(name: number): void {
    if (name && name !== 0xffffffff && !this.task.detached) this.task.deallocate(name).catch(() => {});
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
    if (r.type !== MsgType.MSG_TYPE_MOVE_SEND || r.name === 0xffffffff) throw new HurdError(Errno.ESRCH, "not a live task port");
    ctx.keepRights = true;
    return r.name;
  }

  // ------------------------------------------------------------ the table

  nextSerial(): number {
    return ++this.serials;
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
    if (task) this.byTask.set(task, p);
    if (taskId) this.byTaskId.set(taskId, p);
    if (this.init && this.init !== p) {
      addChild(parent ?? this.init, p);
      this.joinPgrp(p, this.init.pgrp!);
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
    if (p.task) this.byTask.delete(p.task);
    if (p.taskId) this.byTaskId.delete(p.taskId);
    p.task = task;
    p.taskId = taskId;
    if (task) this.byTask.set(task, p);
    if (taskId) this.byTaskId.set(taskId, p);
  }

  /** Removes a process from every table; its pid stays pinned by its pgrp/session/handles. */
  reap(p: Proc): void {
    if (p.has(P.REAPED)) return;
    p.flags |= P.REAPED | P.DEAD;
    this.leavePgrp(p);
    removeChild(p);
    this.byPid.delete(p.pid);
    if (p.task) {
      this.byTask.delete(p.task);
      this.drop(p.task);
      p.task = 0;
    }
    if (p.taskId) this.byTaskId.delete(p.taskId);
    if (p.port) {
      this.destroyPort(p.port);
      p.port = 0;
    }
    if (p.msgport) {
      this.drop(p.msgport);
      p.msgport = 0;
    }
    for (const h of p.handles ?? []) h.released(p);
    p.handles = null;
    this.pids.unpin(p.pid);
    this.stats.reaped++;
  }

  // ------------------------------------------------------------ pgrps (shared with pgrp.ts)

  sessionOf(sid: number): Session {
    let s = this.sessions.get(sid);
    if (!s) {
      s = new Session(sid);
      this.sessions.set(sid, s);
      this.pids.pin(sid);
    }
    return s;
  }

  pgrpOf(pgid: number, session: Session): Pgrp {
    let g = this.pgrps.get(pgid);
    if (!g) {
      g = new Pgrp(pgid, session);
      session.pgrps.add(g);
      this.pgrps.set(pgid, g);
      this.pids.pin(pgid);
    }
    return g;
  }

  /** Whether p counts toward its pgrp's "not orphaned" total (POSIX: a parent in another pgrp of the session). */
  private links(p: Proc, g: Pgrp): boolean {
    const par = p.parent;
    // Not "and the parent is alive": this must answer the same when a link is
    // counted and when it is uncounted, and a dying parent's children are
    // uncounted (reparented) after it is marked dead. A dead process has no
    // children left, so nothing is counted for a zombie parent.
    return !!par && par.pgrp !== null && par.pgrp !== g && par.pgrp.session === g.session;
  }

  joinPgrp(p: Proc, g: Pgrp): void {
    if (p.pgrp === g) return;
    this.pgrpChange(() => {
      if (p.pgrp) this.leavePgrp(p);
      p.pgrp = g;
      g.members.add(p);
      if (this.links(p, g)) g.linked++;
      this.relinkChildren(p, +1);
    });
  }

  leavePgrp(p: Proc): void {
    const g = p.pgrp;
    if (!g) return;
    this.pgrpChange(() => {
      this.relinkChildren(p, -1);
      const linked = this.links(p, g);
      // p is no member of g by the time g's orphan status is judged: the
      // process that leaves is not hung up with the group it left.
      g.members.delete(p);
      p.pgrp = null;
      if (linked) this.unlink(g);
      if (g.members.size === 0) {
        this.pgrps.delete(g.pgid);
        g.session.pgrps.delete(g);
        this.pids.unpin(g.pgid);
        if (g.session.pgrps.size === 0) {
          this.sessions.delete(g.session.sid);
          if (g.session.sidport) this.destroyPort(g.session.sidport);
          this.pids.unpin(g.session.sid);
        }
      }
    });
  }

  /** p's own pgrp changes: its children's links to their pgrps are recounted. */
  private relinkChildren(p: Proc, sign: 1 | -1): void {
    for (let c = p.firstChild; c; c = c.nextSibling) {
      const cg = c.pgrp;
      if (!cg || !this.links(c, cg)) continue;
      if (sign > 0) cg.linked++;
      else this.unlink(cg);
    }
  }

  /** Pgrps whose link count fell to 0 during the change in progress. */
  private maybeOrphaned: Set<Pgrp> | null = null;

  /**
   * Runs one change of pgrp or parent, then judges orphaning. A move is a
   * leave then a join (or an unlink then a relink): counts pass through 0 on
   * the way when a link moves from one member to another, e.g. when a
   * process joins its parent's pgrp and its own children's links take over.
   * Only a pgrp still at 0 once the change is complete became orphaned.
   */
  private pgrpChange(fn: () => void): void {
    if (this.changing) return fn();
    this.changing = true;
    try {
      fn();
    } finally {
      this.changing = false;
      // Made only when a count fell to 0: every process creation and reaping passes here.
      const set = this.maybeOrphaned;
      this.maybeOrphaned = null;
      if (set) for (const g of set) if (g.linked === 0 && g.members.size > 0) this.newlyOrphaned(g);
    }
  }

  /** Inside pgrpChange. */
  private changing = false;

  private unlink(g: Pgrp): void {
    if (--g.linked === 0 && g.members.size > 0) {
      if (this.changing) (this.maybeOrphaned ??= new Set()).add(g);
      else this.newlyOrphaned(g);
    }
  }

  /**
   * A pgrp just became orphaned: everyone hears its new status, and if any
   * member is stopped, every member gets SIGHUP then SIGCONT (POSIX).
   */
  newlyOrphaned(g: Pgrp): void {
    let stopped = false;
    for (const m of g.members) {
      this.newids(m);
      if (m.has(P.STOPPED)) stopped = true;
    }
    if (!stopped) return;
    for (const m of g.members) {
      this.postSignal(m, 1 /* SIGHUP */, 0, m);
      this.postSignal(m, 19 /* SIGCONT */, 0, m);
    }
  }

  isOrphaned(p: Proc): boolean {
    return !!p.pgrp && p.pgrp.linked === 0;
  }

  /** Moves p under a new parent (reparenting to init or a namespace root). */
  reparent(p: Proc, parent: Proc): void {
    this.pgrpChange(() => {
      const g = p.pgrp;
      if (g && this.links(p, g)) this.unlink(g);
      removeChild(p);
      addChild(parent, p);
      if (g && this.links(p, g)) g.linked++;
    });
  }


  // ------------------------------------------------------------ talking to processes

  /**
   * msg_sig_post to a process's message port, with `ref`'s task port as the
   * authority. One-way: proc never waits on a process (a slow or dead
   * message port must not stall it); errors are counted.
   */
  postSignal(p: Proc, signo: number, sigcode: number, ref: Proc): void {
    if (!p.msgport || p.dead || this.task.detached) return;
    const r = new Rights();
    // A process with no task yet (pid 1 before init binds it) can only offer a null refport.
    const refport = ref.task ? r.copySend(ref.task) : r.add(0, MsgType.MSG_TYPE_PORT_NAME);
    this.stats.signalsSent++;
    try {
      this.task.send({ destination: p.msgport, id: MSG_SIG_POST, body: sigPostBody(signo, sigcode, refport), ports: r.ports });
    } catch {
      this.stats.signalFailures++;
    }
  }

  /** msg_proc_newids: the process's parent, pgrp or orphan status changed (one-way). */
  newids(p: Proc): void {
    if (!p.msgport || p.dead || !p.task || this.task.detached) return;
    const r = new Rights();
    const task = r.copySend(p.task);
    try {
      this.task.send({
        destination: p.msgport,
        id: MSG_PROC_NEWIDS,
        body: MsgDefinition.methods.procNewids.requestType
          .encode({ task, ppid: p.parent?.pid ?? 0, pgrp: p.pgrp?.pgid ?? 0, orphaned: this.isOrphaned(p) })
          .finish(),
        ports: r.ports,
      });
    } catch {
      this.stats.signalFailures++;
    }
  }

  /**
   * msg_sig_post that waits for the answer (process handles: the caller asked
   * for a synchronous kill), bounded by signalTimeoutMs.
   */
  async postSignalAndWait(p: Proc, signo: number, sigcode: number): Promise<void> {
    if (!p.msgport) throw new HurdError(Errno.ESRCH, `pid ${p.pid} has no message port`);
    const r = new Rights();
    const refport = r.copySend(p.task);
    const msg = client(this.task, MsgDefinition, p.msgport);
    await msg.sigPost({ signal: signo, sigcode, refport }, { rights: r, timeoutMs: this.config.signalTimeoutMs });
  }

  // ------------------------------------------------------------ boot

  /** Makes the well-known processes: 1 (init, bound later), 2 (startup), 3 (kernel), 4 (proc). */
  makeBootProcesses(): void {
    const init = this.createProcess(0, 0, 1);
    init.flags |= P.IMPORTANT | P.LOGINLEADER | P.PARENTSET;
    init.login = this.rootLogin;
    init.uids = [0, 0];
    init.exe = "init";
    // pid 1 is its own parent in proc's tree, as in the Hurd.
    init.parent = null;
    this.init = init;
    const s = this.sessionOf(1);
    this.joinPgrp(init, this.pgrpOf(1, s));
    const mk = (pid: number, exe: string, task = 0, taskId = 0) => {
      const p = this.createProcess(task, taskId, pid);
      p.flags |= P.IMPORTANT;
      p.uids = [0, 0];
      p.exe = exe;
      p.args = new TextEncoder().encode(`${exe}\0`);
      return p;
    };
    this.startup = mk(HURD_PID_STARTUP, "startup");
    this.startup.flags |= P.PARENTSET;
    // The kernel has no task of its own here: pid 3 stands for it, adopted by startup.
    this.kernelProc = mk(HURD_PID_KERNEL, "kernel");
    this.reparent(this.kernelProc, this.startup);
    this.kernelProc.flags |= P.PARENTSET;
    // proc itself waits for startup's proc_child, as in the Hurd.
    this.self = mk(HURD_PID_PROC, "/hurd/proc", this.task.self, this.task.id);
    init.args = new TextEncoder().encode("init\0");
  }
}

export function sigPostBody(signal: number, sigcode: number, refport: number): Uint8Array {
  return MsgDefinition.methods.sigPost.requestType.encode({ signal, sigcode, refport }).finish();
}


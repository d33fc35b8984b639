// A hurd with a real proc and a real auth, booted the way startup boots
// them: a startup task creates the auth and proc tasks, gives proc its
// bootstrap port and answers startup_procinit. The startup here is the
// minimum proc needs (the real one is services/init); it is an explicit
// test double, not a mock of anything a user would run.
import assert from "node:assert/strict";
import { Errno, HurdError, errnoName } from "@hurdmesh/mach";
import { userReauthenticate } from "@hurdmesh/iohelp";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { client, MsgType, PortRight, Rights, serve, TaskSpecialPort, portAt, type Received, type Task } from "@hurdmesh/mach";
import { Auth } from "@hurdmesh/auth";
import { MemoryProcStore, startProc, type ProcConfig, type ProcServer, type ProcStore } from "@hurdmesh/proc";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { startHurd, type BusKind, type Hurd } from "../harness.js";

export type ProcClient = ReturnType<typeof client<typeof ProcessDefinition>>;

export interface Proc {
  task: Task;
  /** This process's own process port (a send right in its own space). */
  port: number;
  proc: ProcClient;
  pid: number;
  /** Signals that arrived on its message port: [signal, sigcode, refport type]. */
  signals: Array<{ signal: number; sigcode: number }>;
  /**
   * Per signal, whether its refport was this task's own task port, which
   * glibc's signal_allowed takes as authority for any signal.
   */
  refIsSelf: boolean[];
  newids: Array<{ ppid: number; pgrp: number; orphaned: boolean }>;
  msgport: number;
}

export interface ProcHurd {
  h: Hurd;
  proc: ProcServer;
  auth: Auth;
  /** startup (pid 2), with its process port. */
  startup: Proc;
  /** A send right to auth's root handle in startup's space. */
  rootAuth: number;
  /**
   * Creates a child process of `parent` the way glibc's fork does: task_create,
   * proc_task2proc, proc_child; the child attaches with its token, gets its
   * process port, and registers a message port that records signals.
   */
  spawn(parent: Proc, name?: string, o?: { msgport?: boolean; adopted?: boolean }): Promise<Proc & { taskInParent: number }>;
  /** proc's task, as startup made it (a restart attaches a new process to it). */
  procTask: { taskId: number; token: string; task: Task };
  close(): Promise<void>;
}

/**
 * `store`: where proc writes through (journal.ts); HURD_PROC_WRITE_THROUGH=1
 * runs any suite of this kit with write-through on, in memory.
 */
export async function bootProcHurd(kind: BusKind, config: Partial<ProcConfig> = {}, kernel: Parameters<typeof startHurd>[1] = {}, o: { store?: ProcStore | ((h: Hurd) => Promise<ProcStore>) } = {}): Promise<ProcHurd> {
  const h = await startHurd(kind, kernel);
  const store = typeof o.store === "function" ? await o.store(h) : (o.store ?? (process.env.HURD_PROC_WRITE_THROUGH === "1" ? new MemoryProcStore() : undefined));
  const st = await h.task("startup", { hostPriv: true, timeoutMs: 10000 });

  // auth first: startup holds its task port, so it can take a right from its space.
  const authT = await st.taskCreate("auth");
  const authTask = await h.attach(authT.taskId, authT.token);
  const auth = await Auth.start(authTask);
  const { name: rootAuth } = await st.extractRight(authT.task, auth.root, MsgType.MSG_TYPE_MAKE_SEND);

  // The startup port: proc's bootstrap port, where it calls startup_procinit.
  const startupPort = await st.allocate();
  let startupProcPort = 0;
  const procinitDone = new Promise<void>((resolve) => {
    serve(st, StartupDefinition, {
      // startup_essential_task: proc registers itself; the double only notes it.
      essentialTask(_req, ctx) {
        ctx.task.dropRights(ctx.msg);
        return {};
      },
      procinit(req, ctx) {
        startupProcPort = ctx.right(req.proc).name;
        resolve();
        return {
          startupTask: ctx.reply.copySend(st.self),
          auth: ctx.reply.copySend(rootAuth),
          hostPriv: ctx.reply.copySend(st.hostPriv),
          deviceMaster: 0,
        };
      },
    }).add(startupPort, {});
  });
  const procT = await st.taskCreate("proc");
  await st.setSpecialPort(procT.task, TaskSpecialPort.TASK_BOOTSTRAP_PORT, startupPort);
  const procTask = await h.attach(procT.taskId, procT.token, { window: 1024, timeoutMs: 10000 });
  const proc = await startProc(procTask, { config, store });
  await procinitDone;

  const startup: Proc = await asProcess(st, startupProcPort, false);

  const ph: ProcHurd = {
    h,
    proc,
    auth,
    startup,
    rootAuth,
    procTask: { taskId: procT.taskId, token: procT.token, task: procTask },
    async spawn(parent, name = "child", o = {}) {
      const c = await parent.task.taskCreate(name);
      const r = new Rights();
      const t2p = await parent.proc.task2proc({ task: r.copySend(c.task) }, { rights: r });
      const childProcInParent = portAt(t2p, t2p.proc);
      // In a task namespace proc has made it the creator's child already (no proc_child).
      if (!o.adopted) {
        const r2 = new Rights();
        await parent.proc.child({ child: r2.copySend(c.task) }, { rights: r2 });
      }
      const task = await h.attach(c.taskId, c.token);
      // fork copies the process port into the child.
      const NAME = 0x7000 + (c.taskId % 0x1000);
      await parent.task.insertRight(c.task, NAME, childProcInParent, MsgType.MSG_TYPE_MOVE_SEND);
      const p = await asProcess(task, NAME, o.msgport ?? true);
      return { ...p, taskInParent: c.task };
    },
    async close() {
      await h.close();
    },
  };
  return ph;
}

/** A task that knows its process port becomes a process as libhurd would: msgport and pid. */
export async function asProcess(task: Task, port: number, withMsgport: boolean): Promise<Proc> {
  const proc = client(task, ProcessDefinition, port);
  const signals: Proc["signals"] = [];
  const refIsSelf: boolean[] = [];
  const newids: Proc["newids"] = [];
  let msgport = 0;
  if (withMsgport) {
    msgport = await task.allocate(PortRight.PORT_RIGHT_RECEIVE);
    serve(task, MsgDefinition, {
      sigPost(req, ctx) {
        signals.push({ signal: req.signal, sigcode: req.sigcode });
        refIsSelf.push(ctx.msg.ports[req.refport]?.name === task.self);
        ctx.task.dropRights(ctx.msg);
        return {};
      },
      procNewids(req, ctx) {
        newids.push({ ppid: req.ppid, pgrp: req.pgrp, orphaned: req.orphaned });
        ctx.task.dropRights(ctx.msg);
        return {};
      },
    }).add(msgport, {});
    const r = new Rights();
    await proc.setmsgport({ newmsgport: r.makeSend(msgport) }, { rights: r });
  }
  const { pid } = await proc.getpids({});
  return { task, port, proc, pid, signals, refIsSelf, newids, msgport };
}

export type { Received };

// ------------------------------------------------------------ helpers for the conformance suite


export { Errno };

/** Asserts that `p` fails with the Hurd error `code`. */
export async function rejectsWith(p: Promise<unknown>, code: number, what = ""): Promise<void> {
  try {
    await p;
  } catch (e) {
    const got = (e as HurdError).code;
    assert.equal(got, code, `${what} expected ${errnoName(code)}, got ${got === undefined ? String(e) : errnoName(got)} (${(e as Error).message})`);
    return;
  }
  assert.fail(`${what} expected ${errnoName(code)}, but it succeeded`);
}

/** The error code `p` fails with, or 0 when it succeeds. */
export async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    return (e as HurdError).code ?? -1;
  }
}

/** exit(status): proc_mark_exit then the task ends, as glibc's _exit does. */
export async function exitProcess(p: Proc, status = 0, sigcode = 0): Promise<void> {
  await p.proc.markExit({ status, sigcode });
  await p.task.detach();
}

/** Names the kit chooses for rights it inserts (far above the kernel's own). */
let insertedNames = 0;

/** An auth handle with these uids, made from the root handle; a send right in startup's space. */
export async function authHandle(ph: ProcHurd, uids: number[]): Promise<number> {
  const rep = await client(ph.startup.task, AuthDefinition, ph.rootAuth).makeAuth({ euids: uids, auids: uids, egids: [], agids: [], otherHandles: [] });
  return portAt(rep, rep.newhandle);
}

/**
 * The 2021 reauthentication of process `p` to `uids`, as glibc's reauth_proc
 * does it: proc_reauthenticate + auth_user_authenticate, then
 * proc_reauthenticate_complete on the new port. Answers the process with its
 * new process port (the old one is destroyed by proc).
 */
export async function reauthenticate(ph: ProcHurd, p: Proc, uids: number[]): Promise<Proc> {
  const handle = await authHandle(ph, uids);
  // Give the process the handle: startup (root) gets its task port from proc.
  const t = await ph.startup.proc.pid2task({ pid: p.pid });
  const task = portAt(t, t.task);
  const NAME = 0x40000000 + ++insertedNames;
  await ph.startup.task.insertRight(task, NAME, handle, MsgType.MSG_TYPE_MOVE_SEND);
  await ph.startup.task.deallocate(task);
  const newport = await userReauthenticate(p.task, NAME, (rv) => {
    const r = new Rights();
    return p.proc.reauthenticate({ rendezvous: r.makeSend(rv) }, { rights: r });
  });
  const np = client(p.task, ProcessDefinition, newport);
  await np.reauthenticateComplete({});
  // The first call on the new port is answered once proc has moved the
  // process there (it waits behind the completion): the new ids hold from here.
  await np.getpids({});
  return { ...p, port: newport, proc: np };
}

/** A child of `parent` whose ids are `uids` (fork, then reauthentication). */
export async function userProcess(ph: ProcHurd, parent: Proc, uids: number[], name = "user"): Promise<Proc & { taskInParent: number }> {
  const c = await ph.spawn(parent, name);
  const r = await reauthenticate(ph, c, uids);
  return { ...r, taskInParent: c.taskInParent };
}

/** Lets one-way messages (signals, newids) travel: a round trip to proc and back from `p`. */
export async function settle(p: Proc, rounds = 2): Promise<void> {
  for (let i = 0; i < rounds; i++) await p.proc.getpids({});
  await new Promise((r) => setTimeout(r, 10));
}

/** Wait options and signal numbers as the Hurd (glibc, BSD numbering) has them. */
export const W = { NOHANG: 1, UNTRACED: 2, STOPPED: 2, CONTINUED: 4, NOWAIT: 8, EXITED: 16 } as const;
export const SIG = { HUP: 1, INT: 2, KILL: 9, TERM: 15, STOP: 17, TSTP: 18, CONT: 19, CHLD: 20, USR1: 30 } as const;
export const CLD = { EXITED: 1, KILLED: 2, STOPPED: 5, CONTINUED: 6 } as const;
export const W_EXITCODE = (ret: number, sig: number) => ((ret & 0xff) << 8) | (sig & 0x7f);
export const W_STOPCODE = (sig: number) => ((sig & 0xff) << 8) | 0x7f;

/**
 * Binds pid 1 as startup does with proc_set_init_task: a fresh task becomes
 * init, attaches, and gets its process port (startup asks proc for it).
 */
export async function bindInit(ph: ProcHurd): Promise<Proc> {
  const st = ph.startup;
  const c = await st.task.taskCreate("init");
  const r = new Rights();
  await st.proc.setInitTask({ task: r.copySend(c.task) }, { rights: r });
  const r2 = new Rights();
  const t2p = await st.proc.task2proc({ task: r2.copySend(c.task) }, { rights: r2 });
  const task = await ph.h.attach(c.taskId, c.token);
  const NAME = 0x5000;
  await st.task.insertRight(c.task, NAME, portAt(t2p, t2p.proc), MsgType.MSG_TYPE_MOVE_SEND);
  return asProcess(task, NAME, true);
}

/**
 * proc's tables agree with each other: every process is where its pid, task
 * and task id say; parent and child links are mutual; pgrps hold exactly
 * their members and their orphan counts are right; every pid in use is
 * pinned. Throws on the first disagreement.
 */
export function assertConsistent(srv: ProcServer): void {
  const REAPED = 1 << 13;
  const procs = [...srv.byPid.values()];
  for (const [pid, p] of srv.byPid) {
    assert.equal(p.pid, pid, `byPid ${pid}`);
    assert.equal(p.flags & REAPED, 0, `pid ${pid} reaped but listed`);
    assert.ok(srv.pids.inUse(pid), `pid ${pid} not pinned`);
    if (p.task) assert.equal(srv.byTask.get(p.task), p, `byTask of pid ${pid}`);
    if (p.taskId && !p.dead) assert.equal(srv.byTaskId.get(p.taskId), p, `byTaskId of pid ${pid}`);
    for (const c of p.children()) {
      assert.equal(c.parent, p, `child ${c.pid} of ${pid}`);
      assert.equal(srv.byPid.get(c.pid), c, `child ${c.pid} of ${pid} listed`);
    }
    if (p.parent) {
      assert.equal(srv.byPid.get(p.parent.pid), p.parent, `parent of ${pid} listed`);
      assert.ok([...p.parent.children()].includes(p), `${pid} among its parent's children`);
    }
    if (p.pgrp) {
      assert.equal(srv.pgrps.get(p.pgrp.pgid), p.pgrp, `pgrp of ${pid}`);
      assert.ok(p.pgrp.members.has(p), `${pid} in its pgrp's members`);
    }
  }
  for (const p of srv.byTask.values()) assert.equal(srv.byPid.get(p.pid), p, `byTask entry ${p.pid} listed`);
  for (const [pgid, g] of srv.pgrps) {
    assert.equal(g.pgid, pgid);
    assert.ok(g.members.size > 0, `pgrp ${pgid} empty but kept`);
    assert.equal(srv.sessions.get(g.session.sid), g.session, `session of pgrp ${pgid}`);
    assert.ok(srv.pids.inUse(pgid), `pgid ${pgid} not pinned`);
    let linked = 0;
    for (const m of g.members) {
      assert.equal(m.pgrp, g, `member ${m.pid} of ${pgid}`);
      assert.ok(procs.includes(m), `member ${m.pid} of ${pgid} listed`);
      const par = m.parent;
      if (par && par.pgrp && par.pgrp !== g && par.pgrp.session === g.session) linked++;
    }
    assert.equal(g.linked, linked, `pgrp ${pgid} orphan count`);
  }
}

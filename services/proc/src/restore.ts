// proc restarted in place (issue 17): a new process of proc's task rebuilds
// the tables from the image its store holds (journal.ts wrote it) and finds
// its rights by name in its task's space, where the kernel kept them
// (services/kernel/src/reincarnation.ts). Nothing is copied from the old
// process and nothing is asked of the other servers: startup already has
// proc's ports and watches its task.
//
// What the dead process was doing is not in the image (the in-flight
// outcomes, README "What survives a crash"):
//  - a request still queued on one of proc's ports is answered by the new
//    process (late, not failed);
//  - a request the dead process had received but not answered (a blocked
//    proc_wait or proc_getmsgport among them) had its reply right in proc's
//    space: the kernel destroyed it when it lapsed the old process, so the
//    caller got MIG_SERVER_DIED; whether its changes were written is what
//    the store says (it was not answered, so no caller saw them);
//  - a reauthentication in progress fails (its port is destroyed here: the
//    user's rendezvous with auth ends, as if proc had refused it);
//  - notifications pushed to the dead process are lost with it: task deaths
//    and handles' last send rights going are asked of the kernel here, for
//    every process and handle, once; a new task proc missed the birth of
//    gets its process when it is first named (taskProcess), as a task whose
//    notice is still on its way does.
import { type Task } from "@hurdmesh/mach";
import { Handle, closeHandle, type HandleTable, type Owner } from "./handles.js";
import { processExited } from "./mgt.js";
import { links } from "./pgrp.js";
import { Login, NOIDS, P, Pgrp, Proc, Session, addChild } from "./proc.js";
import { HURD_PID_INIT, HURD_PID_KERNEL, HURD_PID_PROC, HURD_PID_STARTUP, type ProcServer } from "./server.js";
import { bytesOf, type ProcImage } from "./store.js";

const TYPE_SEND = 1 << 16;
const TYPE_RECEIVE = 1 << 17;
const TYPE_DEAD_NAME = 1 << 20;

/**
 * Builds srv's tables from `image` (no RPC is served yet: the task is held).
 * Nothing is marked for writing but what it had to repair: the image is
 * what the store holds.
 */
export function rebuild(srv: ProcServer, handles: HandleTable, image: ProcImage): void {
  const journal = srv.journal;
  const repaired: string[] = [];
  srv.journal = null;
  try {
    build(srv, handles, image, repaired);
  } finally {
    srv.journal = journal;
  }
  for (const key of repaired) {
    if (key[0] === "g") journal?.pgrp(Number(key.slice(1)));
    else if (key[0] === "s") journal?.session(Number(key.slice(1)));
    else journal?.proc(Number(key.slice(1)));
  }
}

/** `repaired`: the records a half-written image made it mend ("g<pgid>", "s<sid>", "p<pid>"), to be written back. */
function build(srv: ProcServer, handles: HandleTable, image: ProcImage, repaired: string[]): void {
  const logins = new Map<string, Login>([
    [srv.rootLogin.name, srv.rootLogin],
    [srv.noLogin.name, srv.noLogin],
  ]);
  const login = (name: string) => logins.get(name) ?? logins.set(name, new Login(name)).get(name)!;
  for (const [sid, r] of image.sessions) {
    const s = new Session(sid);
    s.sidport = r.sidport;
    srv.sessions.set(sid, s);
    srv.pids.pin(sid);
  }
  for (const [pgid, r] of image.pgrps) {
    const s = srv.sessions.get(r.sid);
    // A record half-written when the old process died (JetStream has no multi-key transaction): its session is the pgrp's own.
    const session = s ?? sessionFor(srv, r.sid, repaired);
    const g = new Pgrp(pgid, session);
    session.pgrps.add(g);
    srv.pgrps.set(pgid, g);
    srv.pids.pin(pgid);
  }
  // Processes first, then their relations by pid.
  for (const [pid, r] of image.procs) {
    const p = new Proc(pid, r.serial, login(r.login));
    p.flags = r.flags & ~P.REAPED;
    p.task = r.task;
    p.taskId = r.taskId;
    p.port = r.port;
    p.msgport = r.msgport;
    p.status = r.status;
    p.sigcode = r.sigcode;
    p.argvAddr = r.argvAddr;
    p.envpAddr = r.envpAddr;
    p.startCode = r.startCode;
    p.endCode = r.endCode;
    p.entry = r.entry;
    p.exe = r.exe;
    p.args = bytesOf(r.args);
    p.env = bytesOf(r.env);
    p.rusage = r.rusage;
    p.childRusage = r.childRusage;
    p.nsNotify = r.nsNotify;
    p.ns = r.ns;
    (p as { startMs: number }).startMs = r.startMs;
    srv.byPid.set(pid, p);
    srv.pids.pin(pid);
    if (p.task) srv.byTask.set(p.task, p);
    if (p.taskId) srv.byTaskId.set(p.taskId, p);
    srv.setUids(p, r.uids.length ? Object.freeze([...r.uids]) : NOIDS);
    if (p.port) srv.server.add(p.port, { kind: "proc", p });
  }
  for (const [pid, r] of image.procs) {
    const p = srv.byPid.get(pid)!;
    const parent = r.parent ? srv.byPid.get(r.parent) : undefined;
    // pid 1 is its own parent (none in the table), as makeBootProcesses has it.
    if (parent && parent !== p) addChild(parent, p);
    p.nsRoot = r.nsRoot ? (srv.byPid.get(r.nsRoot) ?? null) : null;
    const g = r.pgid ? (srv.pgrps.get(r.pgid) ?? pgrpFor(srv, r.pgid, pid, repaired)) : null;
    if (g) {
      p.pgrp = g;
      g.members.add(p);
    }
  }
  // A pgrp or session left with no member (its deletion was in the batch the old process died writing) goes.
  for (const g of [...srv.pgrps.values()]) {
    if (g.members.size) continue;
    srv.pgrps.delete(g.pgid);
    g.session.pgrps.delete(g);
    srv.pids.unpin(g.pgid);
    repaired.push(`g${g.pgid}`);
  }
  for (const ss of [...srv.sessions.values()]) {
    if (ss.pgrps.size) continue;
    srv.sessions.delete(ss.sid);
    srv.pids.unpin(ss.sid);
    repaired.push(`s${ss.sid}`);
  }
  // The orphan counts follow from the tree, once it is whole (no signals: nothing changed).
  for (const p of srv.byPid.values()) if (p.pgrp && links(p, p.pgrp)) p.pgrp.linked++;
  const idless = new Map<number, Proc>();
  for (const [port, r] of image.handles) {
    let owner: Owner;
    if ("uid" in r.owner) owner = r.owner.uid;
    else {
      const pid = r.owner.pid;
      // An id-less opener that is gone still counts as itself: a stand-in per pid.
      owner = srv.byPid.get(pid) ?? idless.get(pid) ?? idless.set(pid, new Proc(pid, 0, srv.noLogin)).get(pid)!;
    }
    const p = srv.byPid.get(r.pid);
    const live = p && p.serial === r.serial ? p : null;
    const h = new Handle(port, r.pid, r.serial, owner, live ?? new Proc(r.pid, r.serial, srv.noLogin));
    h.proc = live;
    h.ids = Object.freeze([...r.ids]);
    h.final = r.final;
    if (live) (live.handles ??= []).push(h);
    srv.pids.pin(r.pid);
    handles.add(h);
    srv.server.add(port, { kind: "handle", h });
  }
  const self = image.self;
  srv.pids.position = self.pidNext;
  srv.serialCount = self.serials;
  srv.notifyPort = self.notifyPort;
  srv.authPort = self.authPort;
  srv.hostPriv = self.hostPriv;
  srv.deviceMaster = self.deviceMaster;
  if (image.host) {
    const d = srv.hostData;
    d.execPorts = image.host.execPorts;
    d.execInts = image.host.execInts;
    d.notifiers.push(...image.host.notifiers);
    for (const [k, v] of image.host.versions) d.versions.set(k, v);
  }
  srv.init = srv.byPid.get(HURD_PID_INIT)!;
  srv.startup = srv.byPid.get(HURD_PID_STARTUP)!;
  srv.kernelProc = srv.byPid.get(HURD_PID_KERNEL)!;
  srv.self = srv.byPid.get(HURD_PID_PROC)!;
  if (!srv.init || !srv.startup || !srv.kernelProc || !srv.self) throw new Error("proc's store holds no boot processes: not an image of a booted proc");
}

function sessionFor(srv: ProcServer, sid: number, repaired: string[]): Session {
  const s = new Session(sid);
  srv.sessions.set(sid, s);
  srv.pids.pin(sid);
  repaired.push(`s${sid}`);
  return s;
}

/** A pgrp a process names that its record did not make it for (see sessionFor): in a session of its own id. */
function pgrpFor(srv: ProcServer, pgid: number, pid: number, repaired: string[]): Pgrp {
  const s = srv.sessions.get(pgid) ?? sessionFor(srv, pgid, repaired);
  const g = new Pgrp(pgid, s);
  s.pgrps.add(g);
  srv.pgrps.set(pgid, g);
  srv.pids.pin(pgid);
  repaired.push(`g${pgid}`, `p${pid}`);
  return g;
}

/**
 * What the dead process may have missed, asked of the kernel once: a task
 * whose name is a dead name died (its process exits now, as at its death
 * notice); a handle port with no send right left was closed; a receive
 * right the image does not know (the old process's port pool, a
 * reauthentication's port) is destroyed, as no caller holds a send right
 * to it that proc answers for.
 */
export async function reconcile(srv: ProcServer, handles: HandleTable, task: Task): Promise<{ exited: number; closed: number; destroyed: number }> {
  const { names, types } = await task.names();
  const type = new Map<number, number>();
  for (let i = 0; i < names.length; i++) type.set(names[i]!, types[i]!);
  const known = new Set<number>([srv.notifyPort, task.self, task.bootstrap]);
  for (const p of srv.byPid.values()) if (p.port) known.add(p.port);
  for (const s of srv.sessions.values()) if (s.sidport) known.add(s.sidport);
  for (const port of handles.byPort.keys()) known.add(port);
  let exited = 0;
  let closed = 0;
  let destroyed = 0;
  for (const p of [...srv.byPid.values()]) {
    if (p.dead || !p.task || p === srv.self) continue;
    const t = type.get(p.task);
    if (t === undefined || (t & TYPE_DEAD_NAME) !== 0 || (t & TYPE_SEND) === 0) {
      processExited(srv, p);
      exited++;
    }
  }
  // One kernel call per handle, a window's worth at a time, once per restart.
  const ports = [...handles.byPort.values()];
  for (let i = 0; i < ports.length; i += task.window) {
    await Promise.all(
      ports.slice(i, i + task.window).map(async (h) => {
        const st = await task.call("portGetReceiveStatus", { name: h.port }).catch(() => null);
        if (st === null || !st.srights) {
          closeHandle(srv, handles, h);
          closed++;
        }
      }),
    );
  }
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    if (types[i]! & TYPE_RECEIVE && !known.has(n)) {
      await task.destroy(n).catch(() => {});
      destroyed++;
    }
  }
  return { exited, closed, destroyed };
}

// Sessions and process groups (pgrp.c): joining and leaving them, the
// orphan count POSIX job control needs, and the RPCs on them.
import { Errno, HurdError, SIG, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { newids, postSignal } from "./msg.js";
import { P, Pgrp, Session, addChild, removeChild, type Proc } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

/**
 * The change of pgrp or parent in progress. A move is a leave then a join
 * (or an unlink then a relink): link counts pass through 0 on the way when a
 * link moves from one member to another, e.g. when a process joins its
 * parent's pgrp and its own children's links take over. Only a pgrp still at
 * 0 once the change is complete became orphaned.
 */
export class PgrpChange {
  active = false;
  /** Pgrps whose link count fell to 0 during the change; made only when one does. */
  maybeOrphaned: Set<Pgrp> | null = null;
}

/** The session `sid`, made (and its pid pinned) on first use: new_session. */
export function sessionOf(srv: ProcServer, sid: number): Session {
  let s = srv.sessions.get(sid);
  if (!s) {
    s = new Session(sid);
    srv.sessions.set(sid, s);
    srv.journal?.session(sid);
    srv.pids.pin(sid);
  }
  return s;
}

/** The pgrp `pgid` of `session`, made (and its pid pinned) on first use: new_pgrp. */
export function pgrpOf(srv: ProcServer, pgid: number, session: Session): Pgrp {
  let g = srv.pgrps.get(pgid);
  if (!g) {
    g = new Pgrp(pgid, session);
    session.pgrps.add(g);
    srv.pgrps.set(pgid, g);
    srv.journal?.pgrp(pgid);
    srv.pids.pin(pgid);
  }
  return g;
}

/** Whether p counts toward its pgrp's "not orphaned" total (POSIX: a parent in another pgrp of the session). */
export function links(p: Proc, g: Pgrp): boolean {
  const par = p.parent;
  // Not "and the parent is alive": this must answer the same when a link is
  // counted and when it is uncounted, and a dying parent's children are
  // uncounted (reparented) after it is marked dead. A dead process has no
  // children left, so nothing is counted for a zombie parent.
  return !!par && par.pgrp !== null && par.pgrp !== g && par.pgrp.session === g.session;
}

/** join_pgrp: p leaves its pgrp for g. */
export function joinPgrp(srv: ProcServer, p: Proc, g: Pgrp): void {
  if (p.pgrp === g) return;
  srv.touch(p);
  change(srv, () => {
    if (p.pgrp) leavePgrp(srv, p);
    p.pgrp = g;
    g.members.add(p);
    if (links(p, g)) g.linked++;
    relinkChildren(srv, p, +1);
  });
}

/** leave_pgrp: an empty pgrp is freed, and with its session's last pgrp the session. */
export function leavePgrp(srv: ProcServer, p: Proc): void {
  const g = p.pgrp;
  if (!g) return;
  srv.touch(p);
  change(srv, () => {
    relinkChildren(srv, p, -1);
    const linked = links(p, g);
    // p is no member of g by the time g's orphan status is judged: the
    // process that leaves is not hung up with the group it left.
    g.members.delete(p);
    p.pgrp = null;
    if (linked) unlink(srv, g);
    if (g.members.size === 0) {
      srv.pgrps.delete(g.pgid);
      srv.journal?.pgrp(g.pgid);
      g.session.pgrps.delete(g);
      srv.pids.unpin(g.pgid);
      if (g.session.pgrps.size === 0) {
        srv.sessions.delete(g.session.sid);
        srv.journal?.session(g.session.sid);
        if (g.session.sidport) srv.destroyPort(g.session.sidport);
        srv.pids.unpin(g.session.sid);
      }
    }
  });
}

/** Moves p under a new parent (reparenting to init or a namespace root). */
export function reparent(srv: ProcServer, p: Proc, parent: Proc): void {
  srv.touch(p);
  change(srv, () => {
    const g = p.pgrp;
    if (g && links(p, g)) unlink(srv, g);
    removeChild(p);
    addChild(parent, p);
    if (g && links(p, g)) g.linked++;
  });
}

/** p's own pgrp changes: its children's links to their pgrps are recounted. */
function relinkChildren(srv: ProcServer, p: Proc, sign: 1 | -1): void {
  for (let c = p.firstChild; c; c = c.nextSibling) {
    const cg = c.pgrp;
    if (!cg || !links(c, cg)) continue;
    if (sign > 0) cg.linked++;
    else unlink(srv, cg);
  }
}

/** Runs one change of pgrp or parent, then judges orphaning (see PgrpChange). */
function change(srv: ProcServer, fn: () => void): void {
  const c = srv.pgrpChange;
  if (c.active) return fn();
  c.active = true;
  try {
    fn();
  } finally {
    c.active = false;
    // Made only when a count fell to 0: every process creation and reaping passes here.
    const set = c.maybeOrphaned;
    c.maybeOrphaned = null;
    if (set) for (const g of set) if (g.linked === 0 && g.members.size > 0) newlyOrphaned(srv, g);
  }
}

function unlink(srv: ProcServer, g: Pgrp): void {
  if (--g.linked === 0 && g.members.size > 0) {
    const c = srv.pgrpChange;
    if (c.active) (c.maybeOrphaned ??= new Set()).add(g);
    else newlyOrphaned(srv, g);
  }
}

/**
 * A pgrp just became orphaned: everyone hears its new status, and if any
 * member is stopped, every member gets SIGHUP then SIGCONT (POSIX).
 */
function newlyOrphaned(srv: ProcServer, g: Pgrp): void {
  let stopped = false;
  for (const m of g.members) {
    newids(srv, m);
    if (m.has(P.STOPPED)) stopped = true;
  }
  if (!stopped) return;
  for (const m of g.members) {
    postSignal(srv, m, SIG.HUP, 0, m);
    postSignal(srv, m, SIG.CONT, 0, m);
  }
}

export function pgrp(srv: ProcServer): H {
  return {
    /** proc_setsid (24042): EPERM for a pgrp leader or when a pgrp with the caller's pid exists. */
    setsid(_req, ctx) {
      const p = srv.caller(ctx);
      if (p.pgrp?.pgid === p.pid || srv.pgrps.has(p.pid)) throw new HurdError(Errno.EPERM, "already a process group leader");
      const s = sessionOf(srv, p.pid);
      joinPgrp(srv, p, pgrpOf(srv, p.pid, s));
      newids(srv, p);
      return {};
    },

    /** proc_getsid (24043). */
    getsid(req, ctx) {
      srv.caller(ctx);
      return { sid: srv.pidFind(req.pid).pgrp?.session.sid ?? 0 };
    },

    /** proc_getsessionpgids (24044). */
    getsessionpgids(req, ctx) {
      srv.caller(ctx);
      const s = srv.sessions.get(req.sid);
      if (!s) throw new HurdError(Errno.ESRCH, `no session ${req.sid}`);
      return { pids: [...s.pgrps].map((g) => g.pgid) };
    },

    /** proc_getsessionpids (24045). */
    getsessionpids(req, ctx) {
      srv.caller(ctx);
      const s = srv.sessions.get(req.sid);
      if (!s) throw new HurdError(Errno.ESRCH, `no session ${req.sid}`);
      const pids: number[] = [];
      for (const g of s.pgrps) for (const m of g.members) pids.push(m.pid);
      return { pids };
    },

    /** proc_getsidport (24046): one never-listened port per session, a signal refport for SIGCONT. */
    async getsidport(_req, ctx) {
      const p = srv.caller(ctx);
      const s = p.pgrp?.session;
      if (!s) throw new HurdError(Errno.ESRCH, "no session");
      if (!s.sidport) {
        const port = await srv.newPort();
        if (s.sidport) srv.destroyPort(port);
        else {
          s.sidport = port;
          srv.journal?.session(s.sid);
        }
      }
      return { sessport: ctx.reply.makeSend(s.sidport) };
    },

    /**
     * proc_setpgrp (24047): the target is the caller or its child, in the
     * caller's session; an exec'd child refuses (EACCES); pgid 0 means the
     * target's pid.
     */
    setpgrp(req, ctx) {
      const c = srv.caller(ctx);
      const t = req.pid === 0 ? c : srv.byPid.get(req.pid);
      if (!t || (t !== c && t.parent !== c)) throw new HurdError(Errno.ESRCH, `pid ${req.pid} is neither the caller nor its child`);
      if (t !== c && t.has(P.EXEC)) throw new HurdError(Errno.EACCES, "the child has exec'd");
      const pgid = req.pgrp === 0 ? t.pid : req.pgrp;
      if (pgid < 0) throw new HurdError(Errno.EINVAL, `pgid ${pgid}`);
      const session = c.pgrp?.session;
      if (!session || !t.pgrp) throw new HurdError(Errno.EPERM, "no session");
      if (t.pgrp.session.sid === t.pid) throw new HurdError(Errno.EPERM, "a session leader keeps its pgrp");
      if (t.pgrp.session !== session) throw new HurdError(Errno.EPERM, "the target is in another session");
      const g = srv.pgrps.get(pgid);
      if (pgid !== t.pid && (!g || g.session !== session)) throw new HurdError(Errno.EPERM, `no pgrp ${pgid} in this session`);
      if (g && g.session !== session) throw new HurdError(Errno.EPERM, `pgrp ${pgid} is in another session`);
      joinPgrp(srv, t, g ?? pgrpOf(srv, pgid, session));
      newids(srv, t);
      return {};
    },

    /** proc_getpgrp (24048). */
    getpgrp(req, ctx) {
      srv.caller(ctx);
      return { pgrp: srv.pidFind(req.pid).pgrp?.pgid ?? 0 };
    },

    /**
     * proc_getpgrppids (24049): pgid 0 is the caller's (the Hurd crashes on an
     * unknown caller here; hurdmesh answers EOPNOTSUPP). Important processes
     * are skipped: that keeps kill(0)/kill(-pg) away from the system servers.
     */
    getpgrppids(req, ctx) {
      const c = srv.caller(ctx);
      const g = req.pgrp === 0 ? c.pgrp : srv.pgrps.get(req.pgrp);
      if (!g) throw new HurdError(Errno.ESRCH, `no pgrp ${req.pgrp}`);
      const pids: number[] = [];
      // Nested hurds' processes are not reached by a group kill from this one either.
      for (const m of g.members) if (!m.has(P.IMPORTANT) && !m.dead && m.ns === 0) pids.push(m.pid);
      return { pids };
    },
  };
}

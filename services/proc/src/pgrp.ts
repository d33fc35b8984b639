// Sessions and process groups (pgrp.c).
import { Errno, HurdError, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { P } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

export function pgrp(srv: ProcServer): H {
  const proc = (pid: number) => {
    const p = srv.byPid.get(pid);
    if (!p) throw new HurdError(Errno.ESRCH, `no pid ${pid}`);
    return p;
  };
  return {
    /** proc_setsid (24042): EPERM for a pgrp leader or when a pgrp with the caller's pid exists. */
    setsid(_req, ctx) {
      const p = srv.caller(ctx);
      if (p.pgrp?.pgid === p.pid || srv.pgrps.has(p.pid)) throw new HurdError(Errno.EPERM, "already a process group leader");
      const s = srv.sessionOf(p.pid);
      srv.joinPgrp(p, srv.pgrpOf(p.pid, s));
      srv.newids(p);
      return {};
    },

    getsid(req, ctx) {
      srv.caller(ctx);
      const p = proc(req.pid);
      return { sid: p.pgrp?.session.sid ?? 0 };
    },

    getsessionpgids(req, ctx) {
      srv.caller(ctx);
      const s = srv.sessions.get(req.sid);
      if (!s) throw new HurdError(Errno.ESRCH, `no session ${req.sid}`);
      return { pids: [...s.pgrps].map((g) => g.pgid) };
    },

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
        else s.sidport = port;
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
      srv.joinPgrp(t, g ?? srv.pgrpOf(pgid, session));
      srv.newids(t);
      return {};
    },

    getpgrp(req, ctx) {
      srv.caller(ctx);
      return { pgrp: proc(req.pid).pgrp?.pgid ?? 0 };
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

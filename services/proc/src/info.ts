// Information for ps and top (info.c), login collections, and hurdmesh's
// batched proc_getallprocinfo: one page of thousands of processes per call.
import { Errno, HurdError, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition, ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { P, checkUid, isOrphaned, type Proc } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

/** procinfo flags. */
export const PI_FETCH_TASKINFO = 0x1;
export const PI_FETCH_THREADS = 0x2;
export const PI_FETCH_THREAD_BASIC = 0x4;
export const PI_FETCH_THREAD_SCHED = 0x8;
export const PI_FETCH_THREAD_WAITS = 0x10;
export const PI_FETCH_TASKEVENTS = 0x20;

/** procinfo state bits. */
export const PI = {
  STOPPED: 0x1,
  EXECED: 0x2,
  WAITING: 0x4,
  ORPHAN: 0x8,
  NOMSG: 0x10,
  SESSLD: 0x20,
  NOTOWNED: 0x40,
  NOPARENT: 0x80,
  ZOMBIE: 0x100,
  TRACED: 0x200,
  GETMSG: 0x400,
  LOGINLD: 0x800,
} as const;

function state(srv: ProcServer, p: Proc): number {
  let s = 0;
  if (p.has(P.STOPPED)) s |= PI.STOPPED;
  if (p.has(P.EXEC)) s |= PI.EXECED;
  if (p.waiters?.length) s |= PI.WAITING;
  if (isOrphaned(p)) s |= PI.ORPHAN;
  if (!p.msgport) s |= PI.NOMSG;
  if (p.pgrp?.session.sid === p.pid) s |= PI.SESSLD;
  if (p.uids.length === 0) s |= PI.NOTOWNED;
  if (!p.has(P.PARENTSET)) s |= PI.NOPARENT;
  // The Hurd never sets ZOMBIE; ps has to guess. hurdmesh says so.
  if (p.dead) s |= PI.ZOMBIE;
  if (p.has(P.TRACED)) s |= PI.TRACED;
  if (p.has(P.LOGINLEADER)) s |= PI.LOGINLD;
  return s;
}

const dec = new TextDecoder();

/** The argument vector as ps shows it (NULs as spaces, bounded), or the exe path. */
function command(p: Proc): string {
  if (p.args && p.args.length) {
    const a = p.args.length > 512 ? p.args.subarray(0, 512) : p.args;
    return dec.decode(a[a.length - 1] === 0 ? a.subarray(0, a.length - 1) : a).replaceAll("\0", " ");
  }
  return p.exe;
}

export function procinfo(srv: ProcServer, p: Proc): ProcInfo {
  return {
    pid: p.pid,
    state: state(srv, p),
    owner: p.uids[0] ?? 0,
    ppid: p.parent?.pid ?? p.pid,
    pgrp: p.pgrp?.pgid ?? 0,
    session: p.pgrp?.session.sid ?? 0,
    logincollection: loginLeader(p)?.pid ?? 0,
    exitstatus: p.status,
    sigcode: p.sigcode,
    nthreads: 0,
    serial: p.serial,
    taskId: p.taskId,
    portNames: 0,
    messagesSent: 0,
    messagesReceived: 0,
    startMs: p.startMs,
    command: command(p),
    exe: p.exe,
    owned: p.uids.length > 0,
    namespaceId: p.ns,
    rusage: undefined,
  };
}

function loginLeader(p: Proc): Proc | null {
  for (let q: Proc | null = p; q; q = q.parent === q ? null : q.parent) if (q.has(P.LOGINLEADER)) return q;
  return null;
}

/** Joins strings NUL-separated, bounded in total size. */
function nulVector(strings: string[], max: number): Uint8Array {
  const enc = new TextEncoder();
  const parts = strings.map((s) => enc.encode(s));
  const n = parts.reduce((a, b) => a + b.length + 1, 0);
  if (n > max) throw new HurdError(Errno.E2BIG, `${n} bytes of arguments, at most ${max}`);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length + 1;
  }
  return out;
}

/**
 * Fills in task_info for the processes of `procs` whose task right proc
 * holds (a nested hurd's task proc knows by id only is left at zero, rather
 * than asking the kernel for a right to each), a bounded number at a time.
 */
async function addTaskInfo(srv: ProcServer, procs: ProcInfo[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < procs.length) {
      const pi = procs[next++]!;
      const p = srv.byPid.get(pi.pid);
      if (!p || p.dead || !p.task) continue;
      try {
        const ti = await srv.task.taskInfo(p.task);
        pi.portNames = ti.portNames;
        pi.messagesSent = ti.messagesSent;
        pi.messagesReceived = ti.messagesReceived;
      } catch {
        // Ended meanwhile: its counts stay zero, as a zombie's.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(srv.config.taskInfoInFlight, procs.length) }, worker));
}

export function info(srv: ProcServer): H {
  return {
    /** proc_getallpids (24005): live processes only; no task enumeration, discovery is by notification. */
    getallpids(_req, ctx) {
      srv.caller(ctx);
      const pids: number[] = [];
      for (const p of srv.byPid.values()) if (!p.dead) pids.push(p.pid);
      return { pids };
    },

    /** proc_getprocinfo (24034); flags for parts that hurdmesh cannot fetch are cleared on return. */
    async getprocinfo(req, ctx) {
      srv.caller(ctx);
      const p = srv.pidFind(req.which);
      const pi = procinfo(srv, p);
      let flags = req.flags & PI_FETCH_TASKINFO;
      if (flags & PI_FETCH_TASKINFO) {
        const task = p.dead ? 0 : await srv.taskOf(p);
        if (task) {
          try {
            const ti = await srv.task.taskInfo(task);
            pi.portNames = ti.portNames;
            pi.messagesSent = ti.messagesSent;
            pi.messagesReceived = ti.messagesReceived;
          } catch {
            flags &= ~PI_FETCH_TASKINFO;
          }
        } else flags &= ~PI_FETCH_TASKINFO;
      }
      return { flags, procinfo: pi, threadwaits: new Uint8Array(0) };
    },

    /**
     * hurdmesh proc_getallprocinfo (24304): a page of procinfo, in pid order
     * from start_pid. PI_FETCH_TASKINFO adds the kernel's task_info (port
     * names, messages sent and received: top's activity) for the processes
     * whose task proc holds; it costs a kernel call per process, so only top
     * and ps -o with those columns ask.
     */
    async getallprocinfo(req, ctx) {
      srv.caller(ctx);
      const max = Math.min(req.max || srv.config.maxPage, srv.config.maxPage);
      const start = Math.max(1, req.startPid);
      const procs: ProcInfo[] = [];
      // Pids are allocated in rising order but wrap: sort the candidates once per page.
      const pids: number[] = [];
      for (const pid of srv.byPid.keys()) if (pid >= start) pids.push(pid);
      pids.sort((a, b) => a - b);
      for (let i = 0; i < pids.length && procs.length < max; i++) procs.push(procinfo(srv, srv.byPid.get(pids[i]!)!));
      const nextPid = pids.length > max ? pids[max]! : 0;
      if (req.flags & PI_FETCH_TASKINFO) await addTaskInfo(srv, procs);
      return { procs, nextPid };
    },

    /** proc_getprocargs (24035): what the process registered (no permission check, as in the Hurd). */
    getprocargs(req, ctx) {
      srv.caller(ctx);
      return { data: srv.pidFind(req.pid).args ?? new Uint8Array(0) };
    },

    /** proc_getprocenv (24036). */
    getprocenv(req, ctx) {
      srv.caller(ctx);
      return { data: srv.pidFind(req.pid).env ?? new Uint8Array(0) };
    },

    /** hurdmesh proc_setprocargs (24305): argv and envp, since proc cannot read task memory here. */
    setprocargs(req, ctx) {
      const p = srv.caller(ctx);
      p.args = nulVector(req.argv, srv.config.maxArgsBytes);
      p.env = nulVector(req.envp, srv.config.maxArgsBytes);
      return {};
    },

    /** proc_make_login_coll (24037). */
    makeLoginColl(_req, ctx) {
      srv.caller(ctx).flags |= P.LOGINLEADER;
      return {};
    },

    /** proc_getloginid (24038). */
    getloginid(req, ctx) {
      srv.caller(ctx);
      return { loginId: loginLeader(srv.pidFind(req.pid))?.pid ?? 0 };
    },

    /** proc_getloginpids (24039): breadth-first from the leader, stopping at other leaders. */
    getloginpids(req, ctx) {
      srv.caller(ctx);
      const l = srv.pidFind(req.id);
      if (!l.has(P.LOGINLEADER)) throw new HurdError(Errno.ESRCH, `pid ${req.id} leads no login collection`);
      const pids: number[] = [];
      const queue: Proc[] = [l];
      for (let i = 0; i < queue.length; i++) {
        const q = queue[i]!;
        pids.push(q.pid);
        for (let c = q.firstChild; c; c = c.nextSibling) if (!c.has(P.LOGINLEADER) && c !== q) queue.push(c);
      }
      return { pids };
    },

    /** proc_setlogin (24040): root only. */
    setlogin(req, ctx) {
      const p = srv.caller(ctx);
      if (!checkUid(p, 0)) throw new HurdError(Errno.EPERM, "only root sets the login name");
      if (req.logname.length > 256) throw new HurdError(Errno.EINVAL, "login name longer than 256");
      p.login = new (srv.rootLogin.constructor as new (n: string) => typeof srv.rootLogin)(req.logname);
      return {};
    },

    /** proc_getlogin (24041). */
    getlogin(_req, ctx) {
      return { logname: srv.caller(ctx).login.name };
    },

    /** proc_get_tty (24050): unimplemented in the Hurd too. */
    getTty(_req, ctx) {
      srv.caller(ctx);
      throw new HurdError(Errno.EOPNOTSUPP, "proc_get_tty is not implemented (nor in the Hurd)");
    },

    /** proc_getnports (24051). */
    async getnports(req, ctx) {
      srv.caller(ctx);
      const p = srv.pidFind(req.pid);
      const task = p.dead ? 0 : await srv.taskOf(p);
      if (!task) throw new HurdError(Errno.ESRCH, `pid ${req.pid} has no task`);
      return { nports: (await srv.task.taskInfo(task)).portNames };
    },
  };
}

// proc_wait / proc_waitid (wait.c): which child is reportable, reaping, and
// callers that block until one is.
import { Errno, HurdError, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED, W_CONTINUED } from "@hurdmesh/mach";
import { P, type Proc, type Rusage } from "./proc.js";
import type { ProcServer } from "./server.js";

export interface WaitResult {
  status: number;
  sigcode: number;
  rusage: Rusage | undefined;
  pidStatus: number;
}

export interface Waiter {
  pid: number;
  options: number;
  resolve(r: WaitResult): void;
  reject(e: Error): void;
}

const ZERO: Rusage = { utimeUs: 0, stimeUs: 0, maxrssKb: 0, msgsnd: 0, msgrcv: 0 };

/** Whether child c matches the pid argument of a wait by parent w. */
function matches(w: Proc, c: Proc, pid: number): boolean {
  if (pid > 0) return c.pid === pid;
  if (pid === 0) return c.pgrp === w.pgrp;
  if (pid === -1) return true;
  return c.pgrp?.pgid === -pid;
}

/** A child is reportable if not yet waited and dead, stopped (traced or WUNTRACED), or continued (WCONTINUED). */
function reportable(c: Proc, options: number): boolean {
  if (c.has(P.WAITED)) return false;
  if (c.dead) return (options & WEXITED) !== 0;
  if (c.has(P.STOPPED)) return (options & WUNTRACED) !== 0 || c.has(P.TRACED);
  if (c.has(P.CONTINUED)) return (options & WCONTINUED) !== 0;
  return false;
}

/** Reports child c to its parent, consuming the report (and the zombie) unless WNOWAIT. */
function report(srv: ProcServer, c: Proc, options: number): WaitResult {
  const r: WaitResult = {
    status: c.has(P.CONTINUED) && !c.dead && !c.has(P.STOPPED) ? W_CONTINUED : c.status,
    sigcode: c.sigcode,
    rusage: c.dead ? (c.rusage ?? ZERO) : ZERO,
    pidStatus: c.pid,
  };
  if (!(options & WNOWAIT)) {
    if (c.dead) {
      const parent = c.parent;
      if (parent) {
        parent.childRusage = addRusage(parent.childRusage, c.rusage, c.childRusage);
        srv.touch(parent);
      }
      srv.reap(c);
    } else {
      c.flags |= P.WAITED;
      c.flags &= ~P.CONTINUED;
      srv.touch(c);
    }
  }
  return r;
}

export function addRusage(a: Rusage | null, ...more: (Rusage | null)[]): Rusage {
  const r = { ...(a ?? ZERO) };
  for (const m of more) {
    if (!m) continue;
    r.utimeUs += m.utimeUs;
    r.stimeUs += m.stimeUs;
    r.maxrssKb = Math.max(r.maxrssKb, m.maxrssKb);
    r.msgsnd += m.msgsnd;
    r.msgrcv += m.msgrcv;
  }
  return r;
}

/**
 * proc_waitid: reports a ready child now, or blocks (deferred reply) until
 * one changes state; WNOHANG with nothing ready is EWOULDBLOCK.
 */
export function waitid(srv: ProcServer, w: Proc, pid: number, options: number): WaitResult | Promise<WaitResult> {
  if (!(options & (WEXITED | WUNTRACED | WCONTINUED))) throw new HurdError(Errno.EINVAL, "waitid needs WEXITED, WSTOPPED or WCONTINUED");
  if (!w.firstChild) throw new HurdError(Errno.ECHILD, "no children");
  let any = false;
  for (let c: Proc | null = w.firstChild; c; c = c.nextSibling) {
    if (!matches(w, c, pid)) continue;
    any = true;
    if (reportable(c, options)) return report(srv, c, options);
  }
  if (!any && pid !== 0) throw new HurdError(Errno.ECHILD, `no child matches ${pid}`);
  if (options & WNOHANG) throw new HurdError(Errno.EAGAIN, "no child has changed state (WNOHANG)");
  const list = (w.waiters ??= []);
  if (list.length >= srv.config.maxWaitersPerProcess) throw new HurdError(Errno.EAGAIN, `${list.length} waits already pending`);
  return new Promise<WaitResult>((resolve, reject) => list.push({ pid, options, resolve, reject }));
}

/** Child c changed state: wakes a parent's waiter that it satisfies. */
export function childChanged(srv: ProcServer, c: Proc): void {
  const w = c.parent;
  if (!w?.waiters) return;
  for (let i = 0; i < w.waiters.length; i++) {
    const x = w.waiters[i]!;
    if (!matches(w, c, x.pid) || !reportable(c, x.options)) continue;
    w.waiters.splice(i, 1);
    x.resolve(report(srv, c, x.options));
    return;
  }
}

/** The waiting process died: its pending waits fail as the Hurd's do. */
export function failWaiters(p: Proc): void {
  const ws = p.waiters;
  p.waiters = null;
  for (const x of ws ?? []) x.reject(new HurdError(Errno.EOPNOTSUPP, "the waiting process died"));
}

/** A wait for pid/-pgrp that matched no child anymore (children reparented away): ECHILD. */
export function recheckWaiters(p: Proc): void {
  if (!p.waiters) return;
  for (let i = p.waiters.length - 1; i >= 0; i--) {
    const x = p.waiters[i]!;
    let any = false;
    // One match is enough: this runs at every child's exit, for every pending wait.
    for (let c: Proc | null = p.firstChild; c && !any; c = c.nextSibling) if (matches(p, c, x.pid)) any = true;
    if (!any && x.pid !== 0) {
      p.waiters.splice(i, 1);
      x.reject(new HurdError(Errno.ECHILD, `no child matches ${x.pid}`));
    }
  }
}

type H = import("@hurdmesh/mach").Impl<typeof import("@hurdmesh/proto/hurd/process/v1/process").ProcessDefinition, import("./server.js").PortObject>;

function toReply(r: WaitResult) {
  return { status: r.status, sigcode: r.sigcode, rusage: r.rusage, pidStatus: r.pidStatus };
}

export function waits(srv: ProcServer): H {
  return {
    /** proc_wait (24020): proc_waitid with WEXITED forced. */
    async wait(req, ctx) {
      return toReply(await waitid(srv, srv.caller(ctx), req.pid, req.options | WEXITED));
    },
    /** proc_waitid (24062). */
    async waitid(req, ctx) {
      return toReply(await waitid(srv, srv.caller(ctx), req.pid, req.options));
    },
  };
}

// Process handles (hurdmesh's answer to the seed's "no reliable killall"):
// a handle is a port of proc's bound to one incarnation of one process. It
// pins the pid, so the pid cannot be reused while the handle lives, and it
// can only ever reach the incarnation it was opened on. The last send right
// going away (no-senders, also when the holder task dies) releases the pin.
import { Errno, HurdError, NotifyId } from "@hurdmesh/mach";
import { P, checkOwner, type Proc } from "./proc.js";
import type { ProcServer } from "./server.js";
import type { WaitResult } from "./wait.js";

export class Handle {
  /** The process while it is in the table; null once reaped. */
  proc: Proc | null;
  /** The status it ended with, once known (for waits after reaping). */
  final: WaitResult | null = null;
  exitWaiters: Array<(r: WaitResult) => void> | null = null;
  /**
   * The opener's ids when it opened the handle. A signal is checked against
   * them again when it is sent, as pidfd_send_signal checks kill permission
   * at send time: a process that reauthenticated to ids its opener lacks is
   * out of the handle's reach (waits and getpid stay allowed).
   */
  ids: readonly number[] = [];
  constructor(
    readonly port: number,
    readonly pid: number,
    readonly serial: number,
    readonly owner: Owner,
    p: Proc,
  ) {
    this.proc = p;
  }

  /** The process was reaped: remember how it ended, wake exit waiters. */
  released(p: Proc): void {
    this.proc = null;
    this.final = { status: p.status, sigcode: p.sigcode, rusage: p.rusage ?? undefined, pidStatus: p.pid };
    for (const w of this.exitWaiters ?? []) w(this.final);
    this.exitWaiters = null;
  }

  /** The process died (zombie): waiters that are not its parent learn it now. */
  died(p: Proc): void {
    const r: WaitResult = { status: p.status, sigcode: p.sigcode, rusage: p.rusage ?? undefined, pidStatus: p.pid };
    this.final = r;
    for (const w of this.exitWaiters ?? []) w(r);
    this.exitWaiters = null;
  }
}

/**
 * Who a handle counts against: the opener's uid, or, for a process with no
 * ids, that process itself (a bucket of its own, not one every id-less
 * process shares).
 */
export type Owner = number | Proc;

/** Open handles per owner, for the quota. */
export class HandleTable {
  readonly byPort = new Map<number, Handle>();
  private readonly perOwner = new Map<Owner, number>();

  count(owner: Owner): number {
    return this.perOwner.get(owner) ?? 0;
  }

  add(h: Handle): void {
    this.byPort.set(h.port, h);
    this.perOwner.set(h.owner, this.count(h.owner) + 1);
  }

  remove(h: Handle): void {
    if (!this.byPort.delete(h.port)) return;
    const n = this.count(h.owner) - 1;
    if (n <= 0) this.perOwner.delete(h.owner);
    else this.perOwner.set(h.owner, n);
  }
}

export function ownerOf(p: Proc): Owner {
  return p.uids.length ? p.uids[0]! : p;
}

function ownerName(o: Owner): string {
  return typeof o === "number" ? `uid ${o}` : `pid ${o.pid} (no ids)`;
}

/** proc_pid_open: checks ownership and quota, pins the pid, makes the handle port. */
export async function pidOpen(srv: ProcServer, table: HandleTable, caller: Proc, pid: number, serial: number): Promise<Handle> {
  const p = srv.pidFind(pid);
  if (serial && p.serial !== serial) throw new HurdError(Errno.ESRCH, `pid ${pid} is not incarnation ${serial}`);
  if (!checkOwner(caller, p)) throw new HurdError(Errno.EPERM, `pid ${pid} belongs to someone else`);
  const owner = ownerOf(caller);
  if (table.count(owner) >= srv.config.handleQuota) throw new HurdError(Errno.EDQUOT, `${ownerName(owner)} holds ${srv.config.handleQuota} handles`);
  const port = await srv.newPort();
  if (p.has(P.REAPED)) {
    srv.destroyPort(port);
    throw new HurdError(Errno.ESRCH, `pid ${pid} was reaped meanwhile`);
  }
  if (table.count(owner) >= srv.config.handleQuota) {
    srv.destroyPort(port);
    throw new HurdError(Errno.EDQUOT, `${ownerName(owner)} holds ${srv.config.handleQuota} handles`);
  }
  const h = new Handle(port, p.pid, p.serial, owner, p);
  h.ids = caller.uids;
  srv.pids.pin(p.pid);
  (p.handles ??= []).push(h);
  if (p.dead) h.died(p);
  table.add(h);
  srv.journal?.handle(port);
  srv.touch(p);
  srv.server.add(port, { kind: "handle", h });
  // sync 1: fires once the send right made for the reply is gone.
  await srv.task.requestNotification(port, NotifyId.NOTIFY_NO_SENDERS, port, 1);
  return h;
}

/** The last send right to a handle went: unpin, forget. */
export function closeHandle(srv: ProcServer, table: HandleTable, h: Handle): void {
  if (!table.byPort.has(h.port)) return;
  table.remove(h);
  srv.journal?.handle(h.port);
  if (h.proc?.handles) {
    const i = h.proc.handles.indexOf(h);
    if (i >= 0) h.proc.handles.splice(i, 1);
  }
  h.proc = null;
  srv.pids.unpin(h.pid);
  srv.destroyPort(h.port);
}

type H = import("@hurdmesh/mach").Impl<typeof import("@hurdmesh/proto/hurd/process/v1/process").ProcessDefinition, import("./server.js").PortObject>;
type Ctx = import("./server.js").Ctx;

function handleOf(ctx: Ctx): Handle {
  const o = ctx.object;
  if (o.kind !== "handle") throw new HurdError(Errno.EOPNOTSUPP, "not a process handle");
  return o.h;
}

/** The RPCs of process handles (hurdmesh's, 24300-24303). */
export function handleRpcs(srv: ProcServer, table: HandleTable, signal: (p: Proc, signo: number, sigcode: number) => Promise<void>, wait: (w: Proc, pid: number, options: number) => WaitResult | Promise<WaitResult>): H {
  return {
    /** proc_pid_open (24300). */
    async pidOpen(req, ctx) {
      const h = await pidOpen(srv, table, srv.caller(ctx), req.pid, req.serial);
      return { handle: ctx.reply.makeSend(h.port), pid: h.pid, serial: h.serial };
    },

    /** proc_handle_signal (24301): the handle's incarnation; once it is reaped, ESRCH, never a newer process with the pid. */
    async handleSignal(req, ctx) {
      const h = handleOf(ctx);
      const p = h.proc;
      if (!p || p.serial !== h.serial) throw new HurdError(Errno.ESRCH, `pid ${h.pid} (incarnation ${h.serial}) is gone`);
      if (p.dead) return {};
      if (!h.ids.includes(0) && (p.uids.length === 0 || p.uids.some((u) => !h.ids.includes(u)))) throw new HurdError(Errno.EPERM, `pid ${h.pid} now has ids its handle's opener lacks`);
      await signal(p, req.signal, req.sigcode);
      return {};
    },

    /** proc_handle_wait (24302): its parent reaps as with waitid; anyone else learns how the incarnation ended. */
    async handleWait(req, ctx) {
      const h = handleOf(ctx);
      const p = h.proc;
      // The kernel's sender trailer says which task asks: the parent reaps, as waitid(P_PIDFD) does.
      if (p && !p.has(P.REAPED) && p.parent && ctx.msg.sender && p.parent.taskId === ctx.msg.sender) {
        const r = await wait(p.parent, p.pid, req.options || 16);
        return { status: r.status, sigcode: r.sigcode, rusage: r.rusage, pidStatus: r.pidStatus };
      }
      if (h.final) return { ...h.final };
      if (req.options & 1) throw new HurdError(Errno.EAGAIN, "still running (WNOHANG)");
      const r = await new Promise<WaitResult>((resolve) => (h.exitWaiters ??= []).push(resolve));
      return { ...r };
    },

    /** proc_handle_getpid (24303). */
    handleGetpid(_req, ctx) {
      const h = handleOf(ctx);
      return { pid: h.pid, serial: h.serial, alive: !!h.proc && !h.proc.dead };
    },
  };
}

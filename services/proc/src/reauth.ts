// Reauthentication (mgt.c, the 2021 protocol): proc gives the user a fresh
// process port through auth; the process moves to it when the user calls
// proc_reauthenticate_complete there, and the old port is destroyed, so
// stale copies of it cannot inherit the new ids.
import { Errno, HurdError, MsgType, Notify, NotifyId, optionalRight, type Impl, type Received } from "@hurdmesh/mach";
import { serverAuthenticate } from "@hurdmesh/iohelp";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { reassignTo, taskProcess } from "./mgt.js";
import { newids } from "./msg.js";
import { P, type Proc } from "./proc.js";
import type { Ctx, PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

/** proc_reauthenticate_complete's id: the one message the new port expects first. */
const REAUTHENTICATE_COMPLETE = 24064;
/** Calls a user may queue on the new port behind its completion. */
const MAX_EARLY = 64;

/**
 * The rendezvous right of a reauthentication request. A right of another
 * kind is EINVAL, thrown before the handler keeps the request's rights: the
 * server releases them and, as for any simpleroutine, answers nothing.
 */
function rendezvousOf(ctx: Ctx, index: number): number {
  return optionalRight(ctx.msg.ports, index, MsgType.MSG_TYPE_MOVE_SEND);
}

/** Starts a reauthentication for p; never reports an error (proc_reauthenticate is a simpleroutine). */
async function begin(srv: ProcServer, p: Proc, ctx: Ctx, rendezvous: number, newTask: number): Promise<void> {
  ctx.keepRights = true;
  const abandon = () => {
    if (newTask) srv.drop(newTask);
  };
  if (!rendezvous || !srv.authPort) {
    srv.drop(rendezvous);
    return abandon();
  }
  const port = await srv.newPort();
  let finish!: (ok: boolean) => void;
  const completed = new Promise<boolean>((res) => (finish = res));
  const timer = setTimeout(() => finish(false), srv.config.reauthTimeoutMs);
  const obj = { kind: "reauth" as const, p, uids: [] as number[], done: (ok: boolean) => finish(ok) };
  // Until the process moves to the new port, proc listens on it itself, as
  // the Hurd's reauthenticating thread does with mach_msg: the completion
  // (or no-senders) ends the wait. The user goes on using the new port as
  // soon as it has sent the completion, which may reach proc before auth's
  // answer does: those calls wait here and are served once the port is the
  // process's, instead of meeting a port that is not one yet.
  const early: Array<{ m: Received; settle: () => void }> = [];
  let isComplete = false;
  srv.task.receive(port, (m) => {
    if (m.kernel) {
      srv.task.dropRights(m);
      if (m.id === Notify.NO_SENDERS) obj.done(false);
      return;
    }
    if (!isComplete && m.id === REAUTHENTICATE_COMPLETE) {
      isComplete = true;
      srv.task.dropRights(m);
      obj.done(true);
      return;
    }
    if (!isComplete || early.length >= MAX_EARLY) {
      srv.task.refuse(m, Errno.EOPNOTSUPP);
      return;
    }
    return new Promise<void>((settle) => early.push({ m, settle }));
  });
  const fail = () => {
    clearTimeout(timer);
    srv.task.unreceive(port);
    if (!srv.task.detached) srv.task.destroy(port).catch(() => {});
    for (const e of early.splice(0)) {
      srv.task.refuse(e.m, Errno.EOPNOTSUPP);
      e.settle();
    }
  };
  try {
    // If the user drops the new port without completing, no-senders aborts.
    await srv.task.requestNotification(port, NotifyId.NOTIFY_NO_SENDERS, port, 1);
    const ids = await serverAuthenticate(srv.task, srv.authPort, rendezvous, port, { timeoutMs: srv.config.reauthTimeoutMs });
    obj.uids = [...ids.euids, ...ids.auids];
  } catch {
    fail();
    return abandon();
  }
  const ok = await completed;
  clearTimeout(timer);
  if (!ok || p.dead) {
    fail();
    return abandon();
  }
  if (newTask) {
    let stub: Proc;
    try {
      stub = await taskProcess(srv, newTask);
    } catch {
      return fail();
    }
    // As proc_reassign: the stub must be a fresh task's, not a process with a life of its own.
    if (stub === p || p.dead || stub.has(P.PARENTSET) || stub.firstChild) return fail();
    reassignTo(srv, p, stub);
  }
  srv.setUids(p, Object.freeze(obj.uids));
  if (p.port && p.port !== port) srv.destroyPort(p.port);
  p.port = port;
  srv.server.add(port, { kind: "proc", p });
  srv.touch(p);
  // Answered already (proc_reauthenticate is one-way for the user): written through behind it.
  srv.commitSoon();
  newids(srv, p);
  // The calls that came in behind the completion, in their order.
  for (const e of early.splice(0)) void Promise.resolve(srv.server.dispatch(e.m)).finally(e.settle);
}

export function reauth(srv: ProcServer): H {
  return {
    /** proc_reauthenticate (24011). */
    reauthenticate(req, ctx) {
      const p = srv.caller(ctx);
      void begin(srv, p, ctx, rendezvousOf(ctx, req.rendezvous), 0);
      return {};
    },

    /** proc_reauthenticate_reassign (24063): reauthentication and reassign in one step (exec of a setuid image). */
    reauthenticateReassign(req, ctx) {
      const p = srv.caller(ctx);
      const rendezvous = rendezvousOf(ctx, req.rendezvous);
      const task = optionalRight(ctx.msg.ports, req.newTask, MsgType.MSG_TYPE_MOVE_SEND);
      if (!task) {
        ctx.keepRights = true;
        srv.drop(rendezvous);
        return {};
      }
      void begin(srv, p, ctx, rendezvous, task);
      return {};
    },

    /** proc_reauthenticate_complete (24064): only on the port auth handed the user. */
    reauthenticateComplete(_req, ctx) {
      const o = ctx.object;
      if (o.kind !== "reauth") throw new HurdError(Errno.EOPNOTSUPP, "not a reauthentication port");
      if (o.p.has(P.REAPED)) throw new HurdError(Errno.EOPNOTSUPP, "process gone");
      o.done(true);
      return {};
    },
  };
}

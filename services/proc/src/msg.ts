// Message ports (msg.c): registering one, and looking one up by pid, which
// waits while the process is between images (after proc_reassign).
import { Errno, HurdError, MsgType, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { P, type Proc } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

export function msg(srv: ProcServer): H {
  return {
    /** proc_setmsgport (24013): answers the old one (moved to the caller), wakes getmsgport waiters. */
    setmsgport(req, ctx) {
      const p = srv.caller(ctx);
      // The new send right now belongs to proc, whatever happens below.
      ctx.keepRights = true;
      // newmsgport is an index into the message's rights, and 0 is the first
      // one: a null port travels as a right named 0 (or no right at all).
      const r = ctx.msg.ports[req.newmsgport];
      const fresh = r && r.type !== MsgType.MSG_TYPE_PORT_NAME && r.name !== 0xffffffff ? r.name : 0;
      const old = p.msgport;
      p.msgport = fresh;
      p.flags &= ~P.DEADMSG;
      const ws = p.msgportWaiters;
      p.msgportWaiters = null;
      for (const w of ws ?? []) w();
      return { oldmsgport: old ? ctx.reply.moveSend(old) : 0 };
    },

    /**
     * proc_getmsgport (24019): any live caller, no permission check (the
     * refport of the later message is the authority). Zombies are found; a
     * process between images makes the caller wait until it registers one.
     */
    async getmsgport(req, ctx) {
      const c = srv.caller(ctx);
      const p: Proc | undefined = srv.byPid.get(req.pid);
      if (!p) throw new HurdError(Errno.ESRCH, `no pid ${req.pid}`);
      while (p.has(P.DEADMSG) && !p.dead) {
        const list = (p.msgportWaiters ??= []);
        if (list.length >= srv.config.maxMsgportWaiters) throw new HurdError(Errno.EAGAIN, `${list.length} callers already wait for pid ${req.pid}`);
        await new Promise<void>((r) => list.push(r));
        if (c.dead) throw new HurdError(Errno.EOPNOTSUPP, "the caller died while waiting");
        // The same process, not whatever has its pid now: it may have been reaped and the pid reused meanwhile.
        if (p.has(P.REAPED)) throw new HurdError(Errno.ESRCH, `pid ${req.pid} is gone`);
      }
      return { msgport: p.msgport ? ctx.reply.copySend(p.msgport) : 0 };
    },
  };
}

/**
 * Signals a process on behalf of proc (process handles): SIGKILL terminates
 * the task, as glibc's kill does; other signals go to the message port with
 * the target's own task port as the refport, and the answer is awaited. With
 * no message port, TERM/INT/QUIT/HUP terminate the task, as glibc falls back.
 */
export async function signalProcess(srv: ProcServer, p: Proc, signo: number, sigcode: number): Promise<void> {
  if (signo < 0 || signo >= 32) throw new HurdError(Errno.EINVAL, `signal ${signo}`);
  if (signo === 0) return;
  if (signo === 9 || (!p.msgport && (signo === 15 || signo === 2 || signo === 3 || signo === 1))) {
    const task = await srv.taskOf(p);
    if (!task) throw new HurdError(Errno.ESRCH, `pid ${p.pid} has no task`);
    await srv.task.taskTerminate(task).catch((e) => {
      if (!p.dead) throw e;
    });
    return;
  }
  if (!p.msgport) throw new HurdError(Errno.EPERM, `pid ${p.pid} has no message port for signal ${signo}`);
  try {
    await srv.postSignalAndWait(p, signo, sigcode);
  } catch (e) {
    // A message port that died under the call is a process that is dying:
    // its task's death notice is on its way. glibc's kill retries on these
    // codes and ends at ESRCH; so does proc, for the handle's caller.
    const code = (e as HurdError).code;
    if (code === Errno.MACH_SEND_INVALID_DEST || code === Errno.MIG_SERVER_DIED) throw new HurdError(Errno.ESRCH, `pid ${p.pid} is dying`);
    throw e;
  }
}

// Message ports (msg.c): registering one, looking one up by pid (which waits
// while the process is between images, after proc_reassign), and how proc
// talks to processes through them: msg_sig_post and msg_proc_newids.
import { Errno, HurdError, MsgType, NSIG, Rights, SIG, client, optionalRight, type Impl } from "@hurdmesh/mach";
import { msgidOf } from "@hurdmesh/mach/internal";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { P, isOrphaned, type Proc } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

const MSG_SIG_POST = msgidOf(MsgDefinition.methods.sigPost);
const MSG_PROC_NEWIDS = msgidOf(MsgDefinition.methods.procNewids);

/**
 * msg_sig_post to a process's message port, with `ref`'s task port as the
 * authority. One-way: proc never waits on a process (a slow or dead
 * message port must not stall it); errors are counted.
 */
export function postSignal(srv: ProcServer, p: Proc, signo: number, sigcode: number, ref: Proc): void {
  if (!p.msgport || p.dead || srv.task.detached) return;
  const r = new Rights();
  // A process with no task yet (pid 1 before init binds it) can only offer a null refport.
  const refport = ref.task ? r.copySend(ref.task) : r.add(0, MsgType.MSG_TYPE_PORT_NAME);
  srv.stats.signalsSent++;
  try {
    srv.task.send({ destination: p.msgport, id: MSG_SIG_POST, body: sigPostBody(signo, sigcode, refport), ports: r.ports });
  } catch {
    srv.stats.signalFailures++;
  }
}

function sigPostBody(signal: number, sigcode: number, refport: number): Uint8Array {
  // msg.defs's sigcode is a C int; the wire's uint32 carries its bits (a negative code must not throw here).
  return MsgDefinition.methods.sigPost.requestType.encode({ signal, sigcode: sigcode >>> 0, refport }).finish();
}

/** msg_proc_newids: the process's parent, pgrp or orphan status changed (one-way). */
export function newids(srv: ProcServer, p: Proc): void {
  if (!p.msgport || p.dead || !p.task || srv.task.detached) return;
  const r = new Rights();
  const task = r.copySend(p.task);
  try {
    srv.task.send({
      destination: p.msgport,
      id: MSG_PROC_NEWIDS,
      body: MsgDefinition.methods.procNewids.requestType.encode({ task, ppid: p.parent?.pid ?? 0, pgrp: p.pgrp?.pgid ?? 0, orphaned: isOrphaned(p) }).finish(),
      ports: r.ports,
    });
  } catch {
    srv.stats.signalFailures++;
  }
}

/**
 * msg_sig_post that waits for the answer (process handles: the caller asked
 * for a synchronous kill), bounded by signalTimeoutMs.
 */
async function postSignalAndWait(srv: ProcServer, p: Proc, signo: number, sigcode: number): Promise<void> {
  if (!p.msgport) throw new HurdError(Errno.ESRCH, `pid ${p.pid} has no message port`);
  const r = new Rights();
  const refport = r.copySend(p.task);
  const msg = client(srv.task, MsgDefinition, p.msgport);
  await msg.sigPost({ signal: signo, sigcode: sigcode >>> 0, refport }, { rights: r, timeoutMs: srv.config.signalTimeoutMs });
}

/**
 * Signals a process on behalf of proc (process handles): SIGKILL terminates
 * the task, as glibc's kill does; other signals go to the message port with
 * the target's own task port as the refport, and the answer is awaited. With
 * no message port, TERM/INT/QUIT/HUP terminate the task, as glibc falls back.
 */
export async function signalProcess(srv: ProcServer, p: Proc, signo: number, sigcode: number): Promise<void> {
  if (signo < 0 || signo >= NSIG) throw new HurdError(Errno.EINVAL, `signal ${signo}`);
  if (signo === 0) return;
  if (signo === SIG.KILL || (!p.msgport && (signo === SIG.TERM || signo === SIG.INT || signo === SIG.QUIT || signo === SIG.HUP))) {
    const task = await srv.taskOf(p);
    if (!task) throw new HurdError(Errno.ESRCH, `pid ${p.pid} has no task`);
    await srv.task.taskTerminate(task).catch((e) => {
      if (!p.dead) throw e;
    });
    return;
  }
  if (!p.msgport) throw new HurdError(Errno.EPERM, `pid ${p.pid} has no message port for signal ${signo}`);
  try {
    await postSignalAndWait(srv, p, signo, sigcode);
  } catch (e) {
    // A message port that died under the call is a process that is dying:
    // its task's death notice is on its way. glibc's kill retries on these
    // codes and ends at ESRCH; so does proc, for the handle's caller.
    const code = (e as HurdError).code;
    if (code === Errno.MACH_SEND_INVALID_DEST || code === Errno.MIG_SERVER_DIED) throw new HurdError(Errno.ESRCH, `pid ${p.pid} is dying`);
    throw e;
  }
}

export function msg(srv: ProcServer): H {
  return {
    /** proc_setmsgport (24013): answers the old one (moved to the caller), wakes getmsgport waiters. */
    setmsgport(req, ctx) {
      const p = srv.caller(ctx);
      // The new send right now belongs to proc, whatever happens below.
      ctx.keepRights = true;
      // newmsgport is an index into the message's rights, and 0 is the first
      // one: a null port travels as a right named 0 (or no right at all).
      const fresh = optionalRight(ctx.msg.ports, req.newmsgport);
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
      const p = srv.pidFind(req.pid);
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

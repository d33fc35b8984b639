// proc_make_task_namespace (24057): the caller becomes the root of a task
// namespace (the Hurd's boot uses it for subhurds). Kernel-level hurds
// (subhurds) are the kernel's namespaces; this is the Hurd's own, in-proc one.
import { Errno, HurdError, MsgType, optionalRight, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { P } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

export function ns(srv: ProcServer): H {
  return {
    /** proc_make_task_namespace (24057). */
    makeTaskNamespace(req, ctx) {
      const p = srv.caller(ctx);
      // Until the right is kept, an error lets the server release what the request brought.
      const notify = optionalRight(ctx.msg.ports, req.notify, MsgType.MSG_TYPE_MOVE_SEND);
      if (!notify) throw new HurdError(Errno.EINVAL, "notify must be a live send right");
      if (p.has(P.NSROOT)) throw new HurdError(Errno.EBUSY, "already a task namespace root");
      ctx.keepRights = true;
      p.flags |= P.NSROOT;
      p.nsNotify = notify;
      return {};
    },
  };
}

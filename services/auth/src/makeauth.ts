// auth_makeauth (auth.defs 25001) and auth_getids (25000), with auth/auth.c's
// rules: the union of the target handle and the extra handles either holds
// uid 0 (effective or available), or holds every requested uid and gid.
import { Errno, HurdError, MACH_PORT_DEAD, MsgType, type Context } from "@hurdmesh/mach";
import type { GetIdsReply, MakeAuthReply, MakeAuthRequest } from "@hurdmesh/proto/hurd/auth/v1/auth";
import type { AuthConfig } from "./config.js";
import type { Handle, Handles, Ids } from "./handles.js";

const isuid = (uid: number, h: Ids) => h.euids.includes(uid) || h.auids.includes(uid);
const groupmember = (gid: number, h: Ids) => h.egids.includes(gid) || h.agids.includes(gid);
const isroot = (h: Ids) => isuid(0, h);

/**
 * Whether the union of `union` may create a handle with `want` (auth.c's
 * S_auth_makeauth): uid 0 anywhere allows anything; otherwise every uid asked
 * for (effective or available) must be a uid of some handle, every gid a gid
 * of some handle.
 */
export function permits(union: readonly Ids[], want: Ids): boolean {
  if (union.some(isroot)) return true;
  const uidOk = (u: number) => union.some((h) => isuid(u, h));
  const gidOk = (g: number) => union.some((h) => groupmember(g, h));
  return want.euids.every(uidOk) && want.auids.every(uidOk) && want.egids.every(gidOk) && want.agids.every(gidOk);
}

/** auth_getids (auth.defs 25000): the four vectors of the handle the call was sent to. */
export function auth_getids(h: Handle): GetIdsReply {
  return { euids: [...h.ids.euids], auids: [...h.ids.auids], egids: [...h.ids.egids], agids: [...h.ids.agids] };
}

/** The requested ids, checked against the bound before any of them is looked at. */
export function requestedIds(req: { euids: number[]; auids: number[]; egids: number[]; agids: number[] }, config: AuthConfig): Ids {
  for (const k of ["euids", "auids", "egids", "agids"] as const) {
    if (req[k].length > config.maxIdsPerVector) throw new HurdError(Errno.E2BIG, `${k} holds ${req[k].length} ids, more than ${config.maxIdsPerVector}`);
  }
  return { euids: req.euids, auids: req.auids, egids: req.egids, agids: req.agids };
}

/**
 * The handles among `other_handles`. A send right that is not one of this
 * server's handles (another server's port, a dead name, a freed handle) is
 * ignored, as auth.c ignores what ports_lookup_port does not find; a null
 * right likewise. Anything else (an index with no right, a receive or
 * send-once right, a bare name) is not a port array element: EINVAL.
 */
export function extraHandles(indexes: number[], ctx: Context<Handle>, handles: Handles): Handle[] {
  const out: Handle[] = [];
  for (let k = 0; k < indexes.length; k++) {
    const i = indexes[k]!;
    const p = ctx.msg.ports[i];
    if (!p) throw new HurdError(Errno.EINVAL, `other_handles[${k}] names right ${i}, but the request carries ${ctx.msg.ports.length}`);
    if (p.type === MsgType.MSG_TYPE_PORT_NAME && p.name === 0) continue;
    if (p.type !== MsgType.MSG_TYPE_MOVE_SEND) throw new HurdError(Errno.EINVAL, `other_handles[${k}] is a ${MsgType[p.type] ?? p.type}, not a send right`);
    if (p.name === 0 || p.name === MACH_PORT_DEAD) continue;
    const h = handles.lookup(p.name);
    if (h) out.push(h);
  }
  return out;
}

/**
 * auth_makeauth (auth.defs 25001). On success every right the request
 * brought is consumed (auth.c deallocates the extra handles); on failure the
 * runtime destroys them, as MIG's server loop destroys a failed request.
 */
export async function auth_makeauth(handles: Handles, config: AuthConfig, req: MakeAuthRequest, ctx: Context<Handle>): Promise<MakeAuthReply> {
  const want = requestedIds(req, config);
  const union = [ctx.object.ids, ...extraHandles(req.otherHandles, ctx, handles).map((h) => h.ids)];
  if (!permits(union, want)) throw new HurdError(Errno.EPERM, "the handles presented hold neither uid 0 nor every id asked for");
  const name = await handles.create(want);
  ctx.task.dropRights(ctx.msg);
  return { newhandle: ctx.reply.makeSend(name) };
}

// Helpers for the quota suites: a subhurd made straight with task_create
// (its first task attached, so it can act inside its hurd), and what the
// kernel says a hurd holds.
import { MsgType, type Task } from "@hurdmesh/mach";
import type { HurdLimits, HurdPolicy } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { Hurd } from "../harness.js";

export interface Sub {
  /** The hurd's first task, attached: it acts inside the hurd. */
  task: Task;
  /** Its task port and its host port, in the creator's space. */
  taskPort: number;
  hostPriv: number;
  namespaceId: number;
}

/** Where a sub's first task holds its own hurd's host port, as a subhurd's startup does (init's BOOT_NAMES.hostPriv). */
export const OWN_HOST = 0x100;

/**
 * A hurd nested in `creator`'s (or in the hurd of the task `parent` names);
 * `creator` holds the host port of that hurd or of one enclosing it. Its
 * first task is given its own hurd's host port (at OWN_HOST), so that it
 * can nest hurds in it, as bootSubhurd gives a subhurd's startup.
 */
export async function subhurd(h: Hurd, creator: Task, name: string, o: { limits?: HurdLimits; policy?: HurdPolicy; parent?: number } = {}): Promise<Sub> {
  const r = await creator.taskCreate(name, { newNamespace: true, limits: o.limits, policy: o.policy, parent: o.parent });
  await creator.insertRight(r.task, OWN_HOST, r.hostPriv, MsgType.MSG_TYPE_COPY_SEND);
  const task = await h.attach(r.taskId, r.token);
  return { task, taskPort: r.task, hostPriv: r.hostPriv, namespaceId: r.namespaceId };
}

/** namespace_info through `via`'s host port `hostPriv` (namespace 0: that port's own hurd). */
export function info(via: Task, hostPriv: number, namespaceId = 0) {
  return via.call("namespaceInfo", { hostPriv, namespaceId });
}

export const MiB = 1024 * 1024;

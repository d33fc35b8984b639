// Namespaces: the root hurd and its subhurds, nested. Each has its own
// privileged host port, and the proc registered on it hears of the
// namespace's tasks (notify.ts). Ending a namespace ends its tasks, so that
// lives with them in task.ts. The Namespace itself is declared in objects.ts.
import { MsgType, type HurdLimits, type HurdPolicy } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { copyinLive } from "./message.js";
import { Namespace, Port, R_SEND, TYPE_SEND, type KTask } from "./objects.js";
import { releaseSend } from "./port.js";
import { namespaceInfoOf, resolveLimits, setLimits, setPolicy, within } from "./quota.js";
import { err, type KernelState } from "./state.js";

export type { Namespace };

/**
 * A namespace nested in `parent`, with its own host port and the default
 * limits for a new hurd (never above the parent's); the caller links it in
 * once something lives in it (quota.ts, linkNamespace).
 */
export function newNamespace(k: KernelState, parent: Namespace, label: string): Namespace {
  if (parent.depth + 1 > k.config.maxNamespaceDepth) throw err("EINVAL", `namespaces nest at most ${k.config.maxNamespaceDepth} deep`);
  const host = new Port(k.config.qlimit);
  const ns = new Namespace(parent, host, label);
  host.kobject = { kind: "host", ns };
  setLimits(ns, resolveLimits(parent, k.config.hurdLimits, undefined));
  return ns;
}

/**
 * The hurd a namespace call is about: the host port's own (id 0 or its
 * own id) or one nested in it, found by id and then checked to lie under
 * the host's hurd (a walk up of at most maxNamespaceDepth). Answers whether
 * it is the host port's own hurd.
 */
function targetOf(k: KernelState, caller: KTask, hostName: number, namespaceId: number): { ns: Namespace; own: boolean } {
  const host = namespaceFromHost(caller, hostName);
  if (namespaceId === 0 || namespaceId === host.id) return { ns: host, own: true };
  const ns = k.namespaces.get(namespaceId);
  if (!ns || !within(ns, host)) throw err("KERN_INVALID_ARGUMENT", `no hurd ${namespaceId} nested in this host's hurd`);
  return { ns, own: false };
}

// namespace_set_policy (hurdmesh, 4909)
export function namespaceSetPolicy(k: KernelState, caller: KTask, hostName: number, namespaceId: number, policy: HurdPolicy | undefined, limits: HurdLimits | undefined): void {
  const { ns, own } = targetOf(k, caller, hostName, namespaceId);
  setPolicy(ns, own, policy, limits);
}

// namespace_info (hurdmesh, 4910)
export function namespaceInfo(k: KernelState, caller: KTask, hostName: number, namespaceId: number) {
  return namespaceInfoOf(targetOf(k, caller, hostName, namespaceId).ns);
}

/** convert_port_to_host_priv: the namespace whose privileged host port `name` holds a send right to. */
export function namespaceFromHost(caller: KTask, name: number): Namespace {
  const e = caller.space.lookup(name);
  const k = e?.port?.kobject;
  if (!e || !(e.bits & TYPE_SEND) || !k || k.kind !== "host") throw err("KERN_INVALID_HOST", `name ${name} is not a host port`);
  return k.ns;
}

/**
 * Whether `caller` holds a send right to the host port of `ns` or of a hurd
 * `ns` is nested in: the authority over a hurd that making a hurd inside it
 * takes (task_create with new_namespace). At most maxNamespaceDepth + 1
 * lookups, one per enclosing hurd.
 */
export function holdsHostOf(caller: KTask, ns: Namespace): boolean {
  for (let n: Namespace | null = ns; n !== null; n = n.parent) {
    const e = caller.space.byPort.get(n.hostPriv);
    if (e !== undefined && e.bits & TYPE_SEND) return true;
  }
  return false;
}

// register_new_task_notification (gnumach 4203)
export function registerNewTaskNotification(k: KernelState, caller: KTask, hostName: number, notify: number, disp: MsgType): void {
  const ns = namespaceFromHost(caller, hostName);
  if (ns.notify?.active && ns.notify.receiver?.active) throw err("KERN_NO_ACCESS", "a proc is already registered for this namespace");
  if (disp !== MsgType.MSG_TYPE_MAKE_SEND && disp !== MsgType.MSG_TYPE_COPY_SEND && disp !== MsgType.MSG_TYPE_MOVE_SEND)
    throw err("KERN_INVALID_VALUE", "notify must travel as a send right");
  const r = copyinLive(k, caller, notify, disp, R_SEND);
  if (ns.notify) releaseSend(k, ns.notify);
  ns.notify = r.port;
}

/** The ids of the namespaces from the root hurd down to `ns`. */
export function namespacePath(ns: Namespace): number[] {
  const path: number[] = [];
  for (let n: Namespace | null = ns; n; n = n.parent) path.push(n.id);
  return path.reverse();
}

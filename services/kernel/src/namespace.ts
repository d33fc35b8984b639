// Namespaces: the root hurd and its subhurds, nested. Each has its own
// privileged host port, and the proc registered on it hears of the
// namespace's tasks (notify.ts). Ending a namespace ends its tasks, so that
// lives with them in task.ts. The Namespace itself is declared in objects.ts.
import { MsgType } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { copyinLive } from "./message.js";
import { Namespace, Port, R_SEND, TYPE_SEND, type KTask } from "./objects.js";
import { releaseSend } from "./port.js";
import { err, type KernelState } from "./state.js";

export type { Namespace };

/** A namespace nested in `parent`, with its own host port; the caller links it in once something lives in it. */
export function newNamespace(k: KernelState, parent: Namespace, label: string): Namespace {
  if (parent.depth + 1 > k.config.maxNamespaceDepth) throw err("EINVAL", `namespaces nest at most ${k.config.maxNamespaceDepth} deep`);
  const host = new Port(k.config.qlimit);
  const ns = new Namespace(parent, host, label);
  host.kobject = { kind: "host", ns };
  return ns;
}

/** convert_port_to_host_priv: the namespace whose privileged host port `name` holds a send right to. */
export function namespaceFromHost(caller: KTask, name: number): Namespace {
  const e = caller.space.lookup(name);
  const k = e?.port?.kobject;
  if (!e || !(e.bits & TYPE_SEND) || !k || k.kind !== "host") throw err("KERN_INVALID_HOST", `name ${name} is not a host port`);
  return k.ns;
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

// Looking at a hurd's IPC from outside it: host_ipc_graph (hurdmesh 4930),
// every IPC space of a hurd at once, as mach_debug's mach_port_space_info
// shows one task's, with each right's port named by its kernel id so that
// a port's receiver and its senders can be joined into one graph (what
// `hurd web` draws). Read-only: nothing here changes a space, and a right
// whose port died reads as the dead name it will become (Mach's
// ipc_right_check), without turning it into one.
//
// Privileged as the trace stream is: a space's names and the ports behind
// them say who can talk to whom, so only a holder of the hurd's host_priv
// port may look. Bounded: a reply holds at most HOST_IPC_GRAPH_MAX_ENTRIES
// names and is paged by task id, so a hurd of any size is read in pieces
// that fit the bus.
import type { HostIpcGraphReply, HostIpcGraphRequest, HurdInfo, IpcNameInfo, IpcPortInfo, IpcSpaceInfo } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { namespaceFromHost } from "./namespace.js";
import { TYPE_DEAD_NAME, TYPE_DNREQUEST, TYPE_SEND, TYPE_SEND_ONCE, type KTask, type Namespace, type Port } from "./objects.js";
import { err, type KernelState } from "./state.js";

/**
 * Names in one reply at most: about 16 bytes each on the wire, so a page
 * stays well under NATS's default 1 MiB payload with its tasks and ports.
 */
export const HOST_IPC_GRAPH_MAX_ENTRIES = 32_768;

/**
 * A hurd's name: the system's for the root hurd; for a subhurd, the name
 * its creator gave it. A subhurd's namespace is labelled by the task that
 * made it, `<hurd>:startup` (init's bootSubhurd) or `<hurd>` (a container's
 * boot claim): the part before the colon.
 */
export function hurdName(k: KernelState, ns: Namespace): string {
  return hurdNameOf(k.config.system, ns);
}

/** hurdName, for a kernel of system `system`. */
export function hurdNameOf(system: string, ns: Namespace): string {
  if (ns.parent === null) return system;
  const i = ns.label.indexOf(":");
  return i < 0 ? ns.label : ns.label.slice(0, i);
}

/** `ns` and, with `nested`, every namespace nested in it, parents first. */
function hurdsUnder(ns: Namespace, nested: boolean): Namespace[] {
  const out = [ns];
  if (!nested) return out;
  for (let i = 0; i < out.length; i++) for (const c of out[i]!.children) if (c.active) out.push(c);
  return out;
}

// host_ipc_graph (hurdmesh 4930)
export function hostIpcGraph(k: KernelState, caller: KTask, r: HostIpcGraphRequest): HostIpcGraphReply {
  const ns = namespaceFromHost(caller, r.hostPriv);
  const max = r.maxEntries > 0 ? Math.min(r.maxEntries, HOST_IPC_GRAPH_MAX_ENTRIES) : HOST_IPC_GRAPH_MAX_ENTRIES;
  const hurds = hurdsUnder(ns, r.nested);
  const covered = new Set(hurds);
  let tasks: KTask[];
  if (r.tasks.length > 0) {
    tasks = [];
    for (const id of r.tasks) {
      const t = k.tasks.get(id);
      // A task of another hurd is as unknown as a task that never was.
      if (!t || !covered.has(t.ns)) throw err("KERN_INVALID_ARGUMENT", `task ${id} is not in this hurd`);
      tasks.push(t);
    }
  } else {
    tasks = [];
    for (const h of hurds) for (const t of h.tasks) if (t.id >= r.startTask) tasks.push(t);
  }
  tasks.sort((a, b) => a.id - b.id);

  const spaces: IpcSpaceInfo[] = [];
  const ports = new Map<Port, IpcPortInfo>();
  let entries = 0;
  let next = 0;
  for (const t of tasks) {
    const n = t.space.entries.size;
    // A page holds whole spaces; the first one goes in whatever its size (cut to the bound).
    if (spaces.length > 0 && entries + n > max) {
      next = t.id;
      break;
    }
    const names: IpcNameInfo[] = [];
    for (const e of t.space.entries.values()) {
      if (entries >= max) break;
      entries++;
      let type = e.bits;
      let urefs = e.urefs;
      let port = e.port;
      if (port !== null && !port.active && type & (TYPE_SEND | TYPE_SEND_ONCE)) {
        urefs = type & TYPE_SEND ? urefs : 1;
        type = TYPE_DEAD_NAME;
        port = null;
      }
      if (e.dnrequest !== null) type |= TYPE_DNREQUEST;
      names.push({ name: e.name, type: type >>> 0, urefs, port: port ? port.id : 0 });
      if (port !== null && !ports.has(port)) ports.set(port, portInfo(port));
    }
    spaces.push({ taskId: t.id, parentId: t.parentId, namespaceId: t.ns.id, name: t.name, names });
  }
  const info: HurdInfo[] = r.startTask === 0 ? hurds.map((h) => ({ namespaceId: h.id, parentId: h.parent ? h.parent.id : 0, hurd: hurdName(k, h), depth: h.depth, tasks: h.tasks.size })) : [];
  return { spaces, ports: [...ports.values()], hurds: info, nextTask: next };
}

function portInfo(p: Port): IpcPortInfo {
  const ko = p.kobject;
  return {
    port: p.id,
    receiver: p.receiver ? p.receiver.id : 0,
    kobject: ko === null ? "" : ko.kind === "task" ? `task ${ko.task.id}` : ko.kind === "host" ? `host ${ko.ns.id}` : "reply",
    msgcount: p.msgcount,
    srights: p.srights,
    sorights: p.sorights,
    active: p.active,
  };
}

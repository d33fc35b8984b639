import { Errno, HurdError } from "@hurdmesh/mach";
import { methods } from "@hurdmesh/mach/internal";
import { MachDefinition, type MsgType, type NotifyId, type PortRight, type TaskSpecialPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import {
  extractRight,
  insertRight,
  portAllocate,
  portDeallocate,
  portDestroy,
  portGetReceiveStatus,
  portGetRefs,
  portGetSetStatus,
  portModRefs,
  portMoveMember,
  portNames,
  portSetQlimit,
  portType,
  requestNotification,
} from "./mach-port.js";
import { hostIpcGraph } from "./introspect.js";
import { send } from "./mqueue.js";
import { namespaceFromHost, namespaceInfo, namespaceSetPolicy, registerNewTaskNotification } from "./namespace.js";
import type { KTask } from "./objects.js";
import type { KernelState } from "./state.js";
import { credit, destroyNamespace, taskCreate, taskForId, taskFromPort, taskGetSpecialPort, taskInfo, taskSetEssential, taskSetName, taskSetSpecialPort, terminate } from "./task.js";

/**
 * The kernel's calls, one handler per Mach routine, keyed by the method names
 * of hurd.mach.v1.Mach. The bus trap server and the gRPC edge both dispatch
 * here, so the two carriers cannot drift apart. Attach and Receive are the
 * carriers' own (trap.ts, edge.ts).
 */
type Handler = (k: KernelState, t: KTask, req: any) => unknown;

const EMPTY = {};

export const handlers: Record<string, Handler> = {
  // task_create (2007)
  taskCreate: (k, t, r) => taskCreate(k, t, r.parent, r.name, { newNamespace: r.newNamespace, limits: r.limits, policy: r.policy, dieWithParent: r.dieWithParent }),
  // task_terminate (2008)
  taskTerminate: (k, t, r) => (terminate(k, taskFromPort(t, r.task), `terminated by task ${t.id}`), EMPTY),
  // task_info (2012)
  taskInfo: (_k, t, r) => taskInfo(t, r.task),
  // task_get_special_port (2091)
  taskGetSpecialPort: (k, t, r) => ({ port: taskGetSpecialPort(k, t, r.task, r.which as TaskSpecialPort) }),
  // task_set_special_port (2092)
  taskSetSpecialPort: (k, t, r) => (taskSetSpecialPort(k, t, r.task, r.which as TaskSpecialPort, r.port), EMPTY),
  // task_set_name (4202)
  taskSetName: (_k, t, r) => (taskSetName(t, r.task, r.name), EMPTY),
  // task_set_essential (4211)
  taskSetEssential: (_k, t, r) => (taskSetEssential(t, r.task, r.essential), EMPTY),
  // mach_port_names (3200)
  portNames: (_k, t) => portNames(t),
  // mach_port_type (3201)
  portType: (_k, t, r) => ({ type: portType(t, r.name) }),
  // mach_port_allocate (3204)
  portAllocate: (k, t, r) => ({ name: portAllocate(k, t, r.right as PortRight) }),
  // mach_port_destroy (3205)
  portDestroy: (k, t, r) => (portDestroy(k, t, r.name), EMPTY),
  // mach_port_deallocate (3206)
  portDeallocate: (k, t, r) => (portDeallocate(k, t, r.name), EMPTY),
  // mach_port_get_refs (3207)
  portGetRefs: (_k, t, r) => ({ refs: portGetRefs(t, r.name, r.right as PortRight) }),
  // mach_port_mod_refs (3208)
  portModRefs: (k, t, r) => (portModRefs(k, t, r.name, r.right as PortRight, r.delta), EMPTY),
  // mach_port_set_qlimit (3210)
  portSetQlimit: (k, t, r) => (portSetQlimit(k, t, r.name, r.qlimit), EMPTY),
  // mach_port_get_set_status (3212)
  portGetSetStatus: (_k, t, r) => ({ members: portGetSetStatus(t, r.name) }),
  // mach_port_move_member (3213)
  portMoveMember: (_k, t, r) => (portMoveMember(t, r.member, r.after), EMPTY),
  // mach_port_request_notification (3214)
  portRequestNotification: (k, t, r) => ({
    previous: requestNotification(k, t, r.name, r.variant as NotifyId, r.sync, r.notify, r.notifyDisposition as MsgType),
  }),
  // mach_port_insert_right (3215)
  portInsertRight: (k, t, r) => (insertRight(k, t, r.task, r.name, r.right, r.disposition as MsgType), EMPTY),
  // mach_port_extract_right (3216)
  portExtractRight: (k, t, r) => extractRight(k, t, r.task, r.name, r.disposition as MsgType),
  // mach_port_get_receive_status (3217)
  portGetReceiveStatus: (_k, t, r) => portGetReceiveStatus(t, r.name),
  // register_new_task_notification (4203)
  registerNewTaskNotification: (k, t, r) => (registerNewTaskNotification(k, t, r.hostPriv, r.notify, r.notifyDisposition as MsgType), EMPTY),
  // namespace_terminate (hurdmesh, 4901)
  namespaceTerminate: (k, t, r) => (destroyNamespace(k, namespaceFromHost(t, r.hostPriv), `namespace terminated by task ${t.id}`), EMPTY),
  // task_for_id (hurdmesh, 4908)
  taskForId: (k, t, r) => ({ task: taskForId(k, t, r.hostPriv, r.taskId) }),
  // namespace_set_policy (hurdmesh, 4909)
  namespaceSetPolicy: (k, t, r) => (namespaceSetPolicy(k, t, r.hostPriv, r.namespaceId, r.policy, r.limits), EMPTY),
  // namespace_info (hurdmesh, 4910)
  namespaceInfo: (k, t, r) => namespaceInfo(k, t, r.hostPriv, r.namespaceId),
  // detach (hurdmesh, 4903): the task ends as if terminated
  detach: (k, t) => (terminate(k, t, "detached"), EMPTY),
  // credit (hurdmesh, 4905)
  credit: (k, t, r) => (credit(k, t, r.credit), EMPTY),
  // host_ipc_graph (hurdmesh, 4930): every IPC space of a hurd, for its host_priv holder
  hostIpcGraph: (k, t, r) => hostIpcGraph(k, t, r),
  // mach_msg (hurdmesh msg_send, 4904): a send as a call, for the edge's unary clients
  msgSend: (k, t, r) => (send(k, t, r), EMPTY),
};

const table = methods(MachDefinition);

/** Runs one kernel call from its encoded request; answers the encoded reply or throws a HurdError. */
export function dispatch(k: KernelState, t: KTask, msgid: number, request: Uint8Array): Uint8Array {
  const cm = k.callMetrics;
  if (cm === null || !table.byId.has(msgid)) return run(k, t, msgid, request);
  // Timed for rpc.server.call.duration (metrics.ts): only known calls, so a series per real method.
  const t0 = performance.now();
  try {
    const rep = run(k, t, msgid, request);
    cm.record(t.ns, msgid, (performance.now() - t0) / 1000, 0);
    return rep;
  } catch (e) {
    cm.record(t.ns, msgid, (performance.now() - t0) / 1000, e instanceof HurdError ? e.code : Errno.EIO);
    throw e;
  }
}

function run(k: KernelState, t: KTask, msgid: number, request: Uint8Array): Uint8Array {
  const info = table.byId.get(msgid);
  const h = info && handlers[info.key];
  if (!info || !h) throw new HurdError(Errno.MIG_BAD_ID, `no kernel call ${msgid}`);
  let req: unknown;
  try {
    req = info.def.requestType.decode(request);
  } catch (e) {
    throw new HurdError(Errno.MIG_BAD_ARGUMENTS, `malformed ${info.def.name} request`, { cause: e });
  }
  let rep: unknown;
  try {
    rep = h(k, t, req);
  } catch (e) {
    // A hurd that kills on a limit ends the caller now that its call is undone (quota.ts).
    if (k.offender !== null) k.killOffender();
    throw e;
  }
  return info.def.responseType.encode(info.def.responseType.fromPartial(rep as object)).finish();
}

export function callName(msgid: number): string {
  return table.byId.get(msgid)?.def.name ?? String(msgid);
}

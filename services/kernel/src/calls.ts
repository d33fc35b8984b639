import { Errno, HurdError } from "@hurdmesh/mach";
import { methods } from "@hurdmesh/mach/internal";
import { MachDefinition, type MsgType, type NotifyId, type PortRight, type TaskSpecialPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { Kernel } from "./kernel.js";
import type { KTask } from "./task.js";

/**
 * The kernel's calls, one handler per Mach routine, keyed by the method names
 * of hurd.mach.v1.Mach. The bus trap server and the gRPC edge both dispatch
 * here, so the two carriers cannot drift apart.
 */
type Handler = (k: Kernel, t: KTask, req: any) => unknown;

const EMPTY = {};

export const handlers: Record<string, Handler> = {
  taskCreate: (k, t, r) => k.taskCreate(t, r.parent, r.name, r.newNamespace),
  taskTerminate: (k, t, r) => {
    k.terminate(k.taskFromPort(t, r.task), `terminated by task ${t.id}`);
    return EMPTY;
  },
  taskInfo: (k, t, r) => k.taskInfo(t, r.task),
  taskGetSpecialPort: (k, t, r) => ({ port: k.taskGetSpecialPort(t, r.task, r.which as TaskSpecialPort) }),
  taskSetSpecialPort: (k, t, r) => (k.taskSetSpecialPort(t, r.task, r.which as TaskSpecialPort, r.port), EMPTY),
  taskSetName: (k, t, r) => {
    k.taskFromPort(t, r.task).name = String(r.name).slice(0, 256);
    return EMPTY;
  },
  taskSetEssential: (k, t, r) => {
    k.taskFromPort(t, r.task).essential = !!r.essential;
    return EMPTY;
  },
  portNames: (k, t) => k.portNames(t),
  portType: (k, t, r) => ({ type: k.portType(t, r.name) }),
  portAllocate: (k, t, r) => ({ name: k.portAllocate(t, r.right as PortRight) }),
  portDestroy: (k, t, r) => (k.portDestroy(t, r.name), EMPTY),
  portDeallocate: (k, t, r) => (k.portDeallocate(t, r.name), EMPTY),
  portGetRefs: (k, t, r) => ({ refs: k.portGetRefs(t, r.name, r.right as PortRight) }),
  portModRefs: (k, t, r) => (k.portModRefs(t, r.name, r.right as PortRight, r.delta), EMPTY),
  portSetQlimit: (k, t, r) => (k.portSetQlimit(t, r.name, r.qlimit), EMPTY),
  portGetSetStatus: (k, t, r) => ({ members: k.portGetSetStatus(t, r.name) }),
  portMoveMember: (k, t, r) => (k.portMoveMember(t, r.member, r.after), EMPTY),
  portRequestNotification: (k, t, r) => ({
    previous: k.requestNotification(t, r.name, r.variant as NotifyId, r.sync, r.notify, r.notifyDisposition as MsgType),
  }),
  portInsertRight: (k, t, r) => (k.insertRight(t, r.task, r.name, r.right, r.disposition as MsgType), EMPTY),
  portExtractRight: (k, t, r) => k.extractRight(t, r.task, r.name, r.disposition as MsgType),
  portGetReceiveStatus: (k, t, r) => k.portGetReceiveStatus(t, r.name),
  registerNewTaskNotification: (k, t, r) => (k.registerNewTaskNotification(t, r.hostPriv, r.notify, r.notifyDisposition as MsgType), EMPTY),
  namespaceTerminate: (k, t, r) => {
    const ns = k.namespaceFromHost(t, r.hostPriv);
    k.destroyNamespace(ns, `namespace terminated by task ${t.id}`);
    return EMPTY;
  },
  taskForId: (k, t, r) => ({ task: k.taskForId(t, r.hostPriv, r.taskId) }),
  detach: (k, t) => (k.terminate(t, "detached"), EMPTY),
  credit: (k, t, r) => (k.credit(t, r.credit), EMPTY),
  msgSend: (k, t, r) => (k.send(t, r), EMPTY),
};

const table = methods(MachDefinition);

/** Runs one kernel call from its encoded request; answers the encoded reply or throws a HurdError. */
export function dispatch(k: Kernel, t: KTask, msgid: number, request: Uint8Array): Uint8Array {
  const info = table.byId.get(msgid);
  const h = info && handlers[info.key];
  if (!info || !h) throw new HurdError(Errno.MIG_BAD_ID, `no kernel call ${msgid}`);
  let req: unknown;
  try {
    req = info.def.requestType.decode(request);
  } catch (e) {
    throw new HurdError(Errno.MIG_BAD_ARGUMENTS, `malformed ${info.def.name} request`, { cause: e });
  }
  const rep = h(k, t, req);
  return info.def.responseType.encode(info.def.responseType.fromPartial(rep as object)).finish();
}

export function callName(msgid: number): string {
  return table.byId.get(msgid)?.def.name ?? String(msgid);
}

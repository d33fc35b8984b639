// ipc_notify: the messages the kernel sends by itself. Message ids
// (mach/notify.h, task_notify.defs), their bodies, and the one path every
// notification takes into a queue; and the nested-task events an ancestor
// hurd's proc hears of in bulk.
import { clearTaskEvents, encodeTaskEvents, newTaskEvents, NO_TRACE_CONTEXT, type TaskEvents } from "@hurdmesh/mach/internal";
import {
  DeadNameNotification,
  NoSendersNotification,
  PortDeletedNotification,
  PortDestroyedNotification,
  NewTaskNotification,
  TaskTerminatedNotification,
  type TaskEvent,
} from "@hurdmesh/proto/hurd/mach/v1/mach";
import { R_RECEIVE, R_SEND, R_SEND_ONCE, type KMsg, type KRight, type Namespace, type Port } from "./objects.js";
import type { KernelState } from "./state.js";

export const MACH_NOTIFY_PORT_DELETED = 65;
export const MACH_NOTIFY_PORT_DESTROYED = 69;
export const MACH_NOTIFY_NO_SENDERS = 70;
export const MACH_NOTIFY_SEND_ONCE = 71;
export const MACH_NOTIFY_DEAD_NAME = 72;
export const MACH_NOTIFY_NEW_TASK = 4400;
/** hurdmesh: a task of the registered namespace is gone. */
export const HURD_NOTIFY_TASK_TERMINATED = 4401;
/** hurdmesh: tasks of hurds nested in the registered one were created or ended (many per message). */
export const HURD_NOTIFY_TASK_EVENTS = 4402;

const EMPTY = new Uint8Array(0);

export const bodies = {
  portDeleted: (name: number) => PortDeletedNotification.encode({ name }).finish(),
  portDestroyed: () => PortDestroyedNotification.encode({ rights: 0 }).finish(),
  noSenders: (mscount: number) => NoSendersNotification.encode({ mscount }).finish(),
  sendOnce: () => EMPTY,
  deadName: (name: number) => DeadNameNotification.encode({ name }).finish(),
  newTask: (taskId: number, parentId: number, namespaceId: number, name: string) =>
    NewTaskNotification.encode({ task: 0, parent: 1, taskId, parentId, namespaceId, name }).finish(),
  taskTerminated: (taskId: number, reason: string, namespaceId: number) => TaskTerminatedNotification.encode({ taskId, reason, namespaceId }).finish(),
  /** Encodes the pending events and empties the arrays for reuse. */
  taskEvents: (e: TaskEvents) => {
    const b = encodeTaskEvents(e);
    clearTaskEvents(e);
    return b;
  },
};

/** A message from the kernel itself: the only kind that arrives with `kernel` set. */
export function kernelMessage(k: KernelState, dest: Port, destType: number, id: number, body: Uint8Array, rights: KRight[] | null): void {
  k.stats.notifications++;
  // A send right the kernel holds (a namespace's notify port) stays the
  // kernel's: the message carries a copy, released when it is delivered.
  // A send-once right is consumed by the message, as Mach's are.
  if (destType === R_SEND) dest.srights++;
  const m: KMsg = { dest, destType, destMoved: false, reply: null, replyType: 0, id, code: 0, body, rights, sender: null, kernel: true, seq: 0, traceContext: NO_TRACE_CONTEXT, trace: null, payer: null, charged: 0 };
  if (k.tracer !== null) k.tracer.sent(m, null);
  k.enqueue(dest, m);
}

/** ipc_notify_port_deleted: a name with a dead-name request went away while its port lived. */
export function notifyPortDeleted(k: KernelState, so: Port, name: number): void {
  kernelMessage(k, so, R_SEND_ONCE, MACH_NOTIFY_PORT_DELETED, bodies.portDeleted(name), null);
}

/** ipc_notify_dead_name: the port a name held a right to died. */
export function notifyDeadName(k: KernelState, so: Port, name: number): void {
  kernelMessage(k, so, R_SEND_ONCE, MACH_NOTIFY_DEAD_NAME, bodies.deadName(name), null);
}

/** ipc_notify_no_senders: the port's last send right went; the request is used up. */
export function notifyNoSenders(k: KernelState, p: Port): void {
  const so = p.nsrequest!;
  p.nsrequest = null;
  kernelMessage(k, so, R_SEND_ONCE, MACH_NOTIFY_NO_SENDERS, bodies.noSenders(p.mscount), null);
}

/** ipc_notify_send_once: a send-once right was destroyed unused; the notification goes through it. */
export function notifySendOnce(k: KernelState, p: Port): void {
  kernelMessage(k, p, R_SEND_ONCE, MACH_NOTIFY_SEND_ONCE, bodies.sendOnce(), null);
}

/** ipc_notify_port_destroyed: the receive right of a dying port goes to its backup instead. */
export function notifyPortDestroyed(k: KernelState, so: Port, p: Port): void {
  kernelMessage(k, so, R_SEND_ONCE, MACH_NOTIFY_PORT_DESTROYED, bodies.portDestroyed(), [{ type: R_RECEIVE, port: p, value: 0 }]);
}

/**
 * Queues an event of a nested hurd's task for an ancestor hurd's proc.
 * Every level of nesting would otherwise cost each ancestor two
 * notifications, two rights and two deallocations per task; gathered,
 * the ancestors' share of a task's life is a few array entries. The
 * events of one ancestor stay in one queue in the order they happened
 * (a task's creation always precedes its end), and the queue is sent when
 * it is full or once the work in hand is done (a microtask: on the
 * in-process bus, whose deliveries are microtasks too, that is after the
 * current burst of traps, before any reply to them is read; a later
 * macrotask would let whole RPC chains finish before an ancestor heard).
 */
export function nestedTaskEvent(k: KernelState, n: Namespace, kind: TaskEvent, taskId: number, parentId: number, namespaceId: number, name: string): void {
  if (!n.notify?.active) return;
  let e = n.events;
  if (e === null) e = n.events = newTaskEvents();
  if (e.kind.length === 0) {
    k.eventsPending.push(n);
    if (!k.eventsScheduled) {
      k.eventsScheduled = true;
      queueMicrotask((k.sendEvents ??= () => sendNestedTaskEvents(k)));
    }
  }
  e.kind.push(kind);
  e.taskId.push(taskId);
  e.parentId.push(parentId);
  e.namespaceId.push(namespaceId);
  e.name.push(name);
  if (e.kind.length >= k.config.maxTaskEventsPerMessage) sendEventsOf(k, n);
}

function sendNestedTaskEvents(k: KernelState): void {
  k.eventsScheduled = false;
  // Sending ends no task, so no event is queued while this runs. A
  // namespace listed twice (its queue filled and was sent early) is
  // simply empty the second time.
  for (let i = 0; i < k.eventsPending.length; i++) sendEventsOf(k, k.eventsPending[i]!);
  k.eventsPending.length = 0;
}

function sendEventsOf(k: KernelState, n: Namespace): void {
  const e = n.events;
  if (e === null || e.kind.length === 0) return;
  let body: Uint8Array;
  try {
    body = bodies.taskEvents(e);
  } catch (x) {
    // Ids are the kernel's own counters, so this cannot happen; if it
    // does, losing a batch beats failing the task_create that sent it.
    clearTaskEvents(e);
    k.log(`nested-task events for namespace ${n.id} dropped: ${(x as Error).message}`);
    return;
  }
  // A proc gone meanwhile (or replaced) hears nothing, as a dead port would.
  if (n.notify?.active) kernelMessage(k, n.notify, R_SEND, HURD_NOTIFY_TASK_EVENTS, body, null);
}

/** Every proc is gone with its task (the kernel closes): nothing is left to tell. */
export function dropNestedTaskEvents(k: KernelState): void {
  for (const n of k.eventsPending) n.events = null;
  k.eventsPending.length = 0;
}

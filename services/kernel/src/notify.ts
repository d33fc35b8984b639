// Notification message ids (mach/notify.h, task_notify.defs) and bodies.
import { clearTaskEvents, encodeTaskEvents, type TaskEvents } from "@hurdmesh/mach/internal";
import {
  DeadNameNotification,
  NoSendersNotification,
  PortDeletedNotification,
  PortDestroyedNotification,
  NewTaskNotification,
  TaskTerminatedNotification,
} from "@hurdmesh/proto/hurd/mach/v1/mach";

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

// Notifications (the Hurd's notify handlers and S_mach_notify_new_task).
// Only messages the kernel marks as its own are believed: the Hurd's proc
// crashed on forged dead-name notifications (and under rpctrace); here a
// forged one is counted and dropped.
import { MsgType, Notify, Rights, optionalRight, type Received } from "@hurdmesh/mach";
import { decodeTaskEvents, newTaskEvents, type TaskEvents } from "@hurdmesh/mach/internal";
import { NewTaskNotification, TaskEvent, TaskTerminatedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { closeHandle, type HandleTable } from "./handles.js";
import { nestedProcess, processExited } from "./mgt.js";
import { joinPgrp } from "./pgrp.js";
import { P, addChild, removeChild } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

/** New-task and task-terminated notices on proc's notify port. */
export function onNamespaceNotice(srv: ProcServer, m: Received): void {
  if (!m.kernel) {
    srv.stats.forgedNotifications++;
    srv.task.dropRights(m);
    return;
  }
  try {
    if (m.id === Notify.NEW_TASK) newTask(srv, m);
    else if (m.id === Notify.TASK_EVENTS) taskEvents(srv, m);
    else if (m.id === Notify.TASK_TERMINATED) {
      const n = TaskTerminatedNotification.decode(m.body);
      const p = srv.byTaskId.get(n.taskId);
      if (p) processExited(srv, p);
    } else srv.task.dropRights(m);
  } catch {
    srv.task.dropRights(m);
  }
}

let scratch: TaskEvents | null = null;

/**
 * What the tasks of hurds nested in this one did, many per message and in
 * the order it happened: each task gets a pid here when it is created and is
 * reaped when it ends (its own hurd's proc does the waiting). No task right
 * comes along; ProcServer.taskOf asks the kernel for one if proc ever acts
 * on such a process, which most never need.
 */
function taskEvents(srv: ProcServer, m: Received): void {
  // One set of arrays refilled per message: the loop below never waits.
  const n = (scratch ??= newTaskEvents());
  decodeTaskEvents(m.body, n);
  const own = srv.task.namespaceId;
  const len = Math.min(n.kind.length, n.taskId.length, n.parentId.length, n.namespaceId.length, n.name.length);
  for (let i = 0; i < len; i++) {
    const taskId = n.taskId[i]!;
    const ns = n.namespaceId[i]!;
    // Only nested hurds' tasks travel this way; this hurd's own come with their ports.
    if (taskId === 0 || ns === 0 || ns === own) continue;
    try {
      if (n.kind[i] === TaskEvent.TASK_EVENT_CREATED) {
        if (!srv.byTaskId.has(taskId)) nestedProcess(srv, 0, taskId, n.parentId[i]!, ns, n.name[i]!);
      } else if (n.kind[i] === TaskEvent.TASK_EVENT_TERMINATED) {
        const p = srv.byTaskId.get(taskId);
        if (p && p.ns === ns) processExited(srv, p);
      }
    } catch {
      // No pid left for it (EAGAIN): the rest of the batch still counts.
      srv.stats.nestedDropped++;
    }
  }
}

/**
 * mach_notify_new_task: a task of this hurd was created. It gets a process
 * at once (parent init, no ids, until someone calls proc_child) unless a
 * member of a task namespace created it: then it is that member's child
 * and the namespace root hears of it, as proc_make_task_namespace says.
 */
function newTask(srv: ProcServer, m: Received): void {
  const n = NewTaskNotification.decode(m.body);
  // Another kind of right where the task should be is EINVAL: the caller releases the whole message.
  const task = optionalRight(m.ports, n.task, MsgType.MSG_TYPE_MOVE_SEND);
  srv.drop(optionalRight(m.ports, n.parent));
  if (!task) return;
  const known = srv.byTaskId.get(n.taskId);
  if (known) {
    if (known.task === task) srv.drop(task);
    else srv.bindTask(known, task, n.taskId);
    return;
  }
  if (n.namespaceId && n.namespaceId !== srv.task.namespaceId) {
    nestedProcess(srv, task, n.taskId, n.parentId, n.namespaceId, n.name);
    return;
  }
  const p = srv.createProcess(task, n.taskId);
  const creator = srv.byTaskId.get(n.parentId);
  const root = creator ? (creator.has(P.NSROOT) ? creator : creator.nsRoot) : null;
  if (creator && root && !root.dead) {
    removeChild(p);
    addChild(creator, p);
    p.flags |= P.PARENTSET;
    srv.setUids(p, creator.uids);
    p.login = creator.login;
    p.nsRoot = root;
    if (creator.pgrp) joinPgrp(srv, p, creator.pgrp);
    if (root.nsNotify && p.task) {
      const r = new Rights();
      const t = r.copySend(p.task);
      const par = creator.task ? r.copySend(creator.task) : r.add(0, MsgType.MSG_TYPE_PORT_NAME);
      try {
        srv.task.send({ destination: root.nsNotify, id: Notify.NEW_TASK, body: NewTaskNotification.encode({ task: t, parent: par, taskId: n.taskId, parentId: n.parentId, namespaceId: n.namespaceId, name: n.name }).finish(), ports: r.ports });
      } catch {
        // The namespace's notify port is gone: the namespace still works.
      }
    }
  }
}

/** Notifications on proc's served ports: no-senders on handles and on reauthentication ports. */
export function onPortNotice(srv: ProcServer, handles: HandleTable, m: Received, o: PortObject | undefined): void {
  srv.task.dropRights(m);
  if (!o || m.id !== Notify.NO_SENDERS) return;
  if (o.kind === "handle") closeHandle(srv, handles, o.h);
  else if (o.kind === "reauth") o.done(false);
}

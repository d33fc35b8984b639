// Tasks (kern/task.c): creation and termination, the special ports, the
// secret token a task proves itself with, and the lease that ends a task
// whose program went away; and the end of a namespace, which is the end of
// its tasks. The KTask itself is declared in objects.ts.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { Errno } from "@hurdmesh/mach";
import { Delivery, TaskEvent, TaskSpecialPort, type HurdLimits as HurdLimitsMsg, type HurdPolicy } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { copyoutRight } from "./message.js";
import { drain, tell } from "./mqueue.js";
import { holdsHostOf, namespaceFromHost, namespacePath, newNamespace } from "./namespace.js";
import { bodies, HURD_NOTIFY_TASK_TERMINATED, kernelMessage, MACH_NOTIFY_NEW_TASK, nestedTaskEvent } from "./notify.js";
import { KTask, MACH_PORT_DEAD, Port, R_DEAD, R_SEND, TYPE_RECEIVE, TYPE_SEND, Unpaid, type KRight, type Namespace, type Sink } from "./objects.js";
import { destroyPort, makeSend, releaseSend } from "./port.js";
import { checkNewTask, chargeTask, linkNamespace, policyBits, resolveLimits, setLimits, unchargeTask, unlinkNamespace } from "./quota.js";
import { claim, forget, lapse, overGrace } from "./reincarnation.js";
import { destroyEntry, need } from "./space.js";
import { err, type KernelState } from "./state.js";

export type { KTask, Sink };

/** Options for a task the kernel creates by itself (boot servers, tests). */
export interface BootTaskOptions {
  name: string;
  /** Give the task a send right to its namespace's privileged host port. */
  hostPriv?: boolean;
  /** The namespace (default: the root hurd). */
  ns?: Namespace;
  /** A port to set as the task's bootstrap port (a send right is made). */
  bootstrap?: Port | null;
}

export interface BootTask {
  task: KTask;
  token: string;
  /** The name of the host_priv send right in the task's space, or 0. */
  hostPriv: number;
}

// ---------------------------------------------------------------- tokens

function newToken(k: KernelState): string {
  if (k.tokenAt + 16 > k.tokenPool.length) {
    k.tokenPool = k.journal === null ? randomBytes(16 * 256) : k.journal.random(16 * 256);
    k.tokenAt = 0;
  }
  const t = k.tokenPool.toString("base64url", k.tokenAt, k.tokenAt + 16);
  // Used bytes are wiped: a token never lingers in the pool once handed out.
  k.tokenPool.fill(0, k.tokenAt, k.tokenAt + 16);
  k.tokenAt += 16;
  return t;
}

/** The task with this id if `token` is its secret; null otherwise. Every trap and edge call passes here. */
export function authenticate(k: KernelState, taskId: number, token: string): KTask | null {
  const t = k.tasks.get(taskId);
  if (!t || typeof token !== "string") return null;
  // Tokens are ASCII, so a string of another length cannot match. The bytes
  // are compared in constant time through a reused scratch buffer (no
  // allocation per trap); a token with non-ASCII characters writes more or
  // fewer bytes than its length and fails the byte-length check, since
  // timingSafeEqual throws on unequal lengths.
  const want = t.tokenBytes;
  if (token.length !== want.length) return null;
  const n = k.scratch.write(token, 0, "utf8");
  if (n !== want.length) return null;
  return timingSafeEqual(k.scratch.subarray(0, n), want) ? t : null;
}

// ---------------------------------------------------------------- life and death

/** Creates a task with no parent task (boot servers, tests, the edge's first client). */
export function bootTask(k: KernelState, o: BootTaskOptions): BootTask {
  const ns = o.ns ?? k.root;
  if (!ns.active) throw err("KERN_INVALID_ARGUMENT", "namespace is being destroyed");
  checkNewTask(k, null, ns.linked || ns.parent === null ? ns : ns.parent, ns.parent !== null && !ns.linked);
  const t = createTask(k, null, ns, o.name, false);
  linkNamespace(k, ns);
  let hostPriv = 0;
  if (o.hostPriv) hostPriv = copyoutRight(k, t, R_SEND, makeSend(ns.hostPriv));
  if (o.bootstrap) setSpecial(k, t, TaskSpecialPort.TASK_BOOTSTRAP_PORT, o.bootstrap);
  return { task: t, token: t.token, hostPriv };
}

/** Makes the task; the caller has checked its hurd's policy and limits (quota.ts, checkNewTask). */
function createTask(k: KernelState, parent: KTask | null, ns: Namespace, name: string, dieWithParent: boolean): KTask {
  if (!ns.active) throw err("KERN_INVALID_ARGUMENT", "namespace is being destroyed");
  const t = new KTask(ns, parent ? parent.id : 0, name.slice(0, 256), newToken(k), k.subjects, k.accounting);
  t.createdMs = k.now();
  chargeTask(k, ns);
  const self = new Port(k.config.qlimit);
  self.kobject = { kind: "task", task: t };
  t.self = self;
  copyoutRight(k, t, R_SEND, makeSend(self));
  if (parent?.bootstrap?.active) setSpecial(k, t, TaskSpecialPort.TASK_BOOTSTRAP_PORT, parent.bootstrap);
  k.tasks.set(t.id, t);
  ns.tasks.add(t);
  // Every task is leased: by its own attach (and heartbeats), or, made to
  // die with its parent, by its parent's; one that does neither ends after
  // attachGraceMs (sweepLeases).
  if (dieWithParent && parent !== null) {
    t.boundTo = parent;
    (parent.bound ??= new Set()).add(t);
  } else k.unattached.set(t, true);
  if (k.tracer !== null) k.tracer.created(t);
  // The proc of this hurd and of every hurd it is nested in hears of the
  // task (as Linux PID namespaces: visible upward, never sideways or down).
  // Its own hurd's proc at once and with the task's port, since it acts on
  // the task; the ancestors' by id, in bulk (see nestedTaskEvent).
  if (ns.notify?.active) {
    const rights: KRight[] = [
      { type: R_SEND, port: makeSend(self), value: 0 },
      parent?.active ? { type: R_SEND, port: makeSend(parent.self), value: 0 } : { type: R_DEAD, port: null, value: 0 },
    ];
    kernelMessage(k, ns.notify, R_SEND, MACH_NOTIFY_NEW_TASK, bodies.newTask(t.id, parent?.id ?? 0, ns.id, t.name), rights);
  }
  for (let n = ns.parent; n; n = n.parent) nestedTaskEvent(k, n, TaskEvent.TASK_EVENT_CREATED, t.id, parent?.id ?? 0, ns.id, t.name);
  return t;
}

export interface TaskCreateOptions {
  newNamespace?: boolean;
  /** With newNamespace: the new hurd's limits and policy (quota.ts). */
  limits?: HurdLimitsMsg;
  policy?: HurdPolicy;
  /** Terminated with its parent; leased by its parent's lease. */
  dieWithParent?: boolean;
}

// task_create (2007)
export function taskCreate(k: KernelState, caller: KTask, parentName: number, name: string, o: TaskCreateOptions) {
  const parent = taskFromPort(caller, parentName);
  // Everything that can refuse is checked before anything is made: a
  // refused call must not leave a namespace, or a task nobody names, behind.
  need(k, caller.space, caller);
  if (!parent.ns.active) throw err("KERN_INVALID_ARGUMENT", "namespace is being destroyed");
  if (!parent.active) throw err("KERN_INVALID_TASK", "the parent task is ending");
  // A new hurd is made inside the parent's, and only by a holder of that
  // hurd's host port (or of a hurd enclosing it), as a Zircon job is made
  // only through a handle to its parent job: else any task of any hurd
  // could mint hurds, each with limits and a host port of its own.
  if (o.newNamespace && !holdsHostOf(caller, parent.ns))
    throw err("KERN_NO_ACCESS", `a new hurd inside ${parent.ns.parent === null ? "the root hurd" : `hurd ${parent.ns.label}`} takes a send right to its host port`);
  checkNewTask(k, caller, parent.ns, !!o.newNamespace);
  let ns = parent.ns;
  if (o.newNamespace) {
    const limits = resolveLimits(parent.ns, k.config.hurdLimits, o.limits);
    ns = newNamespace(k, parent.ns, name);
    setLimits(ns, limits);
    ns.policy = policyBits(o.policy);
  }
  const t = createTask(k, parent, ns, name, !!o.dieWithParent);
  linkNamespace(k, ns);
  const task = copyoutRight(k, caller, R_SEND, makeSend(t.self));
  const hostPriv = o.newNamespace ? copyoutRight(k, caller, R_SEND, makeSend(ns.hostPriv)) : 0;
  return { task, taskId: t.id, token: t.token, namespaceId: ns.id, hostPriv };
}

/**
 * task_terminate (2008): its space is destroyed, then its task port, so
 * holders see a dead name; the tasks made to die with it go too (one after
 * another, not by recursion: such a chain may be as long as a hurd has tasks).
 */
export function terminate(k: KernelState, t: KTask, reason: string): void {
  if (!t.active) return;
  terminateOne(k, t, reason);
  if (t.bound === null) return;
  const todo: KTask[] = [...t.bound];
  t.bound = null;
  for (let i = 0; i < todo.length; i++) {
    const c = todo[i]!;
    if (!c.active) continue;
    terminateOne(k, c, `its parent task ${c.boundTo?.id ?? 0} ended`);
    if (c.bound !== null) {
      for (const g of c.bound) todo.push(g);
      c.bound = null;
    }
  }
}

function terminateOne(k: KernelState, t: KTask, reason: string): void {
  // An attached task hears of its own end (seq 0, KERN_TERMINATED), so its
  // program can stop instead of sending traps nobody will take.
  if (t.attached) tell(k, t, Delivery.encode({ failed: { seq: 0, code: Errno.KERN_TERMINATED, reply: 0 }, seq: 0 }).finish());
  t.active = false;
  t.attached = false;
  t.sink = null;
  t.credit = 0;
  k.tasks.delete(t.id);
  k.leased.delete(t);
  k.unattached.delete(t);
  forget(k, t);
  if (t.boundTo !== null) {
    t.boundTo.bound?.delete(t);
    t.boundTo = null;
  }
  t.ns.tasks.delete(t);
  unchargeTask(k, t.ns);
  const sp = t.space;
  sp.active = false;
  for (const e of [...sp.entries.values()]) {
    if (!sp.entries.has(e.name)) continue;
    destroyEntry(k, sp, e);
  }
  sp.clear();
  for (const which of [TaskSpecialPort.TASK_BOOTSTRAP_PORT, TaskSpecialPort.TASK_EXCEPTION_PORT]) setSpecial(k, t, which, null);
  destroyPort(k, t.self);
  // Its NATS user goes with it: nothing a dead task held still reaches the bus.
  if (k.natsUsers !== null) k.natsUsers.taskEnded(t);
  const ns = t.ns;
  if (ns.notify?.active) kernelMessage(k, ns.notify, R_SEND, HURD_NOTIFY_TASK_TERMINATED, bodies.taskTerminated(t.id, reason, ns.id), null);
  for (let n = ns.parent; n; n = n.parent) nestedTaskEvent(k, n, TaskEvent.TASK_EVENT_TERMINATED, t.id, 0, ns.id, "");
  // A subhurd whose last task ended, with nothing nested in it, is gone:
  // no task can be made in it again (task_create needs a parent task in it),
  // and it no longer counts against its ancestors' nested hurds.
  for (let n: Namespace | null = ns; n !== null && n.linked && n.tasks.size === 0 && n.children.size === 0; n = n.parent) endNamespace(k, n);
}

/** A namespace with nothing left in it: unlinked from its parent, its proc's notify right released. */
function endNamespace(k: KernelState, ns: Namespace): void {
  ns.active = false;
  if (ns.notify) {
    releaseSend(k, ns.notify);
    ns.notify = null;
  }
  unlinkNamespace(k, ns);
}

/** Terminates every task of a namespace and of the namespaces nested in it (namespace_terminate). */
export function destroyNamespace(k: KernelState, ns: Namespace, reason: string): number {
  let n = 0;
  ns.active = false;
  for (const c of [...ns.children]) n += destroyNamespace(k, c, reason);
  for (const t of [...ns.tasks]) {
    if (!t.active) continue;
    terminate(k, t, reason);
    n++;
  }
  endNamespace(k, ns);
  return n;
}

/**
 * A kill-on-limit hurd's limit stopped a call (quota.ts): once the call is
 * undone, the task that made it is terminated instead of being refused.
 */
export function killOffender(k: KernelState): void {
  const t = k.offender;
  k.offender = null;
  if (t !== null && t.active) {
    k.log(`task ${t.id} (${t.name}) killed on a limit of its hurd`);
    terminate(k, t, "killed on a limit");
  }
}

/**
 * Ends every task of the root hurd and every namespace nested in it, but
 * keeps the root namespace and its host port: the state a fresh boot
 * starts from (boot claims, when the root hurd's startup task dies).
 */
export function resetRoot(k: KernelState, reason: string): number {
  let n = 0;
  for (const c of [...k.root.children]) n += destroyNamespace(k, c, reason);
  for (const t of [...k.root.tasks]) {
    terminate(k, t, reason);
    n++;
  }
  if (k.root.notify) {
    releaseSend(k, k.root.notify);
    k.root.notify = null;
  }
  // A hurd that terminated its own namespace (a crash) left it inactive: the next boot needs it back.
  k.root.active = true;
  return n;
}

// ---------------------------------------------------------------- task ports

/** convert_port_to_task: the live task whose kernel port `name` holds a send right to (0: the caller). */
export function taskFromPort(caller: KTask, name: number): KTask {
  if (name === 0) return caller;
  const e = caller.space.lookup(name);
  if (!e || !(e.bits & TYPE_SEND) || !e.port) throw err("KERN_INVALID_TASK", `name ${name} is not a task port`);
  const k = e.port.kobject;
  if (!k || k.kind !== "task" || !k.task.active) throw err("KERN_INVALID_TASK", `name ${name} is not a live task`);
  return k.task;
}

/**
 * task_for_id (hurdmesh, 4908): a send right to a live task of the host's
 * hurd or of a hurd nested in it. Ancestors' procs hear of nested tasks by
 * id only and ask for a port when they act on one; a task of a sibling or
 * ancestor hurd is as unknown as a dead one.
 */
export function taskForId(k: KernelState, caller: KTask, hostName: number, taskId: number): number {
  const ns = namespaceFromHost(caller, hostName);
  const t = k.tasks.get(taskId);
  let n: Namespace | null = t?.active ? t.ns : null;
  while (n && n !== ns) n = n.parent;
  if (!t || !n) throw err("KERN_INVALID_ARGUMENT", `no task ${taskId} in this hurd or one nested in it`);
  need(k, caller.space, caller);
  return copyoutRight(k, caller, R_SEND, makeSend(t.self));
}

/** Sets a task's bootstrap or exception port to a send right made from `port` (null clears it). */
export function setSpecial(k: KernelState, t: KTask, which: TaskSpecialPort, port: Port | null): void {
  const slot = which === TaskSpecialPort.TASK_BOOTSTRAP_PORT ? "bootstrap" : which === TaskSpecialPort.TASK_EXCEPTION_PORT ? "exception" : null;
  if (!slot) throw err("KERN_INVALID_ARGUMENT", `special port ${which} cannot be set`);
  const old = t[slot];
  t[slot] = port ? makeSend(port) : null;
  if (old) releaseSend(k, old);
}

// task_get_special_port (2091)
export function taskGetSpecialPort(k: KernelState, caller: KTask, taskName: number, which: TaskSpecialPort): number {
  const t = taskFromPort(caller, taskName);
  const p = which === TaskSpecialPort.TASK_KERNEL_PORT ? t.self : which === TaskSpecialPort.TASK_BOOTSTRAP_PORT ? t.bootstrap : which === TaskSpecialPort.TASK_EXCEPTION_PORT ? t.exception : undefined;
  if (p === undefined) throw err("KERN_INVALID_ARGUMENT", `no special port ${which}`);
  if (!p) return 0;
  if (!p.active) return MACH_PORT_DEAD;
  return copyoutRight(k, caller, R_SEND, makeSend(p));
}

// task_set_special_port (2092)
export function taskSetSpecialPort(k: KernelState, caller: KTask, taskName: number, which: TaskSpecialPort, name: number): void {
  const t = taskFromPort(caller, taskName);
  if (which !== TaskSpecialPort.TASK_BOOTSTRAP_PORT && which !== TaskSpecialPort.TASK_EXCEPTION_PORT) throw err("KERN_INVALID_ARGUMENT", `special port ${which} cannot be set`);
  let port: Port | null = null;
  if (name !== 0) {
    const e = caller.space.lookup(name);
    if (!e || !e.port || !(e.bits & (TYPE_SEND | TYPE_RECEIVE))) throw err("KERN_INVALID_RIGHT", `name ${name} holds no send or receive right`);
    port = e.port;
    // From a receive right alone this is a MAKE_SEND: it counts in mscount,
    // or the receiver's no-senders bookkeeping would miss a sender.
    if (!(e.bits & TYPE_SEND)) port.mscount++;
  }
  setSpecial(k, t, which, port);
}

// task_info (2012)
export function taskInfo(caller: KTask, name: number) {
  const t = taskFromPort(caller, name);
  return {
    taskId: t.id,
    parentId: t.parentId,
    namespaceId: t.ns.id,
    name: t.name,
    portNames: t.space.entries.size,
    messagesSent: t.sent,
    messagesReceived: t.received,
    attached: t.attached,
    createdMs: t.createdMs,
    essential: t.essential,
    namespacePath: namespacePath(t.ns),
    queuedBytes: t.queuedBytes,
    dieWithParent: t.boundTo !== null,
    holder: t.attaches,
  };
}

// task_set_name (gnumach 4202)
export function taskSetName(caller: KTask, taskName: number, name: unknown): void {
  taskFromPort(caller, taskName).name = String(name).slice(0, 256);
}

// task_set_essential (gnumach 4211)
export function taskSetEssential(caller: KTask, taskName: number, essential: unknown): void {
  taskFromPort(caller, taskName).essential = !!essential;
}

// ---------------------------------------------------------------- attachment and leases

/** attach (hurdmesh, 4902): opens delivery to a task, over the bus (sink null) or to a stream. */
export function attach(k: KernelState, t: KTask, sink: Sink | null, window: number): void {
  claim(k, t, sink !== null);
  k.unattached.delete(t);
  t.attached = true;
  t.attaches++;
  t.sink = sink;
  t.credit = Math.max(1, Math.min(window || 256, k.config.maxWindow));
  // A (re)attaching runtime numbers its one-way traps from 1 again, and
  // the deliveries it is to hear of: what was kept for its old window is void.
  t.trapSeq = 0;
  t.deliverySeq = 0;
  t.unpaid = k.journal !== null && sink === null ? new Unpaid() : null;
  t.lastSeen = 0;
  touch(k, t);
  drain(k, t);
}

/** Marks a task alive. Cheap enough for every trap: it reorders only every lease/8. */
export function touch(k: KernelState, t: KTask): void {
  if (!t.attached) return;
  const now = k.now();
  if (now - t.lastSeen > k.config.leaseMs / 8) {
    k.leased.delete(t);
    k.leased.set(t, true);
    t.lastSeen = now;
  }
}

/** A stream-attached task lost its stream: it will expire unless it comes back. */
export function lostSink(t: KTask, sink: Sink): void {
  if (t.sink === sink) {
    t.sink = null;
    t.credit = 0;
  }
}

/**
 * Whether sweepLeases(k, now) would end (or lapse) a task: a look at the
 * front of each list, which holds the least recently seen or oldest.
 */
export function leasesDue(k: KernelState, now: number): boolean {
  for (const t of k.leased.keys()) {
    if (now - t.lastSeen > k.config.leaseMs) return true;
    break;
  }
  for (const since of k.lapsed.values()) {
    if (now - since > k.config.restartGraceMs) return true;
    break;
  }
  for (const t of k.unattached.keys()) {
    if (now - t.createdMs > k.config.attachGraceMs) return true;
    break;
  }
  return false;
}

/**
 * Ends the tasks whose lease ran out by `now` (the least recently seen are
 * at the front), and those that never attached within attachGraceMs of
 * their creation (the oldest at the front), as if their program went away.
 * `now` is when the kernel last knew it had read everything sent to it
 * (kernel.ts, sweep): a kernel behind on its input must not take its own
 * lag for its tasks' silence (a standby replaying the log passes the
 * leader's clock, k.now()).
 * Returns how many it ended or lapsed (the kernel's log notes a sweep that changed something).
 */
export function sweepLeases(k: KernelState, now = k.now()): number {
  let ended = 0;
  for (const t of k.leased.keys()) {
    if (now - t.lastSeen <= k.config.leaseMs) break;
    ended++;
    if (lapse(k, t)) continue;
    k.log(`task ${t.id} (${t.name}) lease expired after ${now - t.lastSeen} ms`);
    terminate(k, t, "lease expired");
  }
  for (const t of overGrace(k, now)) {
    ended++;
    k.log(`task ${t.id} (${t.name}) not re-attached within the restart grace (${k.config.restartGraceMs} ms)`);
    terminate(k, t, "lease expired");
  }
  for (const t of k.unattached.keys()) {
    if (now - t.createdMs <= k.config.attachGraceMs) break;
    ended++;
    k.log(`task ${t.id} (${t.name}) never attached in ${now - t.createdMs} ms`);
    terminate(k, t, "never attached");
  }
  return ended;
}

/**
 * Every lease and restart grace runs again from `now`, as if every task had
 * just been heard from: the kernel's bus was down (kernel.ts, busOutage),
 * and no task could reach it meanwhile. Edge streams are kept (unlike a
 * takeover's freshLeases): this kernel still holds them.
 */
export function restartLeases(k: KernelState, now: number): void {
  const leased = [...k.leased.keys()];
  k.leased.clear();
  for (const t of leased) {
    t.lastSeen = now;
    k.leased.set(t, true);
  }
  for (const t of [...k.lapsed.keys()]) k.lapsed.set(t, now);
}

/** credit (hurdmesh, 4905): the task consumed `n` messages; queued ones may flow again. */
export function credit(k: KernelState, t: KTask, n: number): void {
  if (!t.attached || n <= 0) return;
  t.credit = Math.min(t.credit + n, k.config.maxWindow);
  if (t.unpaid !== null) t.unpaid.paid(n);
  if (t.readyHead < t.ready.length) drain(k, t);
}

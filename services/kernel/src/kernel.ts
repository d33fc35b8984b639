import { randomBytes, timingSafeEqual } from "node:crypto";
import { Errno, HurdError, type ErrnoName, type Bus } from "@hurdmesh/mach";
import { clearTaskEvents, encode, newTaskEvents, NO_TRACE_CONTEXT } from "@hurdmesh/mach/internal";
import { Delivery, MsgType, NotifyId, PortRight, TaskEvent, TaskSpecialPort, type Message, type Received, type ReceivedPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { globalTelemetry, installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
// By path until the tracer moves into this service: @hurdmesh/telemetry, the
// API, no longer exports it, since it builds on the SDK's spans.
import { TraceHub, type KernelTracer } from "../../../packages/telemetry/src/kernel-trace.js";
import { kernelConfig, type KernelConfig } from "./config.js";
import { R_DEAD, R_NAME, R_RECEIVE, R_SEND, R_SEND_ONCE, type KMsg, type KRight } from "./message.js";
import { Namespace } from "./namespace.js";
import {
  bodies,
  HURD_NOTIFY_TASK_EVENTS,
  HURD_NOTIFY_TASK_TERMINATED,
  MACH_NOTIFY_DEAD_NAME,
  MACH_NOTIFY_NEW_TASK,
  MACH_NOTIFY_NO_SENDERS,
  MACH_NOTIFY_PORT_DELETED,
  MACH_NOTIFY_PORT_DESTROYED,
  MACH_NOTIFY_SEND_ONCE,
} from "./notify.js";
import { Port } from "./port.js";
import {
  MACH_PORT_DEAD,
  newEntry,
  Space,
  TYPE_DEAD_NAME,
  TYPE_DNREQUEST,
  TYPE_PORT_SET,
  TYPE_RECEIVE,
  TYPE_SEND,
  TYPE_SEND_ONCE,
  type Entry,
} from "./space.js";
import { KTask, type Sink } from "./task.js";

function err(name: ErrnoName, detail?: string): HurdError {
  return new HurdError(Errno[name], detail);
}

/** A snapshot taken before a copyin touches an entry, to put it back if the message fails. */
interface Undo {
  space: Space;
  e: Entry;
  bits: number;
  urefs: number;
  present: boolean;
  port: Port | null;
  srights: number;
  sorights: number;
  mscount: number;
  receiver: KTask | null;
  pset: Entry | null;
}

export interface KernelEvents {
  /** Something worth a line in the kernel's log (bad tokens, malformed traps). */
  log(line: string): void;
}

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

/**
 * The kernel: tasks, IPC spaces, ports and rights, message routing with Mach's
 * translation rules, notifications, namespaces. It holds no Hurd policy.
 * Every entry point either completes or throws a HurdError having changed
 * nothing (copyins are undone), so bad input never corrupts state.
 */
export class Kernel {
  readonly config: KernelConfig;
  readonly root: Namespace;
  readonly tasks = new Map<number, KTask>();
  /** Attached tasks in order of last activity: the lease sweep reads from the front. */
  private readonly leased = new Map<KTask, true>();
  private readonly undo: Undo[] = [];
  private readonly scratch = Buffer.alloc(256);
  /** Inside deliver: copying out a receive right must not push its queue yet. */
  private delivering = 0;
  /** Tasks that were handed a receive right with queued messages during a deliver. */
  private readonly drainLater = new Set<KTask>();
  private readonly deletedLater: { space: Space; e: Entry; dn: Port }[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Namespaces with nested-task events waiting to be sent, and whether their sending is scheduled. */
  private readonly eventsPending: Namespace[] = [];
  private eventsScheduled = false;
  private readonly sendEvents = () => this.sendNestedEvents();
  private logged = 0;
  private logWindow = 0;
  bus: Bus | null = null;
  events: KernelEvents;
  /** Counters for tests and the bench. */
  readonly stats = { sent: 0, delivered: 0, notifications: 0, rejectedTraps: 0, sendFailures: 0 };
  /** Set only while someone watches the trace stream or spans are on: routing checks this one field. */
  tracer: KernelTracer | null = null;
  /** Trace watchers and OpenTelemetry (spans on when the OTEL_* environment says so). */
  readonly trace: TraceHub;
  /** Servers beside the kernel that hold timers or watches for its tasks (trace-bus.ts): told at close. */
  private readonly closing = new Set<() => void>();

  constructor(config: Partial<KernelConfig> = {}, events?: Partial<KernelEvents>) {
    this.config = kernelConfig(config);
    this.events = { log: (l) => console.error(`[kernel ${this.config.system}] ${l}`), ...events };
    const host = new Port(this.config.qlimit);
    this.root = new Namespace(null, host, "root");
    host.kobject = { kind: "host", ns: this.root };
    this.sweepTimer = setInterval(() => this.sweepLeases(), Math.max(50, this.config.leaseMs / 4));
    this.sweepTimer.unref();
    this.trace = new TraceHub((t) => (this.tracer = t), this.config.system);
    const tel = telemetryFromEnv("hurd-kernel", process.env, { bus: this.config.bus });
    if (tel) {
      this.trace.useTelemetry(tel);
      // Embedded, the servers run in this process: their handler spans too.
      if (!globalTelemetry()) {
        setGlobalTelemetry(tel);
        installTracingHooks(tel);
      }
    }
  }

  /** Logs at most 20 lines a second, so a flood of bad traps cannot flood the log. */
  log(line: string): void {
    const now = Date.now();
    if (now - this.logWindow > 1000) {
      if (this.logged > 20) this.events.log(`(${this.logged - 20} more lines dropped)`);
      this.logWindow = now;
      this.logged = 0;
    }
    if (++this.logged <= 20) this.events.log(line);
  }

  /** Calls `f` once when the kernel closes (before its tasks are terminated); the returned function unregisters it. */
  onClose(f: () => void): () => void {
    this.closing.add(f);
    return () => void this.closing.delete(f);
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    // First, so that what they hold ends before the flood of terminations is traced for it.
    for (const f of [...this.closing]) {
      this.closing.delete(f);
      try {
        f();
      } catch (e) {
        this.log(`at close: ${(e as Error).message}`);
      }
    }
    for (const t of [...this.tasks.values()]) this.terminate(t, "kernel shutdown");
    // Every proc is gone with its task: nothing is left to tell.
    for (const n of this.eventsPending) n.events = null;
    this.eventsPending.length = 0;
  }

  // ---------------------------------------------------------------- tasks

  /** Creates a task with no parent task (boot servers, tests, the edge's first client). */
  bootTask(o: BootTaskOptions): BootTask {
    const ns = o.ns ?? this.root;
    const t = this.createTask(null, ns, o.name);
    let hostPriv = 0;
    if (o.hostPriv) hostPriv = this.copyoutRight(t, R_SEND, this.makeSend(ns.hostPriv));
    if (o.bootstrap) this.setSpecial(t, TaskSpecialPort.TASK_BOOTSTRAP_PORT, o.bootstrap);
    return { task: t, token: t.token, hostPriv };
  }

  private createTask(parent: KTask | null, ns: Namespace, name: string): KTask {
    if (this.tasks.size >= this.config.maxTasks) throw err("KERN_RESOURCE_SHORTAGE", `${this.config.maxTasks} tasks alive`);
    if (!ns.active) throw err("KERN_INVALID_ARGUMENT", "namespace is being destroyed");
    const t = new KTask(ns, parent ? parent.id : 0, name.slice(0, 256), this.newToken(), this.config.system);
    const self = new Port(this.config.qlimit);
    self.kobject = { kind: "task", task: t };
    t.self = self;
    this.copyoutRight(t, R_SEND, this.makeSend(self));
    if (parent?.bootstrap?.active) this.setSpecial(t, TaskSpecialPort.TASK_BOOTSTRAP_PORT, parent.bootstrap);
    this.tasks.set(t.id, t);
    ns.tasks.add(t);
    if (this.tracer !== null) this.tracer.created(t);
    // The proc of this hurd and of every hurd it is nested in hears of the
    // task (as Linux PID namespaces: visible upward, never sideways or down).
    // Its own hurd's proc at once and with the task's port, since it acts on
    // the task; the ancestors' by id, in bulk (see nestedEvent).
    if (ns.notify?.active) {
      const rights: KRight[] = [
        { type: R_SEND, port: this.makeSend(self), value: 0 },
        parent?.active ? { type: R_SEND, port: this.makeSend(parent.self), value: 0 } : { type: R_DEAD, port: null, value: 0 },
      ];
      this.kernelMessage(ns.notify, R_SEND, MACH_NOTIFY_NEW_TASK, bodies.newTask(t.id, parent?.id ?? 0, ns.id, t.name), rights);
    }
    for (let n = ns.parent; n; n = n.parent) this.nestedEvent(n, TaskEvent.TASK_EVENT_CREATED, t.id, parent?.id ?? 0, ns.id, t.name);
    return t;
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
  private nestedEvent(n: Namespace, kind: TaskEvent, taskId: number, parentId: number, namespaceId: number, name: string): void {
    if (!n.notify?.active) return;
    let e = n.events;
    if (e === null) e = n.events = newTaskEvents();
    if (e.kind.length === 0) {
      this.eventsPending.push(n);
      if (!this.eventsScheduled) {
        this.eventsScheduled = true;
        queueMicrotask(this.sendEvents);
      }
    }
    e.kind.push(kind);
    e.taskId.push(taskId);
    e.parentId.push(parentId);
    e.namespaceId.push(namespaceId);
    e.name.push(name);
    if (e.kind.length >= this.config.maxTaskEventsPerMessage) this.sendEventsOf(n);
  }

  private sendNestedEvents(): void {
    this.eventsScheduled = false;
    // Sending ends no task, so no event is queued while this runs. A
    // namespace listed twice (its queue filled and was sent early) is
    // simply empty the second time.
    for (let i = 0; i < this.eventsPending.length; i++) this.sendEventsOf(this.eventsPending[i]!);
    this.eventsPending.length = 0;
  }

  private sendEventsOf(n: Namespace): void {
    const e = n.events;
    if (e === null || e.kind.length === 0) return;
    let body: Uint8Array;
    try {
      body = bodies.taskEvents(e);
    } catch (x) {
      // Ids are the kernel's own counters, so this cannot happen; if it
      // does, losing a batch beats failing the task_create that sent it.
      clearTaskEvents(e);
      this.log(`nested-task events for namespace ${n.id} dropped: ${(x as Error).message}`);
      return;
    }
    // A proc gone meanwhile (or replaced) hears nothing, as a dead port would.
    if (n.notify?.active) this.kernelMessage(n.notify, R_SEND, HURD_NOTIFY_TASK_EVENTS, body, null);
  }

  // Task tokens come from a pool of random bytes filled 256 tokens at a
  // time: one getrandom call per task was a visible cost of task_create.
  private tokenPool = Buffer.alloc(0);
  private tokenAt = 0;
  private newToken(): string {
    if (this.tokenAt + 16 > this.tokenPool.length) {
      this.tokenPool = randomBytes(16 * 256);
      this.tokenAt = 0;
    }
    const t = this.tokenPool.toString("base64url", this.tokenAt, this.tokenAt + 16);
    // Used bytes are wiped: a token never lingers in the pool once handed out.
    this.tokenPool.fill(0, this.tokenAt, this.tokenAt + 16);
    this.tokenAt += 16;
    return t;
  }

  /** The task with this id if `token` is its secret; null otherwise. */
  authenticate(taskId: number, token: string): KTask | null {
    const t = this.tasks.get(taskId);
    if (!t || typeof token !== "string") return null;
    // Tokens are ASCII, so a string of another length cannot match. The bytes
    // are compared in constant time through a reused scratch buffer (no
    // allocation per trap); a token with non-ASCII characters writes more or
    // fewer bytes than its length and fails the byte-length check, since
    // timingSafeEqual throws on unequal lengths.
    const want = t.tokenBytes;
    if (token.length !== want.length) return null;
    const n = this.scratch.write(token, 0, "utf8");
    if (n !== want.length) return null;
    return timingSafeEqual(this.scratch.subarray(0, n), want) ? t : null;
  }

  /** Opens delivery to a task: over the bus (sink null) or to a stream. */
  attach(t: KTask, sink: Sink | null, window: number): void {
    t.attached = true;
    t.sink = sink;
    t.credit = Math.max(1, Math.min(window || 256, this.config.maxWindow));
    t.lastSeen = 0;
    this.touch(t);
    this.drain(t);
  }

  /** Marks a task alive. Cheap enough for every trap: it reorders only every lease/8. */
  touch(t: KTask): void {
    if (!t.attached) return;
    const now = Date.now();
    if (now - t.lastSeen > this.config.leaseMs / 8) {
      this.leased.delete(t);
      this.leased.set(t, true);
      t.lastSeen = now;
    }
  }

  /** A stream-attached task lost its stream: it will expire unless it comes back. */
  lostSink(t: KTask, sink: Sink): void {
    if (t.sink === sink) {
      t.sink = null;
      t.credit = 0;
    }
  }

  private sweepLeases(): void {
    const now = Date.now();
    for (const t of this.leased.keys()) {
      if (now - t.lastSeen <= this.config.leaseMs) break;
      this.log(`task ${t.id} (${t.name}) lease expired after ${now - t.lastSeen} ms`);
      this.terminate(t, "lease expired");
    }
  }

  credit(t: KTask, n: number): void {
    if (!t.attached || n <= 0) return;
    t.credit = Math.min(t.credit + n, this.config.maxWindow);
    if (t.readyHead < t.ready.length) this.drain(t);
  }

  taskFromPort(caller: KTask, name: number): KTask {
    if (name === 0) return caller;
    const e = this.lookup(caller.space, name);
    if (!e || !(e.bits & TYPE_SEND) || !e.port) throw err("KERN_INVALID_TASK", `name ${name} is not a task port`);
    const k = e.port.kobject;
    if (!k || k.kind !== "task" || !k.task.active) throw err("KERN_INVALID_TASK", `name ${name} is not a live task`);
    return k.task;
  }

  taskCreate(caller: KTask, parentName: number, name: string, newNamespace: boolean) {
    const parent = this.taskFromPort(caller, parentName);
    // Everything that can refuse is checked before anything is made: a
    // refused call must not leave a namespace, or a task nobody names, behind.
    this.need(caller.space);
    if (!parent.ns.active) throw err("KERN_INVALID_ARGUMENT", "namespace is being destroyed");
    let ns = parent.ns;
    if (newNamespace) ns = this.newNamespace(parent.ns, name);
    const t = this.createTask(parent, ns, name);
    if (ns !== parent.ns) parent.ns.children.add(ns);
    const task = this.copyoutRight(caller, R_SEND, this.makeSend(t.self));
    const hostPriv = newNamespace ? this.copyoutRight(caller, R_SEND, this.makeSend(ns.hostPriv)) : 0;
    return { task, taskId: t.id, token: t.token, namespaceId: ns.id, hostPriv };
  }

  /** Ends a task: its space is destroyed, then its task port, so holders see a dead name. */
  terminate(t: KTask, reason: string): void {
    if (!t.active) return;
    // An attached task hears of its own end (seq 0, KERN_TERMINATED), so its
    // program can stop instead of sending traps nobody will take.
    if (t.attached) this.emit(t, Delivery.encode({ failed: { seq: 0, code: Errno.KERN_TERMINATED, reply: 0 } }).finish(), 0);
    t.active = false;
    t.attached = false;
    t.sink = null;
    t.credit = 0;
    this.tasks.delete(t.id);
    this.leased.delete(t);
    t.ns.tasks.delete(t);
    const sp = t.space;
    sp.active = false;
    for (const e of [...sp.entries.values()]) {
      if (!sp.entries.has(e.name)) continue;
      this.destroyEntry(sp, e);
    }
    sp.entries.clear();
    sp.byPort.clear();
    for (const which of [TaskSpecialPort.TASK_BOOTSTRAP_PORT, TaskSpecialPort.TASK_EXCEPTION_PORT]) this.setSpecial(t, which, null);
    this.destroyPort(t.self);
    const ns = t.ns;
    if (ns.notify?.active) this.kernelMessage(ns.notify, R_SEND, HURD_NOTIFY_TASK_TERMINATED, bodies.taskTerminated(t.id, reason, ns.id), null);
    for (let n = ns.parent; n; n = n.parent) this.nestedEvent(n, TaskEvent.TASK_EVENT_TERMINATED, t.id, 0, ns.id, "");
  }

  /**
   * task_for_id: a send right to a live task of the host's hurd or of a hurd
   * nested in it. Ancestors' procs hear of nested tasks by id only and ask
   * for a port when they act on one; a task of a sibling or ancestor hurd is
   * as unknown as a dead one.
   */
  taskForId(caller: KTask, hostName: number, taskId: number): number {
    const ns = this.namespaceFromHost(caller, hostName);
    const t = this.tasks.get(taskId);
    let n: Namespace | null = t?.active ? t.ns : null;
    while (n && n !== ns) n = n.parent;
    if (!t || !n) throw err("KERN_INVALID_ARGUMENT", `no task ${taskId} in this hurd or one nested in it`);
    this.need(caller.space);
    return this.copyoutRight(caller, R_SEND, this.makeSend(t.self));
  }

  /** A namespace nested in `parent`, with its own host port; the caller links it in once something lives in it. */
  newNamespace(parent: Namespace, label: string): Namespace {
    if (parent.depth + 1 > this.config.maxNamespaceDepth) throw err("EINVAL", `namespaces nest at most ${this.config.maxNamespaceDepth} deep`);
    const host = new Port(this.config.qlimit);
    const ns = new Namespace(parent, host, label);
    host.kobject = { kind: "host", ns };
    return ns;
  }

  /**
   * Ends every task of the root hurd and every namespace nested in it, but
   * keeps the root namespace and its host port: the state a fresh boot
   * starts from (boot claims, when the root hurd's startup task dies).
   */
  resetRoot(reason: string): number {
    let n = 0;
    for (const c of [...this.root.children]) n += this.destroyNamespace(c, reason);
    for (const t of [...this.root.tasks]) {
      this.terminate(t, reason);
      n++;
    }
    if (this.root.notify) {
      this.releaseSend(this.root.notify);
      this.root.notify = null;
    }
    // A hurd that terminated its own namespace (a crash) left it inactive: the next boot needs it back.
    this.root.active = true;
    return n;
  }

  /** Terminates every task of a namespace and of the namespaces nested in it. */
  destroyNamespace(ns: Namespace, reason: string): number {
    let n = 0;
    ns.active = false;
    for (const c of [...ns.children]) n += this.destroyNamespace(c, reason);
    for (const t of [...ns.tasks]) {
      this.terminate(t, reason);
      n++;
    }
    if (ns.notify) {
      this.releaseSend(ns.notify);
      ns.notify = null;
    }
    ns.parent?.children.delete(ns);
    return n;
  }

  namespaceFromHost(caller: KTask, name: number): Namespace {
    const e = this.lookup(caller.space, name);
    const k = e?.port?.kobject;
    if (!e || !(e.bits & TYPE_SEND) || !k || k.kind !== "host") throw err("KERN_INVALID_HOST", `name ${name} is not a host port`);
    return k.ns;
  }

  registerNewTaskNotification(caller: KTask, hostName: number, notify: number, disp: MsgType): void {
    const ns = this.namespaceFromHost(caller, hostName);
    if (ns.notify?.active && ns.notify.receiver?.active) throw err("KERN_NO_ACCESS", "a proc is already registered for this namespace");
    if (disp !== MsgType.MSG_TYPE_MAKE_SEND && disp !== MsgType.MSG_TYPE_COPY_SEND && disp !== MsgType.MSG_TYPE_MOVE_SEND)
      throw err("KERN_INVALID_VALUE", "notify must travel as a send right");
    const r = this.copyinLive(caller, notify, disp, R_SEND);
    if (ns.notify) this.releaseSend(ns.notify);
    ns.notify = r.port;
  }

  setSpecial(t: KTask, which: TaskSpecialPort, port: Port | null): void {
    const slot = which === TaskSpecialPort.TASK_BOOTSTRAP_PORT ? "bootstrap" : which === TaskSpecialPort.TASK_EXCEPTION_PORT ? "exception" : null;
    if (!slot) throw err("KERN_INVALID_ARGUMENT", `special port ${which} cannot be set`);
    const old = t[slot];
    t[slot] = port ? this.makeSend(port) : null;
    if (old) this.releaseSend(old);
  }

  taskGetSpecialPort(caller: KTask, taskName: number, which: TaskSpecialPort): number {
    const t = this.taskFromPort(caller, taskName);
    const p = which === TaskSpecialPort.TASK_KERNEL_PORT ? t.self : which === TaskSpecialPort.TASK_BOOTSTRAP_PORT ? t.bootstrap : which === TaskSpecialPort.TASK_EXCEPTION_PORT ? t.exception : undefined;
    if (p === undefined) throw err("KERN_INVALID_ARGUMENT", `no special port ${which}`);
    if (!p) return 0;
    if (!p.active) return MACH_PORT_DEAD;
    return this.copyoutRight(caller, R_SEND, this.makeSend(p));
  }

  taskSetSpecialPort(caller: KTask, taskName: number, which: TaskSpecialPort, name: number): void {
    const t = this.taskFromPort(caller, taskName);
    if (which !== TaskSpecialPort.TASK_BOOTSTRAP_PORT && which !== TaskSpecialPort.TASK_EXCEPTION_PORT) throw err("KERN_INVALID_ARGUMENT", `special port ${which} cannot be set`);
    let port: Port | null = null;
    if (name !== 0) {
      const e = this.lookup(caller.space, name);
      if (!e || !e.port || !(e.bits & (TYPE_SEND | TYPE_RECEIVE))) throw err("KERN_INVALID_RIGHT", `name ${name} holds no send or receive right`);
      port = e.port;
      // From a receive right alone this is a MAKE_SEND: it counts in mscount,
      // or the receiver's no-senders bookkeeping would miss a sender.
      if (!(e.bits & TYPE_SEND)) port.mscount++;
    }
    this.setSpecial(t, which, port);
  }

  // ---------------------------------------------------------------- names and rights

  /** Looks a name up, turning a right whose port died into a dead name (Mach does it lazily too). */
  lookup(sp: Space, name: number): Entry | undefined {
    const e = sp.entries.get(name);
    if (e && e.port && !e.port.active && e.bits & (TYPE_SEND | TYPE_SEND_ONCE)) this.toDeadName(sp, e, 0);
    return e;
  }

  private toDeadName(sp: Space, e: Entry, extra: number): void {
    const port = e.port!;
    if (sp.byPort.get(port) === e) sp.byPort.delete(port);
    e.urefs = (e.bits & TYPE_SEND ? e.urefs : 1) + extra;
    e.bits = TYPE_DEAD_NAME;
    e.port = null;
    if (e.dnrequest) {
      port.dnrequests?.delete(e);
      e.dnrequest = null;
    }
  }

  private need(sp: Space): void {
    if (sp.entries.size >= this.config.maxNamesPerTask) throw err("KERN_NO_SPACE", `${this.config.maxNamesPerTask} names in one space`);
  }

  portAllocate(t: KTask, right: PortRight): number {
    this.need(t.space);
    const sp = t.space;
    switch (right) {
      case PortRight.PORT_RIGHT_RECEIVE: {
        const p = new Port(this.config.qlimit);
        p.receiver = t;
        const e = newEntry(sp.newName(), p, TYPE_RECEIVE, 0);
        sp.insert(e);
        return e.name;
      }
      case PortRight.PORT_RIGHT_PORT_SET: {
        const e = newEntry(sp.newName(), null, TYPE_PORT_SET, 0);
        e.members = new Set();
        sp.insert(e);
        return e.name;
      }
      case PortRight.PORT_RIGHT_DEAD_NAME: {
        const e = newEntry(sp.newName(), null, TYPE_DEAD_NAME, 1);
        sp.insert(e);
        return e.name;
      }
      default:
        throw err("KERN_INVALID_VALUE", `cannot allocate right ${right}`);
    }
  }

  private entry(sp: Space, name: number): Entry {
    const e = this.lookup(sp, name);
    if (!e) throw err("KERN_INVALID_NAME", `name ${name}`);
    return e;
  }

  /** mach_port_deallocate: one uref of a send, send-once or dead name. */
  portDeallocate(t: KTask, name: number): void {
    const sp = t.space;
    const e = this.entry(sp, name);
    if (e.bits & TYPE_SEND) {
      if (--e.urefs === 0) this.dropSend(sp, e);
    } else if (e.bits & TYPE_SEND_ONCE) {
      this.removeEntry(sp, e);
      this.destroySendOnce(e.port!);
    } else if (e.bits & TYPE_DEAD_NAME) {
      if (--e.urefs === 0) this.removeEntry(sp, e);
    } else throw err("KERN_INVALID_RIGHT", `name ${name} holds no send, send-once or dead name`);
  }

  /** The last send uref of an entry went: the entry goes unless it also holds the receive right. */
  private dropSend(sp: Space, e: Entry): void {
    const port = e.port!;
    e.bits &= ~TYPE_SEND;
    e.urefs = 0;
    if (!(e.bits & TYPE_RECEIVE)) this.removeEntry(sp, e);
    this.releaseSend(port);
  }

  /** Removes a name; a dead-name request on it becomes a port-deleted notification. */
  private removeEntry(sp: Space, e: Entry): void {
    sp.remove(e);
    if (e.dnrequest) {
      const dn = e.dnrequest;
      e.port?.dnrequests?.delete(e);
      e.dnrequest = null;
      this.kernelMessage(dn, R_SEND_ONCE, MACH_NOTIFY_PORT_DELETED, bodies.portDeleted(e.name), null);
    }
  }

  portDestroy(t: KTask, name: number): void {
    const e = this.entry(t.space, name);
    this.destroyEntry(t.space, e);
  }

  private destroyEntry(sp: Space, e: Entry): void {
    const port = e.port;
    const bits = e.bits;
    this.removeEntry(sp, e);
    if (bits & TYPE_PORT_SET) {
      for (const m of e.members!) m.pset = null;
      e.members!.clear();
      return;
    }
    if (!port) return;
    if (bits & TYPE_SEND) this.releaseSend(port);
    if (bits & TYPE_SEND_ONCE) this.destroySendOnce(port);
    if (bits & TYPE_RECEIVE) {
      port.receiver = null;
      this.leaveSet(port);
      this.destroyReceive(port);
    }
  }

  private leaveSet(port: Port): void {
    if (port.pset) {
      port.pset.members!.delete(port);
      port.pset = null;
    }
  }

  portModRefs(t: KTask, name: number, right: PortRight, delta: number): void {
    const sp = t.space;
    const e = this.entry(sp, name);
    switch (right) {
      case PortRight.PORT_RIGHT_SEND: {
        if (!(e.bits & TYPE_SEND)) throw err("KERN_INVALID_RIGHT", `name ${name} holds no send right`);
        const n = e.urefs + delta;
        if (n < 0) throw err("KERN_INVALID_VALUE", `urefs ${e.urefs} + ${delta}`);
        if (n > this.config.maxUrefs) throw err("KERN_UREFS_OVERFLOW");
        e.urefs = n;
        if (n === 0) this.dropSend(sp, e);
        return;
      }
      case PortRight.PORT_RIGHT_DEAD_NAME: {
        if (!(e.bits & TYPE_DEAD_NAME)) throw err("KERN_INVALID_RIGHT", `name ${name} is not a dead name`);
        const n = e.urefs + delta;
        if (n < 0) throw err("KERN_INVALID_VALUE", `urefs ${e.urefs} + ${delta}`);
        if (n > this.config.maxUrefs) throw err("KERN_UREFS_OVERFLOW");
        e.urefs = n;
        if (n === 0) this.removeEntry(sp, e);
        return;
      }
      case PortRight.PORT_RIGHT_RECEIVE:
      case PortRight.PORT_RIGHT_SEND_ONCE:
      case PortRight.PORT_RIGHT_PORT_SET: {
        const bit = right === PortRight.PORT_RIGHT_RECEIVE ? TYPE_RECEIVE : right === PortRight.PORT_RIGHT_SEND_ONCE ? TYPE_SEND_ONCE : TYPE_PORT_SET;
        if (!(e.bits & bit)) throw err("KERN_INVALID_RIGHT", `name ${name} lacks that right`);
        if (delta === 0) return;
        if (delta !== -1) throw err("KERN_INVALID_VALUE", "this right has exactly one reference");
        if (bit === TYPE_RECEIVE) {
          const port = e.port!;
          e.bits &= ~TYPE_RECEIVE;
          if (!(e.bits & TYPE_SEND)) this.removeEntry(sp, e);
          port.receiver = null;
          this.leaveSet(port);
          this.destroyReceive(port);
        } else this.destroyEntry(sp, e);
        return;
      }
      default:
        throw err("KERN_INVALID_VALUE", `right ${right}`);
    }
  }

  portGetRefs(t: KTask, name: number, right: PortRight): number {
    const e = this.entry(t.space, name);
    switch (right) {
      case PortRight.PORT_RIGHT_SEND:
        return e.bits & TYPE_SEND ? e.urefs : 0;
      case PortRight.PORT_RIGHT_DEAD_NAME:
        return e.bits & TYPE_DEAD_NAME ? e.urefs : 0;
      case PortRight.PORT_RIGHT_RECEIVE:
        return e.bits & TYPE_RECEIVE ? 1 : 0;
      case PortRight.PORT_RIGHT_SEND_ONCE:
        return e.bits & TYPE_SEND_ONCE ? 1 : 0;
      case PortRight.PORT_RIGHT_PORT_SET:
        return e.bits & TYPE_PORT_SET ? 1 : 0;
      default:
        throw err("KERN_INVALID_VALUE", `right ${right}`);
    }
  }

  portType(t: KTask, name: number): number {
    const e = this.entry(t.space, name);
    return (e.bits | (e.dnrequest ? TYPE_DNREQUEST : 0)) >>> 0;
  }

  portNames(t: KTask): { names: number[]; types: number[] } {
    const names: number[] = [];
    const types: number[] = [];
    for (const name of [...t.space.entries.keys()]) {
      const e = this.lookup(t.space, name)!;
      names.push(name);
      types.push((e.bits | (e.dnrequest ? TYPE_DNREQUEST : 0)) >>> 0);
    }
    return { names, types };
  }

  private receivePort(t: KTask, name: number): Port {
    const e = this.entry(t.space, name);
    if (!(e.bits & TYPE_RECEIVE)) throw err("KERN_INVALID_RIGHT", `name ${name} holds no receive right`);
    return e.port!;
  }

  portSetQlimit(t: KTask, name: number, qlimit: number): void {
    const p = this.receivePort(t, name);
    if (qlimit < 1 || qlimit > this.config.qlimitMax) throw err("KERN_INVALID_VALUE", `qlimit must be 1..${this.config.qlimitMax}`);
    p.qlimit = qlimit;
    this.admitBlocked(p);
  }

  portMoveMember(t: KTask, member: number, after: number): void {
    const port = this.receivePort(t, member);
    let set: Entry | null = null;
    if (after !== 0) {
      set = this.entry(t.space, after);
      if (!(set.bits & TYPE_PORT_SET)) throw err("KERN_INVALID_RIGHT", `name ${after} is not a port set`);
    }
    this.leaveSet(port);
    if (set) {
      set.members!.add(port);
      port.pset = set;
    }
  }

  portGetSetStatus(t: KTask, name: number): number[] {
    const e = this.entry(t.space, name);
    if (!(e.bits & TYPE_PORT_SET)) throw err("KERN_INVALID_RIGHT", `name ${name} is not a port set`);
    const out: number[] = [];
    for (const p of e.members!) {
      const m = t.space.byPort.get(p);
      if (m) out.push(m.name);
    }
    return out;
  }

  portGetReceiveStatus(t: KTask, name: number) {
    const p = this.receivePort(t, name);
    return {
      pset: p.pset ? p.pset.name : 0,
      seqno: p.seqno,
      mscount: p.mscount,
      qlimit: p.qlimit,
      msgcount: p.msgcount,
      sorights: p.sorights,
      srights: p.srights > 0,
      pdrequest: p.pdrequest !== null,
      nsrequest: p.nsrequest !== null,
    };
  }

  /**
   * mach_port_request_notification. Registration is an atomic swap: the
   * previous send-once right comes back as a name in the caller's space.
   */
  requestNotification(t: KTask, name: number, variant: NotifyId, sync: number, notify: number, disp: MsgType): number {
    const sp = t.space;
    const e = this.entry(sp, name);
    // Validate everything before the notify right is copied in.
    switch (variant) {
      case NotifyId.NOTIFY_NO_SENDERS:
      case NotifyId.NOTIFY_PORT_DESTROYED:
        if (!(e.bits & TYPE_RECEIVE)) throw err("KERN_INVALID_RIGHT", `name ${name} holds no receive right`);
        if (variant === NotifyId.NOTIFY_PORT_DESTROYED && sync !== 0) throw err("KERN_INVALID_VALUE", "port-destroyed takes sync 0");
        break;
      case NotifyId.NOTIFY_DEAD_NAME:
        if (!(e.bits & (TYPE_SEND | TYPE_SEND_ONCE | TYPE_DEAD_NAME))) throw err("KERN_INVALID_RIGHT", `name ${name} holds no send, send-once or dead name`);
        if (e.bits & TYPE_DEAD_NAME && (notify === 0 || sync === 0)) throw err("KERN_INVALID_ARGUMENT", `name ${name} is already dead`);
        break;
      default:
        throw err("KERN_INVALID_VALUE", `notification variant ${variant}`);
    }
    let so: Port | null = null;
    if (notify !== 0) {
      if (disp !== MsgType.MSG_TYPE_MAKE_SEND_ONCE && disp !== MsgType.MSG_TYPE_MOVE_SEND_ONCE)
        throw err("KERN_INVALID_VALUE", "notify must travel as a send-once right");
      so = this.copyinLive(t, notify, disp, R_SEND_ONCE).port!;
    }
    let prev: Port | null = null;
    const port = e.port;
    switch (variant) {
      case NotifyId.NOTIFY_NO_SENDERS:
        prev = port!.nsrequest;
        port!.nsrequest = so;
        if (so && port!.srights === 0 && port!.mscount >= sync) this.fireNoSenders(port!);
        break;
      case NotifyId.NOTIFY_PORT_DESTROYED:
        prev = port!.pdrequest;
        port!.pdrequest = so;
        break;
      case NotifyId.NOTIFY_DEAD_NAME:
        if (e.bits & TYPE_DEAD_NAME) {
          // Already dead with sync set: the notification fires at once, with its uref.
          e.urefs++;
          this.kernelMessage(so!, R_SEND_ONCE, MACH_NOTIFY_DEAD_NAME, bodies.deadName(name), null);
          break;
        }
        prev = e.dnrequest;
        e.dnrequest = so;
        if (so) (port!.dnrequests ??= new Set()).add(e);
        else port!.dnrequests?.delete(e);
        this.dnSpaces.set(e, sp);
        break;
    }
    if (!prev) return 0;
    if (!prev.active) {
      prev.sorights--;
      return MACH_PORT_DEAD;
    }
    return this.copyoutRight(t, R_SEND_ONCE, prev);
  }

  /** Which space an entry with a dead-name request lives in (to turn it into a dead name at death). */
  private readonly dnSpaces = new WeakMap<Entry, Space>();

  insertRight(caller: KTask, taskName: number, name: number, right: number, disp: MsgType): void {
    const target = this.taskFromPort(caller, taskName);
    if (name === 0 || name === MACH_PORT_DEAD) throw err("KERN_INVALID_VALUE", "cannot insert at MACH_PORT_NULL or MACH_PORT_DEAD");
    if (disp === MsgType.MSG_TYPE_PORT_NAME || !(disp >= 16 && disp <= 21)) throw err("KERN_INVALID_VALUE", `disposition ${disp}`);
    const src = this.lookup(caller.space, right);
    if (!src) throw err("KERN_INVALID_NAME", `name ${right}`);
    const port = src.port;
    const existing = target.space.entries.get(name);
    const sendish = disp === MsgType.MSG_TYPE_COPY_SEND || disp === MsgType.MSG_TYPE_MAKE_SEND || disp === MsgType.MSG_TYPE_MOVE_SEND;
    if (existing) {
      // A name may gain a right only to the port it already names: send rights
      // merge with the send or receive right there, and a receive right joins
      // the send right (send and receive rights for one port share one name).
      const merges = existing.port === port && ((sendish && existing.bits & (TYPE_SEND | TYPE_RECEIVE)) || (disp === MsgType.MSG_TYPE_MOVE_RECEIVE && existing.bits & TYPE_SEND));
      if (!merges) throw err("KERN_NAME_EXISTS", `name ${name} is in use`);
    } else {
      if (port && (sendish || disp === MsgType.MSG_TYPE_MOVE_RECEIVE) && target.space.byPort.has(port))
        throw err("KERN_RIGHT_EXISTS", "the task already names that port");
      this.need(target.space);
    }
    const r = this.copyinOne(caller, right, disp, "KERN_INVALID_RIGHT");
    if (r.type === R_DEAD) {
      const e = newEntry(name, null, TYPE_DEAD_NAME, 1);
      target.space.insert(e);
      return;
    }
    this.copyoutAt(target, r, name);
  }

  extractRight(caller: KTask, taskName: number, name: number, disp: MsgType): { name: number; type: MsgType } {
    const target = this.taskFromPort(caller, taskName);
    if (disp === MsgType.MSG_TYPE_PORT_NAME || !(disp >= 16 && disp <= 21)) throw err("KERN_INVALID_VALUE", `disposition ${disp}`);
    this.need(caller.space);
    const r = this.copyinOne(target, name, disp, "KERN_INVALID_RIGHT");
    const type = r.type === R_DEAD ? MsgType.MSG_TYPE_MOVE_SEND : (r.type as MsgType);
    return { name: this.copyoutRight(caller, r.type, r.port), type };
  }

  // ---------------------------------------------------------------- right accounting

  private makeSend(p: Port): Port {
    p.srights++;
    return p;
  }

  /** A send right went away; the last one fires no-senders (Mach: srights reached 0). */
  releaseSend(p: Port): void {
    if (--p.srights === 0 && p.active && p.nsrequest) this.fireNoSenders(p);
  }

  private fireNoSenders(p: Port): void {
    const so = p.nsrequest!;
    p.nsrequest = null;
    this.kernelMessage(so, R_SEND_ONCE, MACH_NOTIFY_NO_SENDERS, bodies.noSenders(p.mscount), null);
  }

  /** An unused send-once right was destroyed: its port gets a send-once notification through it. */
  private destroySendOnce(p: Port): void {
    if (!p.active) {
      p.sorights--;
      return;
    }
    this.kernelMessage(p, R_SEND_ONCE, MACH_NOTIFY_SEND_ONCE, bodies.sendOnce(), null);
  }

  private releaseRight(r: KRight): void {
    switch (r.type) {
      case R_SEND:
        this.releaseSend(r.port!);
        break;
      case R_SEND_ONCE:
        this.destroySendOnce(r.port!);
        break;
      case R_RECEIVE:
        this.destroyReceive(r.port!);
        break;
    }
  }

  /**
   * A receive right is being destroyed. With a port-destroyed request the
   * right goes to the backup instead; otherwise the port dies: queued
   * messages are destroyed (their reply rights notify their senders), waiting
   * senders fail, and holders with dead-name requests are told.
   */
  private destroyReceive(p: Port): void {
    if (!p.active) return;
    p.receiver = null;
    p.ready = false;
    if (p.pdrequest?.active) {
      const so = p.pdrequest;
      p.pdrequest = null;
      this.kernelMessage(so, R_SEND_ONCE, MACH_NOTIFY_PORT_DESTROYED, bodies.portDestroyed(), [{ type: R_RECEIVE, port: p, value: 0 }]);
      return;
    }
    this.destroyPort(p);
  }

  private destroyPort(p: Port): void {
    if (!p.active) return;
    p.active = false;
    p.receiver = null;
    this.leaveSet(p);
    if (p.pdrequest) {
      const so = p.pdrequest;
      p.pdrequest = null;
      this.destroySendOnce(so);
    }
    if (p.nsrequest) {
      const so = p.nsrequest;
      p.nsrequest = null;
      this.destroySendOnce(so);
    }
    for (const m of p.takeAll()) this.destroyMsg(m);
    if (p.blocked) {
      const b = p.blocked;
      p.blocked = null;
      for (const w of b) {
        if (w.timer) clearTimeout(w.timer);
        this.failSend(w.msg, Errno.MACH_SEND_INVALID_DEST);
      }
    }
    if (p.dnrequests) {
      const dns = p.dnrequests;
      p.dnrequests = null;
      for (const e of dns) {
        const so = e.dnrequest;
        const sp = this.dnSpaces.get(e);
        e.dnrequest = null;
        if (sp && sp.entries.get(e.name) === e) this.toDeadName(sp, e, 1);
        if (so) this.kernelMessage(so, R_SEND_ONCE, MACH_NOTIFY_DEAD_NAME, bodies.deadName(e.name), null);
      }
    }
  }

  /** Destroys a message that will never be received, releasing every right it carries. */
  private destroyMsg(m: KMsg): void {
    if (m.destType === R_SEND) this.releaseSend(m.dest);
    else if (m.destType === R_SEND_ONCE) m.dest.sorights--;
    if (m.reply) {
      if (m.replyType === R_SEND) this.releaseSend(m.reply);
      else if (m.replyType === R_SEND_ONCE) this.destroySendOnce(m.reply);
    }
    if (m.rights) for (const r of m.rights) this.releaseRight(r);
  }

  // ---------------------------------------------------------------- copyin / copyout

  private snapshot(sp: Space, e: Entry): void {
    const p = e.port;
    this.undo.push({
      space: sp,
      e,
      bits: e.bits,
      urefs: e.urefs,
      present: true,
      port: p,
      srights: p ? p.srights : 0,
      sorights: p ? p.sorights : 0,
      mscount: p ? p.mscount : 0,
      receiver: p ? p.receiver : null,
      pset: p ? p.pset : null,
    });
  }

  private rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const u = this.undo[i]!;
      u.e.bits = u.bits;
      u.e.urefs = u.urefs;
      if (u.present && u.space.entries.get(u.e.name) !== u.e) u.space.insert(u.e);
      if (u.port) {
        u.port.srights = u.srights;
        u.port.sorights = u.sorights;
        u.port.mscount = u.mscount;
        u.port.receiver = u.receiver;
        if (u.pset && !u.port.pset) {
          u.port.pset = u.pset;
          u.pset.members!.add(u.port);
        }
      }
    }
    this.undo.length = 0;
    this.deletedLater.length = 0;
  }

  /** The copyin succeeded as a whole: send the port-deleted notifications it owes. */
  private commit(): void {
    this.undo.length = 0;
    if (this.deletedLater.length === 0) return;
    const later = this.deletedLater.splice(0);
    for (const { e, dn } of later) {
      e.port?.dnrequests?.delete(e);
      if (e.dnrequest === dn) e.dnrequest = null;
      this.kernelMessage(dn, R_SEND_ONCE, MACH_NOTIFY_PORT_DELETED, bodies.portDeleted(e.name), null);
    }
  }

  /** Takes an entry out of its space during a copyin (undoable; its dead-name request is settled at commit). */
  private takeEntry(sp: Space, e: Entry): void {
    sp.remove(e);
    if (e.dnrequest) this.deletedLater.push({ space: sp, e, dn: e.dnrequest });
  }

  /**
   * Copies one right out of a space by disposition (undoable until commit or
   * rollback). Throws `bad` when the name does not hold what the disposition needs.
   */
  private copyin(t: KTask, name: number, disp: number, bad: ErrnoName): KRight {
    if (disp === MsgType.MSG_TYPE_PORT_NAME) return { type: R_NAME, port: null, value: name >>> 0 };
    const sp = t.space;
    const e = this.lookup(sp, name);
    if (!e) throw err(bad, `name ${name} is not in the sender's space`);
    const p = e.port;
    switch (disp) {
      case MsgType.MSG_TYPE_COPY_SEND:
        if (e.bits & TYPE_SEND) {
          this.snapshot(sp, e);
          p!.srights++;
          return { type: R_SEND, port: p, value: 0 };
        }
        if (e.bits & TYPE_DEAD_NAME) return { type: R_DEAD, port: null, value: 0 };
        throw err(bad, `name ${name} holds no send right`);
      case MsgType.MSG_TYPE_MOVE_SEND:
        if (e.bits & TYPE_SEND) {
          this.snapshot(sp, e);
          if (--e.urefs === 0) {
            e.bits &= ~TYPE_SEND;
            if (!(e.bits & TYPE_RECEIVE)) this.takeEntry(sp, e);
          } else p!.srights++;
          return { type: R_SEND, port: p, value: 0 };
        }
        if (e.bits & TYPE_DEAD_NAME) {
          this.snapshot(sp, e);
          if (--e.urefs === 0) this.takeEntry(sp, e);
          return { type: R_DEAD, port: null, value: 0 };
        }
        throw err(bad, `name ${name} holds no send right`);
      case MsgType.MSG_TYPE_MAKE_SEND:
        if (e.bits & TYPE_RECEIVE) {
          this.snapshot(sp, e);
          p!.mscount++;
          p!.srights++;
          return { type: R_SEND, port: p, value: 0 };
        }
        throw err(bad, `name ${name} holds no receive right to make a send right from`);
      case MsgType.MSG_TYPE_MAKE_SEND_ONCE:
        if (e.bits & TYPE_RECEIVE) {
          this.snapshot(sp, e);
          p!.sorights++;
          return { type: R_SEND_ONCE, port: p, value: 0 };
        }
        throw err(bad, `name ${name} holds no receive right to make a send-once right from`);
      case MsgType.MSG_TYPE_MOVE_SEND_ONCE:
        if (e.bits & TYPE_SEND_ONCE) {
          this.snapshot(sp, e);
          this.takeEntry(sp, e);
          return { type: R_SEND_ONCE, port: p, value: 0 };
        }
        if (e.bits & TYPE_DEAD_NAME) {
          this.snapshot(sp, e);
          if (--e.urefs === 0) this.takeEntry(sp, e);
          return { type: R_DEAD, port: null, value: 0 };
        }
        throw err(bad, `name ${name} holds no send-once right`);
      case MsgType.MSG_TYPE_MOVE_RECEIVE:
        if (e.bits & TYPE_RECEIVE) {
          this.snapshot(sp, e);
          e.bits &= ~TYPE_RECEIVE;
          if (!(e.bits & TYPE_SEND)) this.takeEntry(sp, e);
          p!.receiver = null;
          p!.mscount = 0;
          p!.ready = false;
          this.leaveSet(p!);
          return { type: R_RECEIVE, port: p, value: 0 };
        }
        throw err(bad, `name ${name} holds no receive right`);
      default:
        throw err("MACH_SEND_INVALID_TYPE", `disposition ${disp}`);
    }
  }

  /** A single copyin that commits at once (kernel calls). */
  private copyinOne(t: KTask, name: number, disp: number, bad: ErrnoName): KRight {
    try {
      const r = this.copyin(t, name, disp, bad);
      this.commit();
      return r;
    } catch (e) {
      this.rollback();
      throw e;
    }
  }

  /**
   * A single copyin of a notify right, which must be live and of type `want`.
   * A dead name is refused before anything is committed, so a refused
   * request does not eat the caller's dead-name uref.
   */
  private copyinLive(t: KTask, name: number, disp: number, want: number): KRight {
    try {
      const r = this.copyin(t, name, disp, "KERN_INVALID_CAPABILITY");
      if (r.type !== want) throw err("KERN_INVALID_CAPABILITY", "notify port is dead");
      this.commit();
      return r;
    } catch (e) {
      this.rollback();
      throw e;
    }
  }

  /** Puts a right into a task's space under a name the kernel picks; returns the name. */
  copyoutRight(t: KTask, type: number, port: Port | null): number {
    const sp = t.space;
    if (type === R_DEAD || !port) return MACH_PORT_DEAD;
    if (!t.active || sp.entries.size >= this.config.maxNamesPerTask) {
      this.releaseRight({ type, port, value: 0 });
      return MACH_PORT_DEAD;
    }
    if (type === R_SEND) {
      if (!port.active) {
        port.srights--;
        return MACH_PORT_DEAD;
      }
      const e = sp.byPort.get(port);
      if (e) {
        if (e.bits & TYPE_SEND) {
          // Merging into the existing name: the space still holds one send right.
          if (e.urefs < this.config.maxUrefs) e.urefs++;
          port.srights--;
        } else {
          e.bits |= TYPE_SEND;
          e.urefs = 1;
        }
        return e.name;
      }
      const ne = newEntry(sp.newName(), port, TYPE_SEND, 1);
      sp.insert(ne);
      return ne.name;
    }
    if (type === R_SEND_ONCE) {
      if (!port.active) {
        port.sorights--;
        return MACH_PORT_DEAD;
      }
      const ne = newEntry(sp.newName(), port, TYPE_SEND_ONCE, 0);
      sp.insert(ne);
      return ne.name;
    }
    // R_RECEIVE
    let e = sp.byPort.get(port);
    if (e) e.bits |= TYPE_RECEIVE;
    else {
      e = newEntry(sp.newName(), port, TYPE_RECEIVE, 0);
      sp.insert(e);
    }
    this.setReceiver(port, t);
    return e.name;
  }

  /** insert_right: like copyoutRight but at a name the caller chose (already validated). */
  private copyoutAt(t: KTask, r: KRight, name: number): void {
    const sp = t.space;
    const port = r.port!;
    const existing = sp.entries.get(name);
    if (r.type === R_SEND) {
      if (existing) {
        if (existing.bits & TYPE_SEND) {
          existing.urefs = Math.min(existing.urefs + 1, this.config.maxUrefs);
          port.srights--;
        } else {
          existing.bits |= TYPE_SEND;
          existing.urefs = 1;
        }
        return;
      }
      sp.insert(newEntry(name, port, TYPE_SEND, 1));
    } else if (r.type === R_SEND_ONCE) {
      sp.insert(newEntry(name, port, TYPE_SEND_ONCE, 0));
    } else if (r.type === R_RECEIVE) {
      if (existing) existing.bits |= TYPE_RECEIVE;
      else sp.insert(newEntry(name, port, TYPE_RECEIVE, 0));
      this.setReceiver(port, t);
    }
  }

  private setReceiver(port: Port, t: KTask): void {
    port.receiver = t;
    if (port.msgcount > 0) {
      port.ready = true;
      t.ready.push(port);
      // Not while a message is being copied out: the queue of a receive right
      // travelling in that message must not overtake it (the receiver learns
      // the new name from it). It is drained once the delivery is done.
      if (this.delivering > 0) this.drainLater.add(t);
      else if (t.credit > 0) this.drain(t);
    }
  }

  // ---------------------------------------------------------------- messages

  /**
   * mach_msg send. Translates the header and body rights out of the sender's
   * space (all or nothing), then queues or delivers. Throws a HurdError, with
   * the sender's space as it was, when the message cannot be sent now; a
   * message that waits for room and times out is failed through `failSend`.
   */
  send(t: KTask, m: Message): void {
    if (m.body.length > this.config.maxBodyBytes) throw err("MACH_SEND_NO_BUFFER", `body of ${m.body.length} bytes exceeds ${this.config.maxBodyBytes}`);
    if (m.ports.length > this.config.maxPortsPerMessage) throw err("MACH_SEND_NO_BUFFER", `${m.ports.length} rights exceed ${this.config.maxPortsPerMessage}`);
    const dd = m.destinationDisposition || MsgType.MSG_TYPE_COPY_SEND;
    if (dd !== MsgType.MSG_TYPE_COPY_SEND && dd !== MsgType.MSG_TYPE_MOVE_SEND && dd !== MsgType.MSG_TYPE_MAKE_SEND && dd !== MsgType.MSG_TYPE_MOVE_SEND_ONCE && dd !== MsgType.MSG_TYPE_MAKE_SEND_ONCE)
      throw err("MACH_SEND_INVALID_HEADER", `destination disposition ${dd}`);
    let msg: KMsg;
    try {
      const d = this.copyin(t, m.destination, dd, "MACH_SEND_INVALID_DEST");
      if (d.type !== R_SEND && d.type !== R_SEND_ONCE) throw err("MACH_SEND_INVALID_DEST", `name ${m.destination} is a dead name`);
      const dest = d.port!;
      if (!dest.active) throw err("MACH_SEND_INVALID_DEST", "port is dead");
      let reply: Port | null = null;
      let replyType = 0;
      if (m.reply === MACH_PORT_DEAD) {
        // MACH_PORT_DEAD is legal in place of a right: the receiver sees it as the reply.
        replyType = R_DEAD;
      } else if (m.reply !== 0) {
        const rd = m.replyDisposition || MsgType.MSG_TYPE_MAKE_SEND_ONCE;
        if (rd === MsgType.MSG_TYPE_MOVE_RECEIVE || rd === MsgType.MSG_TYPE_PORT_NAME) throw err("MACH_SEND_INVALID_REPLY", `reply disposition ${rd}`);
        const r = this.copyin(t, m.reply, rd, "MACH_SEND_INVALID_REPLY");
        reply = r.port;
        replyType = r.type;
      }
      let rights: KRight[] | null = null;
      if (m.ports.length > 0) {
        rights = new Array<KRight>(m.ports.length);
        for (let i = 0; i < m.ports.length; i++) {
          const mp = m.ports[i]!;
          if (mp.name === 0 || (mp.name === MACH_PORT_DEAD && mp.disposition !== MsgType.MSG_TYPE_PORT_NAME)) {
            rights[i] = { type: mp.name === 0 ? R_NAME : R_DEAD, port: null, value: mp.name };
            continue;
          }
          const r = this.copyin(t, mp.name, mp.disposition, "MACH_SEND_INVALID_RIGHT");
          if (r.type === R_RECEIVE && r.port === dest) throw err("MACH_SEND_INVALID_RIGHT", "a receive right cannot travel to its own port");
          rights[i] = r;
        }
      }
      msg = {
        dest,
        destType: d.type,
        destMoved: dd === MsgType.MSG_TYPE_MOVE_SEND,
        reply,
        replyType,
        id: m.id,
        code: m.code,
        body: m.body,
        rights,
        sender: t,
        kernel: false,
        seq: m.seq,
        traceContext: m.traceContext,
        trace: null,
      };
      if (d.type === R_SEND && !dest.kobject && dest.msgcount >= dest.qlimit) {
        // A full queue: wait for room up to the sender's timeout (send-once
        // messages, replies among them, are never held back, as in Mach).
        if (m.timeoutMs === 0) throw err("MACH_SEND_TIMED_OUT", `queue full (${dest.qlimit})`);
        if ((dest.blocked?.length ?? 0) >= this.config.maxBlockedSenders) throw err("MACH_SEND_NO_BUFFER", `${this.config.maxBlockedSenders} senders already wait on this port`);
        this.commit();
        const w = { msg, timer: null as NodeJS.Timeout | null };
        w.timer = setTimeout(() => {
          const b = dest.blocked;
          const i = b ? b.indexOf(w) : -1;
          if (i < 0) return;
          b!.splice(i, 1);
          this.failSend(msg, Errno.MACH_SEND_TIMED_OUT);
        }, m.timeoutMs);
        if (this.tracer !== null) this.tracer.sent(msg, m);
        (dest.blocked ??= []).push(w);
        t.sent++;
        return;
      }
    } catch (e) {
      this.rollback();
      throw e;
    }
    this.commit();
    t.sent++;
    this.stats.sent++;
    if (this.tracer !== null) this.tracer.sent(msg, m);
    this.enqueue(msg.dest, msg);
  }

  /**
   * A message that had left its sender cannot be delivered: the rights go back
   * to the sender where it still lives (Mach's pseudo-receive), and the sender
   * hears of it on its delivery subject.
   */
  private failSend(m: KMsg, code: number): void {
    this.stats.sendFailures++;
    if (this.tracer !== null) this.tracer.failed(m, code);
    const t = m.sender;
    if (!t || !t.active) {
      this.destroyMsg(m);
      return;
    }
    // A destination right the sender moved was its own: it goes back with the
    // rest (Mach's pseudo-receive); one copied or made for the message is released.
    if (m.destType === R_SEND) {
      if (m.destMoved) this.copyoutRight(t, R_SEND, m.dest);
      else this.releaseSend(m.dest);
    } else m.dest.sorights--;
    let replyName = 0;
    if (m.reply) replyName = this.copyoutRight(t, m.replyType, m.reply);
    if (m.rights) for (const r of m.rights) if (r.type !== R_NAME) this.copyoutRight(t, r.type, r.port);
    this.reportSendFailed(t, m.seq, code, replyName);
  }

  reportSendFailed(t: KTask, seq: number, code: number, reply: number): void {
    if (!t.active) return;
    const bytes = Delivery.encode({ failed: { seq, code, reply } }).finish();
    this.emit(t, bytes, 0);
  }

  /** A message from the kernel itself: the only kind that arrives with `kernel` set. */
  private kernelMessage(dest: Port, destType: number, id: number, body: Uint8Array, rights: KRight[] | null): void {
    this.stats.notifications++;
    // A send right the kernel holds (a namespace's notify port) stays the
    // kernel's: the message carries a copy, released when it is delivered.
    // A send-once right is consumed by the message, as Mach's are.
    if (destType === R_SEND) dest.srights++;
    const m: KMsg = { dest, destType, destMoved: false, reply: null, replyType: 0, id, code: 0, body, rights, sender: null, kernel: true, seq: 0, traceContext: NO_TRACE_CONTEXT, trace: null };
    if (this.tracer !== null) this.tracer.sent(m, null);
    this.enqueue(dest, m);
  }

  private enqueue(p: Port, m: KMsg): void {
    if (!p.active) {
      this.destroyMsg(m);
      return;
    }
    if (p.kobject) {
      this.kobjectMessage(m);
      return;
    }
    const t = p.receiver;
    if (t && t.credit > 0 && p.msgcount === 0) {
      this.deliver(t, p, m);
      return;
    }
    p.push(m);
    if (t && !p.ready) {
      p.ready = true;
      t.ready.push(p);
    }
  }

  /**
   * Kernel objects (task and host ports) answer no messages here: the kernel's
   * calls are traps. The sender gets MIG_BAD_ID on its reply right, as a MIG
   * server answers an id it does not know.
   */
  private kobjectMessage(m: KMsg): void {
    const reply = m.reply;
    const replyType = m.replyType;
    m.reply = null;
    this.destroyMsg(m);
    if (reply && replyType === R_SEND_ONCE) {
      const r: KMsg = { dest: reply, destType: R_SEND_ONCE, destMoved: false, reply: null, replyType: 0, id: m.id + 100, code: Errno.MIG_BAD_ID, body: new Uint8Array(0), rights: null, sender: null, kernel: false, seq: 0, traceContext: NO_TRACE_CONTEXT, trace: null };
      this.enqueue(reply, r);
    } else if (reply && replyType === R_SEND) this.releaseSend(reply);
  }

  /** Pushes queued messages to a task while it has credit, port by port. */
  private drain(t: KTask): void {
    while (t.credit > 0 && t.readyHead < t.ready.length) {
      const p = t.ready[t.readyHead]!;
      if (p.receiver !== t || !p.active) {
        t.readyHead++;
        continue;
      }
      const m = p.shift();
      if (!m) {
        p.ready = false;
        t.readyHead++;
        continue;
      }
      this.admitBlocked(p);
      this.deliver(t, p, m);
    }
    if (t.readyHead === t.ready.length) {
      t.ready.length = 0;
      t.readyHead = 0;
    } else if (t.readyHead > 256) {
      t.ready = t.ready.slice(t.readyHead);
      t.readyHead = 0;
    }
  }

  /** Room was made on a port: waiting senders get in, oldest first. */
  private admitBlocked(p: Port): void {
    const b = p.blocked;
    if (!b) return;
    while (b.length > 0 && p.msgcount < p.qlimit) {
      const w = b.shift()!;
      if (w.timer) clearTimeout(w.timer);
      this.stats.sent++;
      p.push(w.msg);
      if (p.receiver && !p.ready) {
        p.ready = true;
        p.receiver.ready.push(p);
      }
    }
    if (b.length === 0) p.blocked = null;
  }

  /** Copies a message out into the receiver's space and hands it to the task. */
  private deliver(t: KTask, p: Port, m: KMsg): void {
    this.delivering++;
    try {
      this.deliverNow(t, p, m);
    } finally {
      this.delivering--;
    }
    if (this.delivering === 0 && this.drainLater.size > 0) {
      const later = [...this.drainLater];
      this.drainLater.clear();
      for (const u of later) if (u.active && u.credit > 0) this.drain(u);
    }
  }

  private deliverNow(t: KTask, p: Port, m: KMsg): void {
    const local = t.space.byPort.get(p);
    if (!local) {
      this.destroyMsg(m);
      return;
    }
    p.seqno++;
    let replyName = 0;
    let replyType = MsgType.MSG_TYPE_UNSPECIFIED;
    if (m.reply) {
      replyName = this.copyoutRight(t, m.replyType, m.reply);
      replyType = m.replyType as MsgType;
    } else if (m.replyType === R_DEAD) replyName = MACH_PORT_DEAD;
    let ports: ReceivedPort[] = [];
    if (m.rights) {
      ports = new Array<ReceivedPort>(m.rights.length);
      for (let i = 0; i < m.rights.length; i++) {
        const r = m.rights[i]!;
        if (r.type === R_NAME) ports[i] = { name: r.value, type: MsgType.MSG_TYPE_PORT_NAME };
        else if (r.type === R_DEAD) ports[i] = { name: MACH_PORT_DEAD, type: MsgType.MSG_TYPE_MOVE_SEND };
        else ports[i] = { name: this.copyoutRight(t, r.type, r.port), type: r.type as MsgType };
      }
    }
    const rec: Received = {
      local: local.name,
      reply: replyName,
      replyType,
      id: m.id,
      body: m.body,
      ports,
      kernel: m.kernel,
      sender: m.sender ? m.sender.id : 0,
      seqno: p.seqno,
      traceContext: m.traceContext,
      code: m.code,
    };
    if (this.tracer !== null) this.tracer.delivered(m, t, rec);
    const bytes = encode(Delivery, { message: rec });
    t.credit--;
    t.received++;
    this.stats.delivered++;
    this.emit(t, bytes, local.name);
    // The destination right in flight is released only now, after the
    // message left: a no-senders it triggers must not overtake it.
    if (m.destType === R_SEND) this.releaseSend(p);
    else if (m.destType === R_SEND_ONCE) p.sorights--;
  }

  private emit(t: KTask, bytes: Uint8Array, local: number): void {
    if (t.sink) t.sink(bytes, local);
    else if (this.bus && !this.bus.closed) this.bus.publish(t.subject + local, bytes);
  }

  taskInfo(caller: KTask, name: number) {
    const t = this.taskFromPort(caller, name);
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
    };
  }
}

function namespacePath(ns: Namespace): number[] {
  const path: number[] = [];
  for (let n: Namespace | null = ns; n; n = n.parent) path.push(n.id);
  return path.reverse();
}

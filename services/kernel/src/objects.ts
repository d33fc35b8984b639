// The kernel's objects: tasks, their IPC spaces and the entries in them,
// ports, messages in flight, namespaces. They name one another both ways (a
// task its ports, a port its receiver task, an entry its port, a message its
// sender), so they are declared in this one file, as gnumach declares its
// types once for ipc/ and kern/: the rooms that act on them (space.ts,
// port.ts, message.ts, mqueue.ts, notify.ts, task.ts, namespace.ts) import
// them from here and never one another's data. What stays here is what
// keeps one object's own invariants (a queue's head, a space's two maps).
import type { SystemSubjects, TaskEvents } from "@hurdmesh/mach/internal";

// ---------------------------------------------------------------- ids

// Task, port and hurd ids are counters of the process: a standby makes its
// objects in its leader's order, by replaying, so it numbers them the same;
// one restored from a snapshot (snapshot.ts) must carry on where the
// snapshot's kernel was.
let nextTaskId = 1;
let nextPortId = 1;
let nextNamespaceId = 1;

/** The next task, port and hurd ids this process will give. */
export function idCounters(): [task: number, port: number, namespace: number] {
  return [nextTaskId, nextPortId, nextNamespaceId];
}

/**
 * Carries on numbering from a snapshot's counters (snapshot.ts), in a
 * process whose only kernel is the one restored: the objects its
 * constructor made are replaced by the snapshot's, ids and all.
 */
export function setIdCounters(c: readonly number[]): void {
  const [t, p, n] = c;
  if (c.length !== 3 || ![t, p, n].every((x) => Number.isSafeInteger(x) && x! >= 1)) throw new RangeError(`id counters ${JSON.stringify(c)} are not ids`);
  nextTaskId = t!;
  nextPortId = p!;
  nextNamespaceId = n!;
}

// ---------------------------------------------------------------- tasks

/** Where a task's deliveries go: a bus subject, or a gRPC stream at the edge. */
export type Sink = (delivery: Uint8Array, local: number) => void;

/** A task as the kernel knows it. */
export class KTask {
  readonly id = nextTaskId++;
  readonly space: Space;
  /** Set by createTask from the kernel's clock (KernelState.now). */
  createdMs = 0;
  active = true;
  /** The kernel port (task_self); its kobject is this task. */
  self!: Port;
  bootstrap: Port | null = null;
  exception: Port | null = null;
  /** Messages the kernel may still push before the task returns credit. */
  credit = 0;
  /** Ports with queued messages waiting for credit (stale entries are skipped). */
  ready: Port[] = [];
  readyHead = 0;
  sink: Sink | null = null;
  attached = false;
  /** Attaches so far: the number of the current holder's (AttachReply.holder). */
  attaches = 0;
  lastSeen = 0;
  essential = false;
  sent = 0;
  received = 0;
  /**
   * The last numbered one-way trap applied (Trap.seq): the next must be
   * this + 1, so a trap sent again after a failover is applied once. One
   * number, not a set: the runtime sends them in order and sends again from
   * here (go-back-N), so a later one past a gap is dropped, not kept.
   */
  trapSeq = 0;
  /** A logged kernel's last delivery number to this task since its attach (Delivery.seq). */
  deliverySeq = 0;
  /** Its deliveries not yet paid back in credit, for a new leader to send again (redeliver.ts); null: not kept (no log, or an edge stream). */
  unpaid: Unpaid | null = null;
  /** Bytes of queued messages charged to this task (quota.ts). */
  queuedBytes = 0;
  /** The task it dies with (task_create's die_with_parent), and the tasks that die with it. */
  boundTo: KTask | null = null;
  bound: Set<KTask> | null = null;
  readonly tokenBytes: Buffer;
  /** The subject prefix of this task's deliveries. */
  readonly subject: string;
  constructor(
    readonly ns: Namespace,
    readonly parentId: number,
    public name: string,
    readonly token: string,
    subjects: SystemSubjects,
    accounted = true,
  ) {
    this.subject = subjects.deliveryPrefix(this.id);
    this.tokenBytes = Buffer.from(token);
    this.space = new Space(ns, accounted ? ns : null);
  }
}

/**
 * A logged kernel's deliveries to a task not yet paid back in credit
 * (redeliver.ts): a queue with a moving head, as TrapWindow on the
 * runtime's side.
 */
export class Unpaid {
  private bytes: (Uint8Array | null)[] = [];
  private locals: number[] = [];
  private head = 0;

  /** Deliveries kept. */
  get size(): number {
    return this.bytes.length - this.head;
  }

  /** A delivery published (or, on a standby, that the leader published) under `local`. */
  keep(bytes: Uint8Array, local: number): void {
    this.bytes.push(bytes);
    this.locals.push(local);
  }

  /** The task paid `n` credits: its `n` oldest deliveries reached it. */
  paid(n: number): void {
    const end = Math.min(this.head + n, this.bytes.length);
    for (let i = this.head; i < end; i++) this.bytes[i] = null;
    this.head = end;
    if (this.head === this.bytes.length) {
      this.bytes.length = 0;
      this.locals.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.bytes.length) {
      // Compacted once half the arrays are spent: O(1) amortized.
      this.bytes = this.bytes.slice(this.head);
      this.locals = this.locals.slice(this.head);
      this.head = 0;
    }
  }

  /** Calls `f` for each kept delivery, oldest first. */
  each(f: (bytes: Uint8Array, local: number) => void): void {
    for (let i = this.head; i < this.bytes.length; i++) f(this.bytes[i]!, this.locals[i]!);
  }
}

// ---------------------------------------------------------------- ports

/** What a kernel-held port stands for (its receive right is the kernel's). */
export type KObject = { kind: "task"; task: KTask } | { kind: "host"; ns: Namespace } | KernelReply;

/**
 * A reply port the kernel holds for a call it makes on behalf of an edge
 * client (gateway.ts): the reply, or the send-once notification that says
 * there will be none, is the kernel's to take, not a task's to receive.
 */
export interface KernelReply {
  kind: "reply";
  /** A message arrived on the port (the reply, or the kernel's send-once notification). */
  received(m: KMsg): void;
  /** The request never left: it waited for room until its timeout, or its destination died meanwhile. */
  sendFailed(code: number): void;
}

/** A waiting sender on a full queue (MACH_SEND_TIMEOUT). */
export interface Blocked {
  msg: KMsg;
  timer: NodeJS.Timeout | null;
  /** The sender's timeout, ms (a standby that takes over arms it afresh). */
  timeoutMs: number;
}

/**
 * The tracer's note on a message in flight, and on a reply port while its
 * request awaits the reply (trace.ts's Flight); the rest of the kernel only
 * carries it.
 */
export interface TraceNote {
  /** The message's number in the trace stream. */
  readonly n: number;
}

/**
 * A Mach port: one receive right, counted send and send-once rights, a
 * bounded queue, and the notification requests registered on it.
 */
export class Port {
  readonly id = nextPortId++;
  active = true;
  /** The task whose space holds the receive right; null while in transit or kernel-held. */
  receiver: KTask | null = null;
  kobject: KObject | null = null;
  /** Send rights: one per space that holds one, plus one per right in flight. */
  srights = 0;
  sorights = 0;
  mscount = 0;
  seqno = 0;
  qlimit: number;
  /** Messages waiting for the receiver (a FIFO with a head index). */
  queue: KMsg[] = [];
  qhead = 0;
  blocked: Blocked[] | null = null;
  /** In the receiver's ready list (it has queued messages and waits for credit). */
  ready = false;
  /** no-senders request: the send-once right's port and the sync threshold. */
  nsrequest: Port | null = null;
  /** port-destroyed request. */
  pdrequest: Port | null = null;
  /** Entries (in any space) that hold a dead-name request on this port. */
  dnrequests: Set<Entry> | null = null;
  /** The port set the receive right is a member of. */
  pset: Entry | null = null;
  /**
   * The tracer's note on a send-once reply port whose request was
   * delivered (which request, its span): a field, not a map, because every
   * traced RPC sets it and its reply reads it.
   */
  tracePending: TraceNote | null = null;

  constructor(qlimit: number) {
    this.qlimit = qlimit;
  }

  get msgcount(): number {
    return this.queue.length - this.qhead;
  }

  push(m: KMsg): void {
    this.queue.push(m);
  }

  shift(): KMsg | undefined {
    if (this.qhead >= this.queue.length) return undefined;
    const m = this.queue[this.qhead]!;
    this.queue[this.qhead++] = undefined as unknown as KMsg;
    if (this.qhead === this.queue.length) {
      this.queue.length = 0;
      this.qhead = 0;
    } else if (this.qhead > 64 && this.qhead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qhead);
      this.qhead = 0;
    }
    return m;
  }

  /** Takes every queued message (for destruction). */
  takeAll(): KMsg[] {
    const all = this.queue.slice(this.qhead);
    this.queue = [];
    this.qhead = 0;
    return all;
  }
}

// ---------------------------------------------------------------- spaces and entries

/** mach_port_type_t bits. */
export const TYPE_SEND = 1 << 16;
export const TYPE_RECEIVE = 1 << 17;
export const TYPE_SEND_ONCE = 1 << 18;
export const TYPE_PORT_SET = 1 << 19;
export const TYPE_DEAD_NAME = 1 << 20;
export const TYPE_DNREQUEST = 0x80000000;

export const MACH_PORT_NULL = 0;
export const MACH_PORT_DEAD = 0xffffffff;

/** One name in one space. */
export interface Entry {
  name: number;
  /** The port (null for a port set or a dead name). */
  port: Port | null;
  bits: number;
  /** User references of the send right or the dead name. */
  urefs: number;
  /** The send-once right's port that a dead-name request on this name goes to. */
  dnrequest: Port | null;
  /** Members, for a port set. */
  members: Set<Port> | null;
}

export function newEntry(name: number, port: Port | null, bits: number, urefs: number): Entry {
  return { name, port, bits, urefs, dnrequest: null, members: null };
}

/**
 * A task's IPC space. Send and receive rights for one port always share one
 * name (byPort finds it in O(1)); every send-once right gets a name of its own.
 * Names are never reused within a space, so a stale name can only be unknown,
 * never another right.
 */
export class Space {
  readonly entries = new Map<number, Entry>();
  readonly byPort = new Map<Port, Entry>();
  private nextName = 1;
  active = true;

  /**
   * The hurd its names are charged to, with the hurds it is nested in: a
   * name counts against every one of their port limits (quota.ts checks
   * them before a name is made; the counting is here, where every name
   * comes and goes). `charged` is that hurd, or null in a kernel whose
   * accounting is off (KernelState.accounting: the bench's baseline).
   */
  constructor(
    readonly ns: Namespace,
    private readonly charged: Namespace | null = ns,
  ) {}

  newName(): number {
    let n = this.nextName++;
    if (n === MACH_PORT_DEAD) {
      // 4 billion names in one task: start again past the live ones.
      this.nextName = 1;
      n = this.nextName++;
    }
    while (this.entries.has(n)) n = this.nextName++;
    return n;
  }

  insert(e: Entry): void {
    this.entries.set(e.name, e);
    if (e.port && e.bits & (TYPE_SEND | TYPE_RECEIVE)) this.byPort.set(e.port, e);
    for (let n = this.charged; n !== null; n = n.parent) n.ports++;
  }

  remove(e: Entry): void {
    const had = this.entries.delete(e.name);
    if (e.port && this.byPort.get(e.port) === e) this.byPort.delete(e.port);
    if (had) for (let n = this.charged; n !== null; n = n.parent) n.ports--;
  }

  /** Forgets every name at once (a dead task's space, once each right was released). */
  clear(): void {
    const k = this.entries.size;
    this.entries.clear();
    this.byPort.clear();
    for (let n = this.charged; n !== null; n = n.parent) n.ports -= k;
  }

  /** ipc_entry_lookup: a right whose port died becomes a dead name here, lazily, as in Mach (ipc_right_check). */
  lookup(name: number): Entry | undefined {
    const e = this.entries.get(name);
    if (e && e.port && !e.port.active && e.bits & (TYPE_SEND | TYPE_SEND_ONCE)) this.toDeadName(e, 0);
    return e;
  }

  /** The entry's port died: it becomes a dead name with its urefs (plus `extra`, a dead-name request's). */
  toDeadName(e: Entry, extra: number): void {
    const port = e.port!;
    if (this.byPort.get(port) === e) this.byPort.delete(port);
    e.urefs = (e.bits & TYPE_SEND ? e.urefs : 1) + extra;
    e.bits = TYPE_DEAD_NAME;
    e.port = null;
    if (e.dnrequest) {
      port.dnrequests?.delete(e);
      e.dnrequest = null;
    }
  }
}

// ---------------------------------------------------------------- messages

/** How a right travels inside the kernel. */
export const R_SEND = 17;
export const R_SEND_ONCE = 18;
export const R_RECEIVE = 16;
/** A right whose port was dead when it was copied in: arrives as MACH_PORT_DEAD. */
export const R_DEAD = 0;
/** A plain integer (MACH_MSG_TYPE_PORT_NAME): no right moves. */
export const R_NAME = 15;

export interface KRight {
  type: number;
  port: Port | null;
  /**
   * For R_NAME: the integer itself. For a right: MOVED when it was the
   * sender's own (MOVE_*: a send that fails gives it back, as Mach's
   * pseudo-receive), 0 when the message made or copied it (a send that
   * fails releases it: giving it back would leave the sender a uref it
   * never learns the name of).
   */
  value: number;
}

export const MOVED = 1;

/** A message inside the kernel: its rights are the kernel's until delivered. */
export interface KMsg {
  dest: Port;
  /** R_SEND or R_SEND_ONCE: the right held on dest while in flight. */
  destType: number;
  /** The sender moved its own destination right (MOVE_SEND): a failed send gives it back. */
  destMoved: boolean;
  reply: Port | null;
  /** R_SEND, R_SEND_ONCE or R_DEAD (reply was a dead name). */
  replyType: number;
  id: number;
  code: number;
  body: Uint8Array;
  rights: KRight[] | null;
  sender: KTask | null;
  /** Set only for notifications the kernel generates. */
  kernel: boolean;
  seq: number;
  /** Binary W3C trace context (empty: none). */
  traceContext: Uint8Array;
  /** The tracer's note while the message is in flight (null untraced). */
  trace: TraceNote | null;
  /** The task this message's queued bytes are charged to, and how many (0: not charged; quota.ts). */
  payer: KTask | null;
  charged: number;
}

// ---------------------------------------------------------------- namespaces

/**
 * A hurd: the root one or a subhurd. Tasks are created inside one; its proc
 * registers on its privileged host port and hears of its tasks only.
 */
export class Namespace {
  readonly id = nextNamespaceId++;
  readonly depth: number;
  readonly tasks = new Set<KTask>();
  readonly children = new Set<Namespace>();
  /** The port new-task / task-terminated notifications go to (a send right the kernel holds). */
  notify: Port | null = null;
  active = true;
  /** In its parent's children, and counted in its ancestors' (quota.ts). */
  linked = false;
  // Its limits and what it holds now, counting the hurds nested in it
  // (quota.ts): plain fields, since every charge walks the chain.
  maxTasks = 0;
  maxPorts = 0;
  maxQueuedBytes = 0;
  maxChildren = 0;
  ntasks = 0;
  ports = 0;
  queuedBytes = 0;
  nchildren = 0;
  /** Creation policy bits (quota.ts: POLICY_*). */
  policy = 0;
  /**
   * Events of tasks of nested hurds not yet sent to this hurd's proc (see
   * notify.ts, nestedTaskEvent); made on first use, reused after every send.
   */
  events: TaskEvents | null = null;
  constructor(
    readonly parent: Namespace | null,
    readonly hostPriv: Port,
    readonly label: string,
  ) {
    this.depth = parent ? parent.depth + 1 : 0;
  }
}

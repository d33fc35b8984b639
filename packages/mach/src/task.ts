import { tracingHooks } from "./hooks.js";
import { NO_TRACE_CONTEXT, traceparentOf } from "./trace-context.js";
import {
  AttachReply,
  CallReply,
  Delivery,
  type HurdLimits,
  type HurdPolicy,
  MachDefinition,
  MsgType,
  NotifyId,
  PortRight,
  TaskSpecialPort,
  Trap,
  type Message,
  type MsgPort,
  type Received,
  type SendFailed,
} from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { Bus, BusSubscription } from "./bus/types.js";
import { Deadlines } from "./deadlines.js";
import { Errno, HurdError } from "./errors.js";
import { methods } from "./msgid.js";
import { subjectsOf } from "./subjects.js";
import { TrapWindow } from "./trap-window.js";
import { encode } from "./wire.js";

/** mach/notify.h ids, as the runtime sees them on its ports. */
export const Notify = {
  PORT_DELETED: 65,
  PORT_DESTROYED: 69,
  NO_SENDERS: 70,
  SEND_ONCE: 71,
  DEAD_NAME: 72,
  NEW_TASK: 4400,
  TASK_TERMINATED: 4401,
  /** hurdmesh: tasks of nested hurds were created or ended (many per message). */
  TASK_EVENTS: 4402,
} as const;

export const MACH_PORT_NULL = 0;
export const MACH_PORT_DEAD = 0xffffffff;

/** A handler for messages arriving on one receive right. Credit returns when it settles. */
export type MessageHandler = (m: Received) => void | Promise<void>;

export interface AttachOptions {
  bus: Bus;
  /** The kernel's system name (subjects hurd.<system>.…). */
  system?: string;
  taskId: number;
  token: string;
  /** How many messages the kernel may push before this task returns credit. */
  window?: number;
  /** Default deadline of kernel calls and RPCs, ms. */
  timeoutMs?: number;
  /** The bus is this task's alone (its own NATS user's connection): closed when the task ends. */
  ownsBus?: boolean;
  /**
   * Holds deliveries (at most a window's worth: no credit goes back) until
   * resume(): a server re-attaching to its task after a restart has
   * requests queued on its ports, and must set its handlers up first.
   */
  hold?: boolean;
  /**
   * How long the bus may be down before the task ends itself, ms (default:
   * the bus's own Bus.lostLimitMs, else the lease). After the bus is back
   * the task asks the kernel whether it still exists.
   */
  busLostMs?: number;
  /**
   * A restarted server: the kernel refuses its attach (EBUSY) until the
   * dead holder's lease lapses; retry for up to this long, ms (0: no retry).
   */
  retryBusyMs?: number;
}

/** An RPC waiting for its reply, keyed in `replies` by its reply port. */
interface Pending {
  resolve(m: Received): void;
  reject(e: Error): void;
  /** The reply port (also the request's seq). */
  port: number;
  /** The request's message id and deadline, for the ETIMEDOUT message. */
  id: number;
  timeoutMs: number;
  /** Handle of its entry in the task's Deadlines. */
  due: number;
}

type MachKey = keyof typeof MachDefinition.methods;
type Req<K extends MachKey> = Parameters<(typeof MachDefinition.methods)[K]["requestType"]["fromPartial"]>[0];
type Rep<K extends MachKey> = ReturnType<(typeof MachDefinition.methods)[K]["responseType"]["decode"]>;

const mach = methods(MachDefinition);
const EMPTY = new Uint8Array(0);
/** Shared by every message without rights: encoders only read it. */
const NO_PORTS: MsgPort[] = Object.freeze([]) as unknown as MsgPort[];
const NO_OPTIONS: RpcOptions = Object.freeze({});
/** One-way sends number their seq from here, so they never collide with reply names. */
const ONE_WAY_SEQ = 2 ** 32;
/**
 * Replies remembered for their failure report: the kernel reports a failed
 * send by its seq, before this many more replies were sent (it handles a
 * task's traps in order); an older one is not looked for.
 */
const REPLIES_KEPT = 256;
/**
 * With numbered traps (AttachReply.trap_seq), how soon after a one-way trap
 * the runtime asks the kernel which it applied, ms, and how many traps may
 * go unconfirmed before it asks at once: the bound on how late a trap lost
 * in a failover is sent again after the new kernel leads.
 */
const CONFIRM_MS = 200;
const CONFIRM_EVERY = 1024;
/** How long a confirmation may take before it is asked again (a kernel that died with it). */
const CONFIRM_TIMEOUT_MS = 1_000;
/** A kernel call that found nobody on the trap subject (no kernel leads) is sent again after this, doubling to CALL_RETRY_MAX_MS. */
const CALL_RETRY_MS = 20;
const CALL_RETRY_MAX_MS = 250;

export interface RpcOptions {
  ports?: MsgPort[];
  timeoutMs?: number;
  /** MACH_SEND_TIMEOUT for a full destination queue (default: the RPC's deadline). */
  sendTimeoutMs?: number;
  destinationDisposition?: MsgType;
  /** The trace context to send (binary, trace-context.ts); default: the active span's. */
  traceContext?: Uint8Array;
}

/**
 * A task attached to a kernel: what MIG's runtime and libports are to a Hurd
 * program. Kernel calls are traps answered by the kernel; messages are sent
 * through the kernel and arrive on the task's delivery subject, within a
 * credit window the task controls, so a slow task only ever holds a bounded
 * backlog.
 */
export class Task {
  readonly id: number;
  readonly self: number;
  readonly bootstrap: number;
  readonly namespaceId: number;
  readonly system: string;
  /** The name of this task's hurd (the system's for the root hurd), for spans and metrics. */
  readonly hurd: string;
  readonly leaseMs: number;
  readonly window: number;
  readonly timeoutMs: number;
  readonly busLostMs: number;
  /** The bus's reconnects when the heartbeat last looked: a new one is asked about (heartbeat). */
  private seenReconnects = 0;
  /** The bus this task is attached on. */
  readonly bus: Bus;
  private readonly token: string;
  private readonly trapSubject: string;
  private readonly handlers = new Map<number, MessageHandler>();
  private readonly replies = new Map<number, Pending>();
  /** One coarse timer for every pending RPC's deadline (see deadlines.ts). */
  private readonly deadlines = new Deadlines<Pending>((p) => this.timedOut(p));
  private readonly replyPool: number[] = [];
  private sub: BusSubscription | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private pendingCredit = 0;
  /** The last numbered delivery taken (Delivery.seq): one sent again at a takeover is dropped. */
  private delivered = 0;
  private sentSinceBeat = false;
  private oneWaySeq = ONE_WAY_SEQ;
  /** The last one-way sends on send-once rights (replies), by seq: what a failed one consumed. */
  private readonly replySeqs = new Float64Array(REPLIES_KEPT);
  private readonly replyNames = new Uint32Array(REPLIES_KEPT);
  private closed = false;
  private readonly ownsBus: boolean;
  /** A notice of this task's end is being checked with the kernel (at most one at a time). */
  private confirming = false;
  /** When the heartbeat last ran: a gap past the lease means this process was stalled (SIGSTOP, a frozen event loop). */
  private lastBeat = Date.now();
  /** A rejoin() in flight (at most one). */
  private rejoining: Promise<boolean> | null = null;
  /** Deliveries held until resume() (AttachOptions.hold). */
  private held: Delivery[] | null = null;
  /** This process's attach of its task (AttachReply.holder): task_info naming another means a newer process took it. */
  private holder: number;
  /**
   * Deliveries left unhandled while this process asks whether it still
   * holds its task, as it was stalled past its lease (SIGSTOP, a frozen
   * event loop): a newer process of the same task may have taken it
   * meanwhile and serve the very same deliveries (both are subscribed to
   * the task's subject), and this one's state is stale. Bounded by the
   * window: nothing handled, no credit returned. null: not asking.
   */
  private suspended: Uint8Array[] | null = null;
  /** When the last confirmation was asked, and when the stall that suspended deliveries was noticed. */
  private confirmAsked = 0;
  private suspendedAt = 0;
  /**
   * A rejoin while deliveries were suspended: how many of them came before
   * it (the old attach's, numbered by it) and are handled before the
   * numbering starts again from 1 for the new attach's. -1: none.
   */
  private rejoinMark = -1;
  /**
   * The one-way traps sent and not yet known applied, when the kernel may
   * fail over (AttachReply.trap_seq); null: traps are not numbered.
   */
  private readonly numbered: TrapWindow | null;
  /** A confirmation is asked (at most one at a time), or is due. */
  private confirming_ = false;
  private confirmTimer: NodeJS.Timeout | null = null;
  /** Messages on ports nobody handles (default: rights released, RPCs answered MIG_BAD_ID). */
  onUnhandled: (m: Received) => void = (m) => this.refuse(m);
  /** The kernel ended this task; the Task is detached by then. */
  onTerminated: () => void = () => {};
  /** A notice of this task's end came that the kernel denied (it was forged). */
  onForgedEnd: () => void = () => {};
  /** This process took its task back after the kernel lapsed it (rejoin). */
  onRejoined: () => void = () => {};
  /** One-way sends that the kernel could not route. */
  onSendFailed: (f: SendFailed) => void = () => {};

  private constructor(o: AttachOptions, rep: AttachReply, window: number) {
    this.bus = o.bus;
    this.token = o.token;
    this.id = rep.taskId;
    this.self = rep.taskSelf;
    this.bootstrap = rep.bootstrap;
    this.namespaceId = rep.namespaceId;
    this.system = rep.system;
    this.hurd = rep.hurd || rep.system;
    this.leaseMs = rep.leaseMs;
    this.window = window;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.busLostMs = o.busLostMs ?? o.bus.lostLimitMs ?? rep.leaseMs;
    this.seenReconnects = o.bus.reconnects ?? 0;
    this.trapSubject = subjectsOf(rep.system).trap;
    this.ownsBus = o.ownsBus ?? false;
    this.numbered = rep.trapSeq ? new TrapWindow() : null;
    this.holder = rep.holder;
  }

  /** Attaches as the task `taskId`, proving it with `token`. */
  static async attach(o: AttachOptions): Promise<Task> {
    const system = o.system ?? "hurd";
    const window = o.window ?? 256;
    // Subscribe before attaching: the kernel starts pushing as soon as it has our credit.
    const early: Uint8Array[] = [];
    let task: Task | null = null;
    const subjects = subjectsOf(system);
    const sub = o.bus.subscribe(subjects.deliveries(o.taskId), (_s, d) => {
      if (task) task.onDelivery(d);
      else if (early.length < window) early.push(d);
    });
    try {
      const req = MachDefinition.methods.attach.requestType.encode({ taskId: o.taskId, token: o.token, window }).finish();
      const until = Date.now() + (o.retryBusyMs ?? 0);
      let bytes: Uint8Array;
      for (;;) {
        try {
          bytes = await trap(o.bus, subjects.trap, o.taskId, o.token, 0, mach.byKey.get("attach")!.msgid, req, NO_TRACE_CONTEXT, o.timeoutMs ?? 10_000, "");
          break;
        } catch (e) {
          if (HurdError.from(e).code !== Errno.EBUSY || Date.now() > until) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const rep = AttachReply.decode(bytes);
      task = new Task({ ...o, system }, rep, window);
    } catch (e) {
      sub.unsubscribe();
      if (o.ownsBus) await o.bus.close().catch(() => {});
      throw e;
    }
    task.sub = sub;
    task.startHeartbeat();
    // A task's NATS user expires: the kernel renews it, the bus moves to a connection presenting it.
    const self = task;
    o.bus.keepCredentials?.(async () => {
      const r = await self.call("taskNatsRenew", {});
      return { jwt: r.jwt, expires: r.expires };
    });
    if (o.hold) task.held = [];
    for (const d of early) task.onDelivery(d);
    return task;
  }

  /** Delivers what arrived while held (AttachOptions.hold), then everything as it comes. */
  resume(): void {
    const held = this.held;
    this.held = null;
    if (held !== null) for (const d of held) this.take(d);
  }

  private startHeartbeat(): void {
    const every = Math.max(50, Math.floor(this.leaseMs / 3));
    this.heartbeat = setInterval(() => {
      if (this.closed) return;
      // Stalled past the lease (SIGSTOP, a blocked event loop): the kernel
      // may have put the task into its restart grace meanwhile; asked now.
      const beat = Date.now();
      if (beat - this.lastBeat > this.leaseMs) this.suspend();
      this.lastBeat = beat;
      // The connection is gone for good, or has been down for busLostMs:
      // the program behind the task ends as if the kernel had said so (a
      // `hurd spawn` kills its Linux program), instead of living on as a
      // task nobody may know. A shorter outage (a NATS restart, a node of
      // a cluster lost) is ridden out: the kernel paused its leases if it
      // lost the bus too; if only this task's connection went, the kernel
      // may have ended it meanwhile, which it is asked once back.
      const lost = this.bus.disconnectedSince;
      if (this.bus.closed || (lost !== undefined && lost !== 0 && Date.now() - lost > this.busLostMs)) {
        this.shutdown();
        this.onTerminated();
        return;
      }
      const r = this.bus.reconnects;
      if (r !== undefined && r !== this.seenReconnects && lost === 0) {
        this.seenReconnects = r;
        void this.confirmEnd(false);
      }
      try {
        if (!this.sentSinceBeat || this.pendingCredit > 0) this.oneWay({ task: this.id, token: this.token, credit: this.takeCredit(), seq: 0, heartbeat: true });
      } catch {
        // A failed heartbeat is the same as a missed one: the lease decides.
      }
      this.sentSinceBeat = false;
    }, every);
    this.heartbeat.unref();
  }

  private takeCredit(): number {
    const c = this.pendingCredit;
    this.pendingCredit = 0;
    return c;
  }

  /**
   * Publishes a one-way trap (a send, a heartbeat). Numbered, it is kept
   * until the kernel says it applied it, and a confirmation is asked soon.
   */
  private oneWay(trap: Trap): void {
    this.sentSinceBeat = true;
    const w = this.numbered;
    if (w === null) {
      this.bus.publish(this.trapSubject, encode(Trap, trap));
      return;
    }
    trap.seq = w.next();
    const bytes = encode(Trap, trap);
    // Published first: a publish that throws (the bus closed, a message too
    // big) did not send it, and the caller hears so; nothing is kept.
    this.bus.publish(this.trapSubject, bytes);
    w.keep(trap.seq, bytes);
    if (w.size >= CONFIRM_EVERY) this.confirm();
    else if (this.confirmTimer === null && !this.confirming_) {
      this.confirmTimer = setTimeout(this.confirmNow, CONFIRM_MS);
      this.confirmTimer.unref();
    }
  }

  private readonly confirmNow = (): void => {
    this.confirmTimer = null;
    this.confirm();
  };

  /**
   * Asks the kernel which numbered traps it applied (a heartbeat as a
   * request: CallReply.applied), forgets those, and sends again, in order,
   * the ones it saw and did not apply (lost while no kernel led: the new
   * leader drops whatever came after them until they come again). Asked
   * again until some kernel answers, so a failover is ridden out.
   */
  private confirm(): void {
    const w = this.numbered;
    if (w === null || this.confirming_ || this.closed) return;
    if (this.confirmTimer !== null) clearTimeout(this.confirmTimer);
    this.confirmTimer = null;
    this.confirming_ = true;
    const sentBefore = w.last;
    const ask = encode(Trap, { task: this.id, token: this.token, credit: 0, seq: 0, heartbeat: true });
    this.bus.request(this.trapSubject, ask, CONFIRM_TIMEOUT_MS).then(
      (data) => {
        this.confirming_ = false;
        if (this.closed) return;
        const r = CallReply.decode(data);
        if (r.code !== 0) return; // The task is gone: the heartbeat's checks end it.
        if (w.ack(r.applied, sentBefore)) {
          for (const bytes of w.kept()) this.bus.publish(this.trapSubject, bytes);
        }
        if (w.size > 0) this.later();
      },
      () => {
        // Nobody on the trap subject, or no answer: no kernel leads yet.
        this.confirming_ = false;
        if (!this.closed && w.size > 0) this.later();
      },
    );
  }

  private later(): void {
    if (this.confirmTimer !== null || this.closed) return;
    this.confirmTimer = setTimeout(this.confirmNow, CONFIRM_MS);
    this.confirmTimer.unref();
  }

  // ------------------------------------------------------------ kernel calls

  /** A kernel call by its hurd.mach.v1.Mach method name. */
  call<K extends MachKey>(key: K, req: Req<K>): Promise<Rep<K>> {
    return this.callWithin(key, req, this.timeoutMs);
  }

  /** A kernel call answered within `timeoutMs`. */
  private async callWithin<K extends MachKey>(key: K, req: Req<K>, timeoutMs: number): Promise<Rep<K>> {
    if (this.closed) throw new HurdError(Errno.KERN_INVALID_TASK, "task detached");
    const info = mach.byKey.get(key)!;
    const def = info.def;
    const body = encode(def.requestType, def.requestType.fromPartial(req));
    this.sentSinceBeat = true;
    // The caller's trace context rides in the call, in binary (Call.trace_context),
    // so what the call causes (a task's death, notifications) links back to
    // the caller's span. A bus that wants it as text too (the edge's, whose
    // gRPC client span is parented on it) gets the traceparent header as well.
    const ctx = tracingHooks.current !== null ? tracingHooks.current() : NO_TRACE_CONTEXT;
    const tp = ctx.length !== 0 && this.bus.traceparentHeader === true ? traceparentOf(ctx) : "";
    const credit = this.takeCredit();
    try {
      const bytes = await trap(this.bus, this.trapSubject, this.id, this.token, credit, info.msgid, body, ctx, timeoutMs, tp, this.numbered !== null);
      return def.responseType.decode(bytes) as Rep<K>;
    } catch (e) {
      // Nobody took the call (no kernel led until its deadline): its credit was not returned.
      if (e instanceof NoKernelError) this.pendingCredit += credit;
      throw e;
    }
  }

  async allocate(right: PortRight = PortRight.PORT_RIGHT_RECEIVE): Promise<number> {
    return (await this.call("portAllocate", { right })).name;
  }
  async deallocate(name: number): Promise<void> {
    await this.call("portDeallocate", { name });
  }
  async destroy(name: number): Promise<void> {
    await this.call("portDestroy", { name });
  }
  async modRefs(name: number, right: PortRight, delta: number): Promise<void> {
    await this.call("portModRefs", { name, right, delta });
  }
  async getRefs(name: number, right: PortRight): Promise<number> {
    return (await this.call("portGetRefs", { name, right })).refs;
  }
  async type(name: number): Promise<number> {
    return (await this.call("portType", { name })).type;
  }
  async names(): Promise<{ names: number[]; types: number[] }> {
    return this.call("portNames", {});
  }
  /** Registers a notification; answers the previous send-once right's name (0 if none). */
  async requestNotification(name: number, variant: NotifyId, notify: number, sync = 0, disposition = MsgType.MSG_TYPE_MAKE_SEND_ONCE): Promise<number> {
    return (await this.call("portRequestNotification", { name, variant, sync, notify, notifyDisposition: disposition })).previous;
  }
  async insertRight(task: number, name: number, right: number, disposition: MsgType): Promise<void> {
    await this.call("portInsertRight", { task, name, right, disposition });
  }
  async extractRight(task: number, name: number, disposition: MsgType): Promise<{ name: number; type: MsgType }> {
    return this.call("portExtractRight", { task, name, disposition });
  }
  /**
   * task_create. `newNamespace` makes it the first task of a new hurd nested
   * in the parent's, with `limits` and `policy`; `dieWithParent` ends it
   * with its parent, whose lease then keeps it (it need not attach).
   */
  async taskCreate(name: string, o: { parent?: number; newNamespace?: boolean; limits?: HurdLimits; policy?: HurdPolicy; dieWithParent?: boolean } = {}) {
    return this.call("taskCreate", { name, parent: o.parent ?? 0, newNamespace: o.newNamespace ?? false, limits: o.limits, policy: o.policy, dieWithParent: o.dieWithParent ?? false });
  }
  async taskTerminate(task: number): Promise<void> {
    await this.call("taskTerminate", { task });
  }
  /** A send right to a task of the host's hurd, or of a hurd nested in it, by id. */
  async taskForId(hostPriv: number, taskId: number): Promise<number> {
    return (await this.call("taskForId", { hostPriv, taskId })).task;
  }
  async taskInfo(task = 0) {
    return this.call("taskInfo", { task });
  }
  /**
   * The NATS user of the task `taskId` whose token is `token` (its creator
   * holds it), for the process that will attach as it over NATS; null when
   * the kernel mints none (an in-process bus, NATS without authorization).
   */
  async natsCredentials(taskId: number, token: string): Promise<{ jwt: string; seed: string; expires: number } | null> {
    const c = await this.call("taskNatsCredentials", { taskId, token });
    return c.jwt ? c : null;
  }
  async getSpecialPort(task: number, which: TaskSpecialPort): Promise<number> {
    return (await this.call("taskGetSpecialPort", { task, which })).port;
  }
  async setSpecialPort(task: number, which: TaskSpecialPort, port: number): Promise<void> {
    await this.call("taskSetSpecialPort", { task, which, port });
  }

  // ------------------------------------------------------------ messages

  /** Serves messages arriving on the receive right `name`. */
  receive(name: number, handler: MessageHandler): void {
    this.handlers.set(name, handler);
  }

  unreceive(name: number): void {
    this.handlers.delete(name);
  }

  /** A one-way send (simpleroutine, notification, reply). Failures go to onSendFailed. */
  send(m: Partial<Message>): void {
    if (this.closed) throw new HurdError(Errno.KERN_INVALID_TASK, "task detached");
    const seq = m.seq ?? this.oneWaySeq++;
    if (m.destinationDisposition === MsgType.MSG_TYPE_MOVE_SEND_ONCE) {
      const i = seq % REPLIES_KEPT;
      this.replySeqs[i] = seq;
      this.replyNames[i] = m.destination ?? 0;
    }
    this.post({
      destination: m.destination ?? 0,
      destinationDisposition: m.destinationDisposition ?? MsgType.MSG_TYPE_UNSPECIFIED,
      reply: m.reply ?? 0,
      replyDisposition: m.replyDisposition ?? MsgType.MSG_TYPE_UNSPECIFIED,
      id: m.id ?? 0,
      body: m.body ?? EMPTY,
      ports: m.ports ?? NO_PORTS,
      timeoutMs: m.timeoutMs ?? 0,
      seq,
      traceContext: m.traceContext ?? (tracingHooks.current !== null ? tracingHooks.current() : NO_TRACE_CONTEXT),
      code: m.code ?? 0,
    });
  }

  /** Hands a complete message to the kernel (the send trap). */
  private post(msg: Message): void {
    if (this.closed) throw new HurdError(Errno.KERN_INVALID_TASK, "task detached");
    this.oneWay({ task: this.id, token: this.token, credit: this.takeCredit(), seq: 0, send: msg });
  }

  /**
   * Sends a request and waits for its reply on a reply port of the runtime's
   * (MAKE_SEND_ONCE), as a MIG stub does. Rejects with the reply's code, with
   * MIG_SERVER_DIED if the reply right was destroyed unused, or ETIMEDOUT
   * (no earlier than the deadline, at most DEADLINE_GRAIN_MS later).
   */
  rpc(destination: number, id: number, body: Uint8Array, o: RpcOptions = NO_OPTIONS): Promise<Received> {
    // Not an async function: with a pooled reply port (the common case) the
    // call is sent synchronously, without an extra promise to adopt.
    if (this.closed) return Promise.reject(new HurdError(Errno.KERN_INVALID_TASK, "task detached"));
    const rp = this.replyPool.pop();
    if (rp !== undefined) return this.sendRequest(rp, destination, id, body, o);
    // A new reply port is a kernel call first: it counts against the RPC's
    // deadline, so that a kernel out of reach fails the RPC by its
    // deadline and not by twice that.
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    const start = Date.now();
    const allocated = this.callWithin("portAllocate", { right: PortRight.PORT_RIGHT_RECEIVE }, timeoutMs).catch((e: unknown) => {
      // Abandoned meanwhile: the call fails as the ones already sent do.
      throw this.closed ? new HurdError(Errno.KERN_INVALID_TASK, "task detached") : e;
    });
    return allocated.then(({ name }) => {
      const left = timeoutMs - (Date.now() - start);
      if (left <= 0) {
        this.replyPool.push(name);
        throw new HurdError(Errno.ETIMEDOUT, `no reply to message ${id} within ${timeoutMs} ms (allocating its reply port took that long)`);
      }
      return this.sendRequest(name, destination, id, body, left >= timeoutMs ? o : { ...o, timeoutMs: left });
    });
  }

  private sendRequest(rp: number, destination: number, id: number, body: Uint8Array, o: RpcOptions): Promise<Received> {
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    return new Promise<Received>((resolve, reject) => {
      const p: Pending = { resolve, reject, port: rp, id, timeoutMs, due: 0 };
      p.due = this.deadlines.add(p, timeoutMs);
      this.replies.set(rp, p);
      try {
        this.post({
          destination,
          destinationDisposition: o.destinationDisposition ?? MsgType.MSG_TYPE_UNSPECIFIED,
          reply: rp,
          replyDisposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE,
          id,
          body,
          ports: o.ports ?? NO_PORTS,
          timeoutMs: o.sendTimeoutMs ?? timeoutMs,
          seq: rp,
          traceContext: o.traceContext ?? (tracingHooks.current !== null ? tracingHooks.current() : NO_TRACE_CONTEXT),
          code: 0,
        });
      } catch (e) {
        this.deadlines.cancel(p, p.due);
        this.replies.delete(rp);
        this.replyPool.push(rp);
        reject(e);
      }
    });
  }

  private timedOut(p: Pending): void {
    if (this.replies.get(p.port) !== p) return;
    this.replies.delete(p.port);
    // A late reply could still come: this reply port is never reused.
    this.destroy(p.port).catch(() => {});
    p.reject(new HurdError(Errno.ETIMEDOUT, `no reply to message ${p.id} within ${p.timeoutMs} ms`));
  }

  private onDelivery(data: Uint8Array): void {
    // After a stall the event loop runs the socket's backlog before any
    // timer: judged here, or the heartbeat would notice only once the
    // backlog was served.
    if (this.suspended !== null || Date.now() - this.lastBeat > this.leaseMs) {
      this.suspend();
      this.suspended!.push(data);
      return;
    }
    let d: Delivery;
    try {
      d = Delivery.decode(data);
    } catch {
      return;
    }
    if (d.seq !== 0) {
      // Sent again by a kernel that took over (Delivery.seq): had already.
      if (d.seq <= this.delivered) return;
      this.delivered = d.seq;
    }
    this.take(d);
  }

  private take(d: Delivery): void {
    if (d.failed) return this.onFailed(d.failed);
    const m = d.message;
    if (!m) return;
    const p = this.replies.get(m.local);
    // Held (AttachOptions.hold): replies to this task's own RPCs still come,
    // so that the server can set itself up by calling others.
    if (this.held !== null && !p) {
      this.held.push(d);
      return;
    }
    if (p) {
      this.replies.delete(m.local);
      this.deadlines.cancel(p, p.due);
      this.pendingCredit++;
      if (m.kernel && m.id === Notify.SEND_ONCE) {
        // The reply right died unused: the server (or the message) is gone.
        this.replyPool.push(m.local);
        p.reject(new HurdError(Errno.MIG_SERVER_DIED, `reply port ${m.local}`));
        this.flushCredit();
        return;
      }
      this.replyPool.push(m.local);
      if (m.code !== 0) {
        // An error reply owns nothing: release whatever rights it carried.
        if (m.ports.length) this.dropRights(m);
        p.reject(new HurdError(m.code, m.body.length ? new TextDecoder().decode(m.body) : undefined));
      } else p.resolve(m);
      this.flushCredit();
      return;
    }
    const h = this.handlers.get(m.local);
    if (!h) {
      this.pendingCredit++;
      this.onUnhandled(m);
      this.flushCredit();
      return;
    }
    let r: void | Promise<void>;
    try {
      r = h(m);
    } catch {
      r = undefined;
    }
    if (r && typeof (r as Promise<void>).then === "function") {
      (r as Promise<void>).then(
        () => this.credited(),
        () => this.credited(),
      );
    } else this.credited();
  }

  private credited(): void {
    this.pendingCredit++;
    this.flushCredit();
  }

  /** Returns credit on its own trap only when a good part of the window is owed. */
  private flushCredit(): void {
    if (this.pendingCredit * 2 >= this.window && !this.closed) {
      this.oneWay({ task: this.id, token: this.token, credit: this.takeCredit(), seq: 0, heartbeat: true });
    }
  }

  private onFailed(f: SendFailed): void {
    if (f.seq === 0 && f.code === Errno.KERN_TERMINATED) {
      // The kernel ended this task (terminated, namespace torn down, lease
      // lost), or so says something on the delivery path: asked first.
      void this.confirmEnd(true);
      return;
    }
    const p = f.seq < ONE_WAY_SEQ ? this.replies.get(f.seq) : undefined;
    if (p) {
      this.replies.delete(f.seq);
      this.deadlines.cancel(p, p.due);
      // The reply port may hold a copied-back send-once right: do not reuse it.
      this.destroy(f.seq).catch(() => {});
      if (f.reply && f.reply !== MACH_PORT_DEAD) this.deallocate(f.reply).catch(() => {});
      p.reject(new HurdError(f.code));
      return;
    }
    // A reply whose send-once right died with its port (the client gave up,
    // or sent the port's receive right along): the dead name stays with us,
    // so its uref goes, as mach_msg_server destroys a reply that failed with
    // MACH_SEND_INVALID_DEST. Only a dead name: a send that was refused for
    // another reason (a wrong disposition) leaves the caller's right as it was.
    if (f.code === Errno.MACH_SEND_INVALID_DEST && f.seq >= ONE_WAY_SEQ) {
      const i = f.seq % REPLIES_KEPT;
      if (this.replySeqs[i] === f.seq) {
        this.replySeqs[i] = 0;
        this.modRefs(this.replyNames[i]!, PortRight.PORT_RIGHT_DEAD_NAME, -1).catch(() => {});
      }
    }
    this.onSendFailed(f);
  }

  /**
   * Ends the task on a notice of its end only if the kernel confirms it:
   * a call as this task answers KERN_INVALID_TASK once it is gone. Where
   * deliveries could be forged (a fabric without authorization) a forged
   * notice would otherwise take a server down, proc with it and then the
   * hurd; a real one costs the end a round trip. A kernel that does not
   * answer is no confirmation: the lease ends the task if it is truly gone.
   * `noticed`: a notice came (a denial means it was forged); false: asked
   * unprompted, after the bus came back from an outage.
   */
  private async confirmEnd(noticed = true): Promise<void> {
    if (this.confirming || this.closed) return;
    this.confirming = true;
    this.confirmAsked = Date.now();
    try {
      const info = await this.call("taskInfo", { task: 0 });
      if (!(await this.heldAsSaid(info)) && noticed && !this.closed) this.onForgedEnd();
    } catch (e) {
      if (this.closed) return;
      if (HurdError.from(e).code === Errno.KERN_INVALID_TASK || this.bus.closed) {
        this.shutdown();
        this.onTerminated();
      }
    } finally {
      this.confirming = false;
      this.resumeSuspended();
    }
  }

  /**
   * What task_info of this task says of its holder, acted on: lapsed
   * (its connection closed, or it was stalled past its lease, and the
   * kernel keeps the task for a restart), this process takes it back;
   * taken by a newer process (an essential task's restart in place while
   * this one was stalled), this one is fenced and ends as if the task had
   * ended. Answers whether it did either. An answer about an attach older
   * than this process's own (asked before its rejoin, answered after)
   * says nothing now: acted on, it would end the process that just took its
   * task back, or attach a second time (EBUSY), and the hurd with it.
   */
  async heldAsSaid(info: { attached: boolean; essential: boolean; holder: number }): Promise<boolean> {
    if (this.closed) return true;
    // A rejoin in flight: judged once this process knows its new number.
    if (this.rejoining !== null) await this.rejoining;
    if (this.closed) return true;
    // Attach numbers only grow (the kernel counts each attach of the task).
    if (info.holder !== 0 && info.holder < this.holder) return false;
    if (!info.attached) {
      await this.rejoin();
      return true;
    }
    // Only an essential task is held by one process at a time (the kernel
    // refuses a second attach, EBUSY): any other may be attached by several
    // in turn (an edge client re-opening its stream), none of them fenced.
    if (info.essential && info.holder !== 0 && this.holder !== 0 && info.holder !== this.holder) {
      this.shutdown();
      this.onTerminated();
      return true;
    }
    return false;
  }

  /** Stalled past the lease: deliveries wait until the kernel says this process still holds the task. */
  private suspend(): void {
    if (this.closed) return;
    // The stall is noticed once: deliveries after it are judged by the answer.
    this.lastBeat = Date.now();
    if (this.suspended === null) {
      this.suspended = [];
      this.suspendedAt = this.lastBeat;
    }
    if (!this.confirming) void this.confirmEnd(false);
  }

  private resumeSuspended(): void {
    const held = this.suspended;
    if (held === null || this.confirming) return;
    if (this.closed) {
      this.suspended = null;
      return;
    }
    // Asked before the stall was noticed, the answer may predate the newer
    // process that took the task meanwhile: asked again.
    if (this.confirmAsked < this.suspendedAt) {
      void this.confirmEnd(false);
      return;
    }
    this.suspended = null;
    const mark = this.rejoinMark;
    this.rejoinMark = -1;
    for (let i = 0; i < held.length; i++) {
      if (i === mark) this.delivered = 0;
      this.onDelivery(held[i]!);
    }
    if (mark === held.length) this.delivered = 0;
  }

  /**
   * Attaches again as the same task, from this process, when the kernel
   * lapsed it into its restart grace (the process's connection closed, or
   * it was stalled past its lease) and no other process took it: deliveries
   * come again and the process carries on. Refused EBUSY, another process
   * holds the task (a restart of this server replaced it): this one is
   * fenced and ends as if the task had ended (onTerminated). Answers whether
   * the task is this process's again. Requests pushed to this process
   * before the lapse were answered MIG_SERVER_DIED by the kernel; replies it
   * sends to them now fail as sends to dead names.
   */
  rejoin(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.rejoining ??= (async () => {
      try {
        const req = MachDefinition.methods.attach.requestType.encode({ taskId: this.id, token: this.token, window: this.window }).finish();
        // The kernel numbers deliveries from 1 again, and pushes the first
        // before it answers; with deliveries suspended, the ones before are
        // the old attach's, handled first (resumeSuspended).
        if (this.suspended === null) this.delivered = 0;
        else this.rejoinMark = this.suspended.length;
        const bytes = await trap(this.bus, this.trapSubject, this.id, this.token, 0, mach.byKey.get("attach")!.msgid, req, NO_TRACE_CONTEXT, this.timeoutMs, "");
        this.holder = AttachReply.decode(bytes).holder;
        // The kernel counts a fresh window from here: credit owed for the old one is void.
        this.pendingCredit = 0;
        this.onRejoined();
        return true;
      } catch (e) {
        const code = HurdError.from(e).code;
        if (this.closed) return false;
        if (code === Errno.EBUSY || code === Errno.KERN_INVALID_TASK) {
          this.shutdown();
          this.onTerminated();
        }
        return false;
      } finally {
        this.rejoining = null;
      }
    })();
    return this.rejoining;
  }

  /** Answers an unserved message as a MIG server does for an unknown id, and drops its rights. */
  refuse(m: Received, code: number = Errno.MIG_BAD_ID): void {
    if (this.closed) return;
    if (m.reply && m.reply !== MACH_PORT_DEAD && !m.kernel) {
      this.send({
        destination: m.reply,
        destinationDisposition: m.replyType === MsgType.MSG_TYPE_MOVE_SEND_ONCE ? MsgType.MSG_TYPE_MOVE_SEND_ONCE : MsgType.MSG_TYPE_MOVE_SEND,
        id: m.id + 100,
        code,
      });
    }
    this.dropRights(m);
  }

  /** Releases every right a message brought (MIG's mach_msg_destroy). */
  dropRights(m: Received): void {
    for (const p of m.ports) {
      if (p.name === 0 || p.name === MACH_PORT_DEAD || p.type === MsgType.MSG_TYPE_PORT_NAME) continue;
      (p.type === MsgType.MSG_TYPE_MOVE_RECEIVE ? this.destroy(p.name) : this.deallocate(p.name)).catch(() => {});
    }
  }

  /** Ends the task: the kernel destroys its space and task port. */
  async detach(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call("detach", {});
    } catch {
      // Already gone: nothing to undo.
    }
    this.shutdown();
  }

  /**
   * Stops talking to the kernel without saying goodbye, as a crashed program
   * would: the kernel terminates the task when its lease runs out.
   */
  abandon(): void {
    this.shutdown();
  }

  private shutdown(): void {
    this.closed = true;
    this.suspended = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.confirmTimer !== null) clearTimeout(this.confirmTimer);
    this.confirmTimer = null;
    this.sub?.unsubscribe();
    this.deadlines.clear();
    for (const p of this.replies.values()) p.reject(new HurdError(Errno.KERN_INVALID_TASK, "task detached"));
    this.replies.clear();
    if (this.ownsBus) void this.bus.close().catch(() => {});
  }

  get detached(): boolean {
    return this.closed;
  }
}

/**
 * A kernel call that no kernel took before its deadline: nobody listened on
 * the trap subject at every try (a failover longer than the deadline, or
 * no kernel at all). It was never applied.
 */
export class NoKernelError extends HurdError {
  constructor(subject: string, timeoutMs: number, cause: unknown) {
    super(Errno.MACH_SEND_INVALID_DEST, `no kernel took the call within ${timeoutMs} ms: nobody listens on ${subject} (none leads); the call was not applied`, { cause });
  }
}

/**
 * One kernel call over the bus. `failover`: the kernel may fail over
 * (AttachReply.trap_seq): a call that finds nobody on the trap subject
 * ("no responders": no kernel received it, so none applied it) is sent
 * again until its deadline. One that reached a kernel and got no answer is
 * not: it may have been applied, and it fails ETIMEDOUT.
 */
async function trap(bus: Bus, subject: string, task: number, token: string, credit: number, msgid: number, request: Uint8Array, traceContext: Uint8Array, timeoutMs: number, traceparent: string, failover = false): Promise<Uint8Array> {
  const bytes = encode(Trap, { task, token, credit, seq: 0, call: { msgid, request, traceContext } });
  const deadline = Date.now() + timeoutMs;
  for (let wait = CALL_RETRY_MS; ; wait = Math.min(wait * 2, CALL_RETRY_MAX_MS)) {
    let data: Uint8Array;
    try {
      data = await bus.request(subject, bytes, Math.max(1, deadline - Date.now()), traceparent || undefined);
    } catch (e) {
      if (!failover || !(e instanceof HurdError) || e.code !== Errno.MACH_SEND_INVALID_DEST) throw e;
      if (Date.now() + wait >= deadline) throw new NoKernelError(subject, timeoutMs, e);
      await new Promise((r) => setTimeout(r, wait));
      continue;
    }
    const ans = CallReply.decode(data);
    if (ans.code !== 0) throw new HurdError(ans.code, ans.detail || undefined);
    return ans.reply;
  }
}

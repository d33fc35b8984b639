// What one kernel owns, which every room reads and writes: its tables, the
// undo log of the copyin in progress, the delivery in progress, the counters
// and the tracer. The rooms are functions of this state (as gnumach's are of
// its globals), so a call between rooms is a plain call, with nothing more
// per message than when they were one class.
//
// Mach's IPC is one cycle: a port's death sends notifications, a
// notification is a message, delivering a message moves rights whose release
// may end another port. The rooms are layered (notify.ts, port.ts, space.ts,
// message.ts, mqueue.ts, then tasks, namespaces and the calls), each
// importing only those before it; the three calls that go back up the
// layering are the abstract methods at the end, which the Kernel implements.
import { createLogger, Errno, HurdError, type Bus, type ErrnoName } from "@hurdmesh/mach";
import { subjectsOf, type SystemSubjects } from "@hurdmesh/mach/internal";
import type { KernelConfig } from "./config.js";
import type { NatsUsers } from "./nats-users.js";
import { setRootLimits } from "./quota.js";
import { Namespace, Port, type Blocked, type Entry, type KMsg, type KTask, type Space } from "./objects.js";
import type { CallMetrics } from "./metrics.js";
import type { KernelTracer } from "./trace.js";

export function err(name: ErrnoName, detail?: string): HurdError {
  return new HurdError(Errno[name], detail);
}

export interface KernelEvents {
  /** Something worth a line in the kernel's log (bad tokens, malformed traps). */
  log(line: string): void;
}

/** A snapshot taken before a copyin touches an entry, to put it back if the message fails. */
export interface Undo {
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

/**
 * The kernel's log (journal.ts), as the rooms see it: where they take the
 * time and random bytes they decide by, and where what they did outside a
 * trap is noted, so that a standby replaying the log decides the same.
 * Null (the embedded default, and any kernel without --journal): the rooms
 * read Date.now() and getrandom as they always did and note nothing.
 */
export interface KernelJournal {
  /** A standby: its state comes from the log; it decides nothing by its own clock or timers. */
  readonly replica: boolean;
  /** The time the entry in progress is decided at (one value per entry). */
  now(): number;
  /** `n` random bytes: drawn and logged by the leader, read back from the log by a standby. */
  random(n: number): Buffer<ArrayBuffer>;
  /** A sender blocked on a full queue (a standby fails it only when the log says its timeout fired). */
  blocked(dest: Port, w: Blocked): void;
  /** The leader's timer failed a blocked sender. */
  timedOut(m: KMsg): void;
  /** The leader sent the nested-task events gathered in the last burst (notify.ts). */
  eventsSent(): void;
  /** The leader applied a trap (trap.ts): `answered`, it had an answer to send; `keepSink`, it came from the edge. */
  trap(data: Uint8Array, answered: boolean, keepSink: boolean): void;
  /** The leader's lease sweep ran and ended or lapsed `ended` tasks. */
  swept(ended: number): void;
  /** The bus is back after an outage: every lease restarts now (task.ts, restartLeases). */
  resumed(): void;
  /** A boot task was made (Kernel.bootTask). */
  booted(name: string, hostPriv: boolean, ns: number): void;
  /** A NATS user was minted for task `taskId` outside any trap (Kernel.bootUser). */
  userMinted(taskId: number): void;
  /** The gRPC edge changed task `taskId` outside a trap (log-format.ts, EdgeOp). */
  edge(op: number, taskId: number, arg: number): void;
  /** A boot claim's effect (boot-claim.ts; log-format.ts, ClaimOp). */
  claim(op: number, payload: Uint8Array | null): void;
  /** Runs `f` once what was recorded so far is in the log: an answer that leaves by another way than the bus (the gRPC edge's). */
  after(f: () => void): void;
}

export abstract class KernelState {
  readonly config: KernelConfig;
  /** The system's bus subjects, built once (subjects.ts in the runtime is their one home). */
  readonly subjects: SystemSubjects;
  readonly root: Namespace;
  readonly tasks = new Map<number, KTask>();
  bus: Bus | null = null;
  events: KernelEvents;
  /** Counters for tests and the bench; droppedTraps: numbered one-way traps dropped as repeats or past a gap (trap.ts: a failover's resends). */
  readonly stats = { sent: 0, delivered: 0, notifications: 0, rejectedTraps: 0, sendFailures: 0, droppedTraps: 0 };
  /** Set only while someone watches the trace stream or spans are on: routing checks this one field. */
  tracer: KernelTracer | null = null;
  /** The NATS users of tasks, with NATS authorization on (nats-users.ts); null: the kernel mints none. */
  natsUsers: NatsUsers | null = null;
  /** The log the kernel's changes go to (journal.ts); null: none, the embedded default. */
  journal: KernelJournal | null = null;
  /** Set only while metrics are on (metrics.ts): kernel calls are timed. */
  callMetrics: CallMetrics | null = null;

  // task.ts: leases and tokens.
  /** Attached tasks in order of last activity: the lease sweep reads from the front. */
  readonly leased = new Map<KTask, true>();
  /** Tasks that have not attached yet, in order of creation (attachGraceMs; die-with-parent tasks are not here). */
  readonly unattached = new Map<KTask, true>();
  /** Essential tasks whose process went away, waiting for a new one, with when (reincarnation.ts). */
  readonly lapsed = new Map<KTask, number>();
  /**
   * Task tokens come from a pool of random bytes filled 256 tokens at a
   * time: one getrandom call per task was a visible cost of task_create.
   */
  tokenPool = Buffer.alloc(0);
  tokenAt = 0;
  /** Where a presented token is written to be compared (no allocation per trap). */
  readonly scratch = Buffer.alloc(256);

  // message.ts: the copyin in progress.
  readonly undo: Undo[] = [];
  /** Entries a copyin took out that held a dead-name request: port-deleted is owed at commit. */
  readonly deletedLater: { space: Space; e: Entry; dn: Port }[] = [];

  /** The copyouts of the delivery in progress (message.ts, copyoutLogged): eight slots a right. */
  readonly outLog: unknown[] = [];

  // mqueue.ts: the delivery in progress.
  /** Inside deliver: copying out a receive right must not push its queue yet. */
  delivering = 0;
  /** Tasks that were handed a receive right with queued messages during a deliver. */
  readonly drainLater = new Set<KTask>();

  // notify.ts: nested-task events.
  /** Namespaces with nested-task events waiting to be sent, and whether their sending is scheduled. */
  readonly eventsPending: Namespace[] = [];
  eventsScheduled = false;
  /** The microtask that sends them (made once, on first use). */
  sendEvents: (() => void) | null = null;

  // quota.ts: hurds by id, and the task a kill-on-limit policy ends once its call is undone.
  readonly namespaces = new Map<number, Namespace>();
  offender: KTask | null = null;
  /**
   * Whether tasks, names and queued bytes are charged and checked against
   * the hurds' limits. Always, but in a kernel the bench makes to measure
   * what accounting costs (KernelOptions.benchOnlyNoAccounting).
   */
  accounting = true;
  /**
   * The most bytes one delivery may encode to: the bus's largest message
   * (NATS's max_payload; unbounded in process). copyinMessage refuses what
   * would not fit, so no message is accepted that its delivery cannot carry.
   */
  busLimit = Infinity;

  // mach-port.ts and port.ts: dead-name requests.
  /** Which space an entry with a dead-name request lives in (to turn it into a dead name at death). */
  readonly dnSpaces = new WeakMap<Entry, Space>();

  private logged = 0;
  private logWindow = 0;

  constructor(config: KernelConfig, events: Partial<KernelEvents>) {
    this.config = config;
    this.subjects = subjectsOf(config.system);
    // What the kernel logs is something refused or lost (bad tokens, malformed traps, expired leases).
    const log = createLogger("kernel", { hurd: config.system });
    this.events = { log: (l) => log.warn(l), ...events };
    const host = new Port(config.qlimit);
    this.root = new Namespace(null, host, "root");
    host.kobject = { kind: "host", ns: this.root };
    setRootLimits(this, this.root);
    this.namespaces.set(this.root.id, this.root);
  }

  /** The bus the kernel delivers on: what it can carry bounds what the kernel accepts. */
  useBus(bus: Bus): void {
    this.bus = bus;
    const max = bus.maxPayload;
    this.busLimit = max !== undefined && max > 0 ? max : Infinity;
  }

  /** The clock leases and grace periods are decided by: the log's while there is one (KernelJournal.now). */
  now(): number {
    return this.journal === null ? Date.now() : this.journal.now();
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

  /** ipc_mqueue_send for a message the kernel makes (notify.ts → mqueue.ts). */
  abstract enqueue(p: Port, m: KMsg): void;
  /** Pushes a task's queued messages while it has credit (message.ts, a receive right copied out → mqueue.ts). */
  abstract drain(t: KTask): void;
  /** A message that had left its sender will not be delivered (port.ts, a port's death → mqueue.ts). */
  abstract failSend(m: KMsg, code: number): void;
  /** Terminates `offender`, the task a kill-on-limit hurd's limit stopped, once its call is undone (quota.ts → task.ts). */
  abstract killOffender(): void;
}

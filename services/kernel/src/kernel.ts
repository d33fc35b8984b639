// The kernel as the programs beside it hold it: the state every room works
// on (state.ts), the calls that go back up through the rooms, the lease
// sweep, the tracer, and the few entry points of the servers and programs
// beside the kernel. The kernel's behaviour is in its rooms:
//
//   objects.ts    tasks, spaces and entries, ports, messages, namespaces (the data)
//   space.ts      ipc_entry, ipc_right: names and the rights they hold
//   port.ts       ipc_port: right counts, a port's death, a message destroyed
//   message.ts    ipc_kmsg: copyin and copyout, the undo log
//   mqueue.ts     ipc_mqueue: mach_msg's send, queues, delivery
//   notify.ts     ipc_notify: the messages the kernel sends by itself
//   task.ts       tasks, tokens, leases, special ports, a namespace's end
//   quota.ts      what tasks and hurds hold, charged up the namespace chain; hurds' limits and policy
//   namespace.ts  hurds: nesting, the host port, the proc that hears of tasks
//   mach-port.ts  the mach_port_* calls
//   calls.ts      every kernel call by its Mach name, for the trap and the edge
//   nats-users.ts the NATS users of tasks and watchers: minted, renewed, revoked
//   trace.ts      the tracer: watchers' records and OpenTelemetry spans
//   metrics.ts    the kernel's metrics: per-hurd gauges, counters, its calls' durations
//   introspect.ts host_ipc_graph: every IPC space of a hurd, for its host_priv holder
import type { Bus } from "@hurdmesh/mach";
import type { Metrics } from "@hurdmesh/telemetry";
import type { SdkTelemetry as Telemetry } from "@hurdmesh/telemetry-sdk";
import { kernelConfig, type KernelConfig } from "./config.js";
import { drain, enqueue, failSend } from "./mqueue.js";
import { namespaceFromHost, newNamespace } from "./namespace.js";
import { observeKernel } from "./metrics.js";
import { dropNestedTaskEvents } from "./notify.js";
import { NatsUsers, type NatsUsersOptions } from "./nats-users.js";
import type { KMsg, KTask, Namespace, Port } from "./objects.js";
import { KernelState, type KernelEvents, type KernelJournal } from "./state.js";
import { bootTask, destroyNamespace, killOffender, leasesDue, resetRoot, restartLeases, sweepLeases, terminate, type BootTask, type BootTaskOptions } from "./task.js";
import { TraceHub } from "./trace.js";

export interface KernelOptions extends Partial<KernelEvents> {
  /**
   * OpenTelemetry for a span per routed message (null: none). The program
   * that starts the kernel builds it (main.ts, from the OTEL_* environment):
   * the kernel reads no environment.
   */
  telemetry?: Telemetry | null;
  /**
   * NATS authorization: the account's signing key, with which the kernel
   * mints a NATS user for each task that attaches over NATS and revokes it
   * when the task dies (nats-users.ts). Absent: the kernel mints none (the
   * in-process bus, or NATS without authorization).
   */
  nats?: NatsUsersOptions;
  /** Metrics (null: none): per-hurd gauges, counters and the kernel calls' durations (metrics.ts). */
  metrics?: Metrics | null;
  /**
   * For the bench only (bench/rows/accounting.ts): true makes a kernel that
   * charges nothing to tasks and hurds and enforces none of their limits
   * (quota.ts), the baseline against which accounting's cost is measured.
   * Never for a kernel that runs hurds: one hurd could then take it down.
   */
  benchOnlyNoAccounting?: boolean;
}

/** How many leases a lease sweep waits for its round trip on the bus (Kernel.sweep). */
const SWEEP_CONFIRM_LEASES = 10;

/**
 * The kernel: tasks, IPC spaces, ports and rights, message routing with Mach's
 * translation rules, notifications, namespaces. It holds no Hurd policy.
 * Every entry point either completes or throws a HurdError having changed
 * nothing (copyins are undone), so bad input never corrupts state.
 */
export class Kernel extends KernelState {
  /** Trace watchers and OpenTelemetry: installs itself as `tracer` while either is on. */
  readonly trace: TraceHub;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Servers beside the kernel that hold timers or watches for its tasks (trace-bus.ts): told at close. */
  private readonly closing = new Set<() => void>();

  constructor(config: Partial<KernelConfig> = {}, o: KernelOptions = {}) {
    const { telemetry, nats, metrics, benchOnlyNoAccounting, ...events } = o;
    super(kernelConfig(config), events);
    this.accounting = !benchOnlyNoAccounting;
    if (nats) this.natsUsers = new NatsUsers(this.config.system, nats, (l) => this.log(l), this);
    this.sweepEvery = Math.max(50, this.config.leaseMs / 4);
    this.lastSweep = Date.now();
    this.startSweep();
    this.trace = new TraceHub((t) => (this.tracer = t), this.config.system);
    if (telemetry) this.trace.useTelemetry(telemetry);
    if (metrics) this.useMetrics(metrics);
  }

  private startSweep(): void {
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepEvery);
    this.sweepTimer.unref();
  }

  /**
   * Puts the kernel's changes in a log (journal.ts, leading) or makes it a
   * standby that applies one (replay.ts): a standby runs no lease sweep, its
   * leader's sweeps are in the log. Set before anything is made, or at takeover.
   */
  useJournal(j: KernelJournal | null): void {
    this.journal = j;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    if (j === null || !j.replica) this.startSweep();
  }

  /** A sweep waiting for its round trip (sweep). */
  private sweeping = false;
  /** The sweep's period (ms) and when it last ran. */
  private readonly sweepEvery: number;
  private lastSweep: number;

  /**
   * The lease sweep, confirmed by a round trip on the bus before it ends
   * anything. A task is silent when the kernel has not read from it for a
   * lease; but a kernel behind on its input (a neighbour flooding it with
   * large messages, a starved CPU) has not read what its tasks did send:
   * their heartbeats wait in the socket and the server's buffer behind the
   * flood, and every lease in every hurd would run out at once. The bus's
   * round trip (NATS: PING, answered after everything the server holds for
   * the kernel; in process: a turn of the event loop) comes back once that
   * is read, and the sweep then judges by the time it started. Should the
   * round trip not come back at all, the sweep goes on after
   * SWEEP_CONFIRM_LEASES leases, as it would have.
   */
  private sweep(): void {
    const now = Date.now();
    // A sweep that runs late (this process starved: every timer of it, the
    // heartbeats of the tasks it runs in process among them, waited as
    // long) judges nothing this time: the timers that are overdue with it
    // run first, and the next sweep sees what they sent.
    const late = now - this.lastSweep > 2 * this.sweepEvery;
    this.lastSweep = now;
    if (this.leasesPaused) return;
    const bus = this.bus;
    if (bus !== null && this.busOutage(bus, now)) return;
    if (late || this.sweeping || !leasesDue(this, now)) return;
    if (bus === null || bus.closed) return this.sweepAt(now);
    this.sweeping = true;
    const done = () => {
      if (!this.sweeping) return;
      this.sweeping = false;
      clearTimeout(timer);
      if (this.sweepTimer !== null) this.sweepAt(now);
    };
    const timer = setTimeout(done, SWEEP_CONFIRM_LEASES * this.config.leaseMs);
    timer.unref();
    bus.flush().then(done, done);
  }

  /**
   * True while a new leader waits for its fenced TAKEOVER append (failover.ts):
   * it answers nothing then, so its tasks' silence is its own, and the sweep
   * judges nothing. The kernel soak saw that append take longer than the
   * tasks' lease, and a new leader end every task of the hurd by lease.
   */
  leasesPaused = false;

  /** The fence is acknowledged: every lease and restart grace runs again from now, logged as after a bus outage (a standby replays the same). */
  resumeLeases(): void {
    this.leasesPaused = false;
    if (this.journal === null) return;
    restartLeases(this, this.journal.now());
    this.journal.resumed();
  }

  /** The bus's reconnects the sweep last saw. */
  private seenReconnects = 0;
  /** The bus was down at the last sweep. */
  private busWasDown = false;

  /**
   * Leases pause while the kernel's bus is down: its tasks cannot reach it,
   * and silence it cannot hear is no task's death (a NATS restart would
   * otherwise end every task of every hurd at once). Once the bus is back
   * (a reconnect seen), every lease and restart grace runs again from
   * `now`, as at a takeover. True while leases are paused or just restarted.
   */
  private busOutage(bus: Bus, now: number): boolean {
    const down = bus.disconnectedSince !== undefined && bus.disconnectedSince !== 0;
    const r = bus.reconnects ?? 0;
    if (down) {
      if (!this.busWasDown) this.log(`the bus is down: leases paused`);
      this.busWasDown = true;
      return true;
    }
    if (!this.busWasDown && r === this.seenReconnects) return false;
    this.busWasDown = false;
    this.seenReconnects = r;
    if (this.journal === null) restartLeases(this, now);
    else {
      // Logged: a standby restarts them at the same clock.
      restartLeases(this, this.journal.now());
      this.journal.resumed();
    }
    this.log(`the bus is back: ${this.leased.size} leases and ${this.lapsed.size} restart graces restarted`);
    return true;
  }

  /** Ends what ran out by `now`; with a log, by the log's clock, and a sweep that ended something is logged. */
  private sweepAt(now: number): void {
    if (this.journal === null) {
      sweepLeases(this, now);
      return;
    }
    this.journal.swept(sweepLeases(this));
  }

  private unobserve: (() => void) | null = null;
  /** Registers the kernel's metrics on `m` (null: stops). */
  useMetrics(m: Metrics | null): void {
    this.unobserve?.();
    this.unobserve = m ? observeKernel(this, m) : null;
  }

  // The calls that go back up the rooms' layering (see state.ts).
  enqueue(p: Port, m: KMsg): void {
    enqueue(this, p, m);
  }
  drain(t: KTask): void {
    drain(this, t);
  }
  failSend(m: KMsg, code: number): void {
    failSend(this, m, code);
  }
  killOffender(): void {
    killOffender(this);
  }

  /** Creates a task with no parent task (boot servers, tests, the edge's first client). */
  bootTask(o: BootTaskOptions): BootTask {
    const b = bootTask(this, o);
    if (this.journal !== null) this.journal.booted(o.name, !!o.hostPriv, (o.ns ?? this.root).id);
    return b;
  }

  /** A boot task's NATS user (hurd-kernel's boot file): logged, so that a standby mints the same one. */
  bootUser(t: KTask): { jwt: string; seed: string; expires: number } | undefined {
    if (this.natsUsers === null) return undefined;
    const c = this.natsUsers.task(t);
    if (this.journal !== null) this.journal.userMinted(t.id);
    return c;
  }

  // task_terminate
  terminate(t: KTask, reason: string): void {
    terminate(this, t, reason);
  }

  /** A namespace nested in `parent`, with its own host port; the caller links it in once something lives in it. */
  newNamespace(parent: Namespace, label: string): Namespace {
    return newNamespace(this, parent, label);
  }

  /** The namespace whose privileged host port `name` names in `caller`'s space (KERN_INVALID_HOST otherwise). */
  namespaceFromHost(caller: KTask, name: number): Namespace {
    return namespaceFromHost(caller, name);
  }

  // namespace_terminate: every task of a namespace and of the namespaces nested in it.
  destroyNamespace(ns: Namespace, reason: string): number {
    return destroyNamespace(this, ns, reason);
  }

  /** Ends every task of the root hurd and of its subhurds, keeping the root namespace for a fresh boot. */
  resetRoot(reason: string): number {
    return resetRoot(this, reason);
  }

  /** Calls `f` once when the kernel closes (before its tasks are terminated); the returned function unregisters it. */
  onClose(f: () => void): () => void {
    this.closing.add(f);
    return () => void this.closing.delete(f);
  }

  close(): void {
    this.useMetrics(null);
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
    for (const t of [...this.tasks.values()]) terminate(this, t, "kernel shutdown");
    // Every proc is gone with its task: nothing is left to tell.
    dropNestedTaskEvents(this);
  }
}

// Every bound the kernel keeps, in one place, with its default and why.

/**
 * What a hurd may hold, counting the hurds nested in it (every charge walks
 * up the namespace chain, as cgroups and Zircon jobs charge theirs).
 */
export interface HurdLimits {
  /** Tasks alive (KERN_RESOURCE_SHORTAGE past it). */
  maxTasks: number;
  /** Port names in its tasks' spaces: every right and dead name is one (KERN_RESOURCE_SHORTAGE past it). */
  maxPorts: number;
  /** Bytes of its tasks' messages waiting in queues (MACH_SEND_NO_BUFFER past it; see queuedCost). */
  maxQueuedBytes: number;
  /** Hurds nested in it, at any depth (KERN_RESOURCE_SHORTAGE past it). */
  maxChildren: number;
}

export interface KernelConfig {
  /** Names the system; subjects are hurd.<system>.… so kernels can share a NATS. */
  system: string;
  /**
   * Messages a port may hold waiting for its receiver (mach_port_set_qlimit).
   * Mach's default is 5 with a maximum of 16; a networked receiver needs more
   * slack to keep a pipeline full, so the default is larger.
   */
  qlimit: number;
  /** The largest qlimit a task may set. */
  qlimitMax: number;
  /** Senders that may wait for room on one full port; past it, MACH_SEND_NO_BUFFER. */
  maxBlockedSenders: number;
  /** Largest message body (bytes). */
  maxBodyBytes: number;
  /** Most rights one message may carry. */
  maxPortsPerMessage: number;
  /**
   * Most names one task may hold (KERN_NO_SPACE past it). A name costs
   * about 345 bytes with its port (100 for a dead name): the default, 256 Ki
   * names, is some 90 MiB, and covers three names for each of the root
   * hurd's 65,536 tasks in its proc.
   */
  maxNamesPerTask: number;
  /**
   * Bytes of the messages one task sent that wait in a queue
   * (MACH_SEND_NO_BUFFER past it). A reply (a send-once message) is charged
   * to the task that asked for it, which controls how fast it is taken.
   * 16 MiB: four of the largest messages, or thousands of ordinary ones.
   */
  maxQueuedBytesPerTask: number;
  /** Most urefs a name may carry (KERN_UREFS_OVERFLOW past it; Mach's MACH_PORT_UREFS_MAX). */
  maxUrefs: number;
  /** Most messages the kernel pushes to a task before the task returns credit. */
  maxWindow: number;
  /** A task not heard from for this long (ms) is terminated. */
  leaseMs: number;
  /**
   * A task that never attaches is terminated this long (ms) after its
   * creation, unless it was created to die with its parent (whose lease then
   * covers it). Longer than the lease: a program has to start first, and
   * node under load takes seconds to.
   */
  attachGraceMs: number;
  /**
   * How long an essential task (task_set_essential: proc, auth, a hurd's
   * init) outlives its lease, waiting for a new process to attach to it
   * with its token, before it is terminated and its hurd crashes
   * (reincarnation.ts). Kernel-wide, for every hurd; 0 turns restarts off.
   * Counted from the lapse, so a dead server is declared gone after
   * leaseMs + restartGraceMs. 5 s: a container runtime or Kubernetes
   * restarts a process within that, and a hurd that lost its proc is not
   * kept hanging for long.
   */
  restartGraceMs: number;
  /**
   * The root hurd's limits, which are the kernel's totals: every hurd is
   * nested in the root one, so everything is charged to it too. The
   * defaults keep the kernel within about 512 MiB, the Kubernetes
   * overlay's memory limit: 65,536 tasks at about 1.4 KiB each (90 MiB),
   * 512 Ki names at about 345 bytes (180 MiB), 128 MiB queued, over a
   * base of about 100 MiB.
   */
  maxTasks: number;
  maxPorts: number;
  maxQueuedBytes: number;
  maxHurds: number;
  /**
   * A new subhurd's limits when its creator names none (never above its
   * parent's own). About 60 MiB of kernel memory at most (4,096 tasks,
   * 64 Ki names, 32 MiB queued): one hurd flooding the kernel is refused
   * long before it takes the kernel's memory from its siblings.
   */
  hurdLimits: HurdLimits;
  /** Namespace nesting limit, as Linux's 32 for PID namespaces. */
  maxNamespaceDepth: number;
  /** Longest a kernel call may wait on the bus, ms (clients' default deadline). */
  callTimeoutMs: number;
  /**
   * Most nested-task events gathered for one ancestor proc before they are
   * sent (they are sent anyway once the burst of traps in hand is done):
   * bounds the kernel's queue and one notification's size.
   */
  maxTaskEventsPerMessage: number;
  /**
   * Most trace watches on the bus at once (EAGAIN past it). Each costs a
   * filter check per routed message and a batch on the bus per turn of the
   * event loop, so a handful of watchers is the use; the bound keeps a
   * confused client from multiplying the kernel's work.
   */
  maxTraceWatches: number;
  /**
   * How long a call through the edge's gateway (gateway.ts) waits for its
   * reply when its caller set no gRPC deadline (ms). A Hurd RPC may block
   * for as long as its server likes (proc_wait); a client that means to wait
   * longer says so with a deadline, which is honoured as it is.
   */
  gatewayTimeoutMs: number;
  /**
   * Calls through the gateway awaiting their replies at once, for every
   * caller together (KERN_RESOURCE_SHORTAGE past it): each holds a reply
   * port and the gRPC call until its reply or its deadline.
   */
  maxGatewayCalls: number;
  /**
   * The bus this kernel routes over. Only tracing asks: on NATS, on a
   * machine of two cores or fewer, span export stays on the routing thread
   * (nats-server needs the other core; see createTelemetry's exportThread).
   */
  bus: "local" | "nats";
}

export const defaultKernelConfig: KernelConfig = {
  system: "hurd",
  qlimit: 256,
  qlimitMax: 65536,
  maxBlockedSenders: 1024,
  maxBodyBytes: 4 * 1024 * 1024,
  maxPortsPerMessage: 1024,
  maxNamesPerTask: 1 << 18,
  maxQueuedBytesPerTask: 16 * 1024 * 1024,
  maxUrefs: 0xffff,
  maxWindow: 4096,
  leaseMs: 5000,
  attachGraceMs: 30_000,
  restartGraceMs: 5000,
  maxTasks: 65_536,
  maxPorts: 1 << 19,
  maxQueuedBytes: 128 * 1024 * 1024,
  maxHurds: 1024,
  hurdLimits: { maxTasks: 4096, maxPorts: 1 << 16, maxQueuedBytes: 32 * 1024 * 1024, maxChildren: 64 },
  maxNamespaceDepth: 32,
  callTimeoutMs: 10_000,
  maxTaskEventsPerMessage: 512,
  maxTraceWatches: 64,
  gatewayTimeoutMs: 60_000,
  maxGatewayCalls: 4096,
  bus: "local",
};

export function kernelConfig(over: Partial<KernelConfig> = {}): KernelConfig {
  const c = { ...defaultKernelConfig, ...over, hurdLimits: { ...defaultKernelConfig.hurdLimits, ...over.hurdLimits } };
  for (const [key, v] of Object.entries({ maxTasks: c.maxTasks, maxPorts: c.maxPorts, maxQueuedBytes: c.maxQueuedBytes, maxHurds: c.maxHurds, maxNamesPerTask: c.maxNamesPerTask, maxQueuedBytesPerTask: c.maxQueuedBytesPerTask, ...prefixed(c.hurdLimits) }))
    if (!(Number.isSafeInteger(v) && v >= 0)) throw new Error(`${key} must be a non-negative integer`);
  if (!(Number.isInteger(c.maxTaskEventsPerMessage) && c.maxTaskEventsPerMessage >= 1)) throw new Error("maxTaskEventsPerMessage must be a positive integer");
  if (!(Number.isInteger(c.maxTraceWatches) && c.maxTraceWatches >= 0)) throw new Error("maxTraceWatches must be a non-negative integer");
  if (!(Number.isInteger(c.maxGatewayCalls) && c.maxGatewayCalls >= 0)) throw new Error("maxGatewayCalls must be a non-negative integer");
  if (!(Number.isFinite(c.restartGraceMs) && c.restartGraceMs >= 0)) throw new Error("restartGraceMs must be a non-negative number");
  if (!(c.gatewayTimeoutMs > 0)) throw new Error("gatewayTimeoutMs must be positive");
  if (!/^[A-Za-z0-9_-]+$/.test(c.system)) throw new Error(`system name ${JSON.stringify(c.system)} must be one NATS token`);
  return c;
}

function prefixed(l: HurdLimits): Record<string, number> {
  return Object.fromEntries(Object.entries(l).map(([k, v]) => [`hurdLimits.${k}`, v]));
}

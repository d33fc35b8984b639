// Every bound the kernel keeps, in one place, with its default and why.

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
  /** Most names one task may hold (KERN_NO_SPACE past it). */
  maxNamesPerTask: number;
  /** Most urefs a name may carry (KERN_UREFS_OVERFLOW past it; Mach's MACH_PORT_UREFS_MAX). */
  maxUrefs: number;
  /** Most messages the kernel pushes to a task before the task returns credit. */
  maxWindow: number;
  /** A task not heard from for this long (ms) is terminated. */
  leaseMs: number;
  /** Most tasks alive at once (KERN_RESOURCE_SHORTAGE past it). */
  maxTasks: number;
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
  maxNamesPerTask: 1 << 20,
  maxUrefs: 0xffff,
  maxWindow: 4096,
  leaseMs: 5000,
  maxTasks: 2_000_000,
  maxNamespaceDepth: 32,
  callTimeoutMs: 10_000,
  maxTaskEventsPerMessage: 512,
  maxTraceWatches: 64,
  gatewayTimeoutMs: 60_000,
  maxGatewayCalls: 4096,
  bus: "local",
};

export function kernelConfig(over: Partial<KernelConfig> = {}): KernelConfig {
  const c = { ...defaultKernelConfig, ...over };
  if (!(Number.isInteger(c.maxTaskEventsPerMessage) && c.maxTaskEventsPerMessage >= 1)) throw new Error("maxTaskEventsPerMessage must be a positive integer");
  if (!(Number.isInteger(c.maxTraceWatches) && c.maxTraceWatches >= 0)) throw new Error("maxTraceWatches must be a non-negative integer");
  if (!(Number.isInteger(c.maxGatewayCalls) && c.maxGatewayCalls >= 0)) throw new Error("maxGatewayCalls must be a non-negative integer");
  if (!(c.gatewayTimeoutMs > 0)) throw new Error("gatewayTimeoutMs must be positive");
  if (!/^[A-Za-z0-9_-]+$/.test(c.system)) throw new Error(`system name ${JSON.stringify(c.system)} must be one NATS token`);
  return c;
}

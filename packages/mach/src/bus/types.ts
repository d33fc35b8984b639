// The bus: the little a kernel and its tasks need from a message transport.
// Two implementations pass the same suites: NATS (nats.ts) for anything with
// more than one OS process, and an in-process hub (local.ts) for the embedded
// default and the fast test runs.

/**
 * Called for each message on a subscription. `data` must not be mutated.
 * `traceparent`: the W3C trace context the publisher gave (a NATS header,
 * gRPC metadata on the edge), for traps with no trace context of their own
 * inside (a kernel call from a runtime older than Call.trace_context);
 * undefined when there is none.
 */
export type BusHandler = (subject: string, data: Uint8Array, reply: string | undefined, traceparent?: string) => void;

export interface BusSubscription {
  unsubscribe(): void;
}

export interface Bus {
  /** "local" or "nats": for tables and traces. */
  readonly kind: "local" | "nats";
  /**
   * Whether a kernel call's trace context should also be given as a text
   * traceparent (publish/request's last argument). A call carries it in
   * binary (Call.trace_context); only a bus that uses the text itself asks:
   * the edge's, where the gRPC instrumentation parents its client span on it.
   */
  readonly traceparentHeader?: boolean;
  publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void;
  /**
   * Subjects are dot-separated tokens; `>` as the last token matches one or
   * more tokens, `*` matches exactly one (NATS rules).
   */
  subscribe(subject: string, handler: BusHandler): BusSubscription;
  /** Publish with a private reply subject and wait for one answer. */
  request(subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array>;
  /** Resolves once everything published so far has left this connection. */
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly closed: boolean;
  /**
   * A bus whose user's credentials expire (NATS with a task's JWT) keeps
   * them fresh with `renew` (the kernel's TaskNatsRenew); others need none.
   */
  keepCredentials?(renew: CredentialRenewal): void;
  /**
   * Another connection to the same fabric as another user (a trace
   * watcher's own), where users have credentials; absent where one
   * connection may do everything (the in-process bus, anonymous NATS).
   */
  connectAs?(credentials: { jwt: string; seed: string }, inboxPrefix?: string): Promise<Bus>;
  /**
   * The largest message the bus carries, in bytes (NATS: the server's
   * advertised max_payload); undefined when it has no such bound (in process).
   */
  readonly maxPayload?: number;
  /**
   * When the connection to the other side was lost (Date.now()), 0 while it
   * is up; undefined when the bus cannot tell. The runtime ends a task whose
   * bus has been down longer than AttachOptions.busLostMs.
   */
  readonly disconnectedSince?: number;
  /**
   * How many times the connection was lost and made again; undefined when
   * the bus cannot lose it. The kernel restarts its leases after one (its
   * tasks could not reach it meanwhile).
   */
  readonly reconnects?: number;
  /**
   * How long this bus may be down before a task on it ends itself, ms;
   * undefined: the task's lease (a bus whose outage the kernel does not
   * see, such as an edge stream: past the lease the task has been ended).
   * NATS's is longer: its kernel pauses leases while it lost the bus too.
   */
  readonly lostLimitMs?: number;
}

/**
 * A key-value bucket a server writes its state through to (JetStream on
 * NATS: @hurdmesh/mach/nats's JetStreamKv). A put or delete resolves once
 * the store has acknowledged it, so a server that awaits it before
 * answering never answers with a state a restart can take back.
 */
export interface KeyValue {
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key's last value. */
  entries(): Promise<Map<string, Uint8Array>>;
  /** Forgets every key (a fresh boot's server starts from nothing). */
  purge(): Promise<void>;
}

/** Renews a user's JWT: the new JWT and when it expires (unix seconds). */
export type CredentialRenewal = () => Promise<{ jwt: string; expires: number }>;

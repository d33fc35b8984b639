// Every bus subject of a hurdmesh system, built and parsed in this one
// module, so that the map of who may publish and subscribe what (roles()
// below) is the whole truth about the wire: NATS permissions are derived
// from it, and a subject built anywhere else would escape them.
//
//   hurd.<system>.kernel.trap               every task's traps, to the kernel (request/reply)
//   hurd.<system>.rcv.<task>.<port>         deliveries, from the kernel to the task holding
//                                           the receive right (a task subscribes once: rcv.<task>.>)
//   hurd.<system>.boot.claim                an init in its own container asks the kernel for
//                                           its boot task (request/reply, proto/hurd/boot)
//   hurd.<system>.launch.<hurd>.<server>    init's launch order to a server's container
//                                           (request/reply; "_" is the root hurd)
//   hurd.<system>.trace.watch               trace watch requests, to the kernel (request/reply)
//   hurd.<system>.trace.ctl                 renewals and cancels of a watch (request/reply)
//   hurd.<system>.trace.<watch id>          the kernel's trace batches for one watch
//   _INBOX.>                                answers to requests (the NATS clients' default
//                                           inbox prefix; the in-process bus uses it too)

/** The first token of every hurdmesh subject. */
export const ROOT = "hurd";
/** Where answers to requests arrive: NATS's default inbox prefix, which the in-process bus mimics. */
export const INBOX_PREFIX = "_INBOX";
/** The launch subject's token for the root hurd (a subhurd's name starts with a letter). */
export const ROOT_HURD = "_";

/** A token that is safe inside a subject: no dots, wildcards or white space, and not empty. */
const TOKEN = /^[^.*>\s]+$/;

function token(what: string, v: string): string {
  if (!TOKEN.test(v)) throw new RangeError(`${what} ${JSON.stringify(v)} cannot be a subject token (empty, or it holds . * > or white space)`);
  return v;
}

/** The subjects of one system (one kernel and the hurds it runs). */
export interface SystemSubjects {
  readonly system: string;
  /** hurd.<system>.kernel.trap */
  readonly trap: string;
  /** hurd.<system>.boot.claim */
  readonly bootClaim: string;
  /** hurd.<system>.trace.watch */
  readonly traceWatch: string;
  /** hurd.<system>.trace.ctl */
  readonly traceCtl: string;
  /** hurd.<system>.trace.<id>: the batches of watch `id`. */
  traceBatches(watchId: number): string;
  /** hurd.<system>.rcv. : what every delivery subject starts with (a task id and a port name follow). */
  readonly deliveryRoot: string;
  /** hurd.<system>.rcv.<task>.> : everything delivered to a task. */
  deliveries(taskId: number): string;
  /**
   * hurd.<system>.rcv.<task>. : a task's delivery subject without its port,
   * for the kernel to append the port's name to on every delivery (a hot
   * path: one concatenation, no call).
   */
  deliveryPrefix(taskId: number): string;
  /** hurd.<system>.rcv.<task>.<port> */
  delivery(taskId: number, port: number): string;
  /** hurd.<system>.launch.<hurd or _>.<server> */
  launch(hurd: string, server: string): string;
}

/**
 * Builds the subjects of `system`. Names (system, hurd, server) are checked,
 * since a dot or a wildcard in one would reach other subjects; ids are
 * numbers by type and are not.
 */
export function subjectsOf(system: string): SystemSubjects {
  const base = `${ROOT}.${token("a system name", system)}.`;
  const rcv = `${base}rcv.`;
  return Object.freeze({
    system,
    trap: `${base}kernel.trap`,
    bootClaim: `${base}boot.claim`,
    traceWatch: `${base}trace.watch`,
    traceCtl: `${base}trace.ctl`,
    traceBatches: (watchId: number) => `${base}trace.${watchId}`,
    deliveryRoot: rcv,
    deliveries: (taskId: number) => `${rcv}${taskId}.>`,
    deliveryPrefix: (taskId: number) => `${rcv}${taskId}.`,
    delivery: (taskId: number, port: number) => `${rcv}${taskId}.${port}`,
    launch: (hurd: string, server: string) => `${base}launch.${hurd ? token("a hurd name", hurd) : ROOT_HURD}.${token("a server name", server)}`,
  });
}

/**
 * The JetStream key-value bucket a server writes its state through to
 * (proc's table, auth's handles; see each one's store.ts), one per
 * server of one hurd, and the subjects of JetStream's API it is reached by
 * (the $KV and $JS.API conventions of nats.js's kv module: a stream
 * KV_<bucket> over $KV.<bucket>.>, keeping each key's last value).
 */
export interface StoreSubjects {
  readonly bucket: string;
  readonly stream: string;
  /** $KV.<bucket>.> */
  readonly all: string;
  /** $KV.<bucket>.<key> */
  key(key: string): string;
  readonly streamCreate: string;
  readonly streamPurge: string;
  readonly consumerCreate: string;
  consumerDelete(consumer: string): string;
}

/** Keys are subject tokens made of these (as nats.js's kv validates them). */
const KV_KEY = /^[-/_=a-zA-Z0-9]+$/;

export function storeSubjectsOf(system: string, hurd: string, server: string): StoreSubjects {
  const bucket = `hurd_${token("a system name", system)}_${hurd ? token("a hurd name", hurd) : ROOT_HURD}_${token("a server name", server)}`;
  if (!KV_KEY.test(bucket)) throw new RangeError(`bucket ${JSON.stringify(bucket)} is not a stream name`);
  const stream = `KV_${bucket}`;
  return Object.freeze({
    bucket,
    stream,
    all: `$KV.${bucket}.>`,
    key: (key: string) => {
      if (!KV_KEY.test(key)) throw new RangeError(`key ${JSON.stringify(key)} is not a key-value key`);
      return `$KV.${bucket}.${key}`;
    },
    streamCreate: `$JS.API.STREAM.CREATE.${stream}`,
    streamPurge: `$JS.API.STREAM.PURGE.${stream}`,
    consumerCreate: `$JS.API.CONSUMER.CREATE.${stream}`,
    consumerDelete: (consumer: string) => `$JS.API.CONSUMER.DELETE.${stream}.${token("a consumer name", consumer)}`,
  });
}

/** What a subject is, read back. */
export type ParsedSubject =
  | { kind: "trap"; system: string }
  | { kind: "delivery"; system: string; taskId: number; port: number }
  | { kind: "boot-claim"; system: string }
  | { kind: "launch"; system: string; hurd: string; server: string }
  | { kind: "trace-watch"; system: string }
  | { kind: "trace-ctl"; system: string }
  | { kind: "trace-batches"; system: string; watchId: number }
  | { kind: "inbox" };

const NUMBER = /^(0|[1-9][0-9]*)$/;

/** Reads a concrete subject (no wildcards) back; null for anything that is not one of ours. */
export function parseSubject(subject: string): ParsedSubject | null {
  const t = subject.split(".");
  if (t[0] === INBOX_PREFIX) return t.length > 1 && t.every((x) => x.length > 0) ? { kind: "inbox" } : null;
  if (t[0] !== ROOT || t.length < 3 || !t.every((x) => TOKEN.test(x))) return null;
  const system = t[1]!;
  const rest = t.slice(2).join(".");
  switch (t.length) {
    case 4:
      if (rest === "kernel.trap") return { kind: "trap", system };
      if (rest === "boot.claim") return { kind: "boot-claim", system };
      if (rest === "trace.watch") return { kind: "trace-watch", system };
      if (rest === "trace.ctl") return { kind: "trace-ctl", system };
      if (t[2] === "trace" && NUMBER.test(t[3]!)) return { kind: "trace-batches", system, watchId: Number(t[3]) };
      return null;
    case 5:
      if (t[2] === "rcv" && NUMBER.test(t[3]!) && NUMBER.test(t[4]!)) return { kind: "delivery", system, taskId: Number(t[3]), port: Number(t[4]) };
      if (t[2] === "launch") return { kind: "launch", system, hurd: t[3] === ROOT_HURD ? "" : t[3]!, server: t[4]! };
      return null;
    default:
      return null;
  }
}

/**
 * A party on the bus, as permissions see it. One OS process may play
 * several roles (a server container waits for its launch, then runs as its
 * task; a watcher is a task too).
 */
export type Role =
  /** The kernel: reads traps, claims and watch requests; writes every delivery and batch. */
  | { kind: "kernel" }
  /** Task N: sends traps, receives its own deliveries. */
  | { kind: "task"; taskId: number }
  /** An init in its own container, booting hurd `hurd` ("" the root hurd): claims its boot task, launches its servers. */
  | { kind: "startup"; hurd: string }
  /** Server S's container waiting for init's launch order for hurd `hurd`. */
  | { kind: "launch"; hurd: string; server: string }
  /** Trace watcher of watch W: asks for, renews and cancels the watch, reads its batches. */
  | { kind: "trace-watcher"; watchId: number };

export interface Permissions {
  /** Subjects (NATS patterns) the role may publish on. */
  publish: string[];
  /** Exceptions to `publish` (NATS's deny list): trace batches share their prefix with the requests. */
  denyPublish: string[];
  /** Subjects (NATS patterns) the role may subscribe to. */
  subscribe: string[];
  /** Whether it answers requests it receives (NATS's allow_responses: publishing to their reply subjects). */
  respond: boolean;
}

/**
 * Everything a role may publish and subscribe. Any role that makes requests
 * subscribes to the inbox prefix; narrowing that to one inbox per
 * connection (nats.js's inboxPrefix) is for the wire-security work.
 */
export function permissionsOf(system: string, role: Role): Permissions {
  const s = subjectsOf(system);
  const base = `${ROOT}.${system}.`;
  const inbox = `${INBOX_PREFIX}.>`;
  switch (role.kind) {
    case "kernel":
      return { publish: [`${base}rcv.>`, `${base}trace.*`], denyPublish: [s.traceWatch, s.traceCtl], subscribe: [s.trap, s.bootClaim, s.traceWatch, s.traceCtl], respond: true };
    case "task":
      return { publish: [s.trap], denyPublish: [], subscribe: [s.deliveries(role.taskId), inbox], respond: false };
    case "startup":
      return { publish: [s.bootClaim, `${base}launch.${role.hurd ? token("a hurd name", role.hurd) : ROOT_HURD}.*`], denyPublish: [], subscribe: [inbox], respond: false };
    case "launch":
      return { publish: [], denyPublish: [], subscribe: [s.launch(role.hurd, role.server)], respond: true };
    case "trace-watcher":
      return { publish: [s.traceWatch, s.traceCtl], denyPublish: [], subscribe: [s.traceBatches(role.watchId), inbox], respond: false };
  }
}

// Every bus subject of a hurdmesh system, built and parsed in this one
// module, so that the map of who may publish and subscribe what (permissionsOf
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
//   _INBOX.<system>.<role's token>.>        answers to one party's requests (inboxOf: a task's
//                                           id, boot.<hurd>, watch.<id>); the in-process bus
//                                           uses _INBOX.local<n> inboxes of its own
//   $SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE  nats-server's own: an account JWT replaced
//                                           (revocations), by a user of its system account

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
  /** Patterns for permissions: every delivery (hurd.<system>.rcv.>), every watch's batches (hurd.<system>.trace.*), every launch order of one hurd (hurd.<system>.launch.<hurd or _>.*). */
  readonly patterns: { readonly deliveries: string; readonly traceBatches: string; launches(hurd: string): string };
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
    patterns: Object.freeze({
      deliveries: `${rcv}>`,
      traceBatches: `${base}trace.*`,
      launches: (hurd: string) => `${base}launch.${hurd ? token("a hurd name", hurd) : ROOT_HURD}.*`,
    }),
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
  /** $JS.API.STREAM.MSG.GET.<stream>: one key's last value and revision (JetStreamKv.get). */
  readonly msgGet: string;
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
    msgGet: `$JS.API.STREAM.MSG.GET.${stream}`,
    consumerCreate: `$JS.API.CONSUMER.CREATE.${stream}`,
    consumerDelete: (consumer: string) => `$JS.API.CONSUMER.DELETE.${stream}.${token("a consumer name", consumer)}`,
  });
}

/** The kernel's log (services/kernel/src/journal.ts): a JetStream stream of its own per system, outside hurd.<system>.> so no wildcard subscriber of the system's subjects sees it. */
export interface KernelLogSubjects {
  stream: string;
  /** The one subject the log's entries are appended on. */
  subject: string;
  streamCreate: string;
  streamInfo: string;
  streamPurge: string;
  /** An entry read back by its sequence (an append whose answer was lost: was it stored?). */
  msgGet: string;
  consumerCreate: string;
  consumerDelete: (consumer: string) => string;
  /**
   * The log's snapshots (services/kernel/src/snapshot.ts): a stream of
   * their own, so that a standby writing one never moves the log's last
   * sequence, which the leader's appends are fenced by. A snapshot is its
   * parts, then one "done" message naming them.
   */
  snapStream: string;
  snapPart: string;
  snapDone: string;
  snapStreamCreate: string;
  snapMsgGet: string;
  snapPurge: string;
}

export function kernelLogSubjectsOf(system: string): KernelLogSubjects {
  const sys = token("a system name", system);
  const stream = `HURD_${sys}_KERNEL_LOG`;
  if (!KV_KEY.test(stream)) throw new RangeError(`stream ${JSON.stringify(stream)} is not a stream name`);
  return Object.freeze({
    stream,
    subject: `$HURDLOG.${sys}.kernel`,
    streamCreate: `$JS.API.STREAM.CREATE.${stream}`,
    streamInfo: `$JS.API.STREAM.INFO.${stream}`,
    streamPurge: `$JS.API.STREAM.PURGE.${stream}`,
    msgGet: `$JS.API.STREAM.MSG.GET.${stream}`,
    consumerCreate: `$JS.API.CONSUMER.CREATE.${stream}`,
    consumerDelete: (consumer: string) => `$JS.API.CONSUMER.DELETE.${stream}.${token("a consumer name", consumer)}`,
    snapStream: `HURD_${sys}_KERNEL_SNAP`,
    snapPart: `$HURDLOG.${sys}.snap.part`,
    snapDone: `$HURDLOG.${sys}.snap.done`,
    snapStreamCreate: `$JS.API.STREAM.CREATE.HURD_${sys}_KERNEL_SNAP`,
    snapMsgGet: `$JS.API.STREAM.MSG.GET.HURD_${sys}_KERNEL_SNAP`,
    snapPurge: `$JS.API.STREAM.PURGE.HURD_${sys}_KERNEL_SNAP`,
  });
}

/** The kernel's log is, read back. */
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
 * A party on the bus, as permissions see it: one NATS user each (nats-auth
 * mints their JWTs from permissionsOf). One OS process may hold several (a
 * server's container waits for its launch as a launch user, then runs as its
 * task; a trace watcher is a user apart from the task that asked).
 */
export type Role =
  /** The kernel: reads traps, claims and watch requests; writes every delivery and batch; answers requests. */
  | { kind: "kernel" }
  /**
   * Task N: sends traps, receives its own deliveries and its own replies.
   * Any task may ask for a trace watch (the kernel grants one only for a
   * host_priv right); `launches` names the hurd ("" the root hurd) whose
   * launch orders it sends (an init that boots servers in containers).
   */
  | { kind: "task"; taskId: number; launches?: string }
  /** An init in its own container claiming hurd `hurd`'s boot task ("" the root hurd), before it has a task. */
  | { kind: "boot-claim"; hurd: string }
  /** Server S's container waiting for init's launch order for hurd `hurd`: takes that order, answers it once. */
  | { kind: "launch"; hurd: string; server: string }
  /** Trace watcher of watch W: reads its batches, renews and cancels it. */
  | { kind: "trace-watcher"; watchId: number }
  /** A user of NATS's system account that pushes `account`'s JWT (its revocations) to nats-server. */
  | { kind: "account-updater"; account: string }
  /**
   * Server `server` of hurd `hurd` writing its state through to its own
   * JetStream bucket (storeSubjectsOf): that bucket's keys, the JetStream
   * API calls on its stream, and the bucket read back on its own inbox.
   */
  | { kind: "store"; hurd: string; server: string };

export interface Permissions {
  /** Subjects (NATS patterns) the role may publish on. */
  publish: string[];
  /** Exceptions to `publish` (NATS's deny list): trace batches share their prefix with the requests. */
  denyPublish: string[];
  /** Subjects (NATS patterns) the role may subscribe to. */
  subscribe: string[];
  /**
   * It answers requests it receives (NATS's allow_responses: publishing on
   * their reply subjects, at most `max` times each within `ttlMs`); null:
   * it answers none.
   */
  respond: { max: number; ttlMs: number } | null;
  /**
   * Where its requests' replies come back: its connection's inbox prefix
   * (nats.js `inboxPrefix`), which `subscribe` covers and no other role's
   * does. Absent: it makes no requests.
   */
  inbox?: string;
  /** Subscriptions it may hold at once (-1: no limit). */
  maxSubscriptions: number;
}

/** Subscriptions a task may hold: its delivery wildcard and its reply inbox, with room for requests made with noMux. */
export const TASK_MAX_SUBS = 64;
/** How long a launch role may take to answer its order (the launcher's own request timeout is 15 s). */
export const LAUNCH_ANSWER_MS = 60_000;
/** How long the kernel may take to answer a request it received (its callers' deadlines are shorter). */
export const KERNEL_ANSWER_MS = 60_000;

/**
 * nats-server's own subject for replacing an account's JWT (in its system
 * account, no hurd's): how revocations reach a running server.
 */
export function accountUpdateSubject(account: string): string {
  return `$SYS.REQ.ACCOUNT.${token("an account", account)}.CLAIMS.UPDATE`;
}

/**
 * nats-server's events of an account's client connections (in its system
 * account): CONNECT and DISCONNECT, each naming the client's user.
 */
export function accountEventSubjects(account: string): [connect: string, disconnect: string] {
  const a = token("an account", account);
  return [`$SYS.ACCOUNT.${a}.CONNECT`, `$SYS.ACCOUNT.${a}.DISCONNECT`];
}

/**
 * The inbox prefix of a role's connection. Under "_INBOX." as every NATS
 * client's default, then the system, so that systems sharing one NATS
 * account never read each other's replies, then the role's own token
 * (a task's id; "boot", "watch" or "updater" and a name for the others).
 * NATS wildcards match whole tokens, so "_INBOX.s.7.>" is task 7's alone.
 */
export function inboxOf(system: string, role: Role): string | undefined {
  const base = `${INBOX_PREFIX}.${token("a system name", system)}`;
  switch (role.kind) {
    case "kernel":
      return `${base}.kernel`;
    case "task":
      return `${base}.${id("a task", role.taskId)}`;
    case "boot-claim":
      return `${base}.boot.${hurdToken(role.hurd)}`;
    case "trace-watcher":
      return `${base}.watch.${id("a watch", role.watchId)}`;
    case "account-updater":
      return `${base}.updater`;
    case "store":
      return `${base}.store.${hurdToken(role.hurd)}.${token("a server name", role.server)}`;
    default:
      return undefined;
  }
}

function id(what: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} id ${v} is not a non-negative integer`);
  return v;
}

const hurdToken = (hurd: string) => (hurd ? token("a hurd name", hurd) : ROOT_HURD);

/**
 * Everything a role may publish and subscribe: the whole truth about the
 * wire (NATS user JWTs are made from this, nowhere else).
 */
export function permissionsOf(system: string, role: Role): Permissions {
  const s = subjectsOf(system);
  const inbox = inboxOf(system, role);
  const replies = inbox ? [`${inbox}.>`] : [];
  switch (role.kind) {
    case "kernel": {
      // Its log and its leadership key (--journal/--standby): the only
      // JetStream it speaks, and no other role's user may touch them (the
      // log holds tokens and the random bytes of every task's NATS key).
      const log = kernelLogSubjectsOf(system);
      const lead = storeSubjectsOf(system, "", "kernel");
      return {
        publish: [
          s.patterns.deliveries,
          s.patterns.traceBatches,
          log.subject,
          log.streamCreate,
          log.streamInfo,
          log.streamPurge,
          log.msgGet,
          log.consumerCreate,
          log.snapPart,
          log.snapDone,
          log.snapStreamCreate,
          log.snapMsgGet,
          log.snapPurge,
          `$JS.API.CONSUMER.DELETE.${log.stream}.*`,
          lead.all,
          lead.streamCreate,
          lead.msgGet,
        ],
        denyPublish: [s.traceWatch, s.traceCtl],
        subscribe: [s.trap, s.bootClaim, s.traceWatch, s.traceCtl, ...replies],
        respond: { max: 1, ttlMs: KERNEL_ANSWER_MS },
        inbox,
        maxSubscriptions: -1,
      };
    }
    case "task": {
      const publish = [s.trap, s.traceWatch];
      if (role.launches !== undefined) publish.push(s.patterns.launches(role.launches));
      return { publish, denyPublish: [], subscribe: [s.deliveries(id("a task", role.taskId)), ...replies], respond: null, inbox, maxSubscriptions: TASK_MAX_SUBS };
    }
    case "boot-claim":
      return { publish: [s.bootClaim], denyPublish: [], subscribe: replies, respond: null, inbox, maxSubscriptions: 4 };
    case "launch":
      return { publish: [], denyPublish: [], subscribe: [s.launch(role.hurd, role.server)], respond: { max: 1, ttlMs: LAUNCH_ANSWER_MS }, maxSubscriptions: 2 };
    case "trace-watcher":
      return { publish: [s.traceCtl], denyPublish: [], subscribe: [s.traceBatches(id("a watch", role.watchId)), ...replies], respond: null, inbox, maxSubscriptions: 4 };
    case "account-updater":
      // It also hears the account's connections come and go (nats-server's
      // own events, each naming the user): how the kernel learns at once
      // that the process holding a task is gone (holders.ts).
      return { publish: [accountUpdateSubject(role.account)], denyPublish: [], subscribe: [...accountEventSubjects(role.account), ...replies], respond: null, inbox, maxSubscriptions: 6 };
    case "store": {
      // Nothing of any other stream: JetStream's API is spoken per stream, on subjects naming it.
      const kv = storeSubjectsOf(system, role.hurd, role.server);
      return {
        publish: [kv.all, kv.streamCreate, kv.streamPurge, kv.consumerCreate, `$JS.API.CONSUMER.DELETE.${kv.stream}.*`],
        denyPublish: [],
        subscribe: replies,
        respond: null,
        inbox,
        maxSubscriptions: 8,
      };
    }
  }
}

// The NATS permissions of each role, as user JWTs carry them: taken whole
// from the runtime's subject map (permissionsOf in ../subjects.ts), which is
// the one place a subject is spelled. This only changes their shape and
// turns a name that cannot be a subject token into EINVAL.
//
// Inboxes: nats.js makes a request's reply subject under its connection's
// `inboxPrefix` (default "_INBOX"): `<prefix>.<nuid>.<n>` for requests that
// share its one wildcard reply subscription, `<prefix>.<nuid>` with noMux.
// Each role that makes requests gets a prefix of its own (inboxOf) and may
// subscribe only there, so nobody reads another's replies; a connection that
// keeps nats.js's default prefix cannot make requests at all. The kernel
// answers with NATS's allow_responses: it may publish on the reply subject
// of a request it received, once, and nowhere else under _INBOX.
import { Errno, HurdError } from "../errors.js";
import { accountUpdateSubject as updateSubject, inboxOf, LAUNCH_ANSWER_MS, permissionsOf, TASK_MAX_SUBS, type Role } from "../subjects.js";
import type { SubjectPermissions } from "./jwt.js";

export { TASK_MAX_SUBS, LAUNCH_ANSWER_MS };

export interface TaskRoleOptions {
  /** The task sends its hurd's launch orders (init, for servers in containers of their own): the hurd's name, "" for the root hurd. */
  launches?: string;
}

export interface NatsRoles {
  /** The kernel: the only reader of traps and the only writer of deliveries. */
  readonly kernel: SubjectPermissions;
  /** A task attached over NATS: traps in, its own ports' messages and its replies out. */
  task(taskId: number, o?: TaskRoleOptions): SubjectPermissions;
  /** An init claiming its boot task before it has one: the claim, and the answer on its own inbox. */
  bootClaim(hurd: string): SubjectPermissions;
  /** A server's container waiting for its launch order (which carries its task's credentials): that order and one answer to it. */
  launch(hurd: string, server: string): SubjectPermissions;
  /** A trace watcher: its watch's batches, and renewing or cancelling that watch. */
  watcher(watchId: number): SubjectPermissions;
  /** A system-account user that pushes `account`'s JWT updates (revocations) to nats-server. */
  accountUpdater(account: string): SubjectPermissions;
  /** Server `server` of hurd `hurd` writing through to its own JetStream bucket (JetStreamKv). */
  store(hurd: string, server: string): SubjectPermissions;
  /** The inbox prefix each task's connection must use. */
  taskInbox(taskId: number): string;
}

/** A RangeError of the subject map (a name that is no subject token) is the caller's EINVAL. */
function checked<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError) throw new HurdError(Errno.EINVAL, e.message, { cause: e });
    throw e;
  }
}

/** A role's permissions as a user JWT says them. */
export function permissionsFor(system: string, role: Role): SubjectPermissions {
  return checked(() => {
    const p = permissionsOf(system, role);
    const out: SubjectPermissions = { pub: p.publish, sub: p.subscribe, subs: p.maxSubscriptions };
    if (p.denyPublish.length) out.denyPub = p.denyPublish;
    if (p.respond) out.resp = { max: p.respond.max, ttlMs: p.respond.ttlMs };
    if (p.inbox) out.inboxPrefix = p.inbox;
    return out;
  });
}

/** nats-server's own subject for replacing an account's JWT (in the system account; no hurd's). */
export function accountUpdateSubject(account: string): string {
  return checked(() => updateSubject(account));
}

/** The permissions of every role of one system (a hurdmesh kernel and its hurds, one NATS account). */
export function natsRoles(system: string): NatsRoles {
  const kernel = permissionsFor(system, { kind: "kernel" });
  return {
    kernel,
    task: (taskId, o = {}) => permissionsFor(system, { kind: "task", taskId, launches: o.launches }),
    bootClaim: (hurd) => permissionsFor(system, { kind: "boot-claim", hurd }),
    launch: (hurd, server) => permissionsFor(system, { kind: "launch", hurd, server }),
    watcher: (watchId) => permissionsFor(system, { kind: "trace-watcher", watchId }),
    accountUpdater: (account) => permissionsFor(system, { kind: "account-updater", account }),
    store: (hurd, server) => permissionsFor(system, { kind: "store", hurd, server }),
    taskInbox: (taskId) => checked(() => inboxOf(system, { kind: "task", taskId })!),
  };
}

// Who may publish and subscribe on what, per role, as data. Every subject a
// hurd's users are allowed is spelled here, in natsRoles (and nats-server's
// own account-update subject beside it), and nowhere else in this folder
// (SECURITY.md gives the picture; ARCHITECTURE.md the subjects). When the
// runtime's subject module lands, natsRoles takes its subjects from there.
//
// Inboxes: nats.js makes a request's reply subject under its connection's
// `inboxPrefix` (default "_INBOX"): `<prefix>.<nuid>.<n>` for requests that
// share its one wildcard reply subscription, `<prefix>.<nuid>` with noMux.
// Each user gets a prefix of its own under "_INBOX." and may subscribe only
// there, so nobody reads another's replies; NATS wildcards match whole
// tokens only ("_INBOX_*" is a literal), so the common first token is what
// lets the kernel answer everyone with one permission, "_INBOX.>".
import { Errno, HurdError } from "../errors.js";
import type { SubjectPermissions } from "./jwt.js";

/** Subscriptions a task may hold: its delivery wildcard and its reply inbox, with room for noMux requests. */
export const TASK_MAX_SUBS = 64;
/** How long the launch role may take to answer its order (the launcher's own request timeout is 15 s). */
export const LAUNCH_ANSWER_MS = 60_000;

export interface TaskRoleOptions {
  /** The task sends its hurd's launch orders (init, for servers in containers of their own): the hurd's name, "" for the root hurd. */
  launches?: string;
  /** The task may ask the kernel for trace watches (hurd.<sys>.trace.watch); the kernel still checks its host_priv right. */
  traceWatch?: boolean;
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
  /** The inbox prefix each task's connection must use. */
  taskInbox(taskId: number): string;
}

/** One subject token: no separators, wildcards or white space, as NATS would otherwise read them. */
function token(what: string, v: string): string {
  if (!/^[^.*>\s]+$/.test(v)) throw new HurdError(Errno.EINVAL, `${what} ${JSON.stringify(v)} is not one NATS subject token`);
  return v;
}

function id(what: string, v: number): string {
  if (!Number.isSafeInteger(v) || v < 0) throw new HurdError(Errno.EINVAL, `${what} ${v} is not an id`);
  return String(v);
}

/** The root hurd is "_" in subjects (a subhurd's name starts with a letter), as init's launch subjects have it. */
const hurdToken = (hurd: string) => (hurd ? token("hurd", hurd) : "_");

/** nats-server's own subject for replacing an account's JWT (in the system account; no hurd's). */
export function accountUpdateSubject(account: string): string {
  return `$SYS.REQ.ACCOUNT.${token("account", account)}.CLAIMS.UPDATE`;
}

/** The permissions of every role of one system (a hurdmesh kernel and its hurds, one NATS account). */
export function natsRoles(system: string): NatsRoles {
  const base = `hurd.${token("system", system)}`;
  const trap = `${base}.kernel.trap`;
  const traceWatch = `${base}.trace.watch`;
  const traceCtl = `${base}.trace.ctl`;
  const taskInbox = (taskId: number) => `_INBOX.${id("task", taskId)}`;
  const kernelInbox = "_INBOX.kernel";
  return {
    kernel: {
      pub: [
        `${base}.rcv.>`,
        // Trace batches, hurd.<sys>.trace.<watch id>.
        `${base}.trace.*`,
        // Replies to traps, boot claims and trace watch requests, on their senders' inboxes.
        "_INBOX.>",
      ],
      sub: [trap, `${base}.boot.claim`, traceWatch, traceCtl, `${kernelInbox}.>`],
      inboxPrefix: kernelInbox,
      subs: -1,
    },
    task(taskId, o = {}) {
      const inbox = taskInbox(taskId);
      const pub = [trap];
      if (o.launches !== undefined) pub.push(`${base}.launch.${hurdToken(o.launches)}.*`);
      if (o.traceWatch) pub.push(traceWatch);
      return { pub, sub: [`${base}.rcv.${id("task", taskId)}.>`, `${inbox}.>`], inboxPrefix: inbox, subs: TASK_MAX_SUBS };
    },
    bootClaim(hurd) {
      const inbox = `_INBOX.boot.${hurdToken(hurd)}`;
      return { pub: [`${base}.boot.claim`], sub: [`${inbox}.>`], inboxPrefix: inbox, subs: 4 };
    },
    launch(hurd, server) {
      return { pub: [], sub: [`${base}.launch.${hurdToken(hurd)}.${token("server", server)}`], resp: { max: 1, ttlMs: LAUNCH_ANSWER_MS }, subs: 2 };
    },
    watcher(watchId) {
      const inbox = `_INBOX.watch.${id("watch", watchId)}`;
      return { pub: [traceCtl], sub: [`${base}.trace.${id("watch", watchId)}`, `${inbox}.>`], inboxPrefix: inbox, subs: 4 };
    },
    accountUpdater(account) {
      return { pub: [accountUpdateSubject(account)], sub: ["_INBOX.updater.>"], inboxPrefix: "_INBOX.updater", subs: 4 };
    },
    taskInbox,
  };
}

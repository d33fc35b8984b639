// Reauthentication through the auth server's rendezvous, written once for
// every server and client (libiohelp/iouser-reauth.c for the server side,
// glibc's reauth loops for the user side).
import { client, Errno, HurdError, MsgType, PortRight, portAt, Rights, type Task } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";

/** The ids a server learns: effective and available uids and gids. */
export interface Ids {
  euids: number[];
  auids: number[];
  egids: number[];
  agids: number[];
}

/** An identity-less user: what iohelp_reauth leaves a server with when the rendezvous fails. */
export function noIds(): Ids {
  return { euids: [], auids: [], egids: [], agids: [] };
}

/** Headroom between auth's wait and the caller's RPC deadline, so auth's own error comes back first. */
const MARGIN_MS = 500;

function deadlines(timeoutMs: number): { auth: number; rpc: number } {
  const auth = Math.max(1, timeoutMs - MARGIN_MS);
  return { auth, rpc: timeoutMs };
}

export interface UserReauthenticateOptions {
  /** The whole exchange's deadline, ms (default: the task's RPC deadline). */
  timeoutMs?: number;
}

/**
 * The user side (glibc's __USEPORT (AUTH, auth_user_authenticate ...) after
 * io_reauthenticate): makes a fresh rendezvous port R, lets `ask` send a send
 * right to it to the server (io_reauthenticate, proc_reauthenticate: build
 * the message with `rights.makeSend(rendezvous)`), presents R to auth with
 * the handle `auth`, and answers the port the server supplied (a name in
 * this task's space). R is destroyed at the end whatever happens; if `ask`
 * fails, destroying R fails auth's wait at once (EINVAL) instead of at its
 * deadline.
 */
export async function userReauthenticate(task: Task, auth: number, ask: (rendezvous: number) => unknown, o: UserReauthenticateOptions = {}): Promise<number> {
  const d = deadlines(o.timeoutMs ?? task.timeoutMs);
  const rendezvous = await freshPort(task);
  try {
    const r = new Rights();
    const index = r.makeSend(rendezvous);
    const user = client(task, AuthDefinition, auth).userAuthenticate({ rendezvous: index, timeoutMs: d.auth }, { rights: r, timeoutMs: d.rpc });
    // Both run at once: io_reauthenticate is a simpleroutine, but a server
    // whose reauthenticate is a routine answers only after the rendezvous.
    const asked = Promise.resolve().then(() => ask(rendezvous));
    asked.catch(() => task.destroy(rendezvous).catch(() => {}));
    const [res] = await Promise.all([user, asked]);
    return portAt(res, res.newport);
  } finally {
    // Not awaited: the task's later calls travel behind it, so none can see R alive.
    task.destroy(rendezvous).catch(() => {});
  }
}

/** Receive rights allocated ahead, per task: a rendezvous then costs no kernel round trip before it starts. */
const pools = new WeakMap<Task, { ports: number[]; refilling: boolean }>();
const POOL = 4;

/**
 * A port nobody but this task has ever held a right to: as fresh as one
 * allocated now, which is all a rendezvous needs (R is destroyed after use,
 * never reused).
 */
async function freshPort(task: Task): Promise<number> {
  let p = pools.get(task);
  if (!p) pools.set(task, (p = { ports: [], refilling: false }));
  const name = p.ports.pop() ?? (await task.allocate(PortRight.PORT_RIGHT_RECEIVE));
  if (p.ports.length < POOL / 2 && !p.refilling) {
    const pool = p;
    pool.refilling = true;
    void (async () => {
      try {
        while (pool.ports.length < POOL && !task.detached) pool.ports.push(await task.allocate(PortRight.PORT_RIGHT_RECEIVE));
      } catch {
        // The next rendezvous allocates its own.
      } finally {
        pool.refilling = false;
      }
    })();
  }
  return name;
}

export interface ServerAuthenticateOptions {
  /** How `newport` travels (default MAKE_SEND: the server made a fresh receive right for the user). */
  newportDisposition?: MsgType;
  /** Deadline, ms (default: the task's RPC deadline). */
  timeoutMs?: number;
}

/**
 * The server side (iohelp_reauth's auth_server_authenticate): presents the
 * user's rendezvous right with the server's own handle `auth` and the port
 * `newport` the user is to get, and answers the user's ids. The rendezvous
 * send right is released afterwards, as iohelp does, success or not. Callers
 * that must not fail (fs servers) fall back to `noIds()` on error, as
 * iohelp_reauth does; proc keeps the effective and available uids only.
 */
export async function serverAuthenticate(task: Task, auth: number, rendezvous: number, newport: number, o: ServerAuthenticateOptions = {}): Promise<Ids> {
  const d = deadlines(o.timeoutMs ?? task.timeoutMs);
  if (rendezvous === 0) throw new HurdError(Errno.EINVAL, "no rendezvous port");
  try {
    const r = new Rights();
    const rv = r.copySend(rendezvous);
    const np = r.add(newport, o.newportDisposition ?? MsgType.MSG_TYPE_MAKE_SEND);
    const res = await client(task, AuthDefinition, auth).serverAuthenticate({ rendezvous: rv, newport: np, timeoutMs: d.auth }, { rights: r, timeoutMs: d.rpc });
    return { euids: res.euids, auids: res.auids, egids: res.egids, agids: res.agids };
  } finally {
    task.deallocate(rendezvous).catch(() => {});
  }
}

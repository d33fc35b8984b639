// Who holds a task, as nats-server sees it. With NATS authorization on,
// every task's process connects as the task's own user (nats-users.ts), and
// nats-server publishes each connection's end on the system account
// ($SYS.ACCOUNT.<account>.DISCONNECT, its JSON naming `client.user`, the
// user's public key; CONNECT likewise). The kernel hears them through its
// account updater (a system-account user of the keys file, never a task's),
// so that it learns a server's process is gone when its socket closes (a
// SIGKILL, the OOM killer, a container or pod gone) instead of when its
// lease lapses: in every deployment, with no parent process watching.
//
// What it does with that: an essential task whose last connection closed
// goes into its restart grace at once (reincarnation.ts lapse: ports keep
// queuing, a new process may attach straight away). Nothing ends: a NATS
// blip (the client reconnects) is covered by the grace, and the same
// process re-attaches (Task.rejoin in the runtime). Other tasks are left to
// their leases, as before: for them a blip must cost nothing.
//
// Kept small: a connection is known by its server and client ids, only
// for users that are live tasks' (one Map look-up per event), at most
// MAX_CONNS per user. A connection opened before the kernel subscribed has
// no CONNECT here: its DISCONNECT then finds no other connection known and
// lapses the task, which a live process rejoins (the grace covers it).
// With the kernel's log on (--journal) this is off: a lapse is a change a
// standby must replay, and no record carries it yet; the lease decides.
import type { Bus } from "@hurdmesh/mach";
import { accountEventSubjects } from "@hurdmesh/mach/internal";
import type { KTask } from "./objects.js";
import { lapse } from "./reincarnation.js";
import type { KernelState } from "./state.js";

/** Connections remembered per user: a task's process holds one (two while its bus moves to a renewed JWT). */
export const MAX_CONNS = 8;

/** The part of nats-server's client_connect / client_disconnect advisory read here. */
export interface ConnectionEvent {
  type: "connect" | "disconnect";
  /** The user's public key ("U…"). */
  user: string;
  /** The connection, unique within the cluster: its server's id and its client id there. */
  conn: string;
}

/**
 * An advisory's JSON made into a ConnectionEvent; null for anything else
 * (another advisory, a client with no user): a bad message is dropped, not
 * thrown, as the subject is nats-server's own and only it publishes there.
 */
export function parseConnectionEvent(data: Uint8Array): ConnectionEvent | null {
  let j: { type?: unknown; server?: { id?: unknown }; client?: { user?: unknown; id?: unknown } };
  try {
    j = JSON.parse(new TextDecoder().decode(data)) as typeof j;
  } catch {
    return null;
  }
  const type = j.type === "io.nats.server.advisory.v1.client_connect" ? "connect" : j.type === "io.nats.server.advisory.v1.client_disconnect" ? "disconnect" : null;
  const user = j.client?.user;
  if (type === null || typeof user !== "string" || !user.startsWith("U")) return null;
  return { type, user, conn: `${String(j.server?.id ?? "")}/${String(j.client?.id ?? "")}` };
}

export class Holders {
  /** Open connections by user, of live tasks' users only. */
  private readonly conns = new Map<string, Set<string>>();
  /** Tasks put into their grace at once by a disconnect (tests, the log). */
  lapsedByEvent = 0;

  constructor(private readonly k: KernelState) {}

  /** One advisory. O(1): a look-up of the user, a set of at most MAX_CONNS. */
  heard(e: ConnectionEvent): void {
    const users = this.k.natsUsers;
    if (users === null || this.k.journal !== null) return;
    const t = users.taskOf(e.user);
    if (t === undefined) {
      this.conns.delete(e.user);
      return;
    }
    let open = this.conns.get(e.user);
    if (e.type === "connect") {
      if (open === undefined) this.conns.set(e.user, (open = new Set()));
      if (open.size < MAX_CONNS) open.add(e.conn);
      return;
    }
    open?.delete(e.conn);
    if (open !== undefined && open.size > 0) return;
    this.conns.delete(e.user);
    this.gone(t);
  }

  /** The last connection of `t`'s user closed: an essential task goes into its restart grace now. */
  private gone(t: KTask): void {
    const k = this.k;
    // Not attached: never was, or already lapsed (the sweep came first), or a stream (the gRPC edge) holds it.
    if (!t.attached || t.sink !== null || !k.leased.has(t)) return;
    if (lapse(k, t)) {
      this.lapsedByEvent++;
      k.log(`task ${t.id} (${t.name}): its process's NATS connection closed ${k.now() - t.lastSeen} ms after it was last heard from`);
    }
  }

  /** Connections of `user` remembered (tests: what the kernel heard of it on the wire). */
  connections(user: string): number {
    return this.conns.get(user)?.size ?? 0;
  }

  /** Users with connections remembered (tests: bounded by the live tasks' users). */
  get size(): number {
    return this.conns.size;
  }
}

/**
 * Subscribes `kernel`'s Holders to nats-server's connection events of
 * `account`, through `bus`, a connection of a system-account user allowed
 * to read them (the keys file's account updater; hearsDisconnects tells
 * whether it may). Answers the Holders and how to stop.
 */
export async function watchHolders(k: KernelState, bus: Bus, account: string): Promise<{ holders: Holders; stop(): void }> {
  const holders = new Holders(k);
  const subs = accountEventSubjects(account).map((subject) =>
    bus.subscribe(subject, (_s, d) => {
      const e = parseConnectionEvent(d);
      if (e !== null) holders.heard(e);
    }),
  );
  await bus.flush();
  return {
    holders,
    stop: () => {
      for (const s of subs) s.unsubscribe();
    },
  };
}

/**
 * Whether a system-account user's JWT lets it read `account`'s DISCONNECT
 * events: keys files made before the account updater was given them
 * (nats-server refuses such a subscription without a word to the client).
 */
export function hearsDisconnects(jwt: string, account: string): boolean {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as { nats?: { sub?: { allow?: string[] } } };
    return claims.nats?.sub?.allow?.includes(accountEventSubjects(account)[1]) ?? false;
  } catch {
    return false;
  }
}

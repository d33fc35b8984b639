// The NATS users of a kernel's tasks (issue 15): with NATS authorization on,
// the kernel holds its account's signing key and is the only one to mint
// users, each scoped by the subject map (permissionsOf in the runtime) to
// exactly one party: a task (traps out; its own deliveries and replies in),
// a boot claim's task (also its hurd's launch orders), a trace watcher.
//
// A task's JWT is short-lived (ttlS) and renewed by the runtime
// (TaskNatsRenew: the same user, re-signed); when the task dies its user is
// revoked in the account JWT (revocation.ts), which cuts its connections off
// and refuses its reconnects within a round trip to nats-server. Where a
// revocation cannot be made (nats-server unreachable, the list full, a
// restarted kernel that forgot it) the JWT's expiry is the bound: ttlS.
//
// Minting is a native Ed25519 key pair and one native signature (the
// runtime's nats-auth: node:crypto, not @nats-io/jwt's pure-JavaScript
// signer), a fraction of a millisecond; the bench's task creation rows
// show it.
import { Errno, HurdError } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { encodeUser, mintUser, NKey, nowSeconds, permissionsFor } from "@hurdmesh/mach/nats-auth";
import { NatsCredentials, TaskNatsCredentialsRequest } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { KTask } from "./objects.js";
import type { KernelState } from "./state.js";
import { lapse } from "./reincarnation.js";
import { authenticate } from "./task.js";

/** A task's JWT lives this long by default (s); the runtime renews it when a third is left. */
export const NATS_USER_TTL_S = 300;

/** What revokes a user: the account's revocation list (AccountRevocations), one per account. */
export interface NatsRevoker {
  revoke(user: string, exp: number): Promise<void>;
  /** Keeps a revocation without pushing it (a standby kernel: its leader pushed it). */
  note(user: string, exp: number): void;
  /** Pushes every revocation kept (a standby that took over). */
  pushAll(): Promise<void>;
  /** The revocations kept, and a snapshot's put back (snapshot.ts). */
  entries(): [string, number, number][];
  restoreEntries(list: readonly (readonly [string, number, number])[]): void;
}

/** NatsUsers' state in a kernel snapshot (snapshot.ts walks it as it walks the kernel's tables). */
export interface NatsUsersState {
  tasks: Map<KTask, Minted>;
  watchers: Map<number, Minted>;
  byKey: Map<string, KTask>;
  revoked: [string, number, number][];
}

/**
 * Where minting takes its key pairs and expiries from: with the kernel's
 * log on (journal.ts), the log's random bytes and clock, so that a standby
 * replaying the same traps makes the same users (same public keys, same
 * expiries) and can renew and revoke them once it leads. The account's
 * signing key is never in the log: every kernel of the system reads it
 * from its keys file.
 */
export interface MintInputs {
  /** The kernel's log, if any (KernelState.journal). */
  readonly journal: { readonly replica: boolean; random(n: number): Uint8Array } | null;
  /** The kernel's clock, ms (the log's while there is one). */
  now(): number;
}

export interface NatsUsersOptions {
  /** The account's public key ("A…"). */
  account: string;
  /** A signing key of the account: mints every user. */
  signer: NKey;
  /** Revokes dead tasks' users; null: their JWTs only expire. */
  revoker: NatsRevoker | null;
  /** Lifetime of a task's or watcher's JWT, s (default NATS_USER_TTL_S). */
  ttlS?: number;
}

export interface Minted {
  publicKey: string;
  /** Its latest JWT's expiry, unix seconds. */
  exp: number;
  /** For a renewal: the role's permissions are re-signed as they were minted. */
  launches?: string;
}

const NONE: NatsCredentials = Object.freeze({ jwt: "", seed: "", expires: 0 }) as NatsCredentials;

export class NatsUsers {
  readonly ttlS: number;
  /** Users alive, by task: one each (minting again replaces and revokes the previous one). */
  private readonly tasks = new Map<KTask, Minted>();
  private readonly watchers = new Map<number, Minted>();
  /** The same users by public key: a connection event names its user (holders.ts), one look-up per event. */
  private readonly byKey = new Map<string, KTask>();
  /** Revocations nats-server refused or never answered (the JWT's expiry still bounds those users). */
  revokeFailures = 0;

  constructor(
    readonly system: string,
    private readonly o: NatsUsersOptions,
    private readonly log: (line: string) => void,
    private readonly inputs: MintInputs = { journal: null, now: Date.now },
  ) {
    this.ttlS = o.ttlS ?? NATS_USER_TTL_S;
    if (!(Number.isInteger(this.ttlS) && this.ttlS >= 3)) throw new HurdError(Errno.EINVAL, "a NATS user's lifetime is a whole number of seconds, at least 3");
  }

  /** The kernel's own user: never expires (the kernel is the fabric's trusted party). */
  kernel(): { jwt: string; seed: string } {
    const u = mintUser(this.o.signer, this.o.account, `hurd-kernel ${this.system}`, permissionsFor(this.system, { kind: "kernel" }));
    return { jwt: u.jwt, seed: u.seed };
  }

  /**
   * The user a server of hurd `hurd` ("" the root) writes its state through
   * with (its own JetStream bucket and nothing else: the "store" role). It
   * does not expire, as the kernel's does not: a server restarted in place
   * reads its state back with it, however long after boot that is.
   */
  store(hurd: string, server: string): { jwt: string; seed: string } {
    const u = mintUser(this.o.signer, this.o.account, `store ${hurd || "root"}/${server}`, permissionsFor(this.system, { kind: "store", hurd, server }));
    return { jwt: u.jwt, seed: u.seed };
  }

  /** A task's NATS user, minted; its previous one, if any, is revoked. */
  task(t: KTask, launches?: string): NatsCredentials {
    const exp = this.nowS() + this.ttlS;
    const u = mintUser(this.o.signer, this.o.account, `task ${t.id}`, permissionsFor(this.system, { kind: "task", taskId: t.id, launches }), exp, this.key());
    const old = this.tasks.get(t);
    this.tasks.set(t, { publicKey: u.publicKey, exp, launches });
    this.byKey.set(u.publicKey, t);
    if (old) {
      this.byKey.delete(old.publicKey);
      this.revoke(old, `task ${t.id}'s previous user`);
    }
    return { jwt: u.jwt, seed: u.seed, expires: exp };
  }

  /** Whether `t` has a NATS user (minting another revokes it). */
  has(t: KTask): boolean {
    return this.tasks.has(t);
  }

  /** The live task whose NATS user has the public key `user` ("U…"), if any. */
  taskOf(user: string): KTask | undefined {
    return this.byKey.get(user);
  }

  /** A fresh JWT for a task's user (no seed: the holder keeps its own). */
  renewTask(t: KTask): NatsCredentials {
    const m = this.tasks.get(t);
    if (!m) throw new HurdError(Errno.KERN_INVALID_ARGUMENT, `task ${t.id} has no NATS user to renew`);
    m.exp = this.nowS() + this.ttlS;
    const jwt = encodeUser(m.publicKey, this.o.signer, {
      name: `task ${t.id}`,
      account: this.o.account,
      permissions: permissionsFor(this.system, { kind: "task", taskId: t.id, launches: m.launches }),
      exp: m.exp,
    });
    return { jwt, seed: "", expires: m.exp };
  }

  /** The task died: its user is revoked. */
  taskEnded(t: KTask): void {
    const m = this.tasks.get(t);
    if (!m) return;
    this.tasks.delete(t);
    this.byKey.delete(m.publicKey);
    this.revoke(m, `task ${t.id}`);
  }

  /**
   * Where a task's requests must ask for their answers: a reply subject
   * elsewhere (another task's inbox) would make the kernel answer into it.
   */
  taskInbox(t: KTask): string {
    return `${inboxOf(this.system, { kind: "task", taskId: t.id })}.`;
  }

  /** A trace watcher's user: reads watch `watchId`'s batches, renews and cancels it. */
  watcher(watchId: number): NatsCredentials {
    const exp = nowSeconds() + this.ttlS;
    const u = mintUser(this.o.signer, this.o.account, `trace watcher ${watchId}`, permissionsFor(this.system, { kind: "trace-watcher", watchId }), exp);
    this.watchers.set(watchId, { publicKey: u.publicKey, exp });
    return { jwt: u.jwt, seed: u.seed, expires: exp };
  }

  /** A renewed JWT for a watcher whose JWT has half its life or less left; none otherwise. */
  renewWatcherIfDue(watchId: number): NatsCredentials | undefined {
    const m = this.watchers.get(watchId);
    if (!m || m.exp - nowSeconds() > this.ttlS / 2) return undefined;
    m.exp = nowSeconds() + this.ttlS;
    const jwt = encodeUser(m.publicKey, this.o.signer, { name: `trace watcher ${watchId}`, account: this.o.account, permissions: permissionsFor(this.system, { kind: "trace-watcher", watchId }), exp: m.exp });
    return { jwt, seed: "", expires: m.exp };
  }

  watcherEnded(watchId: number): void {
    const m = this.watchers.get(watchId);
    if (!m) return;
    this.watchers.delete(watchId);
    this.revoke(m, `trace watcher ${watchId}`);
  }

  /** The clock expiries are counted from, unix seconds. */
  private nowS(): number {
    return this.inputs.journal === null ? nowSeconds() : Math.floor(this.inputs.now() / 1000);
  }

  /** A user's key pair: from the log's random bytes while there is a log (a standby draws the same). */
  private key(): NKey {
    const j = this.inputs.journal;
    return j === null ? NKey.create("user") : NKey.fromRaw("user", j.random(32));
  }

  /** Its users and the revocations kept, for a snapshot. */
  snapshotState(): NatsUsersState {
    return { tasks: this.tasks, watchers: this.watchers, byKey: this.byKey, revoked: this.o.revoker?.entries() ?? [] };
  }

  /** A snapshot's users (a kernel restored from one: the tasks are the snapshot's objects). */
  restoreState(s: NatsUsersState): void {
    for (const [from, to] of [[s.tasks, this.tasks], [s.watchers, this.watchers], [s.byKey, this.byKey]] as [Map<unknown, unknown>, Map<unknown, unknown>][]) {
      to.clear();
      for (const [key, v] of from) to.set(key, v);
    }
    this.o.revoker?.restoreEntries(s.revoked);
  }

  /** A standby took over: the revocations its leader made (and may not have pushed) are pushed. */
  tookOver(): void {
    this.o.revoker?.pushAll().catch((e: unknown) => {
      this.revokeFailures++;
      this.log(`NATS revocations not pushed after the takeover (their JWTs still expire): ${(e as Error).message}`);
    });
  }

  /** Users minted and alive (tests, the bench). */
  get size(): number {
    return this.tasks.size + this.watchers.size;
  }

  private revoke(m: Minted, who: string): void {
    if (!this.o.revoker) return;
    // A standby's leader pushed it; the standby keeps the list for when it leads.
    if (this.inputs.journal?.replica) return this.o.revoker.note(m.publicKey, m.exp);
    this.o.revoker.revoke(m.publicKey, m.exp).catch((e: unknown) => {
      this.revokeFailures++;
      this.log(`NATS user of ${who} not revoked (its JWT expires in ${Math.max(0, m.exp - nowSeconds())} s): ${(e as Error).message}`);
    });
  }
}

/**
 * task_nats_credentials (hurdmesh, 4920): the NATS user of the task whose
 * id and token the request names (whoever holds the token may attach as the
 * task anyway: its creator, to hand it to the process it starts). Empty
 * when the kernel mints none. The caller's own identity adds nothing.
 */
export function taskNatsCredentials(k: KernelState, request: Uint8Array): Uint8Array {
  let r: TaskNatsCredentialsRequest;
  try {
    r = TaskNatsCredentialsRequest.decode(request);
  } catch (e) {
    throw new HurdError(Errno.MIG_BAD_ARGUMENTS, "malformed TaskNatsCredentials request", { cause: e });
  }
  const t = authenticate(k, r.taskId, r.token);
  if (!t) throw new HurdError(Errno.KERN_INVALID_TASK, "unknown task or wrong token");
  if (k.natsUsers === null) return NatsCredentials.encode(NONE).finish();
  // A new login for a task a process holds on the bus revokes the one that
  // process connected with: it can no longer reach the kernel. Its launcher
  // mints one only to start another process of the task (launchers.ts), so
  // an essential task goes into its restart grace now and the new process
  // attaches at once. Waiting for nats-server's DISCONNECT would not do: the
  // launcher hears its child die and mints before that event comes, and the
  // event then names a user that is no task's any more (holders.ts).
  const replaced = k.natsUsers.has(t) && t.attached && t.sink === null;
  const creds = k.natsUsers.task(t);
  if (replaced && lapse(k, t)) k.log(`task ${t.id} (${t.name}): a new NATS login was minted for it, revoking its process's`);
  return NatsCredentials.encode(creds).finish();
}

/** task_nats_renew (hurdmesh, 4921): a fresh JWT for the caller's own NATS user. */
export function taskNatsRenew(k: KernelState, t: KTask): Uint8Array {
  return NatsCredentials.encode(k.natsUsers === null ? NONE : k.natsUsers.renewTask(t)).finish();
}

// Revoking users: a dead task's credentials must stop working.
//
// Tried on Debian's nats-server 2.9.10 with `resolver: MEMORY`: a user of
// the system account publishing an account JWT (signed by the operator or
// one of its signing keys) on $SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE gets
// {"data":{"code":200,"message":"jwt updated"}}, and the server applies it
// before answering: a connection whose user the new JWT revokes is closed
// then ("User Authentication Revoked"), and that user's reconnects are
// refused ("Authorization Violation"). The update lives in the server's
// memory only; the resolver_preload in its configuration is what a restart
// reads, so whoever restarts nats-server must write the latest account JWT
// there (accountJwt) or let the short expiry below do the work.
//
// The bound: a revoked user is cut off when the update carrying it has been
// answered, one request to the server after revoke(), plus the update in
// flight when it is called and the gap after it (updates are coalesced, one
// at a time, spaced by at most MAX_UPDATE_GAP_MS: see below); measured
// on loopback (bench/nats-auth.ts): revoke() resolves in ~1.6 ms (p50) and
// the client sees its connection closed ~2 ms after the call. nats.js
// reports that close as a ProtocolError "User Authentication Revoked" (it
// has no class for it), not as an AuthorizationError.
//
// A revocation is kept until the user's JWT expires and no longer, so the
// list, which every update carries whole, holds the users revoked within
// one JWT lifetime, at most MAX_REVOCATIONS of them. Past that the oldest is
// dropped early, and that user is refused from its JWT's expiry on: give
// tasks JWTs that expire (and renew them) so that bound holds too. Until
// then a dead task's credentials still reach only what they did: its traps
// carry a token the kernel no longer accepts, and its delivery subjects
// name ports that died with it (ids are never reused).
import { Errno, HurdError } from "../errors.js";
import { encodeAccount, nowSeconds, type AccountOptions } from "./jwt.js";
import type { NKey } from "./nkeys.js";
import { accountUpdateSubject } from "./roles.js";

/** Revocations an account JWT carries at most (~75 bytes each: 4096 keep it near 300 KiB, under nats-server's 1 MiB payload). */
export const MAX_REVOCATIONS = 4096;
/** How long the server may take to answer an account update, ms. */
export const UPDATE_TIMEOUT_MS = 5_000;
/**
 * Updates are spaced: one starts at least UPDATE_DUTY times as long after
 * the previous one began as that one took (signing the account JWT here,
 * checking and applying it in nats-server: both grow with the list, ~11 ms
 * to sign 4096 revocations, 380 KB), within these bounds, ms. So however
 * fast tasks die, updates take at most about an eighth of the kernel's and
 * the server's time; a revocation waits at most MAX_UPDATE_GAP_MS plus
 * the update before it (and its own) on top of the round trip.
 */
export const MIN_UPDATE_GAP_MS = 20;
export const MAX_UPDATE_GAP_MS = 500;
/** Times a failed account update is pushed again before its revocations are reported lost. */
export const UPDATE_RETRIES = 2;
const UPDATE_DUTY = 8;

/** What pushes an update: a connection of a system-account user (a Bus of the runtime has this shape). */
export interface UpdateRequester {
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

interface ServerAnswer {
  data?: { code?: number; message?: string };
  error?: { code?: number; description?: string };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Pushes an account JWT to a running nats-server (MEMORY resolver) through
 * a system-account user. EIO with the server's reason if it refuses it.
 */
export async function pushAccountJwt(sys: UpdateRequester, account: string, jwt: string, timeoutMs = UPDATE_TIMEOUT_MS): Promise<void> {
  const subject = accountUpdateSubject(account);
  const answer = JSON.parse(dec.decode(await sys.request(subject, enc.encode(jwt), timeoutMs))) as ServerAnswer;
  if (answer.error || answer.data?.code !== 200)
    throw new HurdError(Errno.EIO, `nats-server refused the update of account ${account}: ${answer.error?.description ?? answer.data?.message ?? "no reason given"}`);
}

/**
 * An account's revocation list and the account JWT that carries it. The
 * kernel holds one per account it mints users for, with an operator
 * signing key to re-sign the account.
 */
export class AccountRevocations {
  /** User public key -> [revoked at, its JWT's expiry] (unix seconds), oldest first. */
  private readonly revoked = new Map<string, [number, number]>();
  private jwt: string;
  /** The update being pushed, and the one that will follow it with what came since. */
  private inflight: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** When the last update began (performance.now()), and how long it took, ms. */
  private lastStart = -Infinity;
  private lastCost = 0;

  constructor(
    readonly account: string,
    private readonly operatorSigner: NKey,
    private readonly claims: Omit<AccountOptions, "revocations">,
    private readonly sys: UpdateRequester,
  ) {
    this.jwt = encodeAccount(account, operatorSigner, claims);
  }

  /** The account JWT with the current revocations (for a server's resolver_preload). */
  accountJwt(): string {
    return this.jwt;
  }

  get size(): number {
    return this.revoked.size;
  }

  /**
   * Revokes a user: every JWT of it issued until now is refused, and its
   * connections are closed. `exp` is its latest JWT's expiry (0: none);
   * resolves once the server has applied it.
   */
  revoke(user: string, exp: number): Promise<void> {
    this.note(user, exp);
    return this.push();
  }

  /**
   * Adds a revocation to the list without pushing it: a standby kernel
   * replaying its leader's log keeps the list its leader pushed, so that
   * its first update after a takeover (pushAll) does not drop them.
   */
  note(user: string, exp: number): void {
    this.revoked.delete(user);
    // A never-expiring JWT's revocation is kept for as long as the list has room.
    this.revoked.set(user, [nowSeconds(), exp || Number.MAX_SAFE_INTEGER]);
  }

  /** The list as [user, revoked at, JWT expiry] (a kernel's snapshot keeps it). */
  entries(): [string, number, number][] {
    return [...this.revoked].map(([user, [at, exp]]) => [user, at, exp]);
  }

  /** Adds a snapshot's list (a standby restored from one), without pushing it. */
  restoreEntries(list: readonly (readonly [string, number, number])[]): void {
    for (const [user, at, exp] of list) {
      this.revoked.delete(user);
      this.revoked.set(user, [at, exp]);
    }
  }

  /** Pushes the whole list now (a new leading kernel: what its predecessor revoked and may not have pushed). */
  pushAll(): Promise<void> {
    return this.push();
  }

  /** Drops revocations whose JWT has expired (the server refuses those anyway) and, past the bound, the oldest. */
  private prune(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [user, [, exp]] of this.revoked) if (exp < now) this.revoked.delete(user);
    for (const user of this.revoked.keys()) {
      if (this.revoked.size <= MAX_REVOCATIONS) break;
      this.revoked.delete(user);
    }
    for (const [user, [at]] of this.revoked) out[user] = at;
    return out;
  }

  private push(): Promise<void> {
    if (!this.inflight && !this.next && this.gapLeft() <= 0) return this.start();
    // Coalesced: one update after the one in flight (and the gap after it)
    // carries every revocation made meanwhile.
    this.next ??= (this.inflight ?? Promise.resolve())
      .catch(() => {})
      // Not unref'd: a revocation someone awaits is pushed before the
      // process may exit (the wait is at most MAX_UPDATE_GAP_MS).
      .then(() => new Promise<void>((r) => setTimeout(r, Math.max(0, this.gapLeft()))))
      .then(() => {
        this.next = null;
        return this.start();
      });
    return this.next;
  }

  /** Milliseconds until the next update may start. */
  private gapLeft(): number {
    const gap = Math.min(MAX_UPDATE_GAP_MS, Math.max(MIN_UPDATE_GAP_MS, UPDATE_DUTY * this.lastCost));
    return this.lastStart + gap - performance.now();
  }

  private start(retries = UPDATE_RETRIES): Promise<void> {
    const t0 = performance.now();
    this.lastStart = t0;
    this.jwt = encodeAccount(this.account, this.operatorSigner, { ...this.claims, revocations: this.prune(nowSeconds()) });
    const p: Promise<void> = pushAccountJwt(this.sys, this.account, this.jwt).finally(() => {
      this.lastCost = performance.now() - t0;
      if (this.inflight === p) this.inflight = null;
    });
    this.inflight = p;
    if (retries === 0) return p;
    // A lost update (a timeout on a loaded server, a refusal) would leave a
    // revoked user connected until the next revocation happened to push the
    // list: it is pushed again, whole, after the gap, a bounded number of times.
    return p.catch(() => new Promise<void>((r) => setTimeout(r, Math.max(0, this.gapLeft()))).then(() => this.start(retries - 1)));
  }
}

// NATS JWTs (the v2 format nats-server reads) for operators, accounts and
// users, signed with node:crypto.
//
// A NATS JWT is base64url(header).base64url(claims).base64url(signature),
// the header {"typ":"JWT","alg":"ed25519-nkey"}, the signature Ed25519 by
// the issuer's nkey over the first two parts. @nats-io/jwt's encoders sign
// with pure-JavaScript Ed25519 (encodeUser ~90 ms a JWT here) and the kernel
// mints one per task, so this signs natively (~0.1 ms, see nkeys.ts) and
// keeps @nats-io/jwt for its claim types and, in tests, for decoding and
// verifying what is made here.
import { createHash } from "node:crypto";
import type { Account, ClaimsData, Operator, OperatorLimits, User } from "@nats-io/jwt";
import { base32 } from "@nats-io/nkeys/lib/base32.js";
import { Errno, HurdError } from "../errors.js";
import type { NKey } from "./nkeys.js";

/** What a user may do on the wire; the subject map (../subjects.ts, through roles.ts) says who gets what. */
export interface SubjectPermissions {
  /** Subjects it may publish on. None means none (NATS reads an empty allow list as "anything"; encodeUser turns it into a deny of all). */
  pub: readonly string[];
  /** Exceptions to `pub` (subjects its patterns cover that it may not publish on). */
  denyPub?: readonly string[];
  /** Subjects it may subscribe to. */
  sub: readonly string[];
  /** It may answer requests it received (NATS allow_responses) without a pub permission: at most `max` replies to each, within `ttlMs`. */
  resp?: { max: number; ttlMs: number };
  /** The prefix its connection must make reply subjects under (nats.js `inboxPrefix`); `sub` covers it. */
  inboxPrefix?: string;
  /** Most subscriptions it may hold at once (-1: no limit). */
  subs: number;
}

/** Account limits; hurdmesh's defaults are "no limit" but for what hurdmesh does not use. */
export type AccountLimits = OperatorLimits;

const HEADER = Buffer.from(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })).toString("base64url");
const td = new TextDecoder();

/** Go's encoding/json escapes these where JSON.stringify does not; jti hashes Go's bytes. */
const GO_ESCAPES = /[<>&\u2028\u2029]/g;
const goEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** Unix seconds, as JWTs count. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** The claims every NATS JWT has, but jti (computed from these) and nats (the role's own). */
type StandardClaims = Pick<ClaimsData<unknown>, "iat" | "iss" | "name" | "sub"> & Partial<Pick<ClaimsData<unknown>, "aud" | "exp" | "nbf">>;

/**
 * jti as nats-io/jwt (v2) computes it: base32, unpadded, of SHA-512/256 of
 * the standard claims (aud, exp, iat, iss, name, nbf, sub; empty ones left
 * out) as Go marshals them, so a JWT made here is named as nsc would name it.
 */
export function jtiOf(c: StandardClaims): string {
  const std: Record<string, string | number> = {};
  if (c.aud) std.aud = c.aud;
  if (c.exp) std.exp = c.exp;
  std.iat = c.iat;
  std.iss = c.iss;
  if (c.name) std.name = c.name;
  if (c.nbf) std.nbf = c.nbf;
  std.sub = c.sub;
  const digest = createHash("sha512-256").update(JSON.stringify(std).replace(GO_ESCAPES, goEscape)).digest();
  return td.decode(base32.encode(digest));
}

function encode<T>(sub: string, name: string, nats: T, signer: NKey, exp?: number): string {
  const base = { exp: exp || undefined, iat: nowSeconds(), iss: signer.publicKey, name, sub };
  const claims = { ...base, jti: jtiOf(base), nats };
  const payload = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${payload}.${signer.sign(Buffer.from(payload)).toString("base64url")}`;
}

export interface OperatorOptions {
  name: string;
  /** Keys that may sign account JWTs in the operator's stead (the kernel holds one; the operator's own seed stays offline). */
  signingKeys?: readonly string[];
  /** The system account's public key: its users may push account JWT updates (revocations). */
  systemAccount?: string;
}

/** The operator's JWT, self-signed by its identity key. */
export function encodeOperator(operator: NKey, o: OperatorOptions): string {
  if (operator.kind !== "operator") throw new HurdError(Errno.EINVAL, `an operator JWT is signed by an operator key, not an ${operator.kind} key`);
  const nats: Operator = { type: "operator", version: 2 };
  if (o.signingKeys?.length) nats.signing_keys = [...o.signingKeys];
  if (o.systemAccount) nats.system_account = o.systemAccount;
  return encode(operator.publicKey, o.name, nats, operator);
}

export interface AccountOptions {
  name: string;
  /** Keys that may sign the account's users (the kernel holds one). */
  signingKeys?: readonly string[];
  /** User public key -> unix seconds: a JWT of that user issued at or before then is refused, and its connections closed. */
  revocations?: Readonly<Record<string, number>>;
  /** Overrides of the default limits (no limit on connections, subscriptions and payload; no JetStream). */
  limits?: Partial<AccountLimits>;
  /** Lets the account use JetStream (no storage limit of its own: the server's applies). */
  jetstream?: boolean;
}

/**
 * An account's JWT, signed by the operator or one of its signing keys.
 * Limits are always written out: nats-server reads a missing limit as 0,
 * and an account limited to 0 connections takes none.
 */
export function encodeAccount(account: string, signer: NKey, o: AccountOptions): string {
  if (signer.kind !== "operator") throw new HurdError(Errno.EINVAL, `an account JWT is signed by an operator key, not an ${signer.kind} key`);
  const js = o.jetstream ? -1 : 0;
  const nats: Account = {
    type: "account",
    version: 2,
    limits: {
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: js,
      disk_storage: js,
      streams: js,
      consumer: js,
      ...o.limits,
    },
    // A user JWT that names no permissions gets these: nothing. Every user
    // hurdmesh mints names its own, so this only guards against a mistake.
    default_permissions: { pub: { deny: [">"] }, sub: { deny: [">"] } },
  };
  if (o.signingKeys?.length) nats.signing_keys = [...o.signingKeys];
  if (o.revocations && Object.keys(o.revocations).length) nats.revocations = { ...o.revocations };
  return encode(account, o.name, nats, signer);
}

export interface UserOptions {
  /** Shown by the server (connz, logs): "task 7", "kernel", ... */
  name: string;
  /** The account's public key; the signer is it or one of its signing keys. */
  account: string;
  permissions: SubjectPermissions;
  /** Unix seconds after which the server refuses the JWT and closes its connections; absent: never. */
  exp?: number;
}

/**
 * A user's JWT, signed by its account's key or one of the account's signing
 * keys (then `issuer_account` names the account). Not a bearer token: the
 * connection must also sign the server's nonce with the user's seed. Only
 * plain NATS connections (no websocket, leaf node or MQTT).
 */
export function encodeUser(user: string, signer: NKey, o: UserOptions): string {
  if (signer.kind !== "account") throw new HurdError(Errno.EINVAL, `a user JWT is signed by an account key, not an ${signer.kind} key`);
  const p = o.permissions;
  const nats: Partial<User> = {
    type: "user",
    version: 2,
    pub: p.pub.length ? (p.denyPub?.length ? { allow: [...p.pub], deny: [...p.denyPub] } : { allow: [...p.pub] }) : { deny: [">"] },
    sub: p.sub.length ? { allow: [...p.sub] } : { deny: [">"] },
    subs: p.subs,
    data: -1,
    payload: -1,
    allowed_connection_types: ["STANDARD"],
  };
  // allow_responses' ttl is a Go time.Duration: nanoseconds.
  if (p.resp) nats.resp = { max: p.resp.max, ttl: p.resp.ttlMs * 1_000_000 };
  if (signer.publicKey !== o.account) nats.issuer_account = o.account;
  return encode(user, o.name, nats, signer, o.exp);
}

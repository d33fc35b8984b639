// A NATS user's credentials: minting them (the kernel, per task), writing
// them as a .creds file (what nats-server's tools and every NATS client
// read), and the nats.js v3 connection options that present them.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Authenticator, NodeConnectionOptions } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { encodeUser, type SubjectPermissions } from "./jwt.js";
import { NKey } from "./nkeys.js";

/** A user's JWT and the seed that proves it holds it (the JWT alone is no bearer token). */
export interface UserCredentials {
  jwt: string;
  /** "SU…": secret. */
  seed: string;
}

/** Credentials fresh from the kernel, with what it needs to revoke them and what the holder must connect with. */
export interface MintedUser extends UserCredentials {
  /** The user's public key ("U…"): what a revocation names. */
  publicKey: string;
  /** The JWT's expiry, unix seconds; 0: none. */
  exp: number;
  /** The nats.js inboxPrefix the holder must connect with, if its role has one. */
  inboxPrefix?: string;
}

/**
 * A new user of `account`, signed by `signer` (the account's key or one of
 * its signing keys), with `permissions` and, when `exp` (unix seconds) is
 * given, that expiry. The whole cost of a task's credentials: a native key
 * pair and one native signature (bench/nats-auth-mint.ts measures it).
 */
export function mintUser(signer: NKey, account: string, name: string, permissions: SubjectPermissions, exp?: number, user: NKey = NKey.create("user")): MintedUser {
  const jwt = encodeUser(user.publicKey, signer, { name, account, permissions, exp });
  return { jwt, seed: user.seed, publicKey: user.publicKey, exp: exp ?? 0, inboxPrefix: permissions.inboxPrefix };
}

/** The text of a .creds file, as nsc writes it. */
export function credsFile(c: UserCredentials): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    c.jwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    c.seed,
    "------END USER NKEY SEED------",
    "",
    "*************************************************************",
    "",
  ].join("\n");
}

const CREDS_BLOCK = /-{3,}BEGIN [^\n]*-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END [^\n]*-{3,}/g;

/** The JWT and seed of a .creds file's text; EINVAL if it has not both. */
export function parseCreds(text: string): UserCredentials {
  const blocks = [...text.matchAll(CREDS_BLOCK)].map((m) => m[1]);
  if (blocks.length < 2 || !blocks[1].startsWith("SU")) throw new HurdError(Errno.EINVAL, "not a NATS .creds file (a user JWT and a user seed)");
  return { jwt: blocks[0], seed: blocks[1] };
}

/**
 * A nats.js authenticator presenting these credentials: the JWT, and the
 * server's nonce signed with the seed. nats.js's own jwtAuthenticator and
 * credsAuthenticator do the same with pure-JavaScript Ed25519 (~55 ms a
 * connect here: a key derivation and a signature); this signs natively.
 * Called again on every reconnect; `c` may be a function returning the
 * latest credentials (renewed ones).
 */
export function userAuthenticator(c: UserCredentials | (() => UserCredentials)): Authenticator {
  let key: NKey | null = null;
  return (nonce?: string) => {
    const cur = typeof c === "function" ? c() : c;
    if (!key || key.seed !== cur.seed) key = NKey.fromSeed(cur.seed, "user");
    return { jwt: cur.jwt, nkey: key.publicKey, sig: nonce ? key.sign(Buffer.from(nonce)).toString("base64url") : undefined };
  };
}

/** How a client reaches a server with TLS: the CA that signed the server's certificate (PEM). */
export interface ClientTls {
  caPem: string;
  /** A client certificate and key (PEM), where the server verifies clients. */
  certPem?: string;
  keyPem?: string;
}

/**
 * The nats.js v3 connection options for a user: its authenticator, the
 * inbox prefix its permissions require, and TLS when given a CA.
 */
export function natsConnectOptions(
  c: UserCredentials | (() => UserCredentials),
  o: { inboxPrefix?: string; tls?: ClientTls } = {},
): Pick<NodeConnectionOptions, "authenticator" | "inboxPrefix" | "tls"> {
  const opts: Pick<NodeConnectionOptions, "authenticator" | "inboxPrefix" | "tls"> = { authenticator: userAuthenticator(c) };
  if (o.inboxPrefix) opts.inboxPrefix = o.inboxPrefix;
  if (o.tls) opts.tls = tlsOptions(o.tls);
  return opts;
}

/** nats.js's TLS options for a CA (and a client certificate). */
export function tlsOptions(t: ClientTls): NonNullable<NodeConnectionOptions["tls"]> {
  return { ca: t.caPem, ...(t.certPem ? { cert: t.certPem, key: t.keyPem } : {}) };
}

/** natsClientTls's answers by setting: a process dials many connections (one per task) and reads its CA once. */
const clientTlsCache = new Map<string, ClientTls>();

/**
 * The TLS every fabric client of this process dials with, from its
 * environment (docker compose and Kubernetes set it; the bus reads it in
 * dial()): HURD_NATS_CA, the PEM of the CA that signed nats-server's
 * certificate, or HURD_NATS_CA_FILE, a file holding it. Undefined when
 * neither is set (a plaintext server on loopback, or TLS given in the
 * options). EINVAL when the file cannot be read or holds no certificate:
 * said once, at start, instead of a TLS failure on every reconnect.
 */
export function natsClientTls(env: NodeJS.ProcessEnv = process.env): ClientTls | undefined {
  const inline = env.HURD_NATS_CA;
  const file = env.HURD_NATS_CA_FILE;
  if (!inline && !file) return undefined;
  const key = inline ? `pem:${inline}` : `file:${file}`;
  const known = clientTlsCache.get(key);
  if (known) return known;
  let caPem = inline ?? "";
  if (!inline) {
    try {
      caPem = readFileSync(file!, "utf8");
    } catch (e) {
      throw new HurdError(Errno.EINVAL, `cannot read NATS's CA (HURD_NATS_CA_FILE=${file}): ${(e as Error).message}`, { cause: e });
    }
  }
  try {
    new X509Certificate(caPem);
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `${inline ? "HURD_NATS_CA" : `HURD_NATS_CA_FILE (${file})`} holds no PEM certificate: ${(e as Error).message}`, { cause: e });
  }
  const tls = { caPem };
  clientTlsCache.set(key, tls);
  return tls;
}

/** `servers` as nats.js takes it: one URL, or a cluster's comma-separated URLs (any one of them will do). */
export function serverList(servers: string): string | string[] {
  const list = servers
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  return list.length === 1 ? list[0]! : list;
}

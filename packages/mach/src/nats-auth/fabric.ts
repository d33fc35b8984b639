// A hurdmesh NATS fabric: the keys of one system's operator and accounts
// (a 0600 JSON file, `hurd keys nats-config` and `hurd up --nats` make it),
// nats-server's configuration from them, a nats-server started from it, and
// the check that a server given by URL refuses anonymous clients.
//
// The operator's identity key signs its own JWT once and is dropped (its
// seed is never written): an operator signing key signs the account JWTs,
// and the kernel holds it to re-sign its account with revocations. The
// kernel also holds the account's signing key (it mints every user) and the
// credentials of a system-account user allowed to push that account's JWT
// (revocation.ts). Whoever holds this file holds the fabric.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { connect, errors } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { mintUser, natsClientTls, serverList, tlsOptions, type ClientTls, type UserCredentials } from "./creds.js";
import { encodeAccount, encodeOperator, type AccountOptions } from "./jwt.js";
import { NKey } from "./nkeys.js";
import { permissionsFor } from "./roles.js";
import { natsServerConfig, type ServerConfigOptions, type ServerTlsFiles } from "./server-config.js";

export interface FabricKeys {
  version: 1;
  /** The hurdmesh system these keys serve (subjects hurd.<system>.…). */
  system: string;
  operatorJwt: string;
  /** "SO…": signs account JWTs (the kernel's revocations). Secret. */
  operatorSigningSeed: string;
  systemAccount: string;
  systemAccountJwt: string;
  /** The hurd's account: every user of the system is one of its users. */
  account: string;
  accountName: string;
  /** Its JWT as servers preload it (no revocations). */
  accountJwt: string;
  /** "SA…": signs the account's users (the kernel mints with it). Secret. */
  accountSigningSeed: string;
  jetstream: boolean;
  /** A system-account user that may push this account's JWT (and nothing else). Secret. */
  updater: UserCredentials;
}

/** The account's claims as the operator signed them; revocations re-sign these with their list. */
export function accountClaimsOf(k: FabricKeys): Omit<AccountOptions, "revocations"> {
  return { name: k.accountName, signingKeys: [NKey.fromSeed(k.accountSigningSeed, "account").publicKey], jetstream: k.jetstream };
}

/** Fresh keys for `system`: an operator, NATS's system account, the hurd's account and its updater. */
export function makeFabricKeys(system: string, o: { jetstream?: boolean; operatorName?: string } = {}): FabricKeys {
  const operator = NKey.create("operator");
  const operatorSigner = NKey.create("operator");
  const sys = NKey.create("account");
  const account = NKey.create("account");
  const accountSigner = NKey.create("account");
  const accountName = `hurd-${system}`;
  const claims: AccountOptions = { name: accountName, signingKeys: [accountSigner.publicKey], jetstream: o.jetstream ?? false };
  const updater = mintUser(sys, sys.publicKey, "hurdmesh account updater", permissionsFor(system, { kind: "account-updater", account: account.publicKey }));
  return {
    version: 1,
    system,
    operatorJwt: encodeOperator(operator, { name: o.operatorName ?? `hurdmesh-${system}`, signingKeys: [operatorSigner.publicKey], systemAccount: sys.publicKey }),
    operatorSigningSeed: operatorSigner.seed,
    systemAccount: sys.publicKey,
    systemAccountJwt: encodeAccount(sys.publicKey, operatorSigner, { name: "SYS" }),
    account: account.publicKey,
    accountName,
    accountJwt: encodeAccount(account.publicKey, operatorSigner, claims),
    accountSigningSeed: accountSigner.seed,
    jetstream: claims.jetstream!,
    updater: { jwt: updater.jwt, seed: updater.seed },
  };
}

/**
 * Reads a keys file. EACCES when others may read it (as ssh refuses a
 * private key that is not private), EINVAL when it is not one.
 */
export function readFabricKeys(path: string): FabricKeys {
  let text: string;
  try {
    // Others may not read it; its group may: Kubernetes mounts a Secret
    // 0440 (0640) owned by the pod's fsGroup, the kernel's own group there,
    // and cannot make it owner-only (defaultMode's group bits come back with fsGroup).
    if (statSync(path).mode & 0o007) throw new HurdError(Errno.EACCES, `${path} may be read by others than its owner and group: chmod 600 it`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof HurdError) throw e;
    throw new HurdError(Errno.ENOENT, `cannot read the NATS keys ${path}: ${(e as Error).message}`, { cause: e });
  }
  let k: FabricKeys;
  try {
    k = JSON.parse(text) as FabricKeys;
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `${path} is not a hurdmesh NATS keys file`, { cause: e });
  }
  if (k.version !== 1 || !k.account || !k.accountSigningSeed || !k.operatorSigningSeed || !k.updater?.jwt) throw new HurdError(Errno.EINVAL, `${path} is not a hurdmesh NATS keys file (version 1)`);
  return k;
}

/** Writes a keys file, mode 0600, whole or not at all. */
export function writeFabricKeys(path: string, k: FabricKeys): void {
  const tmp = `${path}.tmp${process.pid}`;
  writeFileSync(tmp, JSON.stringify(k, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** nats-server's configuration for these keys: operator mode, both accounts preloaded, nobody anonymous. */
export function fabricServerConfig(
  k: FabricKeys,
  o: { host?: string; port?: number; jetstreamDir?: string; tls?: ServerTlsFiles } & Pick<ServerConfigOptions, "serverNameEnv" | "cluster" | "syncInterval"> = {},
): string {
  return natsServerConfig({
    operatorJwt: k.operatorJwt,
    systemAccount: k.systemAccount,
    accounts: { [k.systemAccount]: k.systemAccountJwt, [k.account]: k.accountJwt },
    host: o.host,
    port: o.port,
    jetstreamDir: o.jetstreamDir,
    tls: o.tls,
    serverNameEnv: o.serverNameEnv,
    cluster: o.cluster,
    syncInterval: o.syncInterval,
  });
}

/** How long a nats-server may take to say it is ready. */
export const SERVER_READY_MS = 10_000;
/** How long an anonymous probe waits for a server's verdict. */
export const PROBE_MS = 3_000;

export interface NatsServerProcess {
  url: string;
  port: number;
  /** nats-server's own pid (not its watchdog's). */
  pid: number;
  /** Resolves when the server has exited. */
  readonly exited: Promise<void>;
  log(): string;
  /** Stops the server (and its watchdog); resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * nats-server under a watchdog: a shell that runs it and kills it when its
 * stdin (a pipe from this process) closes, which happens however this
 * process ends, SIGKILL included. A server started here never outlives the
 * process that started it.
 */
// (A background job's stdin is /dev/null unless redirected: the pipe is kept as fd 3 for cat.)
const WATCHDOG = 'exec 3<&0; nats-server -c "$1" </dev/null 3<&- & p=$!; echo "watchdog: nats-server pid $p" >&2; (cat <&3 >/dev/null; kill $p 2>/dev/null) & exec 3<&-; wait $p';

/**
 * Starts nats-server from PATH with the configuration file `config` (port
 * -1: a free one), under a watchdog; `env`: its environment (default this
 * process's).
 */
export async function startNatsServer(config: string, o: { env?: NodeJS.ProcessEnv } = {}): Promise<NatsServerProcess> {
  if (spawnSync("sh", ["-c", "command -v nats-server"]).status !== 0)
    throw new HurdError(Errno.ENOENT, "nats-server is not installed (Debian: apt-get install nats-server)");
  // A process group of its own: a terminal's Ctrl-C is for the process that started it, which stops it in its turn.
  const proc: ChildProcess = spawn("sh", ["-c", WATCHDOG, "sh", config], { stdio: ["pipe", "ignore", "pipe"], env: o.env ?? process.env, detached: true });
  let log = "";
  proc.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const stop = async () => {
    // Closing the pipe is what ends the server: the watchdog kills it and exits.
    proc.stdin!.end();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null) proc.kill("SIGKILL");
  };
  const deadline = Date.now() + SERVER_READY_MS;
  while (Date.now() < deadline) {
    const m = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
    const pid = /watchdog: nats-server pid (\d+)/.exec(log);
    if (m && pid && log.includes("Server is ready")) {
      const port = Number(m[1]);
      return { url: `nats://127.0.0.1:${port}`, port, pid: Number(pid[1]), exited, log: () => log, stop };
    }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  await stop();
  throw new HurdError(Errno.EIO, `nats-server did not start:\n${log}`);
}

/**
 * Whether the server at `url` lets a client in with no credentials: an
 * anonymous connect is tried. A server that refuses it (Authorization
 * Violation) answers false; one that cannot be reached is EIO.
 */
export async function acceptsAnonymous(url: string, timeoutMs = PROBE_MS, tls: ClientTls | undefined = natsClientTls()): Promise<boolean> {
  try {
    // Over TLS when the fabric speaks it (the process's CA), so that the verdict is the server's, not a failed handshake's.
    const nc = await connect({ servers: serverList(url), reconnect: false, timeout: timeoutMs, name: "hurdmesh anonymous probe", ...(tls ? { tls: tlsOptions(tls) } : {}) });
    await nc.close();
    return true;
  } catch (e) {
    if (e instanceof errors.AuthorizationError) return false;
    throw new HurdError(Errno.EIO, `cannot reach NATS at ${url}: ${(e as Error).message}`, { cause: e });
  }
}

// For this folder's tests: a real nats-server in operator mode, on a free
// loopback port, with its configuration and keys in a temporary directory,
// and the keys to mint its users. stop() ends the server, closes every
// connection made here and deletes the directory.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mintUser, natsConnectOptions, type ClientTls, type MintedUser, type UserCredentials } from "./creds.js";
import { encodeAccount, encodeOperator, type AccountOptions, type SubjectPermissions } from "./jwt.js";
import { NKey } from "./nkeys.js";
import { AccountRevocations, type UpdateRequester } from "./revocation.js";
import { natsRoles, type NatsRoles } from "./roles.js";
import { natsServerConfig } from "./server-config.js";
import { issueCert, makeCA, type CertificateAuthority } from "./tls.js";

/** The NATS suites run unless HURD_TEST_BUSES names only other buses (then nats-server need not be installed). */
export const natsWanted = !process.env.HURD_TEST_BUSES || process.env.HURD_TEST_BUSES.split(",").includes("nats");

export interface Fabric {
  readonly system: string;
  readonly roles: NatsRoles;
  readonly url: string;
  readonly dir: string;
  readonly operatorSigner: NKey;
  readonly account: NKey;
  readonly accountSigner: NKey;
  readonly revocations: AccountRevocations;
  /** The account's claims but revocations, as the server was started with them. */
  readonly accountClaims: AccountOptions;
  /** Requests as the system-account user allowed to push this account's updates. */
  readonly updater: UpdateRequester;
  /** The CA clients must trust when the server runs TLS. */
  readonly ca?: CertificateAuthority;
  /** The server's log so far. */
  log(): string;
  mint(name: string, permissions: SubjectPermissions, exp?: number): MintedUser;
  /** Connects as a user (with its inbox prefix, and TLS when the server has it); closed by stop(). */
  connect(c: UserCredentials & { inboxPrefix?: string }, o?: { inboxPrefix?: string; tls?: ClientTls }): Promise<NatsConnection>;
  /** Keeps a connection made elsewhere, to close it on stop(). */
  track(nc: NatsConnection): NatsConnection;
  stop(): Promise<void>;
}

const READY_MS = 10_000;

async function startServer(conf: string): Promise<{ proc: ChildProcess; port: number; log: () => string }> {
  const proc = spawn("nats-server", ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr!.on("data", (d) => (log += d));
  const spawnError = new Promise<Error>((r) => proc.once("error", r));
  const deadline = Date.now() + READY_MS;
  while (Date.now() < deadline) {
    const m = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
    if (m && log.includes("Server is ready")) return { proc, port: Number(m[1]), log: () => log };
    const e = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 25))]);
    if (e) throw new Error(`cannot run nats-server (Debian: apt-get install nats-server): ${e.message}`);
    if (proc.exitCode !== null) break;
  }
  proc.kill();
  throw new Error(`nats-server did not start:\n${log}`);
}

/** Starts a nats-server with a fresh operator, system account and hurd account for `system`. */
export async function startFabric(o: { system?: string; tls?: boolean; jetstream?: boolean } = {}): Promise<Fabric> {
  const system = o.system ?? `t${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-nats-auth-"));
  const conns = new Set<NatsConnection>();
  let proc: ChildProcess | null = null;
  const stop = async () => {
    await Promise.allSettled([...conns].map((nc) => nc.close()));
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once("exit", r));
      proc.kill();
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const operator = NKey.create("operator");
    const operatorSigner = NKey.create("operator");
    const sys = NKey.create("account");
    const account = NKey.create("account");
    const accountSigner = NKey.create("account");
    const accountClaims = { name: `hurd-${system}`, signingKeys: [accountSigner.publicKey], jetstream: o.jetstream };
    const ca = o.tls ? await makeCA() : undefined;
    let tls;
    if (ca) {
      const server = await issueCert(ca, { dns: ["localhost"], ip: ["127.0.0.1"] });
      writeFileSync(join(dir, "ca.pem"), ca.certPem);
      writeFileSync(join(dir, "server.pem"), server.certPem);
      writeFileSync(join(dir, "server-key.pem"), server.keyPem, { mode: 0o600 });
      tls = { certFile: join(dir, "server.pem"), keyFile: join(dir, "server-key.pem"), caFile: join(dir, "ca.pem") };
    }
    const roles = natsRoles(system);
    const config = natsServerConfig({
      operatorJwt: encodeOperator(operator, { name: "hurdmesh-test", signingKeys: [operatorSigner.publicKey], systemAccount: sys.publicKey }),
      systemAccount: sys.publicKey,
      accounts: {
        [sys.publicKey]: encodeAccount(sys.publicKey, operatorSigner, { name: "SYS" }),
        [account.publicKey]: encodeAccount(account.publicKey, operatorSigner, accountClaims),
      },
      port: -1,
      jetstreamDir: o.jetstream ? join(dir, "js") : undefined,
      tls,
    });
    writeFileSync(join(dir, "nats.conf"), config, { mode: 0o600 });
    const server = await startServer(join(dir, "nats.conf"));
    proc = server.proc;
    const url = `nats://127.0.0.1:${server.port}`;

    const doConnect = async (c: UserCredentials & { inboxPrefix?: string }, co: { inboxPrefix?: string; tls?: ClientTls } = {}) => {
      const tlsOpt = co.tls ?? (ca ? { caPem: ca.certPem } : undefined);
      const nc = await connect({ servers: url, reconnect: false, ...natsConnectOptions(c, { inboxPrefix: co.inboxPrefix ?? c.inboxPrefix, tls: tlsOpt }) });
      conns.add(nc);
      return nc;
    };
    // The system-account user that pushes this account's updates.
    const updaterUser = mintUser(sys, sys.publicKey, "account updater", roles.accountUpdater(account.publicKey));
    const updater = await doConnect(updaterUser);
    const requester: UpdateRequester = { request: async (s, d, t) => (await updater.request(s, d, { timeout: t })).data };
    return {
      system,
      roles,
      url,
      dir,
      operatorSigner,
      account,
      accountSigner,
      revocations: new AccountRevocations(account.publicKey, operatorSigner, accountClaims, requester),
      accountClaims,
      updater: requester,
      ca,
      log: server.log,
      mint: (name, permissions, exp) => mintUser(accountSigner, account.publicKey, name, permissions, exp),
      connect: doConnect,
      track(nc) {
        conns.add(nc);
        return nc;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

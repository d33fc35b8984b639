// hurd-kernel: runs the kernel as its own process, on NATS (--nats) or on an
// in-process bus (embedded use, mostly for trying it out), with the gRPC edge.
//
//   tsx services/kernel/src/main.ts --nats nats://127.0.0.1:4222 --grpc 127.0.0.1:7400 \
//       --boot proc,auth,init --boot-file /run/hurd/boot.json
//
// Boot tasks are created at start; their ids and secret tokens are written
// (mode 0600) to the boot file, which is how the boot servers learn who they are.
// In containers, where init cannot read that file, HURD_BOOT_SECRET (or
// --boot-secret-file) lets an init claim its boot task over the bus instead
// (boot-claim.ts); with --boot-key-file (HURD_BOOT_KEY_FILE; Kubernetes)
// each hurd claims with its own secret, derived from that key.
//
// On NATS, authorization is on unless told otherwise: --nats-keys (or
// HURD_NATS_KEYS) names the fabric's keys file (`hurd keys nats-config`
// makes one), from which the kernel mints every NATS user (nats-users.ts),
// boot tasks' included (in the boot file). It refuses a server that lets
// anonymous clients in. --nats-insecure (or HURD_NATS_AUTH=off) runs on an
// anonymous server instead, where anyone on the bus can read every token.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger, LocalHub, type Bus } from "@hurdmesh/mach";
import { inboxOf, notifyReady } from "@hurdmesh/mach/internal";
import { NatsBus } from "@hurdmesh/mach/nats";
import { edgeTlsFromFiles, issuedBy, type EdgeTls } from "@hurdmesh/mach/edge";
import { limitsFromEnv } from "./limits-env.js";
import { acceptsAnonymous, accountClaimsOf, AccountRevocations, natsClientTls, NKey, readFabricKeys } from "@hurdmesh/mach/nats-auth";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { startMetrics, telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { BootClaims } from "./boot-claim.js";
import { Edge } from "./edge.js";
import { hearsDisconnects, watchHolders } from "./holders.js";
import { Kernel } from "./kernel.js";
import type { Failover } from "./failover.js";
import { TraceBus } from "./trace-bus.js";
import { TrapServer } from "./trap.js";

// A command line it cannot read (an unknown flag, a value that looks like one: `--snapshot-bytes -1`) is one line and exit 2, not a stack.
const { values } = (() => {
  try {
    return parseArgs({
      options: {
        nats: { type: "string", default: process.env.NATS_URL },
        grpc: { type: "string", default: process.env.HURD_GRPC ?? "127.0.0.1:7400" },
        "grpc-cert": { type: "string", default: process.env.HURD_GRPC_CERT },
        "grpc-key": { type: "string", default: process.env.HURD_GRPC_KEY },
        // The CA the edge's clients check it against: a renewed certificate it did not sign is refused (cert-watch.ts's issuedBy).
        "grpc-ca": { type: "string", default: process.env.HURD_GRPC_CA },
        "grpc-insecure": { type: "boolean", default: process.env.HURD_GRPC_INSECURE === "1" },
        system: { type: "string", default: process.env.HURD_SYSTEM ?? "hurd" },
        boot: { type: "string", default: process.env.HURD_BOOT ?? "" },
        "boot-file": { type: "string", default: process.env.HURD_BOOT_FILE },
        "boot-secret-file": { type: "string", default: process.env.HURD_BOOT_SECRET_FILE },
        // Each hurd its own boot secret, derived from this key (BootClaims, hurdBootSecret): Kubernetes' hurd-boot-key.
        "boot-key-file": { type: "string", default: process.env.HURD_BOOT_KEY_FILE },
        "lease-ms": { type: "string", default: process.env.HURD_LEASE_MS },
        "nats-keys": { type: "string", default: process.env.HURD_NATS_KEYS },
        "nats-insecure": { type: "boolean", default: process.env.HURD_NATS_AUTH === "off" },
        "nats-user-ttl": { type: "string", default: process.env.HURD_NATS_USER_TTL },
        "restart-grace-ms": { type: "string", default: process.env.HURD_RESTART_GRACE_MS },
        // The kernel's state as a log on JetStream with a standby that takes over (failover.ts, docs/kernel-log.md).
        journal: { type: "boolean", default: false },
        standby: { type: "boolean", default: false },
        "lead-lease-ms": { type: "string", default: process.env.HURD_LEAD_LEASE_MS ?? "1500" },
        // A standby's snapshots of the log (failover.ts): bytes of entries between two; 0 none.
        "snapshot-bytes": { type: "string", default: process.env.HURD_KERNEL_SNAPSHOT_BYTES },
        // JetStream replicas of the log, its snapshots and the leadership key: 3 on a cluster of 3 NATS nodes (one node's loss loses nothing acknowledged).
        "log-replicas": { type: "string", default: process.env.HURD_KERNEL_LOG_REPLICAS ?? "1" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`hurd-kernel: ${(e as Error).message} (hurd-kernel --help)`);
    process.exit(2);
  }
})();

if (values.help) {
  console.log(
    "usage: hurd-kernel [--nats URL (--nats-keys FILE [--nats-user-ttl S] | --nats-insecure)] [--grpc HOST:PORT [--grpc-cert FILE --grpc-key FILE [--grpc-ca FILE] | --grpc-insecure]] [--system NAME] [--boot a,b,c --boot-file PATH] [--boot-secret-file PATH | --boot-key-file PATH] [--lease-ms N] [--restart-grace-ms N] [--journal | --standby [--lead-lease-ms N] [--snapshot-bytes N] [--log-replicas 1|3]]\n" +
      "(HURD_BOOT_SECRET or --boot-secret-file: inits may claim boot tasks over the bus; --boot-key-file (HURD_BOOT_KEY_FILE): each hurd with its own secret, derived from that key; HURD_NATS_KEYS, HURD_NATS_AUTH=off, HURD_NATS_USER_TTL, HURD_GRPC_CERT, HURD_GRPC_KEY, HURD_GRPC_CA, HURD_GRPC_INSECURE=1 as the flags; HURD_NATS_CA_FILE or HURD_NATS_CA: the CA of a tls:// NATS; plaintext gRPC only on loopback unless --grpc-insecure)",
  );
  process.exit(0);
}
const log = createLogger("kernel", { hurd: values.system });
const say = (l: string) => log.info(l);
/** HURD_MAX_* and HURD_SUBHURD_MAX_* (limits-env.ts): a bad value stops the kernel with one line. */
function limitsOrFail(): ReturnType<typeof limitsFromEnv> {
  try {
    return limitsFromEnv(process.env);
  } catch (e) {
    return fail((e as Error).message);
  }
}

function fail(l: string): never {
  log.fatal(l);
  process.exit(2);
}

// Spans for every routed message (and the edge's calls) when the OTEL_*
// environment asks for them; off, and free, otherwise.
const telemetry = telemetryFromEnv("hurd-kernel", process.env, { bus: values.nats ? "nats" : "local", hurd: values.system, serverAddress: values.grpc });
if (telemetry) {
  setGlobalTelemetry(telemetry);
  installTracingHooks(telemetry);
}
const nats = values.nats ? await natsAuthorization(values.nats) : null;
// Metrics on a Prometheus endpoint (HURD_METRICS_ADDR) and/or OTLP when the environment asks.
const metrics = await startMetrics("hurd-kernel", process.env, { hurd: values.system });
const kernel = new Kernel(
  {
    system: values.system!,
    bus: values.nats ? "nats" : "local",
    ...(values["lease-ms"] ? { leaseMs: Number(values["lease-ms"]) } : {}),
    ...(values["restart-grace-ms"] ? { restartGraceMs: Number(values["restart-grace-ms"]) } : {}),
    ...limitsOrFail(),
  },
  { telemetry, nats: nats?.users, metrics },
);
// The kernel's own requests (its log's, with --journal) come back on its role's inbox, the only one its user may read.
const kernelInbox = kernel.natsUsers ? inboxOf(values.system!, { kind: "kernel" }) : undefined;
const bus: Bus = values.nats
  ? await NatsBus.connect(values.nats, { name: `hurd-kernel-${values.system}`, credentials: kernel.natsUsers?.kernel(), inboxPrefix: kernelInbox })
  : new LocalHub().connect();
// The secret comes from the environment or a file, never argv (ps would show it).
if (values["boot-key-file"] && (values["boot-secret-file"] || process.env.HURD_BOOT_SECRET)) fail("--boot-key-file (HURD_BOOT_KEY_FILE) replaces the boot secret: not both");
const perHurd = !!values["boot-key-file"];
const readSecret = (what: string, file: string) => {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (e) {
    return fail(`cannot read the ${what} ${file}: ${(e as Error).message}`);
  }
};
const secret = values["boot-key-file"]
  ? readSecret("boot key", values["boot-key-file"])
  : values["boot-secret-file"]
    ? readSecret("boot secret", values["boot-secret-file"])
    : process.env.HURD_BOOT_SECRET;
delete process.env.HURD_BOOT_SECRET;
// The edge's certificate: from files (a Kubernetes Secret's, cert-manager's), never argv.
if (!values["grpc-cert"] !== !values["grpc-key"]) fail("--grpc-cert and --grpc-key go together");
// From files, taken again when renewed (cert-manager, a Secret's files swapped in place); a bad pair stops the kernel here.
let edgeTls: EdgeTls | null = null;
try {
  edgeTls = values["grpc-cert"] ? edgeTlsFromFiles(values["grpc-cert"], values["grpc-key"]!, log, process.env, values["grpc-ca"] ? issuedBy(values["grpc-ca"]) : undefined) : null;
} catch (e) {
  fail((e as Error).message);
}
if (!edgeTls && values["grpc-insecure"]) say(`the gRPC edge on ${values.grpc} is plaintext (--grpc-insecure): tokens, the console's among them, cross the network in clear`);
const host = values.grpc!.replace(/:\d+$/, "");
if (values.journal || values.standby) await replicated();

/** The keys to mint NATS users with, and the account's revocations pushed through its updater; null with --nats-insecure. */
async function natsAuthorization(url: string) {
  // The fabric's CA (HURD_NATS_CA_FILE, compose and Kubernetes): a missing or wrong file stops the kernel here, saying which.
  try {
    natsClientTls();
  } catch (e) {
    fail((e as Error).message);
  }
  if (/^tls:\/\//.test(url) && !natsClientTls()) log.warn(`NATS at ${url} speaks TLS and no HURD_NATS_CA_FILE names its CA: its certificate must then chain to a public one`);
  if (values["nats-insecure"]) {
    log.warn(`NATS authorization is OFF (--nats-insecure): anyone who reaches ${url} can read every task's token and forge any message`);
    return null;
  }
  if (!values["nats-keys"]) fail("NATS authorization needs --nats-keys FILE (HURD_NATS_KEYS; `hurd keys nats-config` makes one), or --nats-insecure (HURD_NATS_AUTH=off) for a server without it");
  let keys;
  try {
    keys = readFabricKeys(values["nats-keys"]);
  } catch (e) {
    fail((e as Error).message);
  }
  // Minted users are worth nothing on a server that lets anyone in.
  if (await acceptsAnonymous(url).catch((e: Error) => fail(e.message))) fail(`the nats-server at ${url} accepts anonymous clients: configure it with \`hurd keys nats-config\`'s output (or run with --nats-insecure)`);
  const updater = await NatsBus.connect(url, {
    name: `hurd-kernel-${values.system} account updater`,
    credentials: keys.updater,
    inboxPrefix: inboxOf(keys.system, { kind: "account-updater", account: keys.account }),
  });
  const revoker = new AccountRevocations(keys.account, NKey.fromSeed(keys.operatorSigningSeed, "operator"), accountClaimsOf(keys), updater);
  // A restarted nats-server (MEMORY resolver) forgot the account's updates:
  // the list goes again, whole, once the updater is back, and again once
  // the kernel's own connection (a user of the account) is: the server
  // applies an update only to an account it has loaded, which a connection
  // of one of its users does (found in tests/nats/revocations: an update
  // pushed first, by the updater alone, was acknowledged and forgotten).
  const pushAgain = (who: string) => {
    if (revoker.size === 0) return;
    log.info(`${who} reconnected: pushing the account's ${revoker.size} revocations again`);
    void revoker.pushAll().catch((e: Error) => log.warn(`NATS revocations not pushed again after a reconnect (their JWTs still expire): ${e.message}`));
  };
  updater.onReconnect(() => pushAgain("the account updater"));
  const ttlS = values["nats-user-ttl"] ? Number(values["nats-user-ttl"]) : undefined;
  return { updater, pushAgain, account: keys.account, updaterJwt: keys.updater.jwt, users: { account: keys.account, signer: NKey.fromSeed(keys.accountSigningSeed, "account"), revoker, ttlS } };
}
if (nats && bus instanceof NatsBus) bus.onReconnect(() => nats.pushAgain("the kernel's connection"));
// nats-server's events of the account's connections: a task's process
// whose connection closed is gone now, not at its lease (holders.ts). Not
// with the kernel's log (--journal/--standby: no record carries the lapse).
if (nats && !values.journal && !values.standby) {
  if (hearsDisconnects(nats.updaterJwt, nats.account)) await watchHolders(kernel, nats.updater, nats.account);
  else log.warn("the keys file's account updater may not read the account's DISCONNECT events (keys made before it could): a dead server is known only when its lease lapses; make the keys again (`hurd keys nats-config`)");
}
const traps = new TrapServer(kernel, bus);
traps.start();
// The trace stream for watchers on the bus (hurd.<system>.trace.>): idle until someone asks.
const traceBus = new TraceBus(kernel, bus);
traceBus.start();
await bus.flush();

const boot: Record<string, { taskId: number; token: string; hostPriv: number; nats?: { jwt: string; seed: string; expires: number } }> = {};
for (const name of values.boot!.split(",").filter(Boolean)) {
  const b = kernel.bootTask({ name, hostPriv: true });
  boot[name] = { taskId: b.task.id, token: b.token, hostPriv: b.hostPriv, nats: kernel.bootUser(b.task) };
}
// auth's and proc's store users for the root hurd, with authorization on: init hands each its own, and they restart in place from their buckets.
const stores = kernel.natsUsers ? { auth: kernel.natsUsers.store("", "auth"), proc: kernel.natsUsers.store("", "proc") } : undefined;
if (values["boot-file"]) writeFileSync(values["boot-file"], JSON.stringify({ system: values.system, tasks: boot, stores }, null, 2), { mode: 0o600 });

const claims = secret ? new BootClaims(kernel, bus, secret, { log: say, perHurd }) : null;
claims?.start();

const edge = new Edge(kernel);
let port: number;
try {
  port = await edge.listen(values.grpc!, edgeTls, values["grpc-insecure"]);
} catch (e) {
  fail((e as Error).message);
}
log.info(`bus ${bus.kind}${values.nats ? ` ${values.nats}${nats ? " (authorization on)" : " (NO authorization)"}` : ""}, gRPC edge on ${host}:${port}${edgeTls ? " (TLS)" : ""}${metrics?.endpoint ? `, metrics on ${metrics.endpoint}` : ""}`, { edge: `${host}:${port}` });
// After the boot file is written and the edge listens: what `hurd up --nats` waits for.
await notifyReady({ edge: `${host}:${port}` });

let stopping = false;
async function stop(sig: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info(`${sig}, stopping`);
  await edge.close();
  claims?.stop();
  traceBus.stop();
  traps.stop();
  kernel.close();
  await bus.close();
  await nats?.updater.close();
  await metrics?.shutdown();
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
// Started by `hurd up` with an IPC channel: when hurd up is gone, however it went, so is this kernel.
process.on("disconnect", () => void stop("hurd up is gone"));

/**
 * --journal (the first kernel) and --standby (the second): the state is a
 * log on JetStream (failover.ts). Traps, boot claims and the gRPC edge's
 * Mach calls and streams are logged; the edge listens only while this
 * kernel leads, on the same address whichever kernel that is, so its
 * clients reconnect to the new leader where they found the old one. The
 * gateway and the trace stream are not logged: they answer EOPNOTSUPP
 * (docs/kernel-log.md).
 */
async function replicated(): Promise<never> {
  if (!values.nats) {
    log.fatal("--journal and --standby need --nats (the log is a JetStream stream)");
    process.exit(2);
  }
  const leaseMs = Number(values["lead-lease-ms"]);
  if (!(Number.isFinite(leaseMs) && leaseMs >= 100)) {
    log.fatal("--lead-lease-ms must be a number of ms, at least 100");
    process.exit(2);
  }
  const { Failover: F, SNAPSHOT_BYTES } = await import("./failover.js");
  const snapshotBytes = values["snapshot-bytes"] === undefined || values["snapshot-bytes"] === "" ? SNAPSHOT_BYTES : Number(values["snapshot-bytes"]);
  if (!(Number.isSafeInteger(snapshotBytes) && snapshotBytes >= 0)) fail("--snapshot-bytes (HURD_KERNEL_SNAPSHOT_BYTES) is a number of bytes (0: no snapshots)");
  const replicas = Number(values["log-replicas"]);
  if (!(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) fail("--log-replicas (HURD_KERNEL_LOG_REPLICAS) is 1 to 5 (JetStream's limit): 3 on a cluster of 3 NATS nodes");
  const fault = process.env.HURD_KERNEL_FAULT;
  let killAtDelivery: number | undefined;
  if (fault !== undefined && fault !== "") {
    const m = /^kill-at-delivery:(\d+)$/.exec(fault);
    if (!m) fail(`HURD_KERNEL_FAULT=${fault}: the one fault there is, for tests, is kill-at-delivery:N`);
    killAtDelivery = Number(m[1]);
    say(`HURD_KERNEL_FAULT: this kernel SIGKILLs itself in place of its delivery ${killAtDelivery + 1} while it leads`);
  }
  // Made before the log is replayed: the leader's claims replay into them, so that the new leader knows which hurds are booted.
  const claims = secret ? new BootClaims(kernel, bus, secret, { log: say, perHurd }) : null;
  let edge: Edge | null = null;
  let f: Failover = null as unknown as Failover;
  f = await F.start(kernel, bus as NatsBus, {
    // Host and pid, and a random part: two containers sharing a network namespace (compose's kernel-ha) share a hostname, and both are pid 1.
    id: `${(await import("node:os")).hostname()}:${process.pid}:${(await import("node:crypto")).randomBytes(3).toString("hex")}`,
    leaseMs,
    standby: values.standby!,
    inboxPrefix: kernelInbox,
    claims,
    killAtDelivery,
    snapshotBytes,
    replicas,
    log: say,
    leading: (fresh) => {
      if (fresh) {
        const boot: Record<string, { taskId: number; token: string; hostPriv: number; nats?: { jwt: string; seed: string; expires: number } }> = {};
        for (const name of values.boot!.split(",").filter(Boolean)) {
          const b = kernel.bootTask({ name, hostPriv: true });
          boot[name] = { taskId: b.task.id, token: b.token, hostPriv: b.hostPriv, nats: kernel.bootUser(b.task) };
        }
        const stores = kernel.natsUsers ? { auth: kernel.natsUsers.store("", "auth"), proc: kernel.natsUsers.store("", "proc") } : undefined;
        if (values["boot-file"]) writeFileSync(values["boot-file"], JSON.stringify({ system: values.system, tasks: boot, stores }, null, 2), { mode: 0o600 });
      }
      say(`leading (${fresh ? "fresh log" : `took over after ${f.takeover.served - f.takeover.began} ms`})`);
      claims?.start(f.held!);
      edge = new Edge(kernel);
      void listenWhileLeading(edge);
    },
    deposed: (e) => {
      // Nothing it held back is sent; a supervisor restarts it as a standby.
      log.fatal(`${e.message}; exiting`);
      process.exit(3);
    },
  });
  say(`bus nats ${values.nats}, log ${values.standby ? "standby" : "journal"} (lead lease ${leaseMs} ms); gRPC edge on ${values.grpc} while leading`);
  // A standby is ready once it replays; `hurd up --standby` waits for that before it says the hurd is up.
  if (values.standby && !f.traps) await notifyReady({ standby: true });
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    say(`${sig}, stopping (lead released)`);
    await edge?.close();
    claims?.stop();
    await f.stop(true);
    await bus.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("disconnect", () => void stop("hurd up is gone"));
  return new Promise<never>(() => {});
}

/**
 * The edge of a leader, on --grpc's address. A new leader may find it
 * still bound by the old one (paused, or not yet gone): it waits until the
 * address is free (the old one exits once it finds itself deposed), probed
 * with a plain socket, since a gRPC server whose bind failed does not bind
 * again.
 */
async function listenWhileLeading(edge: Edge): Promise<void> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(values.grpc!);
  const { createServer } = await import("node:net");
  for (let tries = 0; m && Number(m[2]) !== 0; tries++) {
    const probe = createServer();
    const free = await new Promise<boolean>((r) => probe.once("error", () => r(false)).listen(Number(m[2]), m[1], () => r(true)));
    if (free) {
      await new Promise((r) => probe.close(r));
      break;
    }
    if (tries % 50 === 0) say(`gRPC edge: ${values.grpc} is still bound (the old leader?); trying again`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    const port = await edge.listen(values.grpc!, edgeTls, values["grpc-insecure"]);
    log.info(`gRPC edge on ${host}:${port}${edgeTls ? " (TLS)" : ""} (leading)`, { edge: `${host}:${port}` });
    await notifyReady({ edge: `${host}:${port}` });
  } catch (e) {
    fail(`gRPC edge: ${(e as Error).message}`);
  }
}

// hurd keys compose: the secrets of a docker compose deployment, made once
// by its one-shot `keys` service, one folder per consumer, each a named
// volume of its own so that each service mounts only what it needs,
// read-only (volume.subpath would do it with one volume, but needs Docker
// Engine 26, and CI's engine is Debian's 20.10):
//
//   nats/nats.conf          operator mode, the accounts preloaded, nobody anonymous, TLS only (JWTs only: public)
//   nats/nats.crt, .key     NATS's certificate (nats, localhost, 127.0.0.1), issued by the private CA
//   ca/ca.crt               that CA: every server checks NATS's certificate against it (HURD_NATS_CA_FILE)
//   kernel/nats-keys.json   the fabric's signing keys (0600): the kernel mints and revokes every user
//   kernel/edge.crt, .key   the gRPC edge's certificate, issued by the private CA
//   kernel/ca.crt           for its health probe, which dials the edge
//   kernel/complete         written last: a set without it is remade whole
//   kernel/generated-boot-key  the boot key unless HURD_BOOT_KEY overrides it
//   kernel/boot-key         the boot key (0600): the kernel checks every hurd's boot claim against it
//   <init>/boot-secret      that hurd's own boot secret (0600), derived from the boot key
//                           (hurdBootSecret, as in Kubernetes): its init claims that hurd's boot and
//                           no other's, so one init's container broken into claims no other hurd
//   <server>/nats.creds     each boot server's container's own NATS user (init: its hurd's boot
//                           claim; proc, auth: their own launch order), for the root hurd and each subhurd
//   <init>/ca.crt           what init puts in the session file, so `hurd` verifies the edge
//
// The CA's private key is dropped once NATS's and the edge's certificates are issued:
// nothing can issue another. A complete set is kept as it is; `docker
// compose down -v` makes a new one. HURD_BOOT_KEY, when set, replaces the generated boot
// key on every run (the .env override: every hurd's secret is derived from
// it again), and the generated one comes back when it is unset. Nothing
// secret is printed.
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, readdirSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { CliError } from "./errors.js";

/** Where the nats service mounts the nats folder (docker-compose.yml): nats.conf names its certificate there. */
export const NATS_MOUNT = "/etc/hurdmesh/nats";

/** Written last, in the kernel's folder: a set without it is remade whole. */
export const COMPLETE = "kernel/complete";
const GENERATED = "kernel/generated-boot-key";

export interface ComposeKeysOptions {
  dir: string;
  /** The hurdmesh system (HURD_SYSTEM): the subjects the users are scoped to. */
  system: string;
  /** The subhurds with containers of their own ("second"): their inits', procs' and auths' users. */
  subhurds: string[];
  /** Names and addresses the edge is dialled by, besides kernel, localhost and 127.0.0.1. */
  edgeHosts: string[];
  /** nats-server's JetStream store directory inside its container; "" for none. */
  jetstreamDir: string;
  /** The .env override of the boot key; "" for the generated one. */
  bootKey: string;
  /** uid:gid every folder and file is given (the hurdmesh image's user, when this runs as root); absent: left as made. */
  owner?: { uid: number; gid: number };
}

/** A hurd's name as a folder name: "" is the root hurd. */
const folder = (hurd: string, server: string) => (hurd ? `${hurd}-${server}` : server);

function put(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Gives every folder under `dir` (the volumes' mount points among them, made by Docker as root, 0700 then) and every file to `owner`. */
function own(dir: string, owner: { uid: number; gid: number }): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      chmodSync(p, 0o700);
      own(p, owner);
    }
    chownSync(p, owner.uid, owner.gid);
  }
}

function checkOptions(o: ComposeKeysOptions): void {
  if (!/^[A-Za-z0-9_-]+$/.test(o.system)) throw new CliError(`not a hurdmesh system name: ${JSON.stringify(o.system)}`);
  for (const h of o.subhurds) if (!/^[a-z0-9][a-z0-9-]*$/.test(h)) throw new CliError(`not a subhurd name: ${JSON.stringify(h)}`);
  for (const h of o.edgeHosts) if (!isIP(h) && !/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(h)) throw new CliError(`not a host name or IP address: ${JSON.stringify(h)}`);
  if (o.bootKey && o.bootKey.length < 16) throw new CliError("HURD_BOOT_KEY is shorter than 16 characters: anyone who guesses it can claim every hurd's boot task");
}

/** Makes the set in `o.dir` unless a complete one is there; returns whether it made one. */
export async function composeKeys(o: ComposeKeysOptions): Promise<boolean> {
  checkOptions(o);
  // A set from before per-hurd boot secrets (no boot key) is remade whole.
  const made = !existsSync(join(o.dir, COMPLETE)) || !existsSync(join(o.dir, GENERATED));
  if (made) await makeAll(o);
  // The boot key the kernel reads, the override else the one generated with
  // the set, and each hurd's secret from it, in that hurd's init's folder.
  const { hurdBootSecret } = await import("@hurdmesh/kernel");
  const key = o.bootKey || readFileSync(join(o.dir, GENERATED), "utf8");
  put(join(o.dir, "kernel", "boot-key"), key, 0o600);
  // The set's hurds are its inits' folders (a later run may name fewer subhurds: their secrets must follow the key too).
  for (const d of readdirSync(o.dir)) {
    const hurd = d === "init" ? "" : d.endsWith("-init") ? d.slice(0, -"-init".length) : null;
    if (hurd !== null) put(join(o.dir, d, "boot-secret"), hurdBootSecret(key, hurd), 0o600);
  }
  if (o.owner) own(o.dir, o.owner);
  return made;
}

async function makeAll(o: ComposeKeysOptions): Promise<void> {
  const { credsFile, fabricServerConfig, issueCert, makeCA, makeFabricKeys, mintUser, NKey, permissionsFor, writeFabricKeys } = await import("@hurdmesh/mach/nats-auth");
  const dir = (name: string) => {
    const d = join(o.dir, name);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  };
  const keys = makeFabricKeys(o.system, { jetstream: !!o.jetstreamDir });
  writeFabricKeys(join(dir("kernel"), "nats-keys.json"), keys);

  const ca = await makeCA({ name: `hurdmesh ${o.system} compose CA` });
  // NATS speaks TLS only: its traffic carries every task's token and crosses the compose network.
  const nats = await issueCert(ca, { dns: ["nats", "localhost"], ip: ["127.0.0.1"] });
  put(join(dir("nats"), "nats.crt"), nats.certPem, 0o644);
  put(join(dir("nats"), "nats.key"), nats.keyPem, 0o600);
  const tls = { certFile: `${NATS_MOUNT}/nats.crt`, keyFile: `${NATS_MOUNT}/nats.key` };
  put(join(dir("nats"), "nats.conf"), fabricServerConfig(keys, { host: "0.0.0.0", port: 4222, jetstreamDir: o.jetstreamDir || undefined, tls }), 0o644);
  put(join(dir("ca"), "ca.crt"), ca.certPem, 0o644);
  const hosts = ["kernel", "localhost", "127.0.0.1", ...o.edgeHosts];
  const cert = await issueCert(ca, { dns: [...new Set(hosts.filter((h) => !isIP(h)))], ip: [...new Set(hosts.filter((h) => isIP(h)))] });
  put(join(dir("kernel"), "edge.crt"), cert.certPem, 0o644);
  put(join(dir("kernel"), "edge.key"), cert.keyPem, 0o600);
  put(join(dir("kernel"), "ca.crt"), ca.certPem, 0o644);

  // Role users carry no expiry: each can do one thing (claim with the boot secret, take its own launch order).
  const signer = NKey.fromSeed(keys.accountSigningSeed, "account");
  for (const hurd of ["", ...o.subhurds]) {
    const init = dir(folder(hurd, "init"));
    put(join(init, "nats.creds"), credsFile(mintUser(signer, keys.account, `compose ${folder(hurd, "init")}`, permissionsFor(o.system, { kind: "boot-claim", hurd }))), 0o600);
    put(join(init, "ca.crt"), ca.certPem, 0o644);
    for (const server of ["proc", "auth"]) {
      const d = dir(folder(hurd, server));
      put(join(d, "nats.creds"), credsFile(mintUser(signer, keys.account, `compose ${folder(hurd, server)}`, permissionsFor(o.system, { kind: "launch", hurd, server }))), 0o600);
    }
  }
  put(join(o.dir, GENERATED), randomBytes(32).toString("base64url"), 0o600);
  put(join(o.dir, COMPLETE), `${new Date().toISOString()}\n`, 0o644);
}

/** The command: options as commander gives them, the override from the environment (never argv). */
export async function composeKeysCommand(o: { dir: string; system: string; subhurds: string; edgeHosts: string; jetstream: string; owner?: string }): Promise<void> {
  const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
  const m = o.owner ? /^(\d+):(\d+)$/.exec(o.owner) : null;
  if (o.owner && !m) throw new CliError(`--owner takes UID:GID, not ${JSON.stringify(o.owner)}`);
  const owner = m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
  // One secret shared by every hurd is what this replaced: say so rather than ignore it.
  if (process.env.HURD_BOOT_SECRET)
    throw new CliError("HURD_BOOT_SECRET is no longer read: each hurd's boot secret is derived from the boot key; set HURD_BOOT_KEY (16 characters at least) to choose that key");
  const bootKey = process.env.HURD_BOOT_KEY ?? "";
  delete process.env.HURD_BOOT_KEY;
  const made = await composeKeys({ dir: o.dir, system: o.system, subhurds: list(o.subhurds), edgeHosts: list(o.edgeHosts), jetstreamDir: o.jetstream, bootKey, owner });
  process.stderr.write(
    `hurd: ${made ? "new" : "kept the"} NATS keys, edge certificate and role users in ${o.dir}; boot key ${bootKey ? "from HURD_BOOT_KEY" : "generated"}, one boot secret per hurd\n`,
  );
}

// hurd up: boots a hurd. Embedded (default): every server in this process on
// the in-process bus, the kernel's gRPC edge on a loopback port. With --nats:
// the kernel, init, proc, auth and pid 1 each run as their own OS process,
// on a nats-server of its own (no URL) or the one given, with NATS
// authorization on (the README's Security section): every process connects
// as its own NATS user, which the kernel mints.
//
// TLS: the edge off loopback gets a certificate of a private CA made now;
// NATS of its own stays plaintext on loopback. --tls-cert/--tls-key/--tls-ca
// (HURD_TLS_CERT/KEY/CA) give certificates of the user's instead: the edge
// serves them wherever it listens, a nats-server of its own does too (its
// clients check it against the CA), and a server given by URL is checked
// against that CA.
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { InProcessLauncher } from "@hurdmesh/boot";
import { BOOT_NAMES, Init, serveSubhurds } from "@hurdmesh/init";
import { Edge, Kernel, TraceBus, TrapServer } from "@hurdmesh/kernel";
import { createLogger, LocalHub, MsgType, Task, type LogSink } from "@hurdmesh/mach";
import { READY_FD_ENV } from "@hurdmesh/mach/internal";
import { globalTelemetry, installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { nodeImports, startMetrics, telemetryFromEnv, type SdkMetrics } from "@hurdmesh/telemetry-sdk";
import type { NatsServerProcess } from "@hurdmesh/mach/nats-auth";
import { checkListen } from "./args.js";
import { CliError } from "./errors.js";
import { natsKeysFor } from "./keys.js";
import { sessionPath } from "./session.js";

export interface UpOptions {
  /** Run every server as its own process on NATS: at this URL, or (true) on a nats-server of its own. */
  nats?: string | boolean;
  /** With a URL: run without NATS authorization (a server that lets anonymous clients in). */
  natsInsecure?: boolean;
  /** The NATS keys file (default HURD_NATS_KEYS, then the state directory's, made by `hurd keys nats-config`). */
  natsKeys?: string;
  grpc: string;
  hurd: string;
  command?: string[];
  quiet?: boolean;
  /** After an essential server's death, boot the hurd again (embedded mode). */
  rebootOnCrash?: boolean;
  /** Also serve `hurd web` (true: on 127.0.0.1:7410). */
  web?: string | boolean;
  /** With --nats: the kernel's state as a log on JetStream (hurd-kernel --journal; docs/kernel-log.md). */
  journal?: boolean;
  /** With --nats: a second kernel that replays the log and takes over when the first dies (implies journal). */
  standby?: boolean;
  /** The user's certificate, its key and the CA that signed it (PEM files; default HURD_TLS_CERT, HURD_TLS_KEY, HURD_TLS_CA): all three or none. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

/** A certificate of the user's, checked: its files and their text. */
interface UserTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  certPem: string;
  keyPem: string;
  caPem: string;
  cert: X509Certificate;
}

/**
 * The user's certificate (--tls-cert/--tls-key/--tls-ca, else HURD_TLS_*),
 * or null when none is given. Every way it can be wrong is said here, with
 * the file named, before anything starts: a file missing or unreadable, one
 * that is not PEM, a key that is not the certificate's, a certificate the
 * CA did not sign or no longer valid. The environment's names are taken out
 * (pid 1's programs inherit this process's environment).
 */
export function userTls(o: Pick<UpOptions, "tlsCert" | "tlsKey" | "tlsCa">, env: NodeJS.ProcessEnv = process.env): UserTls | null {
  const given = { "--tls-cert": o.tlsCert ?? env.HURD_TLS_CERT, "--tls-key": o.tlsKey ?? env.HURD_TLS_KEY, "--tls-ca": o.tlsCa ?? env.HURD_TLS_CA };
  delete env.HURD_TLS_CERT;
  delete env.HURD_TLS_KEY;
  delete env.HURD_TLS_CA;
  const missing = Object.entries(given).filter(([, v]) => !v).map(([k]) => k);
  if (missing.length === 3) return null;
  if (missing.length) throw new CliError(`--tls-cert, --tls-key and --tls-ca go together (or HURD_TLS_CERT, HURD_TLS_KEY, HURD_TLS_CA): ${missing.join(" and ")} missing`);
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (e) {
      throw new CliError(`${flag} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
    }
  };
  const certFile = resolve(given["--tls-cert"]!);
  const keyFile = resolve(given["--tls-key"]!);
  const caFile = resolve(given["--tls-ca"]!);
  const [certPem, keyPem, caPem] = [read("--tls-cert", certFile), read("--tls-key", keyFile), read("--tls-ca", caFile)];
  const x509 = (flag: string, file: string, pem: string) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new CliError(`${flag} ${file}: not a PEM certificate`);
    }
  };
  const cert = x509("--tls-cert", certFile, certPem);
  const ca = x509("--tls-ca", caFile, caPem);
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new CliError(`--tls-key ${keyFile}: not a PEM private key (unencrypted)`);
  }
  if (!cert.checkPrivateKey(key)) throw new CliError(`--tls-key ${keyFile} is not the key of the certificate in ${certFile}`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new CliError(`the certificate in ${certFile} is not signed by the CA in ${caFile} (give the CA that signed it directly)`);
  const now = Date.now();
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) throw new CliError(`the certificate in ${certFile} is not valid now (${cert.validFrom} to ${cert.validTo})`);
  return { certFile, keyFile, caFile, certPem, keyPem, caPem, cert };
}

/** That `cert` names `host` (a DNS name or an address), as a client dialling it checks. */
function checkNames(t: UserTls, host: string, what: string): void {
  const ok = isIP(host) ? t.cert.checkIP(host) : t.cert.checkHost(host);
  if (!ok) throw new CliError(`the certificate in ${t.certFile} does not name ${host}, which ${what} is dialled by (its names: ${t.cert.subjectAltName ?? "none"})`);
}

export async function up(o: UpOptions): Promise<number> {
  const session = sessionPath(o.hurd);
  if (typeof o.web === "string") checkListen(o.web);
  // -q: warnings and errors only, here and in the servers this starts (they inherit the environment).
  if (o.quiet && !process.env.HURD_LOG_LEVEL) process.env.HURD_LOG_LEVEL = "warn";
  const log = createLogger("hurd-up", { hurd: o.hurd });
  const say = log.sink;
  if ((o.journal || o.standby) && !o.nats) throw new CliError("--journal and --standby need --nats (the kernel's log is a JetStream stream)");
  // Read and checked once, before anything starts (a reboot keeps it).
  const own = userTls(o);
  if (o.nats) return upNats(o, session, performance.now(), own);
  let stopping = false;
  for (;;) {
    const r = await upEmbedded(o, session, say, () => stopping, () => (stopping = true), own);
    // A crash reboots the hurd only when asked (--reboot-on-crash); a shutdown never does.
    if (r.code === 0 || !o.rebootOnCrash || stopping) return r.code;
    say(`hurd ${o.hurd}: rebooting after the crash`);
  }
}

let metrics: Promise<SdkMetrics | null> | null = null;

/** One life of an embedded hurd: a fresh kernel, init's boot, until it halts. */
async function upEmbedded(o: UpOptions, session: string, say: LogSink, stopping: () => boolean, stop: () => void, own: UserTls | null): Promise<{ code: number }> {
  const t0 = performance.now();
  // Spans when the OTEL_* environment asks for them; embedded, the servers
  // run in this process, so their handler spans too.
  const telemetry = telemetryFromEnv("hurd-kernel", process.env, { bus: "local", hurd: o.hurd, serverAddress: o.grpc });
  if (telemetry && !globalTelemetry()) {
    setGlobalTelemetry(telemetry);
    installTracingHooks(telemetry);
  }
  // Metrics only when asked (HURD_METRICS_ADDR, OTEL_METRICS_EXPORTER): one set for the process, across reboots.
  metrics ??= startMetrics("hurd", process.env, { hurd: o.hurd });
  const m = await metrics;
  const kernel = new Kernel({ system: o.hurd }, { telemetry, metrics: m });
  const hub = new LocalHub();
  const kbus = hub.connect();
  const traps = new TrapServer(kernel, kbus);
  traps.start();
  // In-process servers may watch the trace stream on the bus as they would on NATS.
  const traceBus = new TraceBus(kernel, kbus);
  traceBus.start();
  const edge = new Edge(kernel);
  // The user's certificate; else off loopback a private CA's, made now. The session carries the CA.
  const tls = own ?? (await edgeTlsFor(o.grpc));
  const host = reachable(o.grpc.replace(/:\d+$/, ""), tls !== null);
  if (own) checkNames(own, host, "the edge");
  const port = await edge.listen(o.grpc, own ? await renewable(own, o.hurd, host) : tls);
  const edgeCa = tls?.caPem;
  const boot = kernel.bootTask({ name: "init", hostPriv: true });
  const attach = (taskId: number, token: string) => Task.attach({ bus: hub.connect(), system: o.hurd, taskId, token, window: 1024, timeoutMs: 30_000 });
  const initTask = await attach(boot.task.id, boot.token);
  const initLog = createLogger("init", { hurd: o.hurd });
  const init = new Init({ task: initTask, hostPriv: boot.hostPriv, launcher: new InProcessLauncher(attach, { command: o.command }) });
  await init.boot();
  const subhurds = await serveSubhurds(initTask, {
    root: o.hurd,
    hostPriv: boot.hostPriv,
    attach,
    launcher: () => new InProcessLauncher(attach),
    say: initLog.sink,
    log: initLog,
    publish: (name, c, parent, system) => writeFileSync(sessionPath(name), JSON.stringify({ system, edge: `${host}:${port}`, edgeCa, console: c, parent }, null, 2), { mode: 0o600 }),
    unpublish: (name) => rmSync(sessionPath(name), { force: true }),
  });
  const console_ = await init.makeConsole([{ name: BOOT_NAMES.subhurds, port: subhurds.port, disposition: MsgType.MSG_TYPE_MAKE_SEND }]);
  writeFileSync(session, JSON.stringify({ system: o.hurd, edge: `${host}:${port}`, edgeCa, console: console_ }, null, 2), { mode: 0o600 });
  const onSignal = () => {
    stop();
    // Subhurds first, innermost first, each cleanly; then this hurd.
    void subhurds.removeAll().then(() => init.reboot());
  };
  // Before saying it is up: a Ctrl-C from then on is a clean shutdown.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  say(`hurd ${o.hurd} is up in ${Math.round(performance.now() - t0)} ms: gRPC edge on ${host}:${port}${own ? " (TLS, the certificate given)" : tls ? " (TLS, a private CA of its own)" : ""} (embedded, in-process bus)`);
  // hurd web beside it, attached through the edge as the command would be.
  const web = o.web ? await (await import("./web.js")).startWebFor(o.hurd, { listen: typeof o.web === "string" ? o.web : undefined, quiet: o.quiet }) : null;
  if (web) say(`hurd web: ${web.server.url}`);
  if (m?.endpoint) say(`metrics on ${m.endpoint}`);
  say(`try: npx hurd ps    (Ctrl-C shuts it down)`);
  const code = await init.halted;
  await web?.close().catch(() => {});
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  rmSync(session, { force: true });
  await edge.close();
  traceBus.stop();
  traps.stop();
  kernel.close();
  void stopping;
  say(`hurd ${o.hurd} halted${code ? ` (crash, status ${code})` : ""}`, code ? "error" : "info");
  return { code };
}

/**
 * A directory that goes when this process goes, however it goes (SIGKILL
 * included): a shell waits for its stdin, a pipe from here, to close, then
 * removes it. `done()` removes it now.
 */
function privateDir(prefix: string): { path: string; done(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(path, 0o700);
  const sweeper = spawn("sh", ["-c", 'cat >/dev/null; rm -rf "$1"', "sh", path], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  sweeper.unref();
  (sweeper.stdin as unknown as { unref?: () => void }).unref?.();
  return {
    path,
    done() {
      rmSync(path, { recursive: true, force: true });
      sweeper.stdin!.end();
    },
  };
}

/** Where NATS authorization comes from: keys to mint with (a file), or none (--nats-insecure). */
interface NatsPlan {
  url: string;
  keysFile: string | null;
  server: NatsServerProcess | null;
  /** The own server's JetStream directory, removed once it has stopped. */
  jetstream?: { done(): void };
  /** The own server told to reload when the user's certificate files are renewed (stopped before the server). */
  reload?: { stop(): void };
}

/**
 * The NATS this hurd runs on. No URL: a nats-server of its own, configured
 * with keys made now (they live in the private directory and die with the
 * hurd). A URL: a server that refuses anonymous clients and holds this
 * hurd's keys (`hurd keys nats-config` printed its configuration and wrote
 * them), or with --nats-insecure any server, without authorization.
 */
async function natsFabric(o: UpOptions, dir: string, say: (l: string) => void, own: UserTls | null): Promise<NatsPlan> {
  const { acceptsAnonymous, fabricServerConfig, makeFabricKeys, reloadOnRenewal, startNatsServer, writeFabricKeys } = await import("@hurdmesh/mach/nats-auth");
  // With the user's certificate every client of the fabric checks NATS's against its CA: the
  // kernel and init inherit this, the servers they start too (never pid 1's programs: HURD_NATS_* is the fabric's).
  if (own) process.env.HURD_NATS_CA_FILE = own.caFile;
  if (typeof o.nats !== "string") {
    const keysFile = join(dir, "nats-keys.json");
    // JetStream on: auth writes its handles through to it and restarts in place from them.
    writeFabricKeys(keysFile, makeFabricKeys(o.hurd, { jetstream: true }));
    // The store outlives the private directory (gone once the hurd is up): a directory of its own, gone with the server.
    const js = privateDir("hurd-up-js-");
    // The configuration too: nats-server reads it again when it reloads (a renewed certificate, below).
    // It holds the operator's and accounts' JWTs (public) and the certificate's paths, no seed.
    const conf = join(js.path, "nats.conf");
    // Plaintext on loopback unless the user gave a certificate: then TLS only, with it. Its clients dial
    // 127.0.0.1, and nats.js checks a certificate dialled by address against the name localhost (the
    // socket it upgrades to TLS has no server name): the certificate must name localhost.
    if (own) checkNames(own, "localhost", "NATS of its own (at 127.0.0.1: nats.js checks the name localhost)");
    const tls = own ? { certFile: own.certFile, keyFile: own.keyFile } : undefined;
    writeFileSync(conf, fabricServerConfig((await import("@hurdmesh/mach/nats-auth")).readFabricKeys(keysFile), { port: -1, jetstreamDir: js.path, tls }), { mode: 0o600 });
    const server = await startNatsServer(conf, { env: { ...process.env, HURD_SYSTEM: o.hurd } }).catch((e: Error) => {
      js.done();
      throw new CliError(e.message);
    });
    // The user's files renewed (cert-manager, a copy over them): the server reloads them, checked first against the CA its clients trust.
    let reload;
    if (own) {
      try {
        const { issuedBy } = await import("@hurdmesh/mach/edge");
        reload = reloadOnRenewal(server, own.certFile, own.keyFile, createLogger("hurd-up", { hurd: o.hurd }), { verify: issuedBy(own.caFile, "localhost") });
      } catch (e) {
        await server.stop();
        js.done();
        throw new CliError((e as Error).message);
      }
    }
    return { url: own ? `tls://127.0.0.1:${server.port}` : server.url, keysFile, server, jetstream: js, reload };
  }
  const url = o.nats;
  const anonymous = await acceptsAnonymous(url).catch((e: Error) => {
    throw new CliError(e.message);
  });
  if (o.natsInsecure) {
    say(`hurd ${o.hurd}: NATS authorization is OFF (--nats-insecure): anyone who reaches ${url} can read every token and forge any message`);
    return { url, keysFile: null, server: null };
  }
  const { keysFile, created } = await natsKeysFor(o.hurd, o.natsKeys);
  if (anonymous) {
    const { readFabricKeys } = await import("@hurdmesh/mach/nats-auth");
    // A cluster's URLs: the configuration printed is for the first node (each node takes the same keys).
    const u = new URL(url.split(",")[0]!.trim());
    process.stdout.write(fabricServerConfig(readFabricKeys(keysFile), { host: u.hostname, port: Number(u.port || 4222) }));
    throw new CliError(
      `the nats-server at ${url} lets anonymous clients in, so anyone who reaches it could read every task's token: run it with the configuration above (nats-server -c FILE; its keys ${created ? "are now" : "are"} in ${keysFile}), or use --nats-insecure`,
    );
  }
  return { url, keysFile, server: null };
}

async function upNats(o: UpOptions, session: string, t0: number, own: UserTls | null): Promise<number> {
  const log = createLogger("hurd-up", { hurd: o.hurd });
  const say = (l: string) => !o.quiet && log.info(l);
  // Keys, the server's configuration and the boot file: 0700, gone once the hurd is up, and gone anyway if this process dies.
  const dir = privateDir("hurd-up-");
  const bootFile = join(dir.path, "boot.json");
  let nats: NatsPlan | null = null;
  let kernel: ChildProcess | null = null;
  let init: ChildProcess | null = null;
  /** With --standby: the kernels that replay the log (the first kernel's successors). */
  const standbys = new Set<ChildProcess>();
  let stopping = false;
  let stopped: Promise<void> | null = null;
  // Bounded whatever the children do (a kernel or init stuck on a bus that
  // is gone ignored SIGTERM once): each gets STOP_GRACE_MS after SIGTERM,
  // then SIGKILL; the nats-server of its own the same (its stop()).
  const stopAll = () =>
    (stopped ??= (async () => {
      stopping = true;
      if (init) await stopChild(init);
      // Every kernel at once: a standby stopped after its leader could take over a hurd that is shutting down.
      await Promise.all([...standbys, kernel].map((k) => (k ? stopChild(k) : undefined)));
      nats?.reload?.stop();
      await nats?.server?.stop();
      nats?.jetstream?.done();
      dir.done();
    })());
  // A signal before the hurd is up ends whatever has started (the awaited
  // readiness then fails, and the error says why); once it is up, init
  // shuts the hurd down in order, within STOP_GRACE_MS, and the rest follows.
  let signalled: string | null = null;
  let isUp = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = sig;
    if (isUp && init) void stopChild(init, sig);
    else void stopAll();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    nats = await natsFabric(o, dir.path, say, own);
    if (signalled) throw new CliError(`stopped by ${signalled} before the hurd was up`);
    // Sources or dist/, as this process runs (the package's export conditions).
    const kmain = fileURLToPath(import.meta.resolve("@hurdmesh/kernel/main"));
    const imain = fileURLToPath(import.meta.resolve("@hurdmesh/boot/startup"));
    const auth = nats.keysFile ? ["--nats-keys", nats.keysFile] : ["--nats-insecure"];
    // The user's certificate for the edge (its files as given); else off loopback a private CA's: its certificate and key for the kernel, its CA for init (files in the private directory).
    const tls = own ?? (await edgeTlsFor(o.grpc));
    const edgeTls: string[] = [];
    const caArgs: string[] = [];
    if (own) {
      checkNames(own, reachable(o.grpc.replace(/:\d+$/, ""), true), "the edge");
      // --grpc-ca: the kernel refuses a renewal its clients would (another CA's), as the embedded edge does.
      edgeTls.push("--grpc-cert", own.certFile, "--grpc-key", own.keyFile, "--grpc-ca", own.caFile);
      caArgs.push("--edge-ca", own.caFile);
    } else if (tls) {
      for (const [f, pem] of [["edge.crt", tls.certPem], ["edge.key", tls.keyPem], ["edge-ca.crt", tls.caPem]] as const) writeFileSync(join(dir.path, f), pem, { mode: 0o600 });
      edgeTls.push("--grpc-cert", join(dir.path, "edge.crt"), "--grpc-key", join(dir.path, "edge.key"));
      caArgs.push("--edge-ca", join(dir.path, "edge-ca.crt"));
    }
    // With a standby, both kernels listen on one address (whichever leads): the session's edge stays right across a takeover.
    const grpcAt = o.standby ? await fixedPort(o.grpc) : o.grpc;
    const logArgs = o.journal || o.standby ? ["--journal"] : [];
    const kargs = [...nodeImports(), kmain, "--nats", nats.url, ...auth, "--grpc", grpcAt, ...edgeTls, "--system", o.hurd];
    kernel = spawn(process.execPath, [...kargs, ...logArgs, "--boot", "init", "--boot-file", bootFile], readyStdio());
    kernel.channel?.unref();
    // Ready, or ended: a kernel that cannot start (its port taken, NATS not
    // there) exits and says why on stderr. The time limit is only against a
    // hang, far past a start on a loaded machine (from sources, tens of seconds).
    const k = await readiness(kernel, START_LIMIT_MS);
    if (signalled) throw new CliError(`stopped by ${signalled} before the hurd was up`);
    if (!k?.edge) throw new CliError(`the kernel did not start (${await ended(kernel)})`);
    const edgeSaid = String(k.edge);
    // The edge as the session and pid 1's programs name it.
    const edgeAddr = `${reachable(edgeSaid.replace(/:\d+$/, ""), tls !== null)}:${/:(\d+)$/.exec(edgeSaid)?.[1] ?? ""}`;
    if (o.standby) {
      // A standby starts from the log's newest snapshot and replays what follows; a kernel that exits (the leader killed, a deposed one) is replaced by a new standby.
      const replacements: number[] = [];
      /** Whether a kernel may be replaced now: not in a crash loop (STANDBY_RESTARTS within STANDBY_WINDOW_MS). */
      const mayReplace = (): boolean => {
        const now = Date.now();
        while (replacements.length > 0 && now - replacements[0]! > STANDBY_WINDOW_MS) replacements.shift();
        if (replacements.length >= STANDBY_RESTARTS) return false;
        replacements.push(now);
        return true;
      };
      const startStandby = async (): Promise<void> => {
        const sb = spawn(process.execPath, [...kargs, "--standby"], readyStdio());
        sb.channel?.unref();
        standbys.add(sb);
        sb.once("exit", () => {
          standbys.delete(sb);
          if (stopping) return;
          if (!mayReplace()) return say(`hurd ${o.hurd}: a kernel exited; ${STANDBY_RESTARTS} standbys started in the last ${STANDBY_WINDOW_MS / 1000} s already (a crash loop?), none started again`);
          say(`hurd ${o.hurd}: a kernel exited (${sb.signalCode ?? `status ${sb.exitCode}`}); starting a new standby`);
          void startStandby();
        });
        if (!(await readiness(sb, START_LIMIT_MS)) && !stopping) say(`hurd ${o.hurd}: the standby kernel did not start (${await ended(sb)})`);
      };
      kernel.once("exit", () => {
        if (stopping || !mayReplace()) return;
        say(`hurd ${o.hurd}: the first kernel exited (${kernel!.signalCode ?? `status ${kernel!.exitCode}`}); its standby leads, starting a new standby`);
        void startStandby();
      });
      await startStandby();
    }
    if (signalled) throw new CliError(`stopped by ${signalled} before the hurd was up`);
    init = spawn(process.execPath, [...nodeImports(), imain, "--nats", nats.url, "--boot-file", bootFile, "--session", session, "--edge", edgeAddr, ...caArgs, "--", ...(o.command ?? [])], readyStdio());
    init.channel?.unref();
    const exited = new Promise<number>((r) => init!.on("exit", (c) => r(c ?? 1)));
    const booted = await readiness(init, START_LIMIT_MS);
    if (signalled) throw new CliError(`stopped by ${signalled} before the hurd was up`);
    if (!booted) throw new CliError(`init did not boot the hurd (${await ended(init)})`);
    // Everyone has read what they needed from the private directory.
    dir.done();
    say(
      `hurd ${o.hurd} is up in ${Math.round(performance.now() - t0)} ms: gRPC edge on ${edgeAddr}${own ? " (TLS, the certificate given)" : tls ? " (TLS, a private CA of its own)" : ""} (each server its own process on ${nats.url}${nats.server ? ", a nats-server of its own" : ""}, NATS authorization ${nats.keysFile ? "on" : "OFF"}${o.standby ? ", the kernel's log on JetStream with a standby" : o.journal ? ", the kernel's log on JetStream" : ""})`,
    );
    isUp = true;
    const code = await exited;
    await stopAll();
    rmSync(session, { force: true });
    say(`hurd ${o.hurd} halted${code ? ` (status ${code})` : ""}`);
    return code;
  } catch (e) {
    await stopAll();
    // A server that came up after a signal had stopped everything else.
    nats?.reload?.stop();
    await nats?.server?.stop();
    nats?.jetstream?.done();
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** How long init and each kernel have to stop after SIGTERM before SIGKILL: `hurd up --nats` ends within about three of these. */
const STOP_GRACE_MS = 5_000;

/** Stops a child: `sig`, then SIGKILL after STOP_GRACE_MS; resolves once it has exited. */
async function stopChild(child: ChildProcess, sig: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill(sig);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_GRACE_MS)));
  if (await Promise.race([exit.then(() => false), late])) child.kill("SIGKILL");
  clearTimeout(timer);
  await exit;
}

/**
 * The user's certificate files served by the in-process edge, taken again
 * when they are renewed (@hurdmesh/mach/edge's edgeTlsFromFiles). With
 * --nats the kernel's process does the same with the files it is given.
 */
async function renewable(own: UserTls, hurd: string, host: string) {
  const { edgeTlsFromFiles, issuedBy } = await import("@hurdmesh/mach/edge");
  try {
    // A renewal from another CA, or without the name clients dial, is refused like a bad file.
    return edgeTlsFromFiles(own.certFile, own.keyFile, createLogger("hurd-up", { hurd }), process.env, issuedBy(own.caFile, host));
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/**
 * The edge's TLS for `hurd up --grpc ADDRESS`: none on loopback (nobody
 * else can listen there); elsewhere a private CA made for this hurd and a
 * certificate for the address (and loopback, for the commands run here).
 */
async function edgeTlsFor(address: string): Promise<{ certPem: string; keyPem: string; caPem: string } | null> {
  const { hostOf, isLoopback } = await import("@hurdmesh/mach/edge");
  if (isLoopback(address)) return null;
  const { issueCert, makeCA } = await import("@hurdmesh/mach/nats-auth");
  const host = hostOf(address);
  const ca = await makeCA({ name: "hurdmesh edge CA" });
  const ips = ["127.0.0.1", "::1", ...(isIP(host) && host !== "0.0.0.0" && host !== "::" ? [host] : [])];
  const dns = ["localhost", ...(host && !isIP(host) ? [host] : []), hostname()];
  const cert = await issueCert(ca, { ip: ips, dns });
  return { ...cert, caPem: ca.certPem };
}

/**
 * Where this host's commands reach an edge bound to `host`: a wildcard
 * address by loopback, named "localhost" with TLS (the certificate names
 * it, and TLS's server name is a DNS name, never an address: RFC 6066).
 */
function reachable(host: string, tls: boolean): string {
  if (host !== "0.0.0.0" && host !== "::" && host !== "[::]") return host;
  return tls ? "localhost" : "127.0.0.1";
}

/**
 * How many standby kernels `hurd up --standby` starts in place of kernels
 * that exited within STANDBY_WINDOW_MS: a kernel that keeps dying at once
 * is not restarted forever. Any number over a hurd's life: a new standby
 * starts from the log's newest snapshot, so the hundredth costs what the
 * first did.
 */
const STANDBY_RESTARTS = 10;
const STANDBY_WINDOW_MS = 60_000;

/** `host:port` with a port chosen now when it is 0: the kernels of a log take turns on one address. */
async function fixedPort(address: string): Promise<string> {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m || m[2] !== "0") return address;
  const { createServer } = await import("node:net");
  const s = createServer();
  const host = m[1]!.replace(/^\[|\]$/g, "");
  await new Promise<void>((r, j) => s.once("error", j).listen(0, host, r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return `${m[1]}:${port}`;
}

/** How long the kernel and init may take to say they are ready before hurd up gives up on them. */
const START_LIMIT_MS = 120_000;

/** Why a child never said it was ready: its exit, or the time limit (then it is killed). */
async function ended(child: ChildProcess): Promise<string> {
  // The pipe may close just before the exit is reported.
  const exit = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));
  const exitedSoon = await Promise.race([exit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
  if (exitedSoon) return child.signalCode ?? `status ${child.exitCode}`;
  child.kill("SIGKILL");
  await exit;
  return `not ready within ${START_LIMIT_MS / 1000} s`;
}

/**
 * Their logs are the terminal's; fd 3 is the IPC channel that ties them to
 * this process (when it goes, SIGKILL included, they go), and readiness
 * comes on fd 4 (@hurdmesh/mach/internal notifyReady). Each is a process
 * group of its own, so that a terminal's Ctrl-C reaches this process alone,
 * which shuts the hurd down in order (init first, the kernel and NATS after).
 */
function readyStdio() {
  return { stdio: ["ignore", "inherit", "inherit", "ipc", "pipe"] as ("ignore" | "inherit" | "pipe" | "ipc")[], env: { ...process.env, [READY_FD_ENV]: "4" }, detached: true };
}

/** The child's readiness line, or null once it exits, closes the pipe unready, or `timeoutMs` (0: none) passes. */
function readiness(child: ChildProcess, timeoutMs: number): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    let buf = "";
    const pipe = child.stdio[4] as NodeJS.ReadableStream;
    const timer = timeoutMs ? setTimeout(() => resolve(null), timeoutMs) : null;
    const done = (v: Record<string, unknown> | null) => {
      if (timer) clearTimeout(timer);
      resolve(v);
    };
    pipe.setEncoding("utf8");
    pipe.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      try {
        done(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch {
        done(null);
      }
    });
    pipe.on("end", () => done(null));
    child.on("exit", () => done(null));
  });
}

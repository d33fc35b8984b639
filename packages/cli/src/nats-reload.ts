// hurd nats-reload: a renewed certificate taken by a nats-server this
// process did not start, the one in its pod. In Kubernetes cert-manager
// renews Secret nats-tls and the kubelet swaps the mounted files, but
// nats-server reads its TLS files only at start and on SIGHUP: this runs as
// a sidecar in the NATS pod (k8s/components/nats-cert-reload), finds
// nats-server through the pod's shared PID namespace (/proc/*/cmdline),
// watches the files and, once they hold a new valid pair (issued by --ca
// when given), sends it SIGHUP. nats-server's log is in another container,
// so whether the reload took is asked of the server itself: a new TLS
// connection must be served the new certificate. The watching, checking,
// signalling and the log lines are hurd up's (@hurdmesh/mach/nats-auth's
// watchAndReload).
//
// A signal to another container's process needs the same uid (or
// CAP_KILL): the sidecar runs as nats-server's uid, with no capability.
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { basename } from "node:path";
import { createLogger, Errno, HurdError, type Logger } from "@hurdmesh/mach";
import type { ServerReload } from "@hurdmesh/mach/nats-auth";
import { UsageError } from "./errors.js";

export interface NatsReloadOptions {
  cert: string;
  key: string;
  ca?: string;
  /** The program's name as it was started (argv[0]'s last part). */
  name: string;
  /** Only a nats-server whose command line names this (its configuration file): one among several. */
  config?: string;
  /** Where nats-server serves clients, asked which certificate it serves after a reload. */
  server: string;
  /** Seconds to wait at start for nats-server to appear (the pod's containers start in any order). */
  wait: string;
  /** Where to answer GET /healthz (the kubelet's probes), or none. */
  health?: string;
}

/** How often /proc is looked through while nats-server has not appeared yet. */
const FIND_EVERY_MS = 250;

/**
 * The pid of the one process in this PID namespace started as `name`
 * (and, given `config`, naming it on its command line). ESRCH when there is
 * none, EINVAL when several match.
 */
export function findNatsServer(name: string, config?: string, proc = "/proc"): number {
  const found: number[] = [];
  for (const e of readdirSync(proc)) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`${proc}/${e}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // ended meanwhile
    }
    if (basename(argv[0] ?? "") !== name) continue;
    if (config !== undefined && !argv.slice(1).includes(config)) continue;
    found.push(Number(e));
  }
  if (found.length === 1) return found[0]!;
  const which = `${name}${config !== undefined ? ` started with ${config}` : ""}`;
  if (!found.length)
    throw new HurdError(Errno.ESRCH, `no ${which} process in this PID namespace (${proc}): in Kubernetes the pod needs shareProcessNamespace: true`);
  throw new HurdError(Errno.EINVAL, `several ${which} processes (pids ${found.join(", ")}): say which with --config`);
}

function hostPort(s: string, what = "--server"): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || !(port > 0 && port < 65536)) throw new UsageError(`${what} must be HOST:PORT, not ${JSON.stringify(s)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Runs until SIGTERM or SIGINT; 0 then. Errors (no nats-server, a bad pair at start) thrown as HurdError: one line, status 1. */
export async function natsReload(o: NatsReloadOptions): Promise<number> {
  const { host, port } = hostPort(o.server);
  const health = o.health !== undefined ? hostPort(o.health, "--health") : null;
  const waitS = Number(o.wait);
  if (!(waitS >= 0)) throw new UsageError(`--wait must be a number of seconds, not ${JSON.stringify(o.wait)}`);
  const deadline = Date.now() + waitS * 1000;
  // The kubelet's probes, answered from the start: the pod's readiness is
  // NATS's, and waiting for nats-server to appear must not hold it back.
  // An answer says the event loop turns (the watch's timers and inotify run on it).
  let reloads = () => 0;
  let probes: Server | null = null;
  if (health) {
    probes = createServer((req, res) => {
      res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "text/plain" }).end(req.url === "/healthz" ? `ok ${reloads()}\n` : "");
    });
    await new Promise<void>((resolve, reject) => probes!.once("error", reject).listen(health.port, health.host, resolve)).catch((e: Error) => {
      throw new HurdError(Errno.EINVAL, `--health ${o.health}: ${e.message}`);
    });
    probes.unref();
  }
  const { issuedBy, servesPair, watchAndReload } = await import("@hurdmesh/mach/nats-auth");
  const log = createLogger("hurd-nats-reload");
  // The files first: a bad pair is said at once, not after the wait for nats-server.
  const reload = watchAndReload(
    {
      // Found again at each renewal: nats-server's container may have restarted since (a new pid, same namespace).
      pid: () => findNatsServer(o.name, o.config),
      outcome: (pair, abort) => servesPair(host, port, pair, abort),
    },
    o.cert,
    o.key,
    log,
    { verify: o.ca ? issuedBy(o.ca) : undefined },
  );
  reloads = () => reload.reloads;
  let pid: number;
  for (;;) {
    try {
      pid = findNatsServer(o.name, o.config);
      break;
    } catch (e) {
      if (!(e instanceof HurdError && e.code === Errno.ESRCH) || Date.now() >= deadline) {
        reload.stop();
        throw e;
      }
      await new Promise((r) => setTimeout(r, FIND_EVERY_MS));
    }
  }
  log.info(`watching NATS's certificate for renewals: nats-server (pid ${pid}) is told to reload, and asked at ${host}:${port} whether it took`, { certFile: o.cert, keyFile: o.key, caFile: o.ca });
  void catchUp(host, port, deadline, reload, log);
  // The watch's timers do not hold the process up (they are unref'd): this does, until a signal ends it.
  const alive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  clearInterval(alive);
  probes?.close();
  reload.stop();
  return 0;
}

/**
 * A renewal that landed while nobody watched (this container restarted, or
 * started after the kubelet had swapped the files): nats-server serves a
 * certificate other than the files' and would until the next renewal,
 * perhaps past its expiry. Asked once at start (retried until `deadline`
 * while nats-server does not listen yet); told to reload if so.
 */
async function catchUp(host: string, port: number, deadline: number, reload: ServerReload, log: Logger): Promise<void> {
  const { servedCertificate } = await import("@hurdmesh/mach/nats-auth");
  for (;;) {
    try {
      const served = await servedCertificate(host, port);
      if (served.fingerprint256 === reload.current.cert.fingerprint256) return;
      log.warn(`nats-server serves a certificate other than the files' (serial ${served.serialNumber}, not ${reload.current.cert.serialNumber}): a renewal was missed, it is told to reload`);
      reload.reloadNow();
      return;
    } catch (e) {
      if (Date.now() >= deadline) {
        log.warn(`could not ask nats-server at ${host}:${port} which certificate it serves (${(e as Error).message}): a renewal missed before this started is taken at the next one`);
        return;
      }
      await new Promise((r) => setTimeout(r, FIND_EVERY_MS));
    }
  }
}

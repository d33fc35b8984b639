// The certificate of a nats-server, renewed without a restart: one this
// process started (`hurd up --nats`: reloadOnRenewal, which reads the
// outcome off the server's log) or one beside it in a pod (`hurd
// nats-reload`, the Kubernetes sidecar: ../../../cli/src/nats-reload.ts,
// which cannot read that log and asks the server which certificate it
// serves instead). Both share watchAndReload below. nats-server reads its TLS files when it starts and again when it
// reloads its configuration, which SIGHUP asks for (`nats-server --signal
// reload` sends the same). So the files the server's configuration names
// are watched (../cert-watch.ts) and, once they make a valid pair again, the
// server is sent SIGHUP; then the caller's `outcome` says whether the reload took.
//
// Only a checked pair is signalled: nats-server given a bad file on reload
// keeps its old configuration, but it says so only on its own log, and a
// certificate it would accept (another CA's, one without the name clients
// check) can still cut every client off. The caller's `verify` refuses those.
//
// What a reload costs on Debian's nats-server 2.9.10, in operator mode
// (tried: tests/cli/up-tls-reload.test.ts):
//   - Every client that connected with a user JWT and nkey is disconnected
//     (nats-server issue #8606, fixed upstream in 2026 after 2.14): a
//     reload re-checks each client's nonce signature, which fails. The
//     hurd's connections reconnect by themselves (nats.js, 250 ms apart) and
//     resubscribe; what was in flight is retried or times out as on any
//     broken connection.
//   - The MEMORY resolver's accounts are loaded again from the
//     configuration's resolver_preload, which holds no revocations: until
//     the kernel pushes its list again (it does when its connections come
//     back: services/kernel/src/main.ts) a revoked user could connect, and
//     is cut off by that push.
// Both make a reload worth doing only for a changed certificate, never on a
// timer: a renewal is every few weeks, not every minute.
import { X509Certificate } from "node:crypto";
import { createConnection } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { CertWatch, certReloadInterval, type WatchedPair } from "../cert-watch.js";
import { Errno, HurdError } from "../errors.js";
import type { Logger } from "../log.js";
import type { NatsServerProcess } from "./fabric.js";

/** How long nats-server has to say whether a reload took before it is said to be unknown. */
export const RELOAD_ANSWER_MS = 5_000;

export interface ServerReloadOptions {
  /** Checks beyond the pair's own (the CA clients trust, the name they check): a reason to refuse, or null. */
  verify?: (cert: X509Certificate) => string | null;
  /** Default HURD_TLS_RELOAD_MS, 60 s. */
  env?: NodeJS.ProcessEnv;
}

/** What reloadOnRenewal started; stop() before the server stops. */
export interface ServerReload {
  /** Reloads signalled so far. */
  readonly reloads: number;
  /** The pair the files hold now, as last taken. */
  readonly current: WatchedPair;
  /** Signals a reload of the current pair now: for a server found serving another (a renewal missed while nobody watched). */
  reloadNow(): void;
  stop(): void;
}

/** The nats-server a renewal is signalled to, and how its answer is heard. */
export interface ReloadTarget {
  /** The pid to send SIGHUP, asked at each renewal (a restarted server has another); throws (ESRCH) when there is none. */
  pid(): number;
  /**
   * Started just before the signal (a log is read from that point on):
   * resolves "ok" once the server serves `pair`, or says what went wrong;
   * `abort` fires when the signal could not be sent.
   */
  outcome(pair: WatchedPair, abort: AbortSignal): Promise<string>;
}

/**
 * Watches the certificate files and sends the target SIGHUP once they hold
 * a new valid pair; each renewal, each refusal and each reload's outcome
 * one line on `log`. EINVAL, naming the files, if they are not a valid pair
 * now (the server was started with them: they were).
 */
export function watchAndReload(target: ReloadTarget, certFile: string, keyFile: string, log: Logger, o: ServerReloadOptions = {}): ServerReload {
  let reloads = 0;
  let watch: CertWatch;
  const reload = (p: WatchedPair) => {
    const abort = new AbortController();
    let pid = 0;
    let outcome: Promise<string>;
    try {
      pid = target.pid();
      outcome = target.outcome(p, abort.signal);
      process.kill(pid, "SIGHUP");
    } catch (e) {
      abort.abort();
      log.warn(`NATS's certificate was renewed but nats-server${pid ? ` (pid ${pid})` : ""} could not be told to reload: ${signalError(e)}`, { certFile });
      return;
    }
    reloads++;
    void outcome.then((said) =>
      said === "ok"
        ? log.info(`NATS's certificate was renewed: nats-server reloaded it (serial ${p.cert.serialNumber}, valid until ${p.cert.validTo}); its clients reconnect`, { certFile, pid })
        : log.warn(`NATS's certificate was renewed (serial ${p.cert.serialNumber}) but nats-server ${said}`, { certFile, pid }),
    );
  };
  try {
    watch = new CertWatch(certFile, keyFile, {
      intervalMs: certReloadInterval(o.env),
      verify: o.verify,
      onRefused: (why) => log.warn(`NATS's certificate files changed but were refused (${why}): nats-server keeps the previous certificate`, { certFile, keyFile }),
      onChange: (p) => reload(p),
    });
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `NATS's certificate (${certFile}, ${keyFile}): ${(e as Error).message}`);
  }
  watch.start();
  return {
    get reloads() {
      return reloads;
    },
    get current() {
      return watch.current;
    },
    reloadNow: () => reload(watch.current),
    stop: () => watch.stop(),
  };
}

/** Why a SIGHUP was not sent, in a line: EPERM is the usual one across containers (another uid, no CAP_KILL). */
function signalError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EPERM") return "EPERM: it runs as another user (send signals as nats-server's uid)";
  if (code === "ESRCH") return "ESRCH: it has exited";
  return (e as Error).message;
}

/**
 * Watches the certificate files of a nats-server this process started
 * (startNatsServer) and sends it SIGHUP once they hold a new valid pair;
 * the outcome is read off the server's log. See watchAndReload.
 */
export function reloadOnRenewal(server: NatsServerProcess, certFile: string, keyFile: string, log: Logger, o: ServerReloadOptions = {}): ServerReload {
  const reload = watchAndReload(
    {
      // nats-server's own pid, not its watchdog shell's (fabric.ts).
      pid: () => server.pid,
      outcome: (_pair, abort) => reloadOutcome(server, server.log().length, abort),
    },
    certFile,
    keyFile,
    log,
    o,
  );
  // A server that has exited has nothing to reload (and its pid may be another process's by then).
  void server.exited.then(() => reload.stop());
  return reload;
}

/** What nats-server said after a SIGHUP, read off its log from `from` on: "ok", or what went wrong. */
async function reloadOutcome(server: NatsServerProcess, from: number, abort: AbortSignal): Promise<string> {
  const deadline = Date.now() + RELOAD_ANSWER_MS;
  let exited = false;
  void server.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited && !abort.aborted) {
    const said = server.log().slice(from);
    if (/Reloaded server configuration/.test(said)) return "ok";
    const err = /\[(?:ERR|FTL)\] (.*reload.*)/i.exec(said);
    if (err) return `refused the reload, keeping the previous certificate: ${err[1]!.trim()}`;
    await new Promise((r) => setTimeout(r, 25));
  }
  return exited ? "exited" : `did not say within ${RELOAD_ANSWER_MS} ms whether the reload took`;
}

/** How long one look at the served certificate may take (connect, INFO, handshake). */
export const SERVED_CERT_TIMEOUT_MS = 2_000;

/**
 * The certificate a nats-server serves a new client connection at
 * host:port: its INFO comes in plaintext, then the client starts TLS (the
 * NATS protocol; nats-server 2.10's `handshake_first` is not spoken here).
 * Nothing is checked but that a certificate comes: the caller compares it
 * with the one it expects, which says more than a CA could. Rejects with
 * the network's error, or ETIMEDOUT.
 */
export function servedCertificate(host: string, port: number, timeoutMs = SERVED_CERT_TIMEOUT_MS): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const raw = createConnection({ host, port });
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new HurdError(Errno.ETIMEDOUT, `nats-server at ${host}:${port} served no certificate within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      raw.destroy();
      reject(e);
    };
    raw.once("error", fail);
    raw.once("data", () => {
      // A client certificate the server may ask for is not needed: the server's comes first in the handshake.
      const s = tlsConnect({ socket: raw, servername: "nats", rejectUnauthorized: false }, () => {
        const cert = s.getPeerX509Certificate();
        clearTimeout(timer);
        s.destroy();
        if (cert) resolve(cert);
        else reject(new HurdError(Errno.EIO, `nats-server at ${host}:${port} served no certificate`));
      });
      s.once("error", fail);
    });
  });
}

/**
 * A reload's outcome told by the server itself, for a nats-server whose log
 * cannot be read (another container): "ok" once a new connection to
 * host:port is served `pair`'s certificate, within RELOAD_ANSWER_MS.
 */
export async function servesPair(host: string, port: number, pair: WatchedPair, abort: AbortSignal): Promise<string> {
  const deadline = Date.now() + RELOAD_ANSWER_MS;
  let last = "";
  while (!abort.aborted) {
    try {
      if ((await servedCertificate(host, port)).fingerprint256 === pair.cert.fingerprint256) return "ok";
      last = "still serves the previous certificate";
    } catch (e) {
      last = `could not be asked which certificate it serves (${(e as Error).message})`;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return `${last} ${RELOAD_ANSWER_MS} ms after SIGHUP at ${host}:${port}: the reload did not take (its log says why)`;
}

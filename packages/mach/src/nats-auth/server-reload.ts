// The certificate of a nats-server this process started, renewed without a
// restart. nats-server reads its TLS files when it starts and again when it
// reloads its configuration, which SIGHUP asks for (`nats-server --signal
// reload` sends the same). So the files the server's configuration names
// are watched (../cert-watch.ts) and, once they make a valid pair again, the
// server is sent SIGHUP; its log says whether the reload took.
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
import type { X509Certificate } from "node:crypto";
import { CertWatch, certReloadInterval } from "../cert-watch.js";
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
  stop(): void;
}

/**
 * Watches the server's certificate files and sends nats-server SIGHUP once
 * they hold a new valid pair; each renewal, each refusal and each reload's
 * outcome one line on `log`. EINVAL, naming the files, if they are not a
 * valid pair now (the server was started with them: they were).
 */
export function reloadOnRenewal(server: NatsServerProcess, certFile: string, keyFile: string, log: Logger, o: ServerReloadOptions = {}): ServerReload {
  let reloads = 0;
  let watch: CertWatch;
  try {
    watch = new CertWatch(certFile, keyFile, {
      intervalMs: certReloadInterval(o.env),
      verify: o.verify,
      onRefused: (why) => log.warn(`NATS's certificate files changed but were refused (${why}): nats-server keeps the previous certificate`, { certFile, keyFile }),
      onChange: (p) => {
        try {
          // nats-server's own pid, not its watchdog shell's (fabric.ts).
          process.kill(server.pid, "SIGHUP");
        } catch (e) {
          log.warn(`NATS's certificate was renewed but nats-server (pid ${server.pid}) could not be told to reload: ${(e as Error).message}`, { certFile });
          return;
        }
        reloads++;
        const from = server.log().length;
        void reloadOutcome(server, from).then((outcome) =>
          outcome === "ok"
            ? log.info(`NATS's certificate was renewed: nats-server reloaded it (serial ${p.cert.serialNumber}, valid until ${p.cert.validTo}); its clients reconnect`, { certFile })
            : log.warn(`NATS's certificate was renewed (serial ${p.cert.serialNumber}) but nats-server ${outcome}`, { certFile }),
        );
      },
    });
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `NATS's certificate (${certFile}, ${keyFile}): ${(e as Error).message}`);
  }
  watch.start();
  // A server that has exited has nothing to reload (and its pid may be another process's by then).
  void server.exited.then(() => watch.stop());
  return {
    get reloads() {
      return reloads;
    },
    stop: () => watch.stop(),
  };
}

/** What nats-server said after a SIGHUP, read off its log from `from` on: "ok", or what went wrong. */
async function reloadOutcome(server: NatsServerProcess, from: number): Promise<string> {
  const deadline = Date.now() + RELOAD_ANSWER_MS;
  let exited = false;
  void server.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    const said = server.log().slice(from);
    if (/Reloaded server configuration/.test(said)) return "ok";
    const err = /\[(?:ERR|FTL)\] (.*reload.*)/i.exec(said);
    if (err) return `refused the reload, keeping the previous certificate: ${err[1]!.trim()}`;
    await new Promise((r) => setTimeout(r, 25));
  }
  return exited ? "exited" : `did not say within ${RELOAD_ANSWER_MS} ms whether the reload took`;
}

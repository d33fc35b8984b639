// The edge's certificate, renewed without a restart. cert-manager renews a
// certificate well before it expires and rewrites its Secret; Kubernetes
// swaps the mounted files in place (an atomic symlink flip), and a
// compose operator may copy new files over the old. A server that read its
// certificate once would serve the old one until it expires. So the edge
// watches its two files (../cert-watch.ts: the directories' change events,
// a stat every interval where none come) and, once both make a valid pair
// again, serves the new one to every new connection.
//
// How, with the installed @grpc/grpc-js (1.14): ServerCredentials.createSsl
// is fixed for the server's life (a restart would drop every open stream),
// but grpc-js has certificate providers (`experimental.CertificateProvider`,
// `experimental.createCertificateProviderServerCredentials`): the server
// asks its provider for the identity at each new handshake, so an update
// from the provider is what the next connection is served, and connections
// already open keep theirs. grpc-js's own FileWatcherCertificateProvider is
// not used: it re-reads on a timer and hands grpc-js whatever it read, a
// half-written renewal or a mismatched key included (the server then fails
// handshakes); the provider here hands over only a pair that was checked.
//
// A half-written renewal (the certificate new, the key still old), an
// expired certificate or a file that is not PEM is refused and the edge
// keeps serving what it had: a bad renewal must never take the edge down.
import { experimental } from "@grpc/grpc-js";
import { CertWatch, certReloadInterval, checkCertPair, type WatchedPair } from "../cert-watch.js";
import { Errno, HurdError } from "../errors.js";
import type { Logger } from "../log.js";
import type { EdgeTls } from "./tls.js";

export { checkCertPair };

export interface CertFilesOptions {
  /** How often the files are stat'ed where no change is told (a stat each; read only when changed). */
  intervalMs: number;
  /** A renewal taken: the new certificate's serial number and end of validity. */
  onReload?: (cert: WatchedPair["cert"]) => void;
  /** A changed pair refused, the old one kept. Said once per change, not every interval. */
  onRefused?: (why: string) => void;
  /** Checks beyond the pair's own (the CA its clients trust, a name they check): a reason to refuse, or null. */
  verify?: (cert: WatchedPair["cert"]) => string | null;
}

/**
 * The edge's identity from two files, as a grpc-js certificate provider.
 * The files are watched while a server uses it (from the first listener to
 * the last one's removal).
 */
export class CertFiles implements experimental.CertificateProvider {
  private current: experimental.IdentityCertificateUpdate;
  private readonly listeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly watch: CertWatch;

  /** The pair served now, as read. */
  get pem(): { certPem: string; keyPem: string } {
    return { certPem: this.current.certificate.toString("utf8"), keyPem: this.current.privateKey.toString("utf8") };
  }

  /** Reads and checks the pair now: a bad pair at start is an error (EINVAL), not a fallback. */
  constructor(
    readonly certFile: string,
    readonly keyFile: string,
    o: CertFilesOptions,
  ) {
    this.watch = new CertWatch(certFile, keyFile, {
      intervalMs: o.intervalMs,
      verify: o.verify,
      onRefused: o.onRefused,
      onChange: (p) => {
        this.current = { certificate: Buffer.from(p.certPem), privateKey: Buffer.from(p.keyPem) };
        for (const l of this.listeners) l(this.current);
        o.onReload?.(p.cert);
      },
    });
    const p = this.watch.current;
    this.current = { certificate: Buffer.from(p.certPem), privateKey: Buffer.from(p.keyPem) };
  }

  /** Looks at the files once, now (no settling); true when a new pair is now served. */
  check(): boolean {
    return this.watch.check();
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.listeners.add(listener);
    // Not now: grpc-js adds the server's watcher only after this returns,
    // and an update before that would reach no server (it would refuse
    // every connection as "unloaded credentials").
    process.nextTick(() => this.listeners.has(listener) && listener(this.current));
    this.watch.start();
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.watch.stop();
  }

  // The edge asks for no client certificates: no CA to provide.
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}

  /** Server credentials serving this pair, and each renewal from then on. */
  credentials(): ServerCredentialsOf {
    // grpc-js 1.14's createCertificateProviderServerCredentials hands its
    // first argument to the constructor's identity slot (its parameters are
    // named the other way round): identity first, no CA, no client certificates.
    return experimental.createCertificateProviderServerCredentials(this, null, false);
  }
}

/**
 * The edge's TLS from two files, renewals taken: watched (a change told by
 * the file system is read once settled, ~250 ms; else a stat every
 * HURD_TLS_RELOAD_MS, 60 s), each renewal and each refusal said on `log`.
 * `verify`: the caller's own checks of a renewal (hurd up knows the CA
 * its clients trust; hurd-kernel does not). EINVAL, naming the files, for
 * a bad pair or a bad interval: the caller stops before serving anything.
 */
export function edgeTlsFromFiles(certFile: string, keyFile: string, log: Logger, env: NodeJS.ProcessEnv = process.env, verify?: CertFilesOptions["verify"]): EdgeTls {
  const intervalMs = certReloadInterval(env);
  let files: CertFiles;
  try {
    files = new CertFiles(certFile, keyFile, {
      intervalMs,
      verify,
      onReload: (c) => log.info(`the edge's certificate was renewed: serial ${c.serialNumber}, valid until ${c.validTo}`, { certFile }),
      onRefused: (why) => log.warn(`the edge's certificate files changed but were refused (${why}): the previous certificate is still served`, { certFile, keyFile }),
    });
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `the edge's certificate (--grpc-cert ${certFile}, --grpc-key ${keyFile}): ${(e as Error).message}`);
  }
  return { ...files.pem, files };
}

type ServerCredentialsOf = ReturnType<typeof experimental.createCertificateProviderServerCredentials>;

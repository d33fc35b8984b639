// The edge's certificate, renewed without a restart. cert-manager renews a
// certificate well before it expires and rewrites its Secret; Kubernetes
// swaps the mounted files in place (an atomic symlink flip), and a
// compose operator may copy new files over the old. A server that read its
// certificate once would serve the old one until it expires. So the edge
// checks its two files every interval and, once both make a valid pair
// again, serves the new one to every new connection (grpc-js's certificate
// provider: connections already open keep theirs).
//
// A half-written renewal (the certificate new, the key still old), an
// expired certificate or a file that is not PEM is refused and the edge
// keeps serving what it had: a bad renewal must never take the edge down.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { experimental } from "@grpc/grpc-js";
import { Errno, HurdError } from "../errors.js";
import type { Logger } from "../log.js";
import type { EdgeTls } from "./tls.js";

/** A certificate and its key that belong together and are valid now; EINVAL saying what is wrong otherwise. */
export function checkCertPair(certPem: string, keyPem: string, now = Date.now()): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `not a PEM certificate: ${(e as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `not a PEM private key: ${(e as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new HurdError(Errno.EINVAL, "the key is not the certificate's");
  if (Date.parse(cert.validTo) <= now) throw new HurdError(Errno.EINVAL, `the certificate expired on ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > now) throw new HurdError(Errno.EINVAL, `the certificate is not valid before ${cert.validFrom}`);
  return cert;
}

export interface CertFilesOptions {
  /** How often the files are looked at (a stat each; read only when changed). */
  intervalMs: number;
  /** A renewal taken: the new certificate's serial number and end of validity. */
  onReload?: (cert: X509Certificate) => void;
  /** A changed pair refused, the old one kept. Said once per change, not every interval. */
  onRefused?: (why: string) => void;
}

/**
 * The edge's identity from two files, as a grpc-js certificate provider.
 * The files are stat'ed every interval while a server uses it; a change in
 * either (mtime, size, inode: a symlink flip changes the inode) reads both.
 */
export class CertFiles implements experimental.CertificateProvider {
  private current: experimental.IdentityCertificateUpdate;
  private seen: string;
  private refusedAt = "";
  private readonly listeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | null = null;

  /** The pair served now, as read. */
  get pem(): { certPem: string; keyPem: string } {
    return { certPem: this.current.certificate.toString("utf8"), keyPem: this.current.privateKey.toString("utf8") };
  }

  /** Reads and checks the pair now: a bad pair at start is an error (EINVAL), not a fallback. */
  constructor(
    readonly certFile: string,
    readonly keyFile: string,
    private readonly o: CertFilesOptions,
  ) {
    const cert = readFileSync(certFile, "utf8");
    const key = readFileSync(keyFile, "utf8");
    checkCertPair(cert, key);
    this.current = { certificate: Buffer.from(cert), privateKey: Buffer.from(key) };
    this.seen = this.stamp();
  }

  /** What the files look like now, cheaply: a stat of each. */
  private stamp(): string {
    const s = (f: string) => {
      try {
        const st = statSync(f);
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return "missing";
      }
    };
    return `${s(this.certFile)}|${s(this.keyFile)}`;
  }

  /** Looks at the files once; true when a new pair is now served. */
  check(): boolean {
    const stamp = this.stamp();
    if (stamp === this.seen) return false;
    let certPem: string;
    let keyPem: string;
    let cert: X509Certificate;
    try {
      certPem = readFileSync(this.certFile, "utf8");
      keyPem = readFileSync(this.keyFile, "utf8");
      cert = checkCertPair(certPem, keyPem);
    } catch (e) {
      // Looked at again next interval (the key may be on its way); said once.
      if (this.refusedAt !== stamp) this.o.onRefused?.((e as Error).message);
      this.refusedAt = stamp;
      return false;
    }
    this.seen = stamp;
    this.refusedAt = "";
    this.current = { certificate: Buffer.from(certPem), privateKey: Buffer.from(keyPem) };
    for (const l of this.listeners) l(this.current);
    this.o.onReload?.(cert);
    return true;
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.listeners.add(listener);
    // Not now: grpc-js adds the server's watcher only after this returns,
    // and an update before that would reach no server (it would refuse
    // every connection as "unloaded credentials").
    process.nextTick(() => this.listeners.has(listener) && listener(this.current));
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), this.o.intervalMs);
      this.timer.unref();
    }
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
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
 * The edge's TLS from two files, renewals taken: looked at every
 * HURD_TLS_RELOAD_MS (60 s), each renewal and each refusal said on `log`.
 * EINVAL, naming the files, for a bad pair or a bad interval: the caller
 * stops before serving anything.
 */
export function edgeTlsFromFiles(certFile: string, keyFile: string, log: Logger, env: NodeJS.ProcessEnv = process.env): EdgeTls {
  const intervalMs = Number(env.HURD_TLS_RELOAD_MS || 60_000);
  if (!(intervalMs >= 10)) throw new HurdError(Errno.EINVAL, `HURD_TLS_RELOAD_MS must be a number of milliseconds (10 or more), not ${JSON.stringify(env.HURD_TLS_RELOAD_MS)}`);
  let files: CertFiles;
  try {
    files = new CertFiles(certFile, keyFile, {
      intervalMs,
      onReload: (c) => log.info(`the edge's certificate was renewed: serial ${c.serialNumber}, valid until ${c.validTo}`, { certFile }),
      onRefused: (why) => log.warn(`the edge's certificate files changed but were refused (${why}): the previous certificate is still served`, { certFile, keyFile }),
    });
  } catch (e) {
    throw new HurdError(Errno.EINVAL, `the edge's certificate (--grpc-cert ${certFile}, --grpc-key ${keyFile}): ${(e as Error).message}`);
  }
  return { ...files.pem, files };
}

type ServerCredentialsOf = ReturnType<typeof experimental.createCertificateProviderServerCredentials>;

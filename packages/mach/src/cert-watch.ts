// A certificate and its key, watched on disk for renewals. Two servers take
// a renewed certificate without a restart: the kernel's gRPC edge (a
// grpc-js certificate provider, grpc/cert-reload.ts) and the nats-server
// `hurd up --nats` runs (told to reload, nats-auth/server-reload.ts). Both
// need the same thing from the files: to hear that they changed, to wait
// until the writing is over, and to take the new pair only once it is a
// pair that can be served. That is this module.
//
// How a renewal lands on disk:
//   - Kubernetes (cert-manager rewrites a Secret): the kubelet writes the
//     new files into a fresh hidden directory and flips the `..data`
//     symlink to it; tls.crt and tls.key are symlinks through `..data`, so
//     both change at once, and stat (which follows symlinks) sees new inodes.
//   - By hand or by a script: files copied over the old ones (in place:
//     a reader may catch one half written) or renamed into place, one file
//     after the other (a reader may catch the new certificate with the old key).
// So a change is heard two ways: the directories are watched (inotify:
// local disks and Secret volumes tell at once) and the files are stat'ed
// every interval anyway (where no change is told: NFS, some overlays). A
// change is read only once the files have stayed as they are for a short
// settle time (a write in progress keeps changing them), and taken only
// when the certificate and key parse, belong together and are valid now.
// Anything else is refused, said once per change, and the pair already
// taken stays in service: a bad renewal must never take a server down.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { isIP } from "node:net";
import { dirname } from "node:path";
import { Errno, HurdError } from "./errors.js";

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

/** A pair as read and checked. */
export interface WatchedPair {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
}

export interface CertWatchOptions {
  /** How often the files are stat'ed when no change is told (a stat each; read only when changed). */
  intervalMs: number;
  /** How long the files must stay unchanged before they are read (a write in progress); default 250 ms, at most intervalMs. */
  settleMs?: number;
  /** Checks of the caller's beyond checkCertPair (the CA that must have signed it, a name it must carry): a reason to refuse, or null. */
  verify?: (cert: X509Certificate) => string | null;
  /** A new pair taken. */
  onChange: (pair: WatchedPair) => void;
  /** A changed pair refused, the old one kept. Said once per change, not every interval. */
  onRefused?: (why: string) => void;
}

/**
 * Two files watched for a renewal. The constructor reads and checks them
 * (EINVAL for a bad pair: at start that is an error, not a fallback);
 * start() watches them until stop().
 */
export class CertWatch {
  private pair: WatchedPair;
  /** The files' stamp when `pair` was read, or when they were last refused. */
  private seen: string;
  private refused = "";
  /** A change heard, waiting for the files to settle: the stamp it saw. */
  private pending = "";
  private timer: NodeJS.Timeout | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private watchers: FSWatcher[] = [];
  private readonly settleMs: number;

  constructor(
    readonly certFile: string,
    readonly keyFile: string,
    private readonly o: CertWatchOptions,
  ) {
    this.settleMs = Math.min(o.settleMs ?? 250, o.intervalMs);
    this.seen = this.stamp();
    this.pair = this.read();
  }

  /** The pair in service. */
  get current(): WatchedPair {
    return this.pair;
  }

  /** What the files look like now, cheaply: a stat of each (through symlinks: Kubernetes' flip changes the inode). */
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

  private read(): WatchedPair {
    const certPem = readFileSync(this.certFile, "utf8");
    const keyPem = readFileSync(this.keyFile, "utf8");
    const cert = checkCertPair(certPem, keyPem);
    const why = this.o.verify?.(cert);
    if (why) throw new HurdError(Errno.EINVAL, why);
    return { certPem, keyPem, cert };
  }

  /**
   * Reads the files now if they changed since last read (no settling);
   * true when a new pair was taken. A refused change is said once and
   * looked at again only when the files change again.
   */
  check(): boolean {
    const stamp = this.stamp();
    if (stamp === this.seen || stamp === this.refused) return false;
    let pair: WatchedPair;
    try {
      pair = this.read();
    } catch (e) {
      this.refused = stamp;
      this.o.onRefused?.(reasonOf(e));
      return false;
    }
    this.seen = stamp;
    this.refused = "";
    this.pair = pair;
    this.o.onChange(pair);
    return true;
  }

  /** A look, settled: a change is read once the files have stayed as they are for settleMs. */
  private look(): void {
    const stamp = this.stamp();
    if (stamp === this.seen || stamp === this.refused) {
      this.pending = "";
      return;
    }
    if (stamp === this.pending) {
      this.pending = "";
      this.check();
      return;
    }
    this.pending = stamp;
    this.lookAfterSettle();
  }

  private lookAfterSettle(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.look();
    }, this.settleMs);
    this.settleTimer.unref();
  }

  /** Watches the files until stop(): their directories told of changes, and a stat every intervalMs where nothing tells. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.look(), this.o.intervalMs);
    this.timer.unref();
    for (const dir of new Set([dirname(this.certFile), dirname(this.keyFile)])) {
      try {
        // Any event in the directory (Kubernetes' `..data` flip, a rename or write of either file): look once it has settled.
        const w = watch(dir, { persistent: false }, () => {
          this.pending = this.stamp();
          this.lookAfterSettle();
        });
        // A directory that goes away, or a file system that cannot be watched: the interval's stat is still there.
        w.on("error", () => w.close());
        this.watchers.push(w);
      } catch {
        // Not watchable (no such directory yet, too many watches): the interval alone.
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.timer = this.settleTimer = null;
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}

/** Why a pair was refused, for one log line: the check's words without the errno's name in front. */
function reasonOf(e: unknown): string {
  if (e instanceof HurdError) return e.message.replace(/^[A-Z_]+ \([^)]*\): /, "");
  if ((e as NodeJS.ErrnoException).code === "ENOENT") return `a file is missing: ${(e as Error).message}`;
  return (e as Error).message;
}

/** HURD_TLS_RELOAD_MS (default 60 s): how often certificate files are stat'ed where no change is told. EINVAL for anything but a number of milliseconds, 10 or more. */
export function certReloadInterval(env: NodeJS.ProcessEnv = process.env): number {
  const intervalMs = Number(env.HURD_TLS_RELOAD_MS || 60_000);
  if (!(intervalMs >= 10)) throw new HurdError(Errno.EINVAL, `HURD_TLS_RELOAD_MS must be a number of milliseconds (10 or more), not ${JSON.stringify(env.HURD_TLS_RELOAD_MS)}`);
  return intervalMs;
}

/**
 * A renewal check (CertWatchOptions.verify) for a server whose clients
 * trust one CA: the new certificate signed by the CA in `caFile` (read at
 * each renewal: a CA renewed alongside is the one clients read too) and,
 * given `host`, naming it as clients dial it. A renewal they would refuse
 * is refused here with a line on the log and the previous one kept, rather
 * than served and every client cut off at its next connection.
 */
export function issuedBy(caFile: string, host?: string): (cert: X509Certificate) => string | null {
  return (cert) => {
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(readFileSync(caFile, "utf8"));
    } catch (e) {
      return `the CA in ${caFile} cannot be read as a PEM certificate (${(e as Error).message})`;
    }
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `the certificate is not signed by the CA in ${caFile}`;
    if (host && !(isIP(host) ? cert.checkIP(host) : cert.checkHost(host))) return `the certificate does not name ${host}, which clients dial (its names: ${cert.subjectAltName ?? "none"})`;
    return null;
  };
}

// Watching the kernel's trace stream over the bus (hurd.<system>.trace.>),
// for servers that reach the kernel over NATS rather than its gRPC edge: a
// client of a wire protocol, so it lives with the runtime's other clients.
// The protocol is in proto/hurd/trace/v1/trace.proto (TraceWatchRequest); the
// kernel's side is services/kernel/src/trace-bus.ts.
import type { Bus, BusSubscription } from "./bus/types.js";
import { Errno, HurdError } from "./errors.js";
import { inboxOf, subjectsOf } from "./subjects.js";
import { TraceBatch, TraceWatchCtl, TraceWatchReply, TraceWatchRequest, WatchRequest } from "@hurdmesh/proto/hurd/trace/v1/trace";

/** Leases a bus watch may be granted, ms: both sides clamp to these. */
export const TRACE_LEASE = Object.freeze({ defaultMs: 10_000, minMs: 1_000, maxMs: 60_000 });

/** The subjects of a system's trace stream. */
export function traceSubjects(system: string): { watch: string; ctl: string; batches(watchId: number): string } {
  const s = subjectsOf(system);
  return { watch: s.traceWatch, ctl: s.traceCtl, batches: s.traceBatches };
}

/** What a trap carries to prove a task: its id and the token the kernel issued. */
export interface TaskCredentials {
  taskId: number;
  token: string;
}

export interface BusWatchOptions {
  /** Lease to ask for (ms; the kernel clamps it). Renewed every third of what is granted. */
  leaseMs?: number;
  /** How long a request to the kernel may take (ms, default 5000). */
  timeoutMs?: number;
  /** The watch ended: the errno why (ETIMEDOUT, KERN_TERMINATED, KERN_ABORTED after stop(), ...). */
  onEnd?: (code: number) => void;
}

export interface BusTraceWatch {
  readonly watchId: number;
  readonly subject: string;
  readonly leaseMs: number;
  /** Resolves with the errno the watch ended with. */
  readonly ended: Promise<number>;
  /** Cancels the watch; resolves once the kernel has answered (or could not be reached). */
  stop(): Promise<void>;
}

/** A reply's errno as the HurdError it stands for, keeping the kernel's message. */
function refusal(r: TraceWatchReply): HurdError {
  const e = new HurdError(r.errno);
  if (r.error) e.message = r.error;
  return e;
}

/**
 * Watches the kernel's trace stream over the bus: asks for a watch, listens
 * on its subject, starts it, and renews its lease until stop(). `onBatch`
 * gets every batch (records, and how many the kernel dropped for this
 * watcher); it runs on the bus's delivery path, so it should be quick.
 * Rejects with the kernel's errno (KERN_NO_ACCESS without host_priv,
 * KERN_INVALID_TASK for a wrong token, EAGAIN when the kernel has too many watches).
 */
export async function watchTraceOnBus(
  bus: Bus,
  system: string,
  cred: TaskCredentials,
  req: Partial<WatchRequest>,
  onBatch: (b: TraceBatch) => void,
  o: BusWatchOptions = {},
): Promise<BusTraceWatch> {
  const subjects = traceSubjects(system);
  const timeoutMs = o.timeoutMs ?? 5000;
  const askOn = async (on: Bus, subject: string, bytes: Uint8Array): Promise<TraceWatchReply> => {
    const r = TraceWatchReply.decode(await on.request(subject, bytes, timeoutMs));
    if (r.errno !== 0) throw refusal(r);
    return r;
  };
  const granted = await askOn(
    bus,
    subjects.watch,
    TraceWatchRequest.encode({ taskId: cred.taskId, token: cred.token, watch: WatchRequest.fromPartial(req), leaseMs: o.leaseMs ?? 0 }).finish(),
  );
  // With NATS authorization the answer carries the watch's own NATS user, the
  // only one that may read its batches and renew it: the watch runs on a
  // connection of its own, as that user (closed when the watch ends).
  let wbus = bus;
  if (granted.nats?.jwt && bus.connectAs) {
    try {
      wbus = await bus.connectAs({ jwt: granted.nats.jwt, seed: granted.nats.seed }, inboxOf(system, { kind: "trace-watcher", watchId: granted.watchId }));
    } catch (e) {
      // Only the watcher's user may cancel: never started, the watch ends at its lease.
      throw e;
    }
  }
  const own = wbus !== bus;
  const ask = (subject: string, bytes: Uint8Array) => askOn(wbus, subject, bytes);
  const ctl = (cancel: boolean) => TraceWatchCtl.encode({ taskId: cred.taskId, token: cred.token, watchId: granted.watchId, leaseMs: granted.leaseMs, cancel }).finish();

  let done = false;
  let timer: NodeJS.Timeout | null = null;
  let sub: BusSubscription | null = null;
  let resolveEnded!: (code: number) => void;
  const ended = new Promise<number>((r) => (resolveEnded = r));
  const finish = (code: number) => {
    if (done) return;
    done = true;
    if (timer) clearInterval(timer);
    timer = null;
    sub?.unsubscribe();
    sub = null;
    resolveEnded(code);
    o.onEnd?.(code);
    // A cancel (stop()) still goes out on it: closed a moment later.
    if (own) setTimeout(() => void wbus.close().catch(() => {}), timeoutMs).unref();
  };

  sub = wbus.subscribe(granted.subject, (_s, data) => {
    let b: TraceBatch;
    try {
      b = TraceBatch.decode(data);
    } catch {
      return; // Not the kernel's: the subject is on a shared bus.
    }
    if (b.records.length !== 0 || b.dropped !== 0 || b.counts.length !== 0) {
      try {
        onBatch(b);
      } catch {
        // The caller's failure must not end the watch or reach the bus's loop.
      }
    }
    if (b.ended !== 0) finish(b.ended);
  });
  try {
    // The subscription must reach the server before recording starts (the
    // first renewal), or the first batches go to nobody.
    await wbus.flush();
    await ask(subjects.ctl, ctl(false));
  } catch (e) {
    // The kernel would otherwise record for nobody until the lease runs out.
    void wbus.request(subjects.ctl, ctl(true), timeoutMs).catch(() => {});
    finish(HurdError.from(e).code);
    throw e;
  }
  // The watcher's JWT expires like a task's: a renewal answered once it is due carries a fresh one.
  wbus.keepCredentials?.(async () => {
    const r = await ask(subjects.ctl, ctl(false));
    if (!r.nats?.jwt) throw new HurdError(Errno.EAGAIN, "no renewed JWT yet");
    return { jwt: r.nats.jwt, expires: r.nats.expires };
  });

  let renewedAt = Date.now();
  let renewing = false;
  timer = setInterval(() => {
    if (renewing || done) return;
    renewing = true;
    ask(subjects.ctl, ctl(false))
      .then(() => (renewedAt = Date.now()))
      .catch((e: unknown) => {
        const h = HurdError.from(e);
        // A lost request is retried at the next tick while the lease may still hold; an answer that refuses is final.
        if (h.code !== Errno.ETIMEDOUT && h.code !== Errno.MACH_SEND_INVALID_DEST && h.code !== Errno.EIO) finish(h.code);
        else if (Date.now() - renewedAt >= granted.leaseMs) finish(Errno.ETIMEDOUT);
      })
      .finally(() => (renewing = false));
  }, Math.max(50, Math.floor(granted.leaseMs / 3)));
  timer.unref();

  return {
    watchId: granted.watchId,
    subject: granted.subject,
    leaseMs: granted.leaseMs,
    ended,
    async stop() {
      if (done) return;
      finish(Errno.KERN_ABORTED);
      await wbus.request(subjects.ctl, ctl(true), timeoutMs).catch(() => {});
    },
  };
}

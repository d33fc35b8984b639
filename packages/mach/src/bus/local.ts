import { Deadlines } from "../deadlines.js";
import { Errno, HurdError } from "../errors.js";
import { INBOX_PREFIX } from "../subjects.js";
import type { Bus, BusHandler, BusSubscription } from "./types.js";

/** Every request's reply subject starts so; a connection's own inboxes go on with "local<id>". */
const INBOX = `${INBOX_PREFIX}.`;
const LOCAL_INBOX = `${INBOX}local`;

/** Messages delivered in one go before the hub yields to timers and I/O. */
const BURST = 4096;

// Why a hub and connections: tests need to drop one task's connection (lease
// expiry) while the others keep theirs, exactly as a NATS client can vanish.

interface Sub {
  conn: LocalConnection;
  handler: BusHandler;
  subject: string;
  active: boolean;
}

/**
 * The in-process message hub. Delivery is asynchronous (a microtask drains a
 * FIFO), so a publisher never re-enters its own subscriber, and per-subject
 * order is kept as NATS keeps it for one connection.
 */
export class LocalHub {
  // Exact subjects and `prefix.>` subscriptions are found by map lookups, so
  // routing costs O(tokens) whatever the number of subscribers; `*` patterns,
  // which the project does not use on hot paths, are matched by a scan.
  private readonly exact = new Map<string, Sub[]>();
  private readonly tails = new Map<string, Sub[]>();
  private readonly stars: Sub[] = [];
  private nextConn = 1;
  /**
   * Subject -> the subscriptions it reaches, in delivery order. The hot
   * subjects (the kernel's trap subject, each task's delivery subjects) are
   * few and repeat on every message; matching them afresh cost a slice and a
   * map lookup per token. Any subscribe or unsubscribe drops the cache; a
   * delivery iterates a snapshot, so a subscription made by a handler sees
   * the next message, not the one being delivered (as with NATS).
   */
  private readonly routes = new Map<string, Sub[]>();

  // The delivery FIFO as parallel arrays: no object per message. `qLen` is
  // the used length: the arrays keep their capacity between drains (setting
  // `length = 0` would free it, to be reallocated by the next message).
  private qSubject: string[] = [];
  private qData: Uint8Array[] = [];
  private qReply: (string | undefined)[] = [];
  private qTrace: (string | undefined)[] = [];
  private qHead = 0;
  private qLen = 0;
  private scheduled = false;
  // ``scheduled`` stays true while a continuation is pending (setImmediate).
  private readonly drain = () => this.run();
  /**
   * Deliveries left before the hub must yield to the event loop. Kept across
   * drains, not reset when the queue empties: callers that each wait for a
   * reply and send again refill the queue from microtasks only (the reply's
   * promise continuation), so a per-drain budget let a few such loops starve
   * timers (deadlines, lease sweeps, a test's polling) forever. Refilled
   * only by a turn of the event loop.
   */
  private budget = BURST;
  private readonly refill = () => {
    this.budget = BURST;
    this.run();
  };

  connect(): LocalConnection {
    return new LocalConnection(this, this.nextConn++);
  }

  /** @internal */
  enqueue(subject: string, data: Uint8Array, reply: string | undefined, traceparent?: string): void {
    const i = this.qLen++;
    if (i < this.qSubject.length) {
      this.qSubject[i] = subject;
      this.qData[i] = data;
      this.qReply[i] = reply;
      this.qTrace[i] = traceparent;
    } else {
      this.qSubject.push(subject);
      this.qData.push(data);
      this.qReply.push(reply);
      this.qTrace.push(traceparent);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.budget > 0) queueMicrotask(this.drain);
      else setImmediate(this.refill);
    }
  }

  private run(): void {
    // Deliver everything queued, including what handlers publish meanwhile,
    // but yield to the event loop after a bounded burst: timers (heartbeats,
    // lease sweeps, deadlines) and I/O must run under sustained load, as they
    // do between NATS socket reads.
    while (this.qHead < this.qLen) {
      if (--this.budget <= 0) {
        setImmediate(this.refill);
        return;
      }
      const i = this.qHead++;
      const subject = this.qSubject[i]!;
      const data = this.qData[i]!;
      const reply = this.qReply[i];
      const tp = this.qTrace[i];
      // Delivered: the queue must not keep the message alive.
      this.qData[i] = NO_DATA;
      this.deliver(subject, data, reply, tp);
      if (this.qHead > 4096 && this.qHead * 2 > this.qLen) this.compact();
    }
    this.qHead = 0;
    this.qLen = 0;
    // A burst may have grown the queue far beyond what is usually in flight.
    if (this.qSubject.length > 4096) this.qSubject.length = this.qData.length = this.qReply.length = this.qTrace.length = 0;
    this.scheduled = false;
  }

  private compact(): void {
    this.qSubject = this.qSubject.slice(this.qHead, this.qLen);
    this.qData = this.qData.slice(this.qHead, this.qLen);
    this.qReply = this.qReply.slice(this.qHead, this.qLen);
    this.qTrace = this.qTrace.slice(this.qHead, this.qLen);
    this.qLen -= this.qHead;
    this.qHead = 0;
  }

  private deliver(subject: string, data: Uint8Array, reply: string | undefined, tp: string | undefined): void {
    let subs = this.routes.get(subject);
    if (!subs) {
      subs = this.match(subject);
      // Request inboxes are unique per request: matching them is one lookup,
      // caching them would only evict the subjects that repeat.
      if (!subject.startsWith(INBOX)) {
        if (this.routes.size >= ROUTE_CACHE_MAX) this.routes.clear();
        this.routes.set(subject, subs);
      }
    }
    for (let i = 0; i < subs.length; i++) call(subs[i]!, subject, data, reply, tp);
    // NATS answers a request nobody subscribes to with "no responders" at
    // once; so does the hub, so that both buses fail the same way.
    if (subs.length === 0 && reply !== undefined && reply.startsWith(LOCAL_INBOX)) this.deliver(reply, NO_RESPONDERS, undefined, undefined);
  }

  /** Every subscription `subject` reaches: exact, then `prefix.>` longest first, then `*` patterns. */
  private match(subject: string): Sub[] {
    const out: Sub[] = [];
    const ex = this.exact.get(subject);
    if (ex) out.push(...ex);
    if (this.tails.size > 0) {
      let end = subject.lastIndexOf(".");
      while (end > 0) {
        const subs = this.tails.get(subject.slice(0, end));
        if (subs) out.push(...subs);
        end = subject.lastIndexOf(".", end - 1);
      }
    }
    for (let i = 0; i < this.stars.length; i++) {
      const s = this.stars[i]!;
      if (matches(s.subject, subject)) out.push(s);
    }
    return out;
  }

  /** @internal */
  add(sub: Sub): void {
    this.routes.clear();
    const s = sub.subject;
    if (s.endsWith(".>") && !s.slice(0, -2).split(".").includes("*")) {
      push(this.tails, s.slice(0, -2), sub);
    } else if (s.split(".").some((t) => t === "*" || t === ">")) {
      this.stars.push(sub);
    } else {
      push(this.exact, s, sub);
    }
  }

  /** @internal */
  remove(sub: Sub): void {
    sub.active = false;
    this.routes.clear();
    const s = sub.subject;
    if (s.endsWith(".>") && !s.slice(0, -2).split(".").includes("*")) pull(this.tails, s.slice(0, -2), sub);
    else {
      const i = this.stars.indexOf(sub);
      if (i >= 0) this.stars.splice(i, 1);
      else pull(this.exact, s, sub);
    }
  }
}

const NO_DATA = new Uint8Array(0);
/** The hub's "no responders" answer, told apart by identity, never by content. */
const NO_RESPONDERS = new Uint8Array(0);

/** Distinct subjects remembered by the routing cache before it starts over. */
const ROUTE_CACHE_MAX = 4096;

function call(s: Sub, subject: string, data: Uint8Array, reply: string | undefined, tp: string | undefined): void {
  if (!s.active) return;
  try {
    s.handler(subject, data, reply, tp);
  } catch (e) {
    // A subscriber's bug must not stop delivery to everyone else.
    queueMicrotask(() => {
      throw e;
    });
  }
}

function push(m: Map<string, Sub[]>, k: string, s: Sub): void {
  const a = m.get(k);
  if (a) a.push(s);
  else m.set(k, [s]);
}

function pull(m: Map<string, Sub[]>, k: string, s: Sub): void {
  const a = m.get(k);
  if (!a) return;
  const i = a.indexOf(s);
  if (i >= 0) a.splice(i, 1);
  if (a.length === 0) m.delete(k);
}

/** NATS subject matching for patterns with `*` (and a final `>`). */
export function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

interface Pending {
  resolve(d: Uint8Array): void;
  reject(e: Error): void;
  id: number;
  subject: string;
  timeoutMs: number;
  /** Handle of its entry in the connection's Deadlines. */
  due: number;
}

/** One client of a LocalHub; behaves as a NATS connection does. */
export class LocalConnection implements Bus {
  readonly kind = "local" as const;
  closed = false;
  private readonly subs = new Set<Sub>();
  private readonly inbox: string;
  private readonly pending = new Map<number, Pending>();
  /** One coarse timer for every request's deadline, as Task has for RPCs. */
  private readonly deadlines = new Deadlines<Pending>((p) => {
    if (this.pending.get(p.id) !== p) return;
    this.pending.delete(p.id);
    p.reject(new HurdError(Errno.ETIMEDOUT, `no answer on ${p.subject} within ${p.timeoutMs} ms`));
  });
  private nextReq = 1;
  private inboxSub: BusSubscription | null = null;

  constructor(
    private readonly hub: LocalHub,
    id: number,
  ) {
    this.inbox = `${LOCAL_INBOX}${id}`;
  }

  publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    if (this.closed) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed");
    this.hub.enqueue(subject, data, reply, traceparent);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    if (this.closed) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed");
    const sub: Sub = { conn: this, handler, subject, active: true };
    this.hub.add(sub);
    this.subs.add(sub);
    return {
      unsubscribe: () => {
        if (!sub.active) return;
        this.hub.remove(sub);
        this.subs.delete(sub);
      },
    };
  }

  request(subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed"));
    if (!this.inboxSub) {
      this.inboxSub = this.subscribe(`${this.inbox}.>`, (s, d) => {
        const id = Number(s.slice(this.inbox.length + 1));
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        this.deadlines.cancel(p, p.due);
        if (d === NO_RESPONDERS) p.reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, `nobody listens on ${p.subject}`));
        else p.resolve(d);
      });
    }
    const id = this.nextReq++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const p: Pending = { resolve, reject, id, subject, timeoutMs, due: 0 };
      p.due = this.deadlines.add(p, timeoutMs);
      this.pending.set(id, p);
      this.hub.enqueue(subject, data, `${this.inbox}.${id}`, traceparent);
    });
  }

  async flush(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.subs) this.hub.remove(s);
    this.subs.clear();
    this.deadlines.clear();
    for (const p of this.pending.values()) p.reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed"));
    this.pending.clear();
  }
}

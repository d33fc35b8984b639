import { Errno, HurdError } from "../errors.js";
import type { Bus, BusHandler, BusSubscription } from "./types.js";

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

  // The delivery FIFO as parallel arrays: no object per message.
  private qSubject: string[] = [];
  private qData: Uint8Array[] = [];
  private qReply: (string | undefined)[] = [];
  private qHead = 0;
  private scheduled = false;
  private readonly drain = () => this.run();

  connect(): LocalConnection {
    return new LocalConnection(this, this.nextConn++);
  }

  /** @internal */
  enqueue(subject: string, data: Uint8Array, reply: string | undefined): void {
    this.qSubject.push(subject);
    this.qData.push(data);
    this.qReply.push(reply);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.drain);
    }
  }

  private run(): void {
    // Deliver everything queued, including what handlers publish meanwhile.
    while (this.qHead < this.qSubject.length) {
      const i = this.qHead++;
      const subject = this.qSubject[i]!;
      const data = this.qData[i]!;
      const reply = this.qReply[i];
      this.deliver(subject, data, reply);
      if (this.qHead > 4096 && this.qHead * 2 > this.qSubject.length) this.compact();
    }
    this.qSubject.length = 0;
    this.qData.length = 0;
    this.qReply.length = 0;
    this.qHead = 0;
    this.scheduled = false;
  }

  private compact(): void {
    this.qSubject = this.qSubject.slice(this.qHead);
    this.qData = this.qData.slice(this.qHead);
    this.qReply = this.qReply.slice(this.qHead);
    this.qHead = 0;
  }

  private deliver(subject: string, data: Uint8Array, reply: string | undefined): void {
    const ex = this.exact.get(subject);
    if (ex) for (let i = 0; i < ex.length; i++) call(ex[i]!, subject, data, reply);
    if (this.tails.size > 0) {
      let end = subject.lastIndexOf(".");
      while (end > 0) {
        const subs = this.tails.get(subject.slice(0, end));
        if (subs) for (let i = 0; i < subs.length; i++) call(subs[i]!, subject, data, reply);
        end = subject.lastIndexOf(".", end - 1);
      }
    }
    for (let i = 0; i < this.stars.length; i++) {
      const s = this.stars[i]!;
      if (matches(s.subject, subject)) call(s, subject, data, reply);
    }
  }

  /** @internal */
  add(sub: Sub): void {
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
    const s = sub.subject;
    if (s.endsWith(".>") && !s.slice(0, -2).split(".").includes("*")) pull(this.tails, s.slice(0, -2), sub);
    else {
      const i = this.stars.indexOf(sub);
      if (i >= 0) this.stars.splice(i, 1);
      else pull(this.exact, s, sub);
    }
  }
}

function call(s: Sub, subject: string, data: Uint8Array, reply: string | undefined): void {
  if (!s.active) return;
  try {
    s.handler(subject, data, reply);
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
  timer: NodeJS.Timeout;
}

/** One client of a LocalHub; behaves as a NATS connection does. */
export class LocalConnection implements Bus {
  readonly kind = "local" as const;
  closed = false;
  private readonly subs = new Set<Sub>();
  private readonly inbox: string;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private inboxSub: BusSubscription | null = null;

  constructor(
    private readonly hub: LocalHub,
    id: number,
  ) {
    this.inbox = `_INBOX.local${id}`;
  }

  publish(subject: string, data: Uint8Array, reply?: string): void {
    if (this.closed) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed");
    this.hub.enqueue(subject, data, reply);
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

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed"));
    if (!this.inboxSub) {
      this.inboxSub = this.subscribe(`${this.inbox}.>`, (s, d) => {
        const id = Number(s.slice(this.inbox.length + 1));
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(d);
      });
    }
    const id = this.nextReq++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HurdError(Errno.ETIMEDOUT, `no answer on ${subject} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.hub.enqueue(subject, data, `${this.inbox}.${id}`);
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
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed"));
    }
    this.pending.clear();
  }
}

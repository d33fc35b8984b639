import { connect, headers, type MsgHdrs, type NatsConnection, type NodeConnectionOptions, type Subscription } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { natsClientTls, natsConnectOptions, serverList, tlsOptions, type ClientTls, type UserCredentials } from "../nats-auth/creds.js";
import { inboxOf } from "../subjects.js";
import { Task, type AttachOptions } from "../task.js";
import type { Bus, BusHandler, BusSubscription, CredentialRenewal } from "./types.js";

/** W3C trace context as a NATS header (messages without one carry no headers at all). */
const TRACEPARENT = "traceparent";
function traceHeaders(tp: string): MsgHdrs {
  const h = headers();
  h.set(TRACEPARENT, tp);
  return h;
}

export interface NatsBusOptions {
  /** Shown by the server (connz, logs). */
  name?: string;
  /** The NATS user to connect as (NATS authorization on); absent: an anonymous client. */
  credentials?: UserCredentials;
  /** The inbox prefix the user's permissions grant (inboxOf in the subject map); absent: nats.js's "_INBOX". */
  inboxPrefix?: string;
  /** The CA of the server's certificate, when it speaks TLS. */
  tls?: ClientTls;
}

/**
 * Renewal: the user's JWT is renewed when a third of its life is left, and
 * tried again this often until it expires.
 */
const RENEW_AT = 1 / 3;
const RENEW_RETRY_MS = 2_000;
/** Publishes held while the connection is handed over (one round trip): past this, the oldest caller waits. */
const MAX_HELD = 65_536;
/**
 * Bytes published while the connection is down (nats.js keeps them to send
 * at reconnect): past this a publish fails with MACH_SEND_NO_BUFFER instead
 * of growing the process without bound through a long outage.
 */
export const MAX_OFFLINE_BYTES = 8 * 1024 * 1024;
/**
 * How often the client pings the server: a server gone without closing the
 * socket (a dead node, a partition) is noticed after two unanswered pings,
 * 20 to 30 s, instead of nats.js's default of minutes.
 */
const PING_INTERVAL_MS = 10_000;
/**
 * NatsBus.lostLimitMs unless HURD_BUS_LOST_MS says otherwise: a NATS
 * restart or a cluster node's loss is ridden out, a fabric gone for good is
 * not.
 */
export const BUS_LOST_MS = 120_000;

function busLostLimit(): number {
  const v = Number(process.env.HURD_BUS_LOST_MS);
  return Number.isFinite(v) && v > 0 ? v : BUS_LOST_MS;
}

/** A message as a subscription hands it on: subject, data, reply subject, traceparent. */
type Held = [string, Uint8Array, string | undefined, string | undefined];

/** One subscription of the bus, on whichever connection is current. */
interface Sub {
  readonly subject: string;
  readonly handler: BusHandler;
  active: boolean;
  /** On the current connection. */
  nats: Subscription;
  /** During a handover: the same subscription on the incoming connection, whose messages are held back. */
  next: Subscription | null;
  held: Held[] | null;
  /** During a handover: what the outgoing connection delivered since the incoming one subscribed. */
  seen: Uint8Array[] | null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The bus over a real nats-server (nats.js v3), as an anonymous client or
 * as one NATS user (a task's, minted by the kernel; see nats-auth). A user
 * whose JWT expires is renewed through `keepCredentials`: the new JWT needs
 * a new connection (NATS checks a JWT at connect only), so the bus hands
 * every subscription and its publishing over to one, in order and without
 * losing or repeating a message (handover below), and closes the old one
 * once its requests are answered.
 */
export class NatsBus implements Bus {
  readonly kind = "nats" as const;
  closed = false;
  private current: NatsConnection;
  /** When the current connection was lost (Date.now()), 0 while it is up: past lostLimitMs its tasks end themselves. */
  disconnectedSince = 0;
  /** How many times a connection of this bus was lost and made again (nats.js reconnects by itself). */
  reconnects = 0;
  /** Bus.lostLimitMs: its kernel pauses leases through an outage it shares, so tasks wait longer than a lease. */
  readonly lostLimitMs = busLostLimit();
  /** Bytes published since the connection went down (MAX_OFFLINE_BYTES). */
  private offlineBytes = 0;
  private readonly reconnected = new Set<() => void>();
  private creds: UserCredentials | undefined;
  private expiresAt = 0;
  private readonly subs = new Set<Sub>();
  /** Requests waiting for their answer, per connection: an old connection closes when its last one is done. */
  private readonly inflight = new Map<NatsConnection, number>();
  private retiring = new Set<NatsConnection>();
  /** Publishes made while the connection is handed over, sent on the new one once the old one's have arrived. */
  private held: Held[] | null = null;
  private switched: Promise<void> | null = null;
  /** During a handover: the connection taking over. */
  private incoming: NatsConnection | null = null;
  private renewTimer: NodeJS.Timeout | null = null;

  private constructor(
    nc: NatsConnection,
    private readonly servers: string,
    private readonly o: NatsBusOptions,
  ) {
    this.current = nc;
    this.creds = o.credentials;
    if (o.credentials) this.expiresAt = expiryOf(o.credentials.jwt);
    this.watch(nc);
  }

  /** Connects to `servers` (e.g. "nats://127.0.0.1:4222"), anonymously or as `o.credentials`'s user. */
  static async connect(servers: string, name: string | NatsBusOptions = "hurdmesh", opts: NatsBusOptions = {}): Promise<NatsBus> {
    const o: NatsBusOptions = typeof name === "string" ? { ...opts, name: opts.name ?? name } : name;
    const holder: { bus: NatsBus | null } = { bus: null };
    const nc = await NatsBus.dial(servers, o, () => holder.bus?.creds ?? o.credentials);
    holder.bus = new NatsBus(nc, servers, o);
    return holder.bus;
  }

  private static async dial(servers: string, o: NatsBusOptions, creds: () => UserCredentials | undefined): Promise<NatsConnection> {
    // No TLS in the options: the process's own (HURD_NATS_CA_FILE, set by compose and Kubernetes), read before the try so a bad CA says so.
    const tls = o.tls ?? natsClientTls();
    if (tls !== o.tls) o = { ...o, tls };
    try {
      // noAsyncTraces: nats.js otherwise builds two Error objects (stack
      // traces) per request up front, in case it fails: about a tenth of a
      // kernel call's CPU. request() below wraps failures in a HurdError with
      // the cause anyway, and the messages it maps by are the same.
      const opts: NodeConnectionOptions = {
        servers: serverList(servers),
        name: o.name ?? "hurdmesh",
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: PING_INTERVAL_MS,
        noAsyncTraces: true,
      };
      // The authenticator asks for the credentials at every (re)connect: a renewed JWT is the one presented.
      if (o.credentials) Object.assign(opts, natsConnectOptions(() => creds()!, { inboxPrefix: o.inboxPrefix, tls: o.tls }));
      else if (o.tls) opts.tls = tlsOptions(o.tls);
      if (o.inboxPrefix) opts.inboxPrefix = o.inboxPrefix;
      return await connect(opts);
    } catch (e) {
      throw new HurdError(Errno.EIO, `cannot reach NATS at ${servers}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The bus is closed when its current connection closes for good (a handed-over one closing is not that). */
  private watch(nc: NatsConnection): void {
    void nc.closed().then(() => {
      if (this.current === nc && !this.retiring.has(nc)) this.closed = true;
      this.retiring.delete(nc);
    });
    // nats.js reconnects by itself; the runtime only needs to know for how
    // long the kernel has been out of reach (Task ends itself past its lease).
    void (async () => {
      for await (const st of nc.status()) {
        if (this.current !== nc) return;
        if (st.type === "disconnect") this.disconnectedSince ||= Date.now();
        else if (st.type === "reconnect") {
          this.disconnectedSince = 0;
          this.offlineBytes = 0;
          this.reconnects++;
          for (const f of this.reconnected) {
            try {
              f();
            } catch {
              // One listener's failure is its own.
            }
          }
        }
      }
    })().catch(() => {});
  }

  /**
   * Calls `f` each time the connection is back after an outage (its
   * subscriptions are made again by then): what the server forgot with its
   * restart is told again there. Returns the way to stop.
   */
  onReconnect(f: () => void): () => void {
    this.reconnected.add(f);
    return () => this.reconnected.delete(f);
  }

  /** Counts a publish made while the connection is down against MAX_OFFLINE_BYTES. */
  private offline(bytes: number): void {
    if (this.disconnectedSince === 0) return;
    if (this.offlineBytes + bytes > MAX_OFFLINE_BYTES)
      throw new HurdError(Errno.MACH_SEND_NO_BUFFER, `the bus has been down for ${Date.now() - this.disconnectedSince} ms and holds ${this.offlineBytes} bytes unsent`);
    this.offlineBytes += bytes;
  }

  /** The current connection (a renewal replaces it): JetStreamKv's. */
  get nc(): NatsConnection {
    return this.current;
  }

  /**
   * The largest message the server takes (its advertised max_payload):
   * the kernel accepts no message whose delivery would not fit.
   */
  get maxPayload(): number | undefined {
    return this.current.info?.max_payload;
  }

  /** When the user's JWT expires (unix seconds); 0: never, or an anonymous client. */
  get expires(): number {
    return this.expiresAt;
  }

  /** Another connection to the same servers (and TLS) as another user: a trace watcher's, a task's. */
  connectAs(credentials: UserCredentials, inboxPrefix?: string, name?: string): Promise<NatsBus> {
    return NatsBus.connect(this.servers, { name: name ?? this.o.name, credentials, inboxPrefix, tls: this.o.tls });
  }

  /**
   * Renews the user's JWT through `renew` (the kernel, TaskNatsRenew) when a
   * third of its life is left, and hands the bus over to a connection that
   * presents it. Without expiring credentials there is nothing to do.
   */
  keepCredentials(renew: CredentialRenewal): void {
    if (!this.creds || !this.expiresAt || this.closed) return;
    const schedule = (ms: number) => {
      if (this.renewTimer) clearTimeout(this.renewTimer);
      this.renewTimer = setTimeout(() => void run(), Math.max(0, ms));
      this.renewTimer.unref();
    };
    const run = async () => {
      this.renewTimer = null;
      if (this.closed) return;
      try {
        const r = await renew();
        if (!r.jwt) throw new HurdError(Errno.EIO, "the kernel renewed no JWT");
        await this.handover({ jwt: r.jwt, seed: this.creds!.seed }, r.expires);
      } catch {
        // The kernel or NATS is not answering: try again while the JWT holds.
        // When it runs out, nats-server closes the connection and the bus is closed.
        if (Date.now() / 1000 < this.expiresAt) schedule(RENEW_RETRY_MS);
        return;
      }
      schedule(lifeLeftMs(this.expiresAt) * (1 - RENEW_AT));
    };
    schedule(lifeLeftMs(this.expiresAt) * (1 - RENEW_AT));
  }

  /**
   * Moves the bus to a connection as `creds`. Every subscription is made on
   * the new connection first (its messages held back), then dropped on the
   * old one, whose last messages are let in; a message both received in
   * between is passed on once, from the old one, so the handler sees the
   * same stream, in order, as if nothing had happened (a subject here has
   * one publisher, the kernel, whose messages reach both connections in the
   * same order). Publishes wait during that one round trip, so that none
   * overtakes one sent on the old connection.
   */
  private async handover(creds: UserCredentials, expires: number): Promise<void> {
    const old = this.current;
    const prev = this.creds;
    this.creds = creds;
    let next: NatsConnection;
    try {
      next = await NatsBus.dial(this.servers, this.o, () => this.creds);
    } catch (e) {
      this.creds = prev;
      throw e;
    }
    if (this.closed) {
      void next.close().catch(() => {});
      return;
    }
    let release!: () => void;
    this.switched = new Promise((r) => (release = r));
    this.incoming = next;
    const subs = [...this.subs];
    for (const s of subs) {
      s.seen = [];
      s.held = [];
      s.next = this.natsSubscribe(next, s);
    }
    try {
      await next.flush();
      this.held = [];
      // Drained, not unsubscribed: nats.js drops a message that reaches a
      // closed subscription, and the old socket may still hold some the
      // server sent before the incoming subscriptions existed (the two
      // sockets are not ordered with each other). A drain sends the UNSUB
      // and keeps the handler until the server's answer to a flush behind
      // it, so everything sent there before the UNSUB is let in (found
      // under load: a Ping's reply lost at a renewal).
      await Promise.all(subs.map((s) => (s.active ? s.nats.drain().catch(() => {}) : undefined)));
      // Everything we published on the old connection has reached its destination.
      await old.flush().catch(() => {});
      // And everything the server sent the incoming connection before the
      // UNSUBs is in: the server writes to each connection on its own, so
      // the incoming one's copy of a message the outgoing one delivered
      // last may still be on its way, and, let in after the held ones are
      // matched, it would be passed on twice (found under load: a burst of
      // 20 repeated at a renewal). A PONG comes after what was sent before it.
      await next.flush().catch(() => {});
    } finally {
      this.current = next;
      this.incoming = null;
      this.expiresAt = expires;
      this.watch(next);
      const held = this.held ?? [];
      this.held = null;
      for (const s of subs) {
        const seen = s.seen ?? [];
        const waiting = s.held ?? [];
        if (s.next) s.nats = s.next;
        s.next = null;
        s.seen = null;
        s.held = null;
        for (const m of waiting) {
          const i = seen.findIndex((d) => sameBytes(d, m[1]));
          if (i >= 0) seen.splice(i, 1);
          else if (s.active) s.handler(m[0], m[1], m[2], m[3]);
        }
      }
      for (const [subject, data, reply, tp] of held) this.publish(subject, data, reply, tp);
      this.switched = null;
      release();
      this.retire(old);
    }
  }

  /** Closes a handed-over connection once the requests made on it are answered. */
  private retire(nc: NatsConnection): void {
    this.retiring.add(nc);
    if (!this.inflight.get(nc)) void nc.close().catch(() => {});
  }

  /** `s` on connection `nc`: held back while it is the incoming one of a handover, noted while it is the outgoing one. */
  private natsSubscribe(nc: NatsConnection, s: Sub): Subscription {
    const me: { sub: Subscription | null } = { sub: null };
    me.sub = nc.subscribe(s.subject, {
      callback: (err, msg) => {
        if (err || !s.active) return;
        // Headers are parsed only when a message has some (traced kernel calls).
        const tp = msg.headers ? msg.headers.get(TRACEPARENT) || undefined : undefined;
        if (me.sub === s.next) {
          s.held?.push([msg.subject, msg.data, msg.reply || undefined, tp]);
          return;
        }
        if (s.seen !== null) s.seen.push(msg.data);
        s.handler(msg.subject, msg.data, msg.reply || undefined, tp);
      },
    });
    return me.sub;
  }

  publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    if (this.closed) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed");
    const max = this.current.info?.max_payload;
    // Past the server's max_payload nats.js throws: say it as Mach does, and before trying.
    if (max !== undefined && data.length > max) throw new HurdError(Errno.MACH_SEND_NO_BUFFER, `${data.length} bytes exceed the bus's max_payload of ${max}`);
    if (this.held) {
      if (this.held.length >= MAX_HELD) throw new HurdError(Errno.MACH_SEND_NO_BUFFER, "bus connection being renewed");
      this.held.push([subject, data, reply, traceparent]);
      return;
    }
    this.offline(data.length);
    if (traceparent) this.current.publish(subject, data, reply ? { reply, headers: traceHeaders(traceparent) } : { headers: traceHeaders(traceparent) });
    else this.current.publish(subject, data, reply ? { reply } : undefined);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    const s: Sub = { subject, handler, active: true, nats: null as unknown as Subscription, next: null, held: null, seen: null };
    // Made during a handover, it starts on the incoming connection.
    s.nats = this.natsSubscribe(this.incoming ?? this.current, s);
    this.subs.add(s);
    return {
      unsubscribe: () => {
        if (!s.active) return;
        s.active = false;
        this.subs.delete(s);
        s.nats.unsubscribe();
        s.next?.unsubscribe();
      },
    };
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array> {
    const max = this.current.info?.max_payload;
    if (max !== undefined && data.length > max) throw new HurdError(Errno.MACH_SEND_NO_BUFFER, `${data.length} bytes exceed the bus's max_payload of ${max}`);
    // A request is a publish too: it must not overtake one held during a handover.
    if (this.switched) await this.switched;
    this.offline(data.length);
    const nc = this.current;
    this.inflight.set(nc, (this.inflight.get(nc) ?? 0) + 1);
    try {
      const m = await nc.request(subject, data, traceparent ? { timeout: timeoutMs, headers: traceHeaders(traceparent) } : { timeout: timeoutMs });
      return m.data;
    } catch (e) {
      const err = e as Error;
      if (/no responders/i.test(err.message) || err.name === "NoRespondersError")
        throw new HurdError(Errno.MACH_SEND_INVALID_DEST, `nobody listens on ${subject}`, { cause: e });
      if (/timeout/i.test(err.message) || err.name === "TimeoutError")
        throw new HurdError(Errno.ETIMEDOUT, `no answer on ${subject} within ${timeoutMs} ms`, { cause: e });
      throw new HurdError(Errno.EIO, err.message, { cause: e });
    } finally {
      const left = (this.inflight.get(nc) ?? 1) - 1;
      if (left > 0) this.inflight.set(nc, left);
      else {
        this.inflight.delete(nc);
        if (this.retiring.has(nc)) void nc.close().catch(() => {});
      }
    }
  }

  async flush(): Promise<void> {
    if (this.switched) await this.switched;
    return this.current.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    if (this.switched) await this.switched.catch(() => {});
    for (const nc of this.retiring) void nc.close().catch(() => {});
    await this.current.close();
  }
}

/** Milliseconds until `exp` (unix seconds). */
function lifeLeftMs(exp: number): number {
  return exp * 1000 - Date.now();
}

/** A JWT's exp claim (unix seconds), read without checking it (its issuer, the kernel, is trusted); 0 when it has none. */
export function expiryOf(jwt: string): number {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString()) as { exp?: number };
    return typeof claims.exp === "number" ? claims.exp : 0;
  } catch {
    return 0;
  }
}

export interface NatsAttachOptions extends Omit<AttachOptions, "bus" | "ownsBus" | "system"> {
  system: string;
  /** The task's NATS user (Task.natsCredentials, a boot file, a launch order); null or absent: an anonymous connection. */
  credentials?: UserCredentials | null;
  tls?: ClientTls;
  /** The connection's name on the server (default hurd-task-<id>). */
  name?: string;
}

/**
 * Attaches as a task over a NATS connection of its own, as its own user
 * (with its inbox prefix): the task's connection, closed when the task ends.
 */
export async function attachOverNats(url: string, o: NatsAttachOptions): Promise<Task> {
  const creds = o.credentials?.jwt ? { jwt: o.credentials.jwt, seed: o.credentials.seed } : undefined;
  // A program started while NATS restarts (refused), or before its kernel
  // subscribes (no responders), tries again until its deadline: the same
  // outage its running peers ride out must not end the ones starting.
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (let wait = ATTACH_RETRY_MS; ; wait = Math.min(wait * 2, 2_000)) {
    let bus: NatsBus | null = null;
    try {
      bus = await NatsBus.connect(url, {
        name: o.name ?? `hurd-task-${o.taskId}`,
        credentials: creds,
        inboxPrefix: creds ? inboxOf(o.system, { kind: "task", taskId: o.taskId }) : undefined,
        tls: o.tls,
      });
      const left = Math.max(1, deadline - Date.now());
      return await Task.attach({ ...o, bus, ownsBus: true, timeoutMs: Math.min(o.timeoutMs ?? 10_000, left) });
    } catch (e) {
      const err = HurdError.from(e);
      // Refused connections (EIO) and a kernel not listening yet (MACH_SEND_INVALID_DEST) pass; anything else is an answer.
      const passing = (err.code === Errno.EIO && bus === null && !/authori[sz]ation|permission/i.test(err.message)) || err.code === Errno.MACH_SEND_INVALID_DEST;
      if (!passing || Date.now() + wait >= deadline) throw e;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** The first pause between attempts to attach over NATS (doubling to 2 s). */
const ATTACH_RETRY_MS = 100;

export { JetStreamKv, WRONG_LAST_SEQUENCE, type JetStreamKvOptions } from "./jetstream.js";
export { JetStreamStoreLog } from "./jetstream-store-log.js";
export { FencedError, JetStreamLog, LogUnavailableError, type JetStreamLogOptions, type LogTail } from "./jetstream-log.js";
export { JetStreamSnapshots, type JetStreamSnapshotsOptions, type StoredSnapshot } from "./jetstream-snapshots.js";

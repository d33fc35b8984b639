import { connect, headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import type { Bus, BusHandler, BusSubscription } from "./types.js";

/** W3C trace context as a NATS header (messages without one carry no headers at all). */
const TRACEPARENT = "traceparent";
function traceHeaders(tp: string): MsgHdrs {
  const h = headers();
  h.set(TRACEPARENT, tp);
  return h;
}

/** The bus over a real nats-server (nats.js v3). */
export class NatsBus implements Bus {
  readonly kind = "nats" as const;
  closed = false;
  disconnectedSince = 0;
  private constructor(readonly nc: NatsConnection) {
    void nc.closed().then(() => {
      this.closed = true;
    });
    // nats.js reconnects by itself; the runtime only needs to know for how
    // long the kernel has been out of reach (Task ends itself past its lease).
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") this.disconnectedSince ||= Date.now();
        else if (s.type === "reconnect") this.disconnectedSince = 0;
      }
    })().catch(() => {});
  }

  /**
   * The largest message the server takes (its advertised max_payload):
   * the kernel accepts no message whose delivery would not fit.
   */
  get maxPayload(): number | undefined {
    return this.nc.info?.max_payload;
  }

  /** Connects to `servers` (e.g. "nats://127.0.0.1:4222"). */
  static async connect(servers: string, name = "hurdmesh"): Promise<NatsBus> {
    try {
      // noAsyncTraces: nats.js otherwise builds two Error objects (stack
      // traces) per request up front, in case it fails: about a tenth of a
      // kernel call's CPU. request() below wraps failures in a HurdError with
      // the cause anyway, and the messages it maps by are the same.
      const nc = await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
      return new NatsBus(nc);
    } catch (e) {
      throw new HurdError(Errno.EIO, `cannot reach NATS at ${servers}: ${(e as Error).message}`, { cause: e });
    }
  }

  publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    if (this.closed) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, "bus connection closed");
    const max = this.nc.info?.max_payload;
    // Past the server's max_payload nats.js throws: say it as Mach does, and before trying.
    if (max !== undefined && data.length > max) throw new HurdError(Errno.MACH_SEND_NO_BUFFER, `${data.length} bytes exceed the bus's max_payload of ${max}`);
    if (traceparent) this.nc.publish(subject, data, reply ? { reply, headers: traceHeaders(traceparent) } : { headers: traceHeaders(traceparent) });
    else this.nc.publish(subject, data, reply ? { reply } : undefined);
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        // Headers are parsed only when a message has some (traced kernel calls).
        handler(msg.subject, msg.data, msg.reply || undefined, msg.headers ? msg.headers.get(TRACEPARENT) || undefined : undefined);
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array> {
    const max = this.nc.info?.max_payload;
    if (max !== undefined && data.length > max) throw new HurdError(Errno.MACH_SEND_NO_BUFFER, `${data.length} bytes exceed the bus's max_payload of ${max}`);
    try {
      const m = await this.nc.request(subject, data, traceparent ? { timeout: timeoutMs, headers: traceHeaders(traceparent) } : { timeout: timeoutMs });
      return m.data;
    } catch (e) {
      const err = e as Error;
      if (/no responders/i.test(err.message) || err.name === "NoRespondersError")
        throw new HurdError(Errno.MACH_SEND_INVALID_DEST, `nobody listens on ${subject}`, { cause: e });
      if (/timeout/i.test(err.message) || err.name === "TimeoutError")
        throw new HurdError(Errno.ETIMEDOUT, `no answer on ${subject} within ${timeoutMs} ms`, { cause: e });
      throw new HurdError(Errno.EIO, err.message, { cause: e });
    }
  }

  flush(): Promise<void> {
    return this.nc.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.nc.close();
  }
}
export { JetStreamKv, type JetStreamKvOptions } from "./jetstream.js";

// A server's store log (store-log.ts) on its JetStream bucket's stream
// (KV_<bucket>, the one JetStreamKv makes and the server's store user may
// reach): each message on a key of its own, $KV.<bucket>.L<n>, so the
// bucket's one-value-per-key limit keeps them all; each write conditioned
// on Nats-Expected-Last-Sequence, so an old process of the task is refused
// (StoreFencedError) once a new one claimed the log; read back through an
// ephemeral consumer from the first message; dropped before a snapshot by
// a purge up to its sequence.
import { createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { jsDecode, jsFail, jsRequest, WRONG_LAST_SEQUENCE, type ApiError } from "./jetstream-api.js";
import type { StoreSubjects } from "../subjects.js";
import { JetStreamKv, type JetStreamKvOptions } from "./jetstream.js";
import { FramedStoreLog, StoreFencedError, type LogMessage, type LogTransport } from "./store-log.js";


/** nats-server's default max_payload, when the connection does not say. */
const MAX_PAYLOAD = 1024 * 1024;

class JetStreamTransport implements LogTransport {
  readonly maxMessage: number;
  constructor(
    private readonly nc: NatsConnection,
    private readonly s: StoreSubjects,
    private readonly timeoutMs: number,
    private readonly inboxPrefix: string | undefined,
  ) {
    this.maxMessage = nc.info?.max_payload ?? MAX_PAYLOAD;
  }

  private api(subject: string, body: unknown): Promise<ApiError & Record<string, unknown>> {
    return jsRequest(this.nc, subject, body, this.timeoutMs);
  }

  private fail(what: string, r: ApiError): HurdError {
    return jsFail(`JetStream store log ${this.s.bucket}`, what, r);
  }

  async publish(key: string, data: Uint8Array, expected: number | null): Promise<number> {
    const o: { timeout: number; headers?: ReturnType<typeof headers> } = { timeout: this.timeoutMs };
    if (expected !== null) {
      o.headers = headers();
      o.headers.set("Nats-Expected-Last-Sequence", String(expected));
    }
    let m;
    try {
      m = await this.nc.request(this.s.key(key), data, o);
    } catch (e) {
      throw new HurdError(Errno.EIO, `JetStream store log ${this.s.bucket}: write not acknowledged: ${(e as Error).message}`, { cause: e });
    }
    const ack = jsDecode<ApiError & { seq?: number }>(m.data);
    if (ack.error?.err_code === WRONG_LAST_SEQUENCE) {
      const d = ack.error.description ?? "wrong last sequence";
      throw new StoreFencedError(expected ?? 0, Number(/(\d+)\s*$/.exec(d)?.[1] ?? 0), d);
    }
    if (ack.error) throw this.fail("write", ack);
    return ack.seq!;
  }

  async readAll(): Promise<LogMessage[]> {
    const out: LogMessage[] = [];
    const prefix = this.s.all.slice(0, -1);
    const inbox = createInbox(this.inboxPrefix);
    let done!: () => void;
    let failed!: (e: Error) => void;
    const finished = new Promise<void>((res, rej) => {
      done = res;
      failed = rej;
    });
    // Idle, not total: a long log takes as long as it takes while messages keep coming.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => failed(new HurdError(Errno.ETIMEDOUT, `JetStream store log ${this.s.bucket}: nothing read back for ${this.timeoutMs} ms`)), this.timeoutMs);
    };
    idle();
    const sub = this.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return failed(err);
        if (!msg.reply) return;
        idle();
        // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending> (or 12 tokens with a domain).
        const t = msg.reply.split(".");
        const seq = Number(t.length === 9 ? t[5] : t[7]);
        const pending = t.length === 9 ? t[8] : t[10];
        out.push({ seq, key: msg.subject.slice(prefix.length), data: msg.data });
        if (pending === "0") done();
      },
    });
    let consumer = "";
    try {
      const r = await this.api(this.s.consumerCreate, {
        stream_name: this.s.stream,
        config: { deliver_policy: "all", ack_policy: "none", deliver_subject: inbox, filter_subject: this.s.all, replay_policy: "instant", mem_storage: true, num_replicas: 1 },
      });
      if (r.error) throw this.fail("cannot read it back", r);
      consumer = String(r.name ?? "");
      if (r.num_pending === 0 && out.length === 0) done();
      await finished;
      return out.sort((a, b) => a.seq - b.seq);
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
      if (consumer) void this.api(this.s.consumerDelete(consumer), {}).catch(() => {});
    }
  }

  async dropBefore(seq: number): Promise<void> {
    const r = await this.api(this.s.streamPurge, { seq });
    if (r.error) throw this.fail(`cannot drop what is before ${seq}`, r);
  }

  async dropAll(): Promise<void> {
    const r = await this.api(this.s.streamPurge, {});
    if (r.error) throw this.fail("cannot purge", r);
  }
}

export class JetStreamStoreLog extends FramedStoreLog {
  private constructor(t: JetStreamTransport) {
    super(t);
  }

  /** The log of `server` in hurd `hurd` ("" for the root hurd) of `system`, on its bucket's stream (made if need be). */
  static async open(nc: NatsConnection, system: string, hurd: string, server: string, o: JetStreamKvOptions = {}): Promise<JetStreamStoreLog> {
    const kv = await JetStreamKv.open(nc, system, hurd, server, o);
    return new JetStreamStoreLog(new JetStreamTransport(nc, kv.subjects, o.timeoutMs ?? 10_000, o.inboxPrefix));
  }
}

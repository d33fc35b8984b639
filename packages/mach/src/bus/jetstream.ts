// A key-value bucket on JetStream, spoken through JetStream's own subjects
// ($KV.<bucket>.<key> for writes, $JS.API.* for the stream), as nats.js's kv
// module does, without its dependency: a server needs put, delete, read
// everything back once at a restart, and purge at a fresh boot. The
// subjects are built in subjects.ts (storeSubjectsOf).
import { createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import { storeSubjectsOf, type StoreSubjects } from "../subjects.js";
import { Errno, HurdError } from "../errors.js";
import { jsDecode, jsFail, jsRequest, NO_MESSAGE, STREAM_NAME_IN_USE, WRONG_LAST_SEQUENCE, type ApiError } from "./jetstream-api.js";
// The stores on it name the fencing refusal by this module (nats.ts re-exports it).
export { WRONG_LAST_SEQUENCE } from "./jetstream-api.js";
import type { KeyValue } from "./types.js";

export interface JetStreamKvOptions {
  /** Replicas of the stream (1 on one nats-server; 3 on a cluster of 3, so a node's loss loses no acknowledged write). */
  replicas?: number;
  /** How long one write or API call may take, ms. */
  timeoutMs?: number;
  /**
   * The connection's inbox prefix (its NATS user's, inboxOf's "store" role)
   * for the bucket read back; absent: nats.js's default, _INBOX.
   */
  inboxPrefix?: string;
}




export class JetStreamKv implements KeyValue {
  private constructor(
    private readonly nc: NatsConnection,
    readonly subjects: StoreSubjects,
    private readonly timeoutMs: number,
    private readonly inboxPrefix: string | undefined,
  ) {}

  /**
   * The bucket of `server` in hurd `hurd` ("" for the root hurd) of
   * `system`, made if it does not exist: file storage, one value per key.
   */
  static async open(nc: NatsConnection, system: string, hurd: string, server: string, o: JetStreamKvOptions = {}): Promise<JetStreamKv> {
    const s = storeSubjectsOf(system, hurd, server);
    const kv = new JetStreamKv(nc, s, o.timeoutMs ?? 10_000, o.inboxPrefix);
    const config = {
      name: s.stream,
      subjects: [s.all],
      retention: "limits",
      max_msgs_per_subject: 1,
      max_msgs: -1,
      max_bytes: -1,
      max_age: 0,
      discard: "old",
      storage: "file",
      num_replicas: o.replicas ?? 1,
      allow_rollup_hdrs: true,
      deny_delete: true,
      deny_purge: false,
      allow_direct: true,
    };
    const r = await kv.api(s.streamCreate, config);
    if (r.error && r.error.err_code !== STREAM_NAME_IN_USE) throw kv.fail("cannot make the stream", r);
    return kv;
  }

  private api(subject: string, body: unknown): Promise<ApiError & Record<string, unknown>> {
    return jsRequest(this.nc, subject, body, this.timeoutMs);
  }

  private fail(what: string, r: ApiError): HurdError {
    return jsFail(`JetStream bucket ${this.subjects.bucket}`, what, r);
  }

  /** Resolves once JetStream has stored the value (its PubAck). */
  async put(key: string, value: Uint8Array): Promise<void> {
    await this.write(key, value, undefined);
  }

  async delete(key: string): Promise<void> {
    const h = headers();
    h.set("KV-Operation", "DEL");
    await this.write(key, new Uint8Array(0), h);
  }

  private async write(key: string, value: Uint8Array, h: ReturnType<typeof headers> | undefined): Promise<void> {
    let m;
    try {
      m = await this.nc.request(this.subjects.key(key), value, h ? { timeout: this.timeoutMs, headers: h } : { timeout: this.timeoutMs });
    } catch (e) {
      throw new HurdError(Errno.EIO, `JetStream bucket ${this.subjects.bucket}: write of ${key} not acknowledged: ${(e as Error).message}`, { cause: e });
    }
    const ack = jsDecode<ApiError>(m.data);
    if (ack.error) throw this.fail(`write of ${key}`, ack);
  }

  /**
   * A key's last value and its revision (the stream sequence that wrote
   * it), or null if it has none: what a compare-and-set (update) expects.
   */
  async get(key: string): Promise<{ value: Uint8Array; revision: number } | null> {
    const r = await this.api(this.subjects.msgGet, { last_by_subj: this.subjects.key(key) });
    if (r.error) {
      if (r.error.err_code === NO_MESSAGE) return null;
      throw this.fail(`read of ${key}`, r);
    }
    const m = r.message as { seq: number; data?: string; hdrs?: string };
    // A deleted key's last message is its delete marker.
    if (m.hdrs && /KV-Operation:\s*(DEL|PURGE)/.test(Buffer.from(m.hdrs, "base64").toString())) return null;
    return { value: m.data ? new Uint8Array(Buffer.from(m.data, "base64")) : new Uint8Array(0), revision: m.seq };
  }

  /**
   * Writes `key` only if its last revision is still `revision` (0: the key
   * was never written): the new revision, or null when someone wrote it
   * first. JetStream checks it (Nats-Expected-Last-Subject-Sequence), so of
   * two writers expecting the same revision exactly one wins.
   */
  async update(key: string, value: Uint8Array, revision: number): Promise<number | null> {
    const h = headers();
    h.set("Nats-Expected-Last-Subject-Sequence", String(revision));
    let m;
    try {
      m = await this.nc.request(this.subjects.key(key), value, { timeout: this.timeoutMs, headers: h });
    } catch (e) {
      throw new HurdError(Errno.EIO, `JetStream bucket ${this.subjects.bucket}: write of ${key} not acknowledged: ${(e as Error).message}`, { cause: e });
    }
    const ack = jsDecode<ApiError & { seq?: number }>(m.data);
    if (ack.error?.err_code === WRONG_LAST_SEQUENCE) return null;
    if (ack.error) throw this.fail(`write of ${key}`, ack);
    return ack.seq ?? 0;
  }

  async purge(): Promise<void> {
    const r = await this.api(this.subjects.streamPurge, {});
    if (r.error) throw this.fail("cannot purge", r);
  }

  /**
   * Every key's last value, through an ephemeral consumer that delivers the
   * last message of each subject and ends when JetStream says none is
   * pending. Once per restart.
   */
  async entries(): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const prefix = this.subjects.all.slice(0, -1);
    const inbox = createInbox(this.inboxPrefix);
    let received = 0;
    let done!: () => void;
    let failed!: (e: Error) => void;
    const finished = new Promise<void>((res, rej) => {
      done = res;
      failed = rej;
    });
    const sub = this.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return failed(err);
        // Flow-control and heartbeat messages have no reply subject: none are asked for.
        if (!msg.reply) return;
        received++;
        const op = msg.headers?.get("KV-Operation");
        const key = msg.subject.slice(prefix.length);
        if (op === "DEL" || op === "PURGE") out.delete(key);
        else out.set(key, msg.data);
        // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>,
        // or with a domain and an account hash before the stream (12 tokens).
        const t = msg.reply.split(".");
        const pending = t.length === 9 ? t[8] : t[10];
        if (pending === "0") done();
      },
    });
    const timer = setTimeout(() => failed(new HurdError(Errno.ETIMEDOUT, `JetStream bucket ${this.subjects.bucket}: reading it back took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
    let consumer = "";
    try {
      const r = await this.api(this.subjects.consumerCreate, {
        stream_name: this.subjects.stream,
        config: { deliver_policy: "last_per_subject", ack_policy: "none", deliver_subject: inbox, filter_subject: this.subjects.all, replay_policy: "instant", mem_storage: true, num_replicas: 1 },
      });
      if (r.error) throw this.fail("cannot read it back", r);
      consumer = String(r.name ?? "");
      const delivered = (r.delivered as { consumer_seq?: number } | undefined)?.consumer_seq ?? 0;
      if (r.num_pending === 0 && received >= delivered) done();
      await finished;
      return out;
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
      if (consumer) void this.api(this.subjects.consumerDelete(consumer), {}).catch(() => {});
    }
  }
}

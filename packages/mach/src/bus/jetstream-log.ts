// The kernel's log on JetStream (services/kernel/src/journal.ts says what
// is in it): one stream per system, appended to by the leading kernel only,
// each append conditioned on the sequence it expects to be the stream's last
// (Nats-Expected-Last-Sequence), so that a kernel which is no longer the
// only writer finds out at its next append instead of forking the log; and
// tailed by standbys in order, with any gap (a slow consumer's dropped
// messages) noticed by sequence and read again.
import { createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { jsDecode, jsFail, jsRequest, makeKeptStream, WRONG_LAST_SEQUENCE, type ApiError } from "./jetstream-api.js";
import { kernelLogSubjectsOf, type KernelLogSubjects } from "../subjects.js";

export interface JetStreamLogOptions {
  /** Replicas of the stream (1 on one nats-server; 3 on a cluster of 3). */
  replicas?: number;
  /** How long one append or API call may take, ms. */
  timeoutMs?: number;
  /** The connection's inbox prefix (its user may subscribe only there): where a tail's entries are delivered. */
  inboxPrefix?: string;
}



/** An append refused because another writer appended since: the writer is deposed. */
export class FencedError extends HurdError {
  constructor(readonly expected: number, detail: string) {
    super(Errno.EPERM, `kernel log: append expecting last sequence ${expected} refused (${detail}): another kernel leads`);
  }
}

/** A request nobody received (nats.js's NoRespondersError, or a 503 status). */
function noResponders(e: unknown): boolean {
  const err = e as { name?: string; message?: string; code?: string };
  return err?.name === "NoRespondersError" || err?.code === "503" || /no responders/i.test(err?.message ?? "");
}

/** A tail's consumer sends a heartbeat when idle this often (ms), and is started again after this long unheard. */
const TAIL_HEARTBEAT_MS = 1000;
const TAIL_SILENT_MS = 5000;

/** An append that reached no server of the stream (no leader for it now): not stored, so it may be sent again. */
export class LogUnavailableError extends HurdError {
  readonly notStored = true;
  constructor(stream: string, cause: Error) {
    super(Errno.EIO, `kernel log ${stream}: no server holds the log now (${cause.message}); the entry was not stored`, { cause });
  }
}

export interface LogTail {
  stop(): void;
}

export class JetStreamLog {
  private constructor(
    private readonly nc: NatsConnection,
    readonly subjects: KernelLogSubjects,
    private readonly timeoutMs: number,
    private readonly inboxPrefix: string | undefined,
  ) {}

  /** The log of `system`, made if it does not exist: file storage, every entry kept until a snapshot covers it (trimBefore). */
  static async open(nc: NatsConnection, system: string, o: JetStreamLogOptions = {}): Promise<JetStreamLog> {
    const s = kernelLogSubjectsOf(system);
    const log = new JetStreamLog(nc, s, o.timeoutMs ?? 10_000, o.inboxPrefix);
    await makeKeptStream(nc, s.streamCreate, s.stream, [s.subject], o.replicas ?? 1, log.timeoutMs, `kernel log ${s.stream}`);
    return log;
  }

  private api(subject: string, body: unknown): Promise<ApiError & Record<string, unknown>> {
    return jsRequest(this.nc, subject, body, this.timeoutMs);
  }

  private fail(what: string, r: ApiError): HurdError {
    return jsFail(`kernel log ${this.subjects.stream}`, what, r);
  }

  /** The sequences of the log's first and last entries (first > last: empty; after a purge both go on from where they were). */
  async state(): Promise<{ first: number; last: number }> {
    const r = await this.api(this.subjects.streamInfo, {});
    if (r.error) throw this.fail("cannot read its state", r);
    const s = r.state as { first_seq: number; last_seq: number; messages: number };
    return { first: s.messages === 0 ? s.last_seq + 1 : s.first_seq, last: s.last_seq };
  }

  /**
   * After an append whose answer never came (a timeout: the entry may or
   * may not be stored): the sequence it was stored at, or null if the log
   * still ends at `expected` (not stored: it may be sent again).
   * FencedError if another writer's entry follows `expected`.
   */
  async landed(data: Uint8Array, expected: number): Promise<number | null> {
    const { last } = await this.state();
    if (last === expected) return null;
    const r = await this.api(this.subjects.msgGet, { seq: expected + 1 });
    if (r.error) throw this.fail(`cannot read entry ${expected + 1} back`, r);
    const m = r.message as { data?: string };
    const stored = m.data ? Buffer.from(m.data, "base64") : Buffer.alloc(0);
    if (stored.equals(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) return expected + 1;
    throw new FencedError(expected, `entry ${expected + 1} is another writer's`);
  }

  /** Drops the entries before `seq` (a snapshot covers them); sequences and the last one stay as they were. */
  async trimBefore(seq: number): Promise<void> {
    // Nothing lies before entry 1; and nats-server 2.9 takes a purge up to 1 as a purge of everything.
    if (seq <= 1) return;
    const r = await this.api(this.subjects.streamPurge, { seq });
    if (r.error) throw this.fail(`cannot drop the entries before ${seq}`, r);
  }

  /** Empties the log (a fresh boot); sequences go on from where they were. */
  async purge(): Promise<void> {
    const r = await this.api(this.subjects.streamPurge, {});
    if (r.error) throw this.fail("cannot purge", r);
  }

  /**
   * Appends one entry if the log's last sequence is still `expected`: its
   * sequence once JetStream has stored it. FencedError if another append
   * came first.
   */
  async append(data: Uint8Array, expected: number): Promise<number> {
    const h = headers();
    h.set("Nats-Expected-Last-Sequence", String(expected));
    let m;
    try {
      m = await this.nc.request(this.subjects.subject, data, { timeout: this.timeoutMs, headers: h });
    } catch (e) {
      // "No responders": no server holds the stream's lead now (a NATS node
      // lost, its replicas electing a new leader), so the entry is stored
      // nowhere and may be sent again (journal.ts does, while it leads). A
      // timeout may not: the entry may be stored.
      if (noResponders(e)) throw new LogUnavailableError(this.subjects.stream, e as Error);
      throw new HurdError(Errno.EIO, `kernel log ${this.subjects.stream}: append not acknowledged: ${(e as Error).message}`, { cause: e });
    }
    const ack = jsDecode<ApiError & { seq?: number }>(m.data);
    if (ack.error?.err_code === WRONG_LAST_SEQUENCE) throw new FencedError(expected, ack.error.description ?? "wrong last sequence");
    if (ack.error) throw this.fail("append", ack);
    return ack.seq!;
  }

  /**
   * Calls `entry` for every entry from sequence `from` on, in order, as they
   * are appended, until stopped. A gap in the sequences (the push consumer
   * dropped messages to a slow reader) restarts the tail at the first one
   * missing, so `entry` sees every sequence exactly once and in order.
   * `failed` hears of a tail that cannot be (re)started.
   */
  tail(from: number, entry: (seq: number, data: Uint8Array) => void, failed: (e: Error) => void): LogTail {
    let next = from;
    let stopped = false;
    let sub: ReturnType<NatsConnection["subscribe"]> | null = null;
    let consumer = "";
    const drop = () => {
      sub?.unsubscribe();
      sub = null;
      if (consumer) void this.api(this.subjects.consumerDelete(consumer), {}).catch(() => {});
      consumer = "";
    };
    // Whether the consumer (re)started and has delivered nothing yet: a gap
    // right at its start means the entries are gone (purged), not dropped.
    let fresh = true;
    // When the consumer was last heard from. It is an ephemeral one on one
    // NATS node, in memory: that node's loss or restart ends it without a
    // word, so a tail that hears nothing, not even the heartbeat it asked
    // for, for TAIL_SILENT_MS starts again from the entry it needs next.
    let heard = Date.now();
    let starting = false;
    const watchdog = setInterval(() => {
      // A failed start (the cluster still electing) is tried again at the next silence.
      if (!stopped && !starting && Date.now() - heard > TAIL_SILENT_MS) void start().catch(() => {});
    }, TAIL_HEARTBEAT_MS);
    watchdog.unref();
    const start = async () => {
      starting = true;
      try {
        await open();
      } finally {
        starting = false;
        heard = Date.now();
      }
    };
    const open = async () => {
      drop();
      fresh = true;
      const inbox = createInbox(this.inboxPrefix);
      sub = this.nc.subscribe(inbox, {
        callback: (err, msg) => {
          // Entries and the consumer's idle heartbeats alike say it is alive.
          heard = Date.now();
          if (stopped || err || !msg.reply) return;
          // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending> (or 12 tokens with a domain).
          const t = msg.reply.split(".");
          const seq = Number(t.length === 9 ? t[5] : t[7]);
          if (seq < next) return;
          if (seq > next) {
            if (fresh) {
              stopped = true;
              clearInterval(watchdog);
              drop();
              failed(new HurdError(Errno.EIO, `kernel log ${this.subjects.stream}: entries ${next}..${seq - 1} are gone (purged?)`));
            } else void start().catch(failed);
            return;
          }
          fresh = false;
          next = seq + 1;
          entry(seq, msg.data);
        },
      });
      const r = await this.api(this.subjects.consumerCreate, {
        stream_name: this.subjects.stream,
        config: { deliver_policy: "by_start_sequence", opt_start_seq: Math.max(1, next), ack_policy: "none", deliver_subject: inbox, replay_policy: "instant", mem_storage: true, num_replicas: 1, inactive_threshold: 60e9, idle_heartbeat: TAIL_HEARTBEAT_MS * 1e6 },
      });
      if (r.error) throw this.fail("cannot tail", r);
      consumer = String(r.name ?? "");
      if (stopped) drop();
    };
    void start().catch(failed);
    return {
      stop: () => {
        stopped = true;
        clearInterval(watchdog);
        drop();
      },
    };
  }
}

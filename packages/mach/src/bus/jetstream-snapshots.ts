// The kernel log's snapshots on JetStream (services/kernel/src/snapshot.ts
// says what one holds; docs/kernel-log.md, "Snapshots", when they are taken
// and what is dropped after one). A stream of its own beside the log: a
// standby writes snapshots while the leader appends to the log, and the
// leader's appends are fenced by the log's last sequence, which a write
// here never moves.
//
// A snapshot is larger than one NATS message can be, so it goes as parts,
// then a "done" message naming the parts' sequences, its size and digest:
// a reader takes the last "done" and reads back exactly the parts it
// names, so a writer killed between parts, or two writers whose parts
// interleave, leave nothing a reader would take. After a write the stream
// keeps the new snapshot and the one before it (a reader may be reading
// that one), and drops what is older.
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { jsDecode, jsFail, jsRequest, makeKeptStream, NO_MESSAGE, type ApiError } from "./jetstream-api.js";
import { kernelLogSubjectsOf, type KernelLogSubjects } from "../subjects.js";

export interface JetStreamSnapshotsOptions {
  replicas?: number;
  /** How long one write or API call may take, ms. */
  timeoutMs?: number;
  /** The largest part, bytes (the connection's max_payload less room for headers). */
  maxPart?: number;
}

/** A stored snapshot: the state after log entry `seq`. */
export interface StoredSnapshot {
  seq: number;
  data: Uint8Array;
  /** The stream sequence of its first part (what is dropped below, once a newer one is written). */
  firstPart: number;
}

interface Done {
  seq: number;
  parts: number[];
  bytes: number;
  sha256: string;
}

export class JetStreamSnapshots {
  private constructor(
    private readonly nc: NatsConnection,
    readonly subjects: KernelLogSubjects,
    private readonly timeoutMs: number,
    private readonly maxPart: number,
  ) {}

  static async open(nc: NatsConnection, system: string, o: JetStreamSnapshotsOptions = {}): Promise<JetStreamSnapshots> {
    const s = kernelLogSubjectsOf(system);
    const maxPart = o.maxPart ?? Math.max(4096, (nc.info?.max_payload ?? 1 << 20) - 4096);
    const store = new JetStreamSnapshots(nc, s, o.timeoutMs ?? 10_000, maxPart);
    await makeKeptStream(nc, s.snapStreamCreate, s.snapStream, [s.snapPart, s.snapDone], o.replicas ?? 1, store.timeoutMs, `kernel snapshots ${s.snapStream}`);
    return store;
  }

  private api(subject: string, body: unknown): Promise<ApiError & Record<string, unknown>> {
    return jsRequest(this.nc, subject, body, this.timeoutMs);
  }

  private fail(what: string, r: ApiError): HurdError {
    return jsFail(`kernel snapshots ${this.subjects.snapStream}`, what, r);
  }

  /** A stored message's body by its stream sequence (or the last "done"); null if it is not there (dropped). */
  private async get(q: { seq: number } | { last_by_subj: string }): Promise<{ seq: number; data: Uint8Array } | null> {
    const r = await this.api(this.subjects.snapMsgGet, q);
    if (r.error) {
      if (r.error.err_code === NO_MESSAGE) return null;
      throw this.fail("cannot read", r);
    }
    const m = r.message as { seq: number; data?: string };
    return { seq: m.seq, data: m.data ? new Uint8Array(Buffer.from(m.data, "base64")) : new Uint8Array(0) };
  }

  /** The last "done" message: which log entry the newest snapshot follows, and where its parts are. */
  private async lastDone(): Promise<(Done & { firstPart: number }) | null> {
    const m = await this.get({ last_by_subj: this.subjects.snapDone });
    if (m === null) return null;
    const d = JSON.parse(Buffer.from(m.data).toString()) as Done;
    if (!(Number.isSafeInteger(d.seq) && Array.isArray(d.parts) && d.parts.length > 0)) throw new HurdError(Errno.EIO, `kernel snapshots ${this.subjects.snapStream}: a "done" message that names no parts`);
    return { ...d, firstPart: d.parts[0]! };
  }

  /** The log entry the newest snapshot follows (0: none), without reading it. */
  async newestSeq(): Promise<number> {
    return (await this.lastDone())?.seq ?? 0;
  }

  /**
   * The newest snapshot, read whole and checked against its digest; null if
   * there is none. A snapshot dropped while it was read (a newer one came
   * meanwhile, twice) is read again as the newest.
   */
  async latest(): Promise<StoredSnapshot | null> {
    for (let attempt = 0; ; attempt++) {
      const d = await this.lastDone();
      if (d === null) return null;
      const parts: Uint8Array[] = [];
      for (const seq of d.parts) {
        const m = await this.get({ seq });
        if (m === null) break;
        parts.push(m.data);
      }
      if (parts.length < d.parts.length) {
        if (attempt < 3) continue;
        throw new HurdError(Errno.EIO, `kernel snapshots ${this.subjects.snapStream}: the snapshot after entry ${d.seq} lost parts while read, ${attempt + 1} times`);
      }
      const data = Buffer.concat(parts);
      if (data.length !== d.bytes || createHash("sha256").update(data).digest("hex") !== d.sha256) throw new HurdError(Errno.EIO, `kernel snapshots ${this.subjects.snapStream}: the snapshot after entry ${d.seq} does not match its digest`);
      return { seq: d.seq, data, firstPart: d.firstPart };
    }
  }

  /**
   * Stores a snapshot of the state after log entry `seq`, then drops every
   * snapshot older than the one that was newest before it. Returns that
   * one (what the log may now be cut to: readers may still start from it),
   * or null if there was none.
   */
  async write(seq: number, data: Uint8Array): Promise<{ seq: number } | null> {
    const prev = await this.lastDone();
    const parts: number[] = [];
    for (let at = 0; at < data.length || parts.length === 0; at += this.maxPart) parts.push(await this.publish(this.subjects.snapPart, data.subarray(at, at + this.maxPart)));
    const done: Done = { seq, parts, bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") };
    await this.publish(this.subjects.snapDone, Buffer.from(JSON.stringify(done)));
    // Nothing lies before a first part at 1; and nats-server 2.9 takes a purge up to 1 as a purge of everything.
    if (prev !== null && prev.firstPart > 1) {
      const r = await this.api(this.subjects.snapPurge, { seq: prev.firstPart });
      if (r.error) throw this.fail("cannot drop old snapshots", r);
    }
    return prev === null ? null : { seq: prev.seq };
  }

  private async publish(subject: string, data: Uint8Array): Promise<number> {
    let m;
    try {
      m = await this.nc.request(subject, data, { timeout: this.timeoutMs });
    } catch (e) {
      throw new HurdError(Errno.EIO, `kernel snapshots ${this.subjects.snapStream}: write not acknowledged: ${(e as Error).message}`, { cause: e });
    }
    const ack = jsDecode<ApiError & { seq?: number }>(m.data);
    if (ack.error) throw this.fail("write", ack);
    return ack.seq!;
  }
}

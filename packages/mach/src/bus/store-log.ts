// A server's state as a log (proc's table, issue 17): each batch of changes
// is ONE appended message (a trap burst's changes, group-committed), not a
// write per key, and now and then a snapshot of the whole state, after
// which what came before is dropped. A batch or snapshot bigger than one
// message goes as parts, read back only when every part is there (a process
// killed between parts answered no RPC for that batch).
//
// Only one process writes: each append names the sequence it expects to be
// the log's last (JetStream: Nats-Expected-Last-Sequence), and a new
// process that opens the log appends a claim first, so an old process of
// the same task (stopped, not dead: SIGSTOP, a paused container) is refused
// at its next write (StoreFencedError) instead of writing over its
// successor's state.
//
// The transport (where messages are stored, by sequence) is all a backend
// gives: memory-store-log.ts (tests, in one process), jetstream-store-log.ts
// (the server's JetStream bucket).
import { Errno, HurdError } from "../errors.js";

/** What a log held when opened: the last snapshot, and every batch after it, in order. */
export interface StoreLogImage {
  snapshot: Uint8Array | null;
  entries: Uint8Array[];
}

export interface StoreLog {
  /**
   * Reads the log back and takes it: a writer that opened it earlier is
   * refused from now on.
   */
  open(): Promise<StoreLogImage>;
  /** Appends one batch; resolves once stored. StoreFencedError once another writer opened the log. */
  append(data: Uint8Array): Promise<void>;
  /** Writes the whole state as of now; the entries before it are dropped. */
  snapshot(data: Uint8Array): Promise<void>;
  /** Empties the log (a fresh start); this writer keeps it. */
  reset(): Promise<void>;
  /** Bytes of the batches since the last snapshot (or since the log began). */
  readonly tailBytes: number;
  /** Bytes of the last snapshot; 0: none. */
  readonly snapshotBytes: number;
}

/** A write refused because another process opened the log since: this one is an old process of its task. */
export class StoreFencedError extends HurdError {
  constructor(
    readonly expected: number,
    /** The log's last sequence when known (JetStream says it in its refusal); 0: unknown. */
    readonly actual: number,
    detail: string,
  ) {
    super(Errno.EPERM, `store log: write expecting last sequence ${expected} refused (${detail}): a newer process of this task holds the log`);
  }
}

/** One stored message. */
export interface LogMessage {
  seq: number;
  /** Its key: L<n>, n counting up from 1 for the log's life (a subject token on JetStream). */
  key: string;
  data: Uint8Array;
}

/** Where a FramedStoreLog's messages live. */
export interface LogTransport {
  /** Largest message the transport takes, bytes. */
  readonly maxMessage: number;
  /** Stores one message if the last sequence is still `expected` (null: whatever it is); its sequence. StoreFencedError if not. */
  publish(key: string, data: Uint8Array, expected: number | null): Promise<number>;
  /** Every message, in sequence order. */
  readAll(): Promise<LogMessage[]>;
  /** Drops every message before sequence `seq`. */
  dropBefore(seq: number): Promise<void>;
  /** Drops every message. */
  dropAll(): Promise<void>;
}

type Kind = "b" | "s" | "c";
interface Header {
  k: Kind;
  /** Which part, of how many. */
  i: number;
  of: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const NL = 10;
/** Room for a part's header line and the NATS headers (Nats-Expected-Last-Sequence) within a message. */
const HEADER_ROOM = 512;
const KEY = /^L(\d+)$/;
/** Tries of the claim when another writer keeps appending in between (it is fenced by the first claim that lands). */
const CLAIM_TRIES = 5;

function frame(h: Header, chunk: Uint8Array): Uint8Array {
  const head = enc.encode(JSON.stringify(h));
  const out = new Uint8Array(head.length + 1 + chunk.length);
  out.set(head);
  out[head.length] = NL;
  out.set(chunk, head.length + 1);
  return out;
}

function unframe(data: Uint8Array): { h: Header; chunk: Uint8Array } | null {
  const nl = data.indexOf(NL);
  if (nl < 0) return null;
  try {
    const h = JSON.parse(dec.decode(data.subarray(0, nl))) as Header;
    if ((h.k !== "b" && h.k !== "s" && h.k !== "c") || !Number.isInteger(h.i) || !Number.isInteger(h.of) || h.i < 0 || h.i >= h.of) return null;
    return { h, chunk: data.subarray(nl + 1) };
  } catch {
    return null;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The log's framing, claim and fencing over a transport. */
export class FramedStoreLog implements StoreLog {
  /** The sequence of this writer's last message; null: it has not opened the log. */
  private last: number | null = null;
  /** The next key's number. */
  private next = 1;
  tailBytes = 0;
  snapshotBytes = 0;
  /** Messages not of this log (an older layout's records): the log is reset at open. */
  foreign = false;
  /** The last write asked for (see serial()). */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly t: LogTransport) {}

  async open(): Promise<StoreLogImage> {
    let refused: StoreFencedError | null = null;
    for (let tries = 0; ; tries++) {
      const msgs = await this.t.readAll();
      const image = this.read(msgs);
      // Expect the last message read; with none read, the sequence the refusal named (a log emptied but not new).
      const expected = msgs.length ? msgs.at(-1)!.seq : (refused?.actual ?? 0);
      try {
        this.last = await this.t.publish(`L${this.next++}`, frame({ k: "c", i: 0, of: 1 }, new Uint8Array(0)), expected);
        return image;
      } catch (e) {
        if (!(e instanceof StoreFencedError) || tries + 1 >= CLAIM_TRIES) throw e;
        refused = e;
      }
    }
  }

  /** The image in `msgs`: the last whole snapshot, the whole batches after it. */
  private read(msgs: LogMessage[]): StoreLogImage {
    let snapshot: Uint8Array | null = null;
    let entries: Uint8Array[] = [];
    let tail = 0;
    let part: { k: Kind; of: number; chunks: Uint8Array[] } | null = null;
    this.foreign = false;
    for (const m of msgs) {
      const n = KEY.exec(m.key);
      const f = n ? unframe(m.data) : null;
      if (!n || !f) {
        this.foreign = true;
        continue;
      }
      this.next = Math.max(this.next, Number(n[1]) + 1);
      const { h, chunk } = f;
      if (h.i === 0) part = { k: h.k, of: h.of, chunks: [] };
      // A part out of its place: what it belonged to was cut off (its writer died); skip it.
      else if (!part || part.k !== h.k || part.of !== h.of || part.chunks.length !== h.i) {
        part = null;
        continue;
      }
      part.chunks.push(chunk);
      if (part.chunks.length < part.of) continue;
      const whole = concat(part.chunks);
      if (part.k === "s") {
        snapshot = whole;
        entries = [];
        tail = 0;
      } else if (part.k === "b") {
        entries.push(whole);
        tail += whole.length;
      }
      part = null;
    }
    this.tailBytes = tail;
    this.snapshotBytes = snapshot?.length ?? 0;
    return { snapshot, entries };
  }

  /** Appends `data` as one message or as parts; the first part's sequence. */
  private async put(k: Kind, data: Uint8Array): Promise<number> {
    if (this.last === null) throw new HurdError(Errno.EINVAL, "store log: written before it was opened");
    const room = this.t.maxMessage - HEADER_ROOM;
    const of = Math.max(1, Math.ceil(data.length / room));
    let first = 0;
    for (let i = 0; i < of; i++) {
      const seq = await this.t.publish(`L${this.next++}`, frame({ k, i, of }, data.subarray(i * room, (i + 1) * room)), this.last);
      this.last = seq;
      first ||= seq;
    }
    return first;
  }

  /**
   * Runs the writes of this process one after another, in the order asked:
   * each names the sequence the one before it left, so two in flight would
   * have JetStream refuse the second as if another process held the log.
   */
  private serial<T>(write: () => Promise<T>): Promise<T> {
    const done = this.writing.then(write, write);
    this.writing = done.catch(() => {});
    return done;
  }

  append(data: Uint8Array): Promise<void> {
    return this.serial(async () => {
      await this.put("b", data);
      this.tailBytes += data.length;
    });
  }

  snapshot(data: Uint8Array): Promise<void> {
    return this.serial(async () => {
      const first = await this.put("s", data);
      this.tailBytes = 0;
      this.snapshotBytes = data.length;
      await this.t.dropBefore(first);
    });
  }

  reset(): Promise<void> {
    return this.serial(() => this.resetNow());
  }

  private async resetNow(): Promise<void> {
    await this.t.dropAll();
    // Emptied, the log's last sequence is not known here: the claim goes unconditioned (a fresh start is its task's first process).
    this.last = await this.t.publish(`L${this.next++}`, frame({ k: "c", i: 0, of: 1 }, new Uint8Array(0)), null);
    this.tailBytes = 0;
    this.snapshotBytes = 0;
    this.foreign = false;
  }
}

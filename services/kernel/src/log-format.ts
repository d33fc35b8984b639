// The kernel log's entries, byte for byte (docs/kernel-log.md says why each
// is there). One JetStream message carries one burst: a version byte, then
// records of [kind u8][length u32 LE][payload]. A record's side inputs (the
// clock it was decided at, random bytes it drew) come before it, so that a
// standby applying records in order has them in hand when it needs them.

export const LOG_VERSION = 1;

export const enum Rec {
  /** The time the following records were decided at: f64 ms (Date.now() of the leader). */
  CLOCK = 1,
  /** Random bytes the following records drew (a refill of the token pool). */
  RAND = 2,
  /** A trap as it arrived: flags u8 (1: it had an answer, 2: it came with a stream to keep), then the Trap bytes. */
  TRAP = 3,
  /** The lease sweep ended or lapsed some tasks (at the preceding CLOCK). */
  SWEEP = 4,
  /** A blocked sender's timeout fired: sender task id u32, message seq f64. */
  TIMEOUT = 5,
  /** The nested-task events gathered so far were sent. */
  EVENTS = 6,
  /** A boot task was made: JSON { name, hostPriv, ns }. */
  BOOT = 7,
  /** A new leader took over (at the preceding CLOCK): every lease starts afresh. */
  TAKEOVER = 8,
  /** A NATS user was minted outside a trap (a boot task's): task id u32; its key pair from the RAND before it. */
  USER = 9,
  /** The gRPC edge changed a task outside a trap: op u8 (EdgeOp), task id u32, arg u32 (the Receive stream's window). */
  EDGE = 10,
  /** A boot claim (boot-claim.ts): op u8 (ClaimOp), then for CLAIM the BootClaimRequest bytes without its secret. */
  CLAIM = 11,
  /** The leader's bus came back after an outage (at the preceding CLOCK): every lease and restart grace restarts; edge streams are kept. */
  RESUMED = 12,
}

/** What the edge did to a task outside a trap (edge.ts). */
export const enum EdgeOp {
  /** A Receive stream opened: the task attached with it as its delivery path. */
  SINK = 1,
  /** That stream ended while it was still the task's delivery path. */
  UNSINK = 2,
  /** The stream's heartbeat: the task was heard from. */
  TOUCH = 3,
  /** The edge's attach call answered (its bootstrap port may have been named in the task's space). */
  ATTACHED = 4,
}

/** What a boot claim did (boot-claim.ts). */
export const enum ClaimOp {
  /** A claim whose secret was right, whatever its outcome: replayed, it meets the same outcome. */
  CLAIM = 1,
  /** The claims' sweep ended the hurd of a claim whose startup task had ended. */
  SWEEP = 2,
}

/** The records of one burst as they are gathered (one allocation per record header, the payloads as they are). */
export class BurstWriter {
  parts: Uint8Array[] = [];
  size = 0;
  records = 0;

  add(kind: Rec, payload: Uint8Array | null, flags = -1): void {
    const extra = flags >= 0 ? 1 : 0;
    const len = (payload?.length ?? 0) + extra;
    const h = Buffer.allocUnsafe(5 + extra);
    h[0] = kind;
    h.writeUInt32LE(len, 1);
    if (extra) h[5] = flags;
    this.parts.push(h);
    if (payload !== null && payload.length > 0) this.parts.push(payload);
    this.size += 5 + len;
    this.records++;
  }

  /** The burst's bytes, and an empty writer. */
  take(): Uint8Array {
    const out = Buffer.allocUnsafe(1 + this.size);
    out[0] = LOG_VERSION;
    let at = 1;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    this.parts = [];
    this.size = 0;
    this.records = 0;
    return out;
  }
}

export function f64(v: number): Uint8Array {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleLE(v, 0);
  return b;
}

export interface LogRecord {
  kind: Rec;
  payload: Buffer;
}

/** The records of one burst, in order; throws on a burst this version cannot read (never applied in part). */
export function readBurst(data: Uint8Array): LogRecord[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < 1 || b[0] !== LOG_VERSION) throw new Error(`kernel log entry of version ${b[0]} (this kernel reads ${LOG_VERSION})`);
  const out: LogRecord[] = [];
  let at = 1;
  while (at < b.length) {
    if (at + 5 > b.length) throw new Error(`kernel log entry cut short at byte ${at}`);
    const kind = b[at]! as Rec;
    const len = b.readUInt32LE(at + 1);
    if (at + 5 + len > b.length) throw new Error(`kernel log record of ${len} bytes at byte ${at} runs past the entry`);
    out.push({ kind, payload: b.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

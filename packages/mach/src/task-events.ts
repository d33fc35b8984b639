// TaskEventsNotification (hurd.mach.v1, id 4402) on the wire, by hand.
//
// The kernel sends an ancestor hurd's proc one of these per burst of nested
// tasks' lives, so its cost is paid per task and per level of nesting. The
// generated codec takes every uint64 through the 64-bit integer helpers (a
// parse on encode, a BigInt-or-string conversion on decode) and builds new
// arrays per message: together most of what an ancestor spent per task.
// This codec writes and reads the same proto3 bytes (packed varints, one
// string per name), so the generated TaskEventsNotification still decodes
// what it writes and vice versa; the decoder refills the caller's arrays.

/** One batch as parallel arrays, one entry per event (see mach.proto). */
export interface TaskEvents {
  kind: number[];
  taskId: number[];
  parentId: number[];
  namespaceId: number[];
  name: string[];
}

export function newTaskEvents(): TaskEvents {
  return { kind: [], taskId: [], parentId: [], namespaceId: [], name: [] };
}

/** Empties the arrays, keeping them for the next batch. */
export function clearTaskEvents(e: TaskEvents): void {
  e.kind.length = e.taskId.length = e.parentId.length = e.namespaceId.length = e.name.length = 0;
}

const TWO_31 = 2 ** 31;

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  for (v = Math.floor(v / 0x10000000); v > 0; v = Math.floor(v / 0x80)) n++;
  return n;
}

function packedSize(a: number[], n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += varintSize(a[i]!);
  return s;
}

function writeVarint(b: Uint8Array, pos: number, v: number): number {
  // Numbers are non-negative integers up to 2^53 (task and namespace ids):
  // bit operations only below 2^31, division above.
  while (v >= TWO_31) {
    b[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v >= 0x80) {
    b[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[pos++] = v;
  return pos;
}

function checkNumber(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} ${v} is not a uint64 a number can hold`);
}

/**
 * The bytes of a TaskEventsNotification holding the first `n` entries of
 * every array (default: all of kind's). Entries must be non-negative safe
 * integers; a missing one in a shorter array throws.
 */
export function encodeTaskEvents(e: TaskEvents, n: number = e.kind.length): Uint8Array {
  const fields = [e.kind, e.taskId, e.parentId, e.namespaceId];
  for (const a of fields) {
    if (a.length < n) throw new RangeError("task events: arrays of unequal length");
    for (let i = 0; i < n; i++) checkNumber(a[i]!, "task event field");
  }
  if (e.name.length < n) throw new RangeError("task events: arrays of unequal length");
  if (n === 0) return new Uint8Array(0);
  const sizes = fields.map((a) => packedSize(a, n));
  let total = 0;
  for (const s of sizes) total += 1 + varintSize(s) + s;
  // Task names are short and nearly always ASCII: counted and copied here,
  // since a call into Buffer's native UTF-8 code per name cost more than the
  // rest of the message. Others take that way (-1: not ASCII).
  const nameBytes: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = e.name[i]!;
    let len = asciiLength(s);
    nameBytes[i] = len;
    if (len < 0) len = Buffer.byteLength(s, "utf8");
    total += 1 + varintSize(len) + len;
  }
  const b = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let f = 0; f < 4; f++) {
    b[pos++] = ((f + 1) << 3) | 2;
    pos = writeVarint(b, pos, sizes[f]!);
    const a = fields[f]!;
    for (let i = 0; i < n; i++) pos = writeVarint(b, pos, a[i]!);
  }
  for (let i = 0; i < n; i++) {
    const s = e.name[i]!;
    b[pos++] = (5 << 3) | 2;
    if (nameBytes[i]! >= 0) {
      pos = writeVarint(b, pos, s.length);
      for (let k = 0; k < s.length; k++) b[pos++] = s.charCodeAt(k);
    } else {
      const len = Buffer.byteLength(s, "utf8");
      pos = writeVarint(b, pos, len);
      pos += b.write(s, pos, len, "utf8");
    }
  }
  return b;
}

/** s.length if every character of s is ASCII, else -1. */
function asciiLength(s: string): number {
  for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) > 0x7f) return -1;
  return s.length;
}

/** Names up to this long are checked for ASCII (and for a repeat of the last one) in JS. */
const SHORT_NAME = 64;

/**
 * The last short ASCII name decoded: a batch is mostly the same few program
 * names over and over, and handing out the same string again saves an
 * allocation per event (strings are immutable, so sharing is safe).
 */
let lastName = "";

function readName(b: Buffer, start: number, end: number): string {
  const len = end - start;
  // Terminated events carry "": it must not evict the name worth keeping.
  if (len === 0) return "";
  if (len > SHORT_NAME) return b.toString("utf8", start, end);
  let same = lastName.length === len;
  for (let k = 0; k < len; k++) {
    const c = b[start + k]!;
    if (c > 0x7f) return b.toString("utf8", start, end);
    if (same && c !== lastName.charCodeAt(k)) same = false;
  }
  if (same) return lastName;
  // ASCII: latin1 is the same bytes, and a cheaper native path than UTF-8.
  return (lastName = b.toString("latin1", start, end));
}

class Reader {
  pos = 0;
  constructor(
    readonly b: Buffer,
    public end: number,
  ) {}

  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError("task events: truncated varint");
      const x = this.b[this.pos++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new RangeError("task events: value past 2^53");
        return v;
      }
      mul *= 0x80;
    }
    throw new RangeError("task events: varint longer than 10 bytes");
  }

  /** The end of a length-delimited field starting here. */
  delimited(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new RangeError("task events: field runs past the message");
    return end;
  }
}

/**
 * Decodes a TaskEventsNotification into `into` (emptied first). Packed and
 * unpacked numbers are both accepted and unknown fields skipped, as any
 * proto3 decoder would; malformed bytes throw a RangeError.
 */
export function decodeTaskEvents(bytes: Uint8Array, into: TaskEvents): void {
  clearTaskEvents(into);
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength);
  const fields = [into.kind, into.taskId, into.parentId, into.namespaceId];
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field >= 1 && field <= 4 && wire === 0) fields[field - 1]!.push(r.varint());
    else if (field >= 1 && field <= 4 && wire === 2) {
      const a = fields[field - 1]!;
      const end = r.delimited();
      const outer = r.end;
      r.end = end;
      while (r.pos < end) a.push(r.varint());
      r.end = outer;
    } else if (field === 5 && wire === 2) {
      const end = r.delimited();
      into.name.push(readName(r.b, r.pos, end));
      r.pos = end;
    } else if (wire === 0) r.varint();
    else if (wire === 1) r.pos += 8;
    else if (wire === 2) r.pos = r.delimited();
    else if (wire === 5) r.pos += 4;
    else throw new RangeError(`task events: wire type ${wire}`);
    if (r.pos > r.end) throw new RangeError("task events: field runs past the message");
  }
}

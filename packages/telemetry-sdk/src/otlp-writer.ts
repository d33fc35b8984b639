// The OTLP/protobuf writer: a growing buffer, and the messages every span
// shares (KeyValue, AnyValue, Link), with what recurs (attribute keys,
// constant attributes, recurring strings) encoded once per process. Used
// by the exporter on the main thread and by the export worker alike.
//
// Layout (opentelemetry/proto common/v1, trace/v1):
//   KeyValue { 1 key, 2 AnyValue { 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue { 1 repeated AnyValue } } }
//   Link { 1 trace_id, 2 span_id, 4 attributes, 6 flags }
import type { Attributes, AttributeValue, Link, SpanStatus } from "@opentelemetry/api";

export const LD = 2;
export const VARINT = 0;
export const I64 = 1;
export const I32 = 5;

/** Hex digit values by char code (255: not a hex digit). */
const UNHEX = new Uint8Array(65536).fill(255);
for (let i = 0; i < 16; i++) {
  UNHEX["0123456789abcdef".charCodeAt(i)] = i;
  UNHEX["0123456789ABCDEF".charCodeAt(i)] = i;
}

/** A growing protobuf buffer. Nested messages reserve one length byte and move their body when it needs more. */
export class Writer {
  buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;
  private readonly f64 = new Float64Array(1);
  private readonly f64b = new Uint8Array(this.f64.buffer);

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    this.room(10);
    if (v < 0) {
      // int64 two's complement: ten bytes.
      let lo = v >>> 0;
      let hi = Math.floor(v / 4294967296) >>> 0;
      for (let i = 0; i < 9; i++) {
        this.buf[this.pos++] = (lo & 0x7f) | 0x80;
        lo = ((lo >>> 7) | (hi << 25)) >>> 0;
        hi >>>= 7;
      }
      this.buf[this.pos++] = 1;
      return;
    }
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }
  tag(field: number, wire: number): void {
    // Fields from 16 on (Span.flags) take two bytes.
    if (field < 16) this.byte((field << 3) | wire);
    else this.varint((field << 3) | wire);
  }
  raw(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  // Short strings and ids are written by a JS loop: each of Buffer's
  // native codecs is a call into C++ that costs more than the copy of a
  // span name or a 16-digit id. Longer or non-ASCII strings go native.
  /** A length-delimited UTF-8 string. */
  string(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      this.room(n + 1);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    const len = Buffer.byteLength(s, "utf8");
    this.varint(len);
    this.room(len);
    this.pos += this.buf.write(s, this.pos, len, "utf8");
  }
  /** `b[from, from + n)` as a length-delimited bytes field (n < 128: ids). */
  idBytes(b: Uint8Array, from: number, n: number): void {
    this.room(n + 1);
    const o = this.buf;
    let p = this.pos;
    o[p++] = n;
    for (let i = 0; i < n; i++) o[p++] = b[from + i]!;
    this.pos = p;
  }
  /** `hex` (16 or 32 lowercase hex digits) as a length-delimited bytes field. */
  hexBytes(hex: string): void {
    const n = hex.length >> 1;
    this.room(n + 1);
    const b = this.buf;
    let p = this.pos;
    b[p++] = n;
    for (let i = 0; i < hex.length; i += 2) {
      const hi = UNHEX[hex.charCodeAt(i)]!;
      const lo = UNHEX[hex.charCodeAt(i + 1)]!;
      if ((hi | lo) > 15) {
        // Not lowercase hex (a foreign span's id): Buffer's decoder decides.
        b[this.pos] = n;
        this.pos++;
        this.pos += b.write(hex, this.pos, n, "hex");
        return;
      }
      b[p++] = (hi << 4) | lo;
    }
    this.pos = p;
  }
  fixed32(v: number): void {
    this.room(4);
    this.buf[this.pos++] = v & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 24) & 0xff;
  }
  /** Nanoseconds since the epoch (`ms`, fractional) as fixed64, exact to the microsecond. */
  fixed64Nanos(ms: number): void {
    const us = Math.round(ms * 1000);
    // ns = us * 1000, split in 32-bit halves without leaving the safe integers.
    const lo = (us % 4294967296) * 1000;
    const hi = Math.floor(us / 4294967296) * 1000 + Math.floor(lo / 4294967296);
    this.fixed32(lo % 4294967296);
    this.fixed32(hi);
  }
  double(v: number): void {
    this.f64[0] = v;
    this.raw(this.f64b);
  }
  /** Starts a nested message: returns where its length byte is. */
  open(): number {
    this.byte(0);
    return this.pos;
  }
  /** Ends the nested message opened at `start`, writing its length (moving the body if it takes more than a byte). */
  close(start: number): void {
    const len = this.pos - start;
    if (len < 0x80) {
      this.buf[start - 1] = len;
      return;
    }
    let extra = 0;
    for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
    this.room(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    let p = start - 1;
    let v = len;
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
    this.pos += extra;
  }
  take(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.buf, 0, this.pos);
  }

  // ------------------------------------------------ KeyValues, for LightSpan.writeAttributes

  /** A KeyValue made ahead (constKV). */
  kv(b: Uint8Array): void {
    this.raw(b);
  }
  /**
   * A string attribute whose value is one of few (method names, errno
   * names): its UTF-8 is made once per distinct value. With a short key and
   * value every length fits a byte, and the KeyValue is written straight.
   */
  kvString(key: Uint8Array, v: string): void {
    this.kvBytes(key, utf8Of(v));
  }
  /** A string attribute given as its UTF-8. */
  kvBytes(key: Uint8Array, b: Uint8Array): void {
    const av = 2 + b.length;
    const kv = key.length + 2 + av;
    if (b.length >= 0x80 || kv >= 0x80) return this.kvAny(key, Buffer.from(b.buffer, b.byteOffset, b.length).toString("utf8"));
    let p = this.shortKV(key, kv, av, 0x0a); // string_value, LD
    const o = this.buf;
    o[p++] = b.length;
    o.set(b, p);
    this.pos = p + b.length;
  }
  /**
   * `<prefix><a>.<b>` as a string attribute, digits written in place (the
   * kernel's per-port subject: one distinct value per port, not worth a cache).
   */
  kvSubject(key: Uint8Array, prefix: Uint8Array, a: number, b: number): void {
    const da = digits(a);
    const db = digits(b);
    const n = prefix.length + da + 1 + db;
    const av = 2 + n;
    const kv = key.length + 2 + av;
    if (n >= 0x80 || kv >= 0x80 || a < 0 || b < 0) return this.kvAny(key, `${Buffer.from(prefix).toString("utf8")}${a}.${b}`);
    let p = this.shortKV(key, kv, av, 0x0a);
    const o = this.buf;
    o[p++] = n;
    o.set(prefix, p);
    p += prefix.length;
    p = putDigits(o, p, a, da);
    o[p++] = 0x2e; // .
    this.pos = putDigits(o, p, b, db);
  }
  /** An int attribute; a small non-negative one (ids, names, codes) is written straight. */
  /** `<prefix><a>` as a string attribute, digits written in place (a task's address). */
  kvPrefixed(key: Uint8Array, prefix: Uint8Array, a: number): void {
    const da = digits(a);
    const n = prefix.length + da;
    const av = 2 + n;
    const kv = key.length + 2 + av;
    if (n >= 0x80 || kv >= 0x80 || a < 0) return this.kvAny(key, `${Buffer.from(prefix).toString("utf8")}${a}`);
    let p = this.shortKV(key, kv, av, 0x0a);
    const o = this.buf;
    o[p++] = n;
    o.set(prefix, p);
    p += prefix.length;
    this.pos = putDigits(o, p, a, da);
  }
  kvInt(key: Uint8Array, v: number): void {
    if (v >= 0 && v < 0x10000000) {
      const vl = v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4;
      const av = 1 + vl;
      const kv = key.length + 2 + av;
      if (kv < 0x80) {
        let p = this.shortKV(key, kv, av, 0x18); // int_value, varint
        const o = this.buf;
        while (v >= 0x80) {
          o[p++] = (v & 0x7f) | 0x80;
          v >>>= 7;
        }
        o[p++] = v;
        this.pos = p;
        return;
      }
    }
    this.kvAny(key, v);
  }
  /**
   * The head of a KeyValue whose lengths fit a byte each: field 9, the key,
   * the AnyValue and its value's tag. Makes room for all `kv` bytes and
   * returns where the value goes (the caller sets pos past it).
   */
  private shortKV(key: Uint8Array, kv: number, av: number, valueTag: number): number {
    this.room(kv + 2);
    const o = this.buf;
    let p = this.pos;
    o[p++] = 0x4a; // field 9, LD
    o[p++] = kv;
    o.set(key, p);
    p += key.length;
    o[p++] = 0x12; // AnyValue, LD
    o[p++] = av;
    o[p++] = valueTag;
    return p;
  }
  kvAny(key: Uint8Array, v: AttributeValue): void {
    this.tag(9, LD);
    const kv = this.open();
    this.raw(key);
    this.tag(2, LD);
    const av = this.open();
    anyValue(this, v);
    this.close(av);
    this.close(kv);
  }
}


function digits(v: number): number {
  let n = 1;
  while (v >= 10) {
    v = Math.floor(v / 10);
    n++;
  }
  return n;
}
function putDigits(o: Uint8Array, p: number, v: number, n: number): number {
  for (let i = p + n - 1; i >= p; i--) {
    o[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return p + n;
}

/** UTF-8 of strings that recur (span names, methods, errno names), made once; bounded. */
const utf8s = new Map<string, Uint8Array>();
const UTF8S_MAX = 4096;
const utf8enc = new TextEncoder();
export function utf8Of(s: string): Uint8Array {
  let b = utf8s.get(s);
  if (b === undefined) {
    b = utf8enc.encode(s);
    if (utf8s.size < UTF8S_MAX) utf8s.set(s, b);
  }
  return b;
}

/** Attribute keys, encoded once: field 1 of a KeyValue with its length. */
const keys = new Map<string, Uint8Array>();
const KEYS_MAX = 4096;
export function keyBytes(k: string): Uint8Array {
  let b = keys.get(k);
  if (b === undefined) {
    const w = new Writer();
    w.tag(1, LD);
    w.string(k);
    b = w.take();
    if (keys.size < KEYS_MAX) keys.set(k, b);
  }
  return b;
}

export function anyValue(w: Writer, v: AttributeValue): void {
  switch (typeof v) {
    case "string":
      w.tag(1, LD);
      w.string(v);
      return;
    case "boolean":
      w.tag(2, VARINT);
      w.byte(v ? 1 : 0);
      return;
    case "number":
      if (Number.isInteger(v) && Math.abs(v) < 2 ** 63) {
        w.tag(3, VARINT);
        w.varint(v);
      } else {
        w.tag(4, I64);
        w.double(v);
      }
      return;
  }
  if (Array.isArray(v)) {
    w.tag(5, LD);
    const arr = w.open();
    for (const x of v) {
      if (x === null || x === undefined) continue;
      w.tag(1, LD);
      const s = w.open();
      anyValue(w, x as AttributeValue);
      w.close(s);
    }
    w.close(arr);
  }
}

export function attributes(w: Writer, field: number, a: Attributes): void {
  for (const k in a) {
    const v = a[k];
    if (v === undefined || v === null) continue;
    w.tag(field, LD);
    const kv = w.open();
    w.raw(keyBytes(k));
    w.tag(2, LD);
    const av = w.open();
    anyValue(w, v);
    w.close(av);
    w.close(kv);
  }
}

/** A span's status (field 15), when it is set. */
export function status(w: Writer, st: SpanStatus): void {
  if (st.code === 0 && !st.message) return;
  w.tag(15, LD);
  const ss = w.open();
  if (st.message) {
    w.tag(2, LD);
    w.string(st.message);
  }
  if (st.code !== 0) {
    w.tag(3, VARINT);
    w.byte(st.code);
  }
  w.close(ss);
}

export function link(w: Writer, l: Link): void {
  w.tag(13, LD);
  const s = w.open();
  w.tag(1, LD);
  w.hexBytes(l.context.traceId);
  w.tag(2, LD);
  w.hexBytes(l.context.spanId);
  if (l.attributes) attributes(w, 4, l.attributes);
  w.tag(6, I32);
  w.fixed32((l.context.traceFlags & 0xff) | 0x100 | (l.context.isRemote ? 0x200 : 0));
  w.close(s);
}


/** A whole span attribute (field 9 KeyValue), encoded once, for constant attributes. */
export function constKV(key: string, v: AttributeValue): Uint8Array {
  const w = new Writer();
  w.kvAny(keyBytes(key), v);
  return w.take();
}


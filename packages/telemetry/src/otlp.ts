// OTLP/protobuf for the spans the hot path makes, and an exporter that
// posts it (OTLP over HTTP, application/x-protobuf).
//
// Why not the SDK's serializer: it is general, and at 100 % sampling its
// cost per span (two passes over every span, each reading every getter;
// every attribute key UTF-8 encoded again per span) was a quarter of a
// brokered RPC's CPU. Here a batch is encoded in one pass into one growing
// buffer; attribute keys, the resource and the scope are encoded once per
// process; ids go from hex straight to bytes. Spans that are not
// LightSpans (the SDK tracer's, e.g. a test's root span) are encoded by the
// SDK's serializer and appended: concatenated ExportTraceServiceRequest
// messages are one message (repeated fields concatenate).
//
// Message layout (opentelemetry/proto/collector/trace/v1, trace/v1, common/v1):
//   ExportTraceServiceRequest { 1: repeated ResourceSpans }
//   ResourceSpans { 1: Resource, 2: repeated ScopeSpans }
//   Resource { 1: repeated KeyValue attributes }
//   ScopeSpans { 1: InstrumentationScope { 1: name, 2: version }, 2: repeated Span }
//   Span { 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 7/8 start/end fixed64 ns,
//          9 attributes, 13 links, 15 status { 2 message, 3 code }, 16 flags fixed32 }
//   KeyValue { 1 key, 2 AnyValue { 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue { 1 repeated AnyValue } } }
//   Link { 1 trace_id, 2 span_id, 4 attributes, 6 flags }
import type { Attributes, AttributeValue, Link } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { LightSpan, type LightSink } from "./light.js";

const LD = 2;
const VARINT = 0;
const I64 = 1;
const I32 = 5;

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
    const b = utf8Of(v);
    const av = 2 + b.length;
    const kv = key.length + 2 + av;
    if (b.length >= 0x80 || kv >= 0x80) return this.kvStringSlow(key, v);
    this.room(kv + 2);
    const o = this.buf;
    let p = this.pos;
    o[p++] = 0x4a; // field 9, LD
    o[p++] = kv;
    o.set(key, p);
    p += key.length;
    o[p++] = 0x12; // AnyValue, LD
    o[p++] = av;
    o[p++] = 0x0a; // string_value, LD
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
    if (n >= 0x80 || kv >= 0x80 || a < 0 || b < 0) return this.kvStringSlow(key, `${new TextDecoder().decode(prefix)}${a}.${b}`);
    this.room(kv + 2);
    const o = this.buf;
    let p = this.pos;
    o[p++] = 0x4a;
    o[p++] = kv;
    o.set(key, p);
    p += key.length;
    o[p++] = 0x12;
    o[p++] = av;
    o[p++] = 0x0a;
    o[p++] = n;
    o.set(prefix, p);
    p += prefix.length;
    p = putDigits(o, p, a, da);
    o[p++] = 0x2e; // .
    this.pos = putDigits(o, p, b, db);
  }
  /** A string attribute, the general way. */
  kvStringSlow(key: Uint8Array, v: string): void {
    this.tag(9, LD);
    const kv = this.open();
    this.raw(key);
    this.tag(2, LD);
    const av = this.open();
    this.tag(1, LD);
    this.string(v);
    this.close(av);
    this.close(kv);
  }
  /** An int attribute; a small non-negative one (ids, names, codes) is written straight. */
  kvInt(key: Uint8Array, v: number): void {
    if (v >= 0 && v < 0x10000000) {
      const vl = v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4;
      const av = 1 + vl;
      const kv = key.length + 2 + av;
      if (kv < 0x80) {
        this.room(kv + 2);
        const o = this.buf;
        let p = this.pos;
        o[p++] = 0x4a;
        o[p++] = kv;
        o.set(key, p);
        p += key.length;
        o[p++] = 0x12;
        o[p++] = av;
        o[p++] = 0x18; // int_value, varint
        while (v >= 0x80) {
          o[p++] = (v & 0x7f) | 0x80;
          v >>>= 7;
        }
        o[p++] = v;
        this.pos = p;
        return;
      }
    }
    this.tag(9, LD);
    const kv = this.open();
    this.raw(key);
    this.tag(2, LD);
    const av = this.open();
    this.tag(3, VARINT);
    this.varint(v);
    this.close(av);
    this.close(kv);
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

function anyValue(w: Writer, v: AttributeValue): void {
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

function attributes(w: Writer, field: number, a: Attributes): void {
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

function link(w: Writer, l: Link): void {
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

/** One Span (field 2 of ScopeSpans) for `sp`. */
export function encodeSpan(w: Writer, sp: LightSpan): void {
  const ids = sp.ids;
  w.tag(2, LD);
  const s = w.open();
  w.tag(1, LD);
  w.idBytes(ids, 0, 16);
  w.tag(2, LD);
  w.idBytes(ids, 16, 8);
  const parent = sp.parentCtx;
  if (parent !== null) {
    w.tag(4, LD);
    w.idBytes(parent, 16, 8);
  }
  w.tag(5, LD);
  const name = utf8Of(sp.name);
  w.varint(name.length);
  w.raw(name);
  w.tag(6, VARINT);
  w.byte(sp.kind + 1);
  w.tag(7, I64);
  w.fixed64Nanos(sp.startMs);
  w.tag(8, I64);
  w.fixed64Nanos(sp.endMs);
  if (sp.writeAttributes !== undefined && !sp.hasExtra) sp.writeAttributes(w);
  else attributes(w, 9, sp.attributes);
  for (const l of sp.links) link(w, l);
  const st = sp.status;
  if (st.code !== 0 || st.message) {
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
  // flags: the sampled bit, and "the parent's remoteness is known" (it is: remote when there is one).
  w.tag(16, I32);
  w.fixed32(0x101 | (sp.hasParent ? 0x200 : 0));
  w.close(s);
}

/** Resource (field 1 of ResourceSpans) and scope (field 1 of ScopeSpans), encoded once per pair. */
export interface Head {
  resource: Uint8Array;
  scope: Uint8Array;
}
const heads = new WeakMap<Resource, Map<string, Head>>();
function head(sp: LightSpan): Head {
  return headFor(sp.resource, sp.instrumentationScope);
}
export function headFor(resource: Resource, sc: InstrumentationScope): Head {
  let byScope = heads.get(resource);
  if (!byScope) heads.set(resource, (byScope = new Map()));
  const key = `${sc.name}@${sc.version ?? ""}`;
  let h = byScope.get(key);
  if (!h) {
    const w = new Writer();
    w.tag(1, LD);
    const r = w.open();
    attributes(w, 1, resource.attributes);
    w.close(r);
    const res = w.take();
    const v = new Writer();
    v.tag(1, LD);
    const s = v.open();
    v.tag(1, LD);
    v.string(sc.name);
    if (sc.version) {
      v.tag(2, LD);
      v.string(sc.version);
    }
    v.close(s);
    h = { resource: res, scope: v.take() };
    byScope.set(key, h);
  }
  return h;
}

/** A whole span attribute (field 9 KeyValue), encoded once, for constant attributes. */
export function constKV(key: string, v: AttributeValue): Uint8Array {
  const w = new Writer();
  w.kvAny(keyBytes(key), v);
  return w.take();
}

let shared: Writer | null = null;

/** One ExportTraceServiceRequest (OTLP/protobuf) for `spans`. */
export function encodeSpans(spans: readonly ReadableSpan[]): Uint8Array {
  const w = (shared ??= new Writer());
  w.pos = 0;
  let others: ReadableSpan[] | null = null;
  // Light spans of one resource and scope go in one ResourceSpans (the usual
  // batch has one); a batch that mixes them gets one ResourceSpans per run.
  let i = 0;
  while (i < spans.length) {
    const first = spans[i]!;
    if (!(first instanceof LightSpan)) {
      (others ??= []).push(first);
      i++;
      continue;
    }
    const h = head(first);
    w.tag(1, LD);
    const rs = w.open();
    w.raw(h.resource);
    w.tag(2, LD);
    const ss = w.open();
    w.raw(h.scope);
    for (; i < spans.length; i++) {
      const sp = spans[i]!;
      if (!(sp instanceof LightSpan)) {
        (others ??= []).push(sp);
        continue;
      }
      if (sp.resource !== first.resource || sp.instrumentationScope !== first.instrumentationScope) break;
      encodeSpan(w, sp);
    }
    w.close(ss);
    w.close(rs);
  }
  let out = w.take();
  if (others !== null) {
    const more = ProtobufTraceSerializer.serializeRequest(others);
    if (more && more.length) {
      const both = new Uint8Array(out.length + more.length);
      both.set(out);
      both.set(more, out.length);
      out = both;
    }
  }
  // A batch far above the usual size leaves its buffer to the collector.
  if (w.buf.length > 4 * 1024 * 1024) shared = null;
  return out;
}

/**
 * OTLP over HTTP with protobuf bodies (the OTLP default protocol), to
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT +
 * /v1/traces, with OTEL_EXPORTER_OTLP[_TRACES]_HEADERS. One request per
 * batch; a failed or timed-out request drops its batch (the processor's
 * queue stays bounded; its spans are counted in `failed`).
 */
export class OtlpHttpExporter implements SpanExporter, EncodedExporter {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private inflight = new Set<Promise<void>>();
  exported = 0;
  failed = 0;
  constructor(env: NodeJS.ProcessEnv) {
    const t = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    const base = env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318";
    this.url = t || `${base.replace(/\/+$/, "")}/v1/traces`;
    this.headers = { "content-type": "application/x-protobuf", ...parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS), ...parseHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) };
    const to = Number(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT ?? 10000);
    this.timeoutMs = Number.isFinite(to) && to > 0 ? to : 10000;
  }
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    let body: Uint8Array;
    try {
      body = encodeSpans(spans);
    } catch (error) {
      this.failed += spans.length;
      done({ code: ExportResultCode.FAILED, error: error as Error });
      return;
    }
    this.post(body, spans.length, done);
  }
  sendEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    this.post(body, spans, done);
  }
  private post(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    const p = fetch(this.url, { method: "POST", headers: this.headers, body, signal: AbortSignal.timeout(this.timeoutMs) }).then(
      async (res) => {
        await res.arrayBuffer().catch(() => null);
        if (res.ok) {
          this.exported += spans;
          done({ code: ExportResultCode.SUCCESS });
        } else {
          this.failed += spans;
          done({ code: ExportResultCode.FAILED, error: new Error(`OTLP ${this.url}: HTTP ${res.status}`) });
        }
      },
      (error: Error) => {
        this.failed += spans;
        done({ code: ExportResultCode.FAILED, error });
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }
  async forceFlush(): Promise<void> {
    await Promise.all([...this.inflight]);
  }
  async shutdown(): Promise<void> {
    await this.forceFlush();
  }
}

function parseHeaders(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    out[decodeURIComponent(part.slice(0, i).trim()).toLowerCase()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

/**
 * An exporter that takes spans already encoded (one ExportTraceServiceRequest
 * per call): hurdmesh's own OTLP exporters. With one of these, LightSpans are
 * encoded as they end (OtlpBatchSink) and never queued as objects.
 */
export interface EncodedExporter {
  sendEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void;
}
export function isEncodedExporter(e: unknown): e is EncodedExporter {
  return typeof (e as EncodedExporter | null)?.sendEncoded === "function";
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Spans encoded as they end, into batches of at most `maxBatch`, for an
 * EncodedExporter: a span object lives only until its end, so nothing the
 * hot path makes survives to be promoted and collected later, and what
 * waits for export is bytes. The same bounds as a BatchSpanProcessor: at
 * most `maxQueue` spans wait (beyond that they are dropped and counted),
 * one batch is in flight at a time, a batch leaves when full or
 * `delayMs` after its first span.
 */
export class OtlpBatchSink implements LightSink {
  dropped = 0;
  private readonly w = new Writer();
  private n = 0;
  private readonly sealed: { body: Uint8Array; n: number }[] = [];
  private sealedSpans = 0;
  private sending = false;
  private timer: NodeJS.Timeout | null = null;
  private idle: (() => void)[] = [];
  constructor(
    private readonly exporter: EncodedExporter,
    private readonly head: Head,
    private readonly maxQueue: number,
    private readonly maxBatch: number,
    private readonly delayMs: number,
  ) {}

  /** Spans waiting for export (not counting the batch in flight). */
  get queued(): number {
    return this.sealedSpans + this.n;
  }

  add(sp: LightSpan): void {
    if (this.sealedSpans + this.n >= this.maxQueue) {
      this.dropped++;
      return;
    }
    const at = this.w.pos;
    try {
      encodeSpan(this.w, sp);
    } catch {
      // A span that cannot be encoded (an attribute the encoder refuses) is lost, never the batch.
      this.w.pos = at;
      this.dropped++;
      return;
    }
    if (++this.n >= this.maxBatch) this.seal();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.seal();
      }, this.delayMs);
      this.timer.unref();
    }
  }

  /** Closes the open batch: the request around its spans, queued for the exporter. */
  private seal(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.n === 0) return;
    const { resource, scope } = this.head;
    const spans = this.w.pos;
    const ss = scope.length + spans;
    const rs = resource.length + 1 + varintSize(ss) + ss;
    const body = Buffer.allocUnsafe(1 + varintSize(rs) + rs);
    let p = 0;
    const varint = (v: number) => {
      while (v >= 0x80) {
        body[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      body[p++] = v;
    };
    body[p++] = (1 << 3) | LD;
    varint(rs);
    body.set(resource, p);
    p += resource.length;
    body[p++] = (2 << 3) | LD;
    varint(ss);
    body.set(scope, p);
    p += scope.length;
    body.set(this.w.buf.subarray(0, spans), p);
    this.sealed.push({ body, n: this.n });
    this.sealedSpans += this.n;
    this.n = 0;
    this.w.pos = 0;
    this.pump();
  }

  private pump(): void {
    if (this.sending) return;
    const next = this.sealed.shift();
    if (next === undefined) {
      const idle = this.idle;
      this.idle = [];
      for (const f of idle) f();
      return;
    }
    this.sealedSpans -= next.n;
    this.sending = true;
    let called = false;
    const done = () => {
      if (called) return;
      called = true;
      this.sending = false;
      this.pump();
    };
    try {
      this.exporter.sendEncoded(next.body, next.n, done);
    } catch {
      done();
    }
  }

  /** Sends everything queued; resolves when the exporter has answered for all of it. */
  flush(): Promise<void> {
    this.seal();
    if (!this.sending && this.sealed.length === 0) return Promise.resolve();
    return new Promise((r) => {
      this.idle.push(r);
      this.pump();
    });
  }
}

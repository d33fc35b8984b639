// Span records: what a hot-path span leaves when it ends. A record is a
// fixed run of bytes in a chunk (ids, times, the kernel's or the handler's
// numbers, names by number); anything rare (a plain span's attributes,
// extra attributes, links, a status, a message's rights) is encoded on the
// spot as OTLP fields and rides beside the chunk as the record's "tail".
//
// Why records: writing one costs a few stores, encoding a span as OTLP
// costs the better part of a microsecond. A chunk of records moves to the
// export worker (export-worker.ts) without a copy, and the OTLP is made
// there, off the thread that routes messages. encodeRecord is the one
// encoder of hot-path spans: the worker, the in-thread pipeline and
// encodeSpans (for SDK exporters) all go through it.
import { errnoName } from "@hurdmesh/mach/errors";
import { attributes, constKV, I32, I64, keyBytes, LD, utf8Of, VARINT, Writer } from "./otlp-writer.js";

/** Bytes per record. */
export const REC_BYTES = 136;
// Int32 words.
const W_FLAGS = 0;
const W_NAME = 1;
const W_METHOD = 2;
const W_MIG = 3;
const W_SENDER = 4;
const W_SENDER_NAME = 5;
const W_RECEIVER = 6;
const W_RECEIVER_NAME = 7;
const W_NS = 8;
const W_CODE = 9;
const W_TAIL = 10;
const W_PREFIX = 11;
// Bytes: the span's own context (trace id 16, span id 8, flags 1), then the parent's span id.
const B_IDS = 48;
const B_PARENT = B_IDS + 25;
// Float64 slots: start and end, ms since the epoch.
const F_START = 11;
const F_END = 12;
// Bytes: the context of the span's cause (a link), when F_CAUSE.
const B_CAUSE = 104;
// Int32 word past the cause (bytes 132-135): the hurd's name, by number (0: none).
const W_HURD = 33;
// A server record's own words (it has no sender or receiver): its task's id, for server.address.
const W_TASK = 4;

// Flags word: bits 0-2 SpanKind, then:
const F_PARENT = 1 << 3;
const F_CAUSE = 1 << 9;
/** The record's type: which fixed attributes it carries. */
export const REC_PLAIN = 0;
export const REC_KERNEL = 1 << 4;
export const REC_SERVER = 2 << 4;
const TYPE_MASK = 3 << 4;
/** Kernel record: a notification the kernel generated (hurd.kernel). */
export const K_NOTIFY = 1 << 6;
/** Kernel record: delivered (receiver, its name, namespace and subject known). */
export const K_DELIVERED = 1 << 7;
/** Kernel record: answered (reply code known). */
export const K_REPLIED = 1 << 8;
/** Kernel record: not delivered, or a server record: answered with an error; the code is in W_CODE. */
export const K_FAILED = 1 << 10;
/** Server record: answered (its code, 0 or an errno, is in W_CODE). */
export const S_ANSWERED = 1 << 6;

/**
 * Strings by number, for records: span names, methods, subject prefixes.
 * Numbers are handed out in order; the strings a consumer has not yet seen
 * travel with the next chunk (`fresh`). Bounded: past `max` distinct
 * strings a span's name goes into its tail instead (id 0).
 */
export class NameTable {
  private readonly ids = new Map<string, number>();
  private fresh: string[] = [];
  private next = 1;
  constructor(private readonly max = 4096) {}
  /** The number of `s`; 0 when the table is full. */
  id(s: string): number {
    const n = this.ids.get(s);
    if (n !== undefined) return n;
    if (this.next > this.max) return 0;
    this.ids.set(s, this.next);
    this.fresh.push(s);
    return this.next++;
  }
  /** Strings numbered since the last call, in order (the consumer numbers them the same way). */
  takeFresh(): string[] {
    const f = this.fresh;
    this.fresh = [];
    return f;
  }
}

/** The consumer's side of a NameTable: the same numbers, as UTF-8. */
export class NameBytes {
  private readonly list: Uint8Array[] = [new Uint8Array(0)];
  add(fresh: readonly string[]): void {
    for (const s of fresh) this.list.push(utf8Of(s));
  }
  get(n: number): Uint8Array {
    return this.list[n] ?? this.list[0]!;
  }
}

/** Records and their tails, in one transferable buffer. */
export class RecordChunk {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  n = 0;
  tails: Uint8Array[] = [];
  constructor(
    readonly cap: number,
    readonly buf: ArrayBuffer = new ArrayBuffer(cap * REC_BYTES),
  ) {
    this.u8 = new Uint8Array(buf);
    this.i32 = new Int32Array(buf);
    this.f64 = new Float64Array(buf);
  }
  get full(): boolean {
    return this.n >= this.cap;
  }
}

/**
 * Writes the common part of record `c.n`: flags, name (0: none, the tail
 * carries it), ids, times, tail. Returns its word index.
 */
export function putRecord(c: RecordChunk, flags: number, nameId: number, ctx: Uint8Array, parent: Uint8Array | null, startMs: number, endMs: number, tail: Uint8Array | null, cause: Uint8Array | null = null): number {
  const at = c.n * REC_BYTES;
  const wi = at >> 2;
  const i32 = c.i32;
  const u8 = c.u8;
  i32[wi + W_FLAGS] = (parent !== null ? flags | F_PARENT : flags) | (cause !== null ? F_CAUSE : 0);
  if (cause !== null) for (let i = 0; i < 25; i++) u8[at + B_CAUSE + i] = cause[i]!;
  i32[wi + W_NAME] = nameId;
  for (let i = 0; i < 25; i++) u8[at + B_IDS + i] = ctx[i]!;
  if (parent !== null) for (let i = 0; i < 8; i++) u8[at + B_PARENT + i] = parent[16 + i]!;
  const fi = at >> 3;
  c.f64[fi + F_START] = startMs;
  c.f64[fi + F_END] = endMs;
  if (tail !== null) {
    i32[wi + W_TAIL] = c.tails.length;
    c.tails.push(tail);
  } else i32[wi + W_TAIL] = -1;
  c.n++;
  return wi;
}

/** Words of a kernel record (kernel-trace.ts fills them); `hurd` is the receiving (else sending) hurd's name, by number. */
export function putKernelFields(i32: Int32Array, wi: number, method: number, migId: number, sender: number, senderName: number, receiver: number, receiverName: number, ns: number, code: number, prefix: number, hurd = 0): void {
  i32[wi + W_HURD] = hurd;
  i32[wi + W_METHOD] = method;
  i32[wi + W_MIG] = migId;
  i32[wi + W_SENDER] = sender;
  i32[wi + W_SENDER_NAME] = senderName;
  i32[wi + W_RECEIVER] = receiver;
  i32[wi + W_RECEIVER_NAME] = receiverName;
  i32[wi + W_NS] = ns;
  i32[wi + W_CODE] = code;
  i32[wi + W_PREFIX] = prefix;
}

/**
 * Words of a server record (ServerSpan, light.ts): its method; the serving
 * task (server.address is its delivery subject, prefix and id) and hurd;
 * the code it answered with.
 */
export function putServerFields(i32: Int32Array, wi: number, method: number, hurd = 0, prefix = 0, task = 0, code = 0): void {
  i32[wi + W_METHOD] = method;
  i32[wi + W_HURD] = hurd;
  i32[wi + W_PREFIX] = prefix;
  i32[wi + W_TASK] = task;
  i32[wi + W_CODE] = code;
}

// The kernel span's attributes, keys and constants encoded once.
const KV_KERNEL_CONSTANT = Buffer.concat([constKV("rpc.system.name", "hurdmesh"), constKV("messaging.system", "hurdmesh"), constKV("messaging.operation.type", "send")]);
const KV_RPC_SYSTEM = constKV("rpc.system.name", "hurdmesh");
const KV_NOTIFY = constKV("hurd.kernel", true);
const K_MIG_ID = keyBytes("hurd.mig.id");
const K_SENDER = keyBytes("hurd.task.sender");
const K_SENDER_NAME = keyBytes("hurd.port.sender_name");
const K_METHOD = keyBytes("rpc.method");
const K_RECEIVER = keyBytes("hurd.task.receiver");
const K_RECEIVER_NAME = keyBytes("hurd.port.receiver_name");
const K_NAMESPACE = keyBytes("hurd.namespace");
const K_DESTINATION = keyBytes("messaging.destination.name");
const K_REPLY_CODE = keyBytes("hurd.reply.code");
const K_ERRNO = keyBytes("hurd.errno");
const K_STATUS = keyBytes("rpc.response.status_code");
const K_ERROR_TYPE = keyBytes("error.type");
const K_SERVER_ADDRESS = keyBytes("server.address");
const K_HURD = keyBytes("hurd.name");
const OK = utf8Of("OK");

/** rpc.response.status_code ("OK" or the errno's name) and, for an error, error.type. */
function writeStatusCode(w: Writer, code: number): void {
  if (code === 0) {
    w.kvBytes(K_STATUS, OK);
    return;
  }
  const name = utf8Of(errnoName(code));
  w.kvBytes(K_STATUS, name);
  w.kvBytes(K_ERROR_TYPE, name);
}
/** A cause link's one attribute (field 4 of Link). */
const LINK_CAUSE = (() => {
  const w = new Writer();
  attributes(w, 4, { "hurd.link": "cause" });
  return w.take();
})();

/** Record `i` of `c` as one Span (field 2 of ScopeSpans). */
export function encodeRecord(w: Writer, c: RecordChunk, i: number, names: NameBytes): void {
  const at = i * REC_BYTES;
  const wi = at >> 2;
  const fi = at >> 3;
  const i32 = c.i32;
  const u8 = c.u8;
  const flags = i32[wi + W_FLAGS]!;
  w.tag(2, LD);
  const s = w.open();
  w.tag(1, LD);
  w.idBytes(u8, at + B_IDS, 16);
  w.tag(2, LD);
  w.idBytes(u8, at + B_IDS + 16, 8);
  if (flags & F_PARENT) {
    w.tag(4, LD);
    w.idBytes(u8, at + B_PARENT, 8);
  }
  const nameId = i32[wi + W_NAME]!;
  if (nameId !== 0) {
    const name = names.get(nameId);
    w.tag(5, LD);
    w.varint(name.length);
    w.raw(name);
  }
  w.tag(6, VARINT);
  w.byte((flags & 7) + 1);
  w.tag(7, I64);
  w.fixed64Nanos(c.f64[fi + F_START]!);
  w.tag(8, I64);
  w.fixed64Nanos(c.f64[fi + F_END]!);
  const type = flags & TYPE_MASK;
  if (type === REC_KERNEL) {
    w.kv(KV_KERNEL_CONSTANT);
    w.kvInt(K_MIG_ID, i32[wi + W_MIG]!);
    w.kvInt(K_SENDER, i32[wi + W_SENDER]! >>> 0);
    w.kvInt(K_SENDER_NAME, i32[wi + W_SENDER_NAME]! >>> 0);
    if (flags & K_NOTIFY) w.kv(KV_NOTIFY);
    const method = i32[wi + W_METHOD]!;
    if (method !== 0) w.kvBytes(K_METHOD, names.get(method));
    if (flags & K_DELIVERED) {
      const receiver = i32[wi + W_RECEIVER]! >>> 0;
      const receiverName = i32[wi + W_RECEIVER_NAME]! >>> 0;
      const prefix = names.get(i32[wi + W_PREFIX]!);
      w.kvInt(K_RECEIVER, receiver);
      w.kvInt(K_RECEIVER_NAME, receiverName);
      w.kvInt(K_NAMESPACE, i32[wi + W_NS]!);
      w.kvSubject(K_DESTINATION, prefix, receiver, receiverName);
      // The server's address: its task's delivery subject (the handler's span says the same).
      w.kvPrefixed(K_SERVER_ADDRESS, prefix, receiver);
    }
    const hurd = i32[wi + W_HURD]!;
    if (hurd !== 0) w.kvBytes(K_HURD, names.get(hurd));
    if (flags & K_REPLIED) {
      const code = i32[wi + W_CODE]!;
      w.kvInt(K_REPLY_CODE, code);
      if (code !== 0) w.kvBytes(K_ERRNO, utf8Of(errnoName(code)));
      writeStatusCode(w, code);
    } else if (flags & K_FAILED) writeStatusCode(w, i32[wi + W_CODE]!);
  } else if (type === REC_SERVER) {
    w.kv(KV_RPC_SYSTEM);
    const method = i32[wi + W_METHOD]!;
    if (method !== 0) w.kvBytes(K_METHOD, names.get(method));
    const prefix = i32[wi + W_PREFIX]!;
    if (prefix !== 0) w.kvPrefixed(K_SERVER_ADDRESS, names.get(prefix), i32[wi + W_TASK]! >>> 0);
    const hurd = i32[wi + W_HURD]!;
    if (hurd !== 0) w.kvBytes(K_HURD, names.get(hurd));
    if (flags & S_ANSWERED) writeStatusCode(w, i32[wi + W_CODE]!);
  }
  if (flags & F_CAUSE) {
    // Link { 1 trace_id, 2 span_id, 4 attributes (hurd.link: cause), 6 flags: sampled bit, remote }
    w.tag(13, LD);
    const l = w.open();
    w.tag(1, LD);
    w.idBytes(u8, at + B_CAUSE, 16);
    w.tag(2, LD);
    w.idBytes(u8, at + B_CAUSE + 16, 8);
    w.raw(LINK_CAUSE);
    w.tag(6, I32);
    w.fixed32(u8[at + B_CAUSE + 24]! | 0x300);
    w.close(l);
  }
  const t = i32[wi + W_TAIL]!;
  if (t >= 0) {
    const tail = c.tails[t];
    if (tail !== undefined) w.raw(tail);
  }
  // flags: the sampled bit, and "the parent's remoteness is known" (it is: remote when there is one).
  w.tag(16, I32);
  w.fixed32(0x101 | (flags & F_PARENT ? 0x200 : 0));
  w.close(s);
}

// Encoding on one reused writer.
//
// ts-proto's `T.encode(m)` creates a BinaryWriter per call, which allocates a
// 128-byte buffer, grows it by doubling, and `finish()` then copies the bytes
// out: two or more typed-array allocations per message, several per RPC, the
// largest single cost on the in-process path (and GC pressure that shows up as
// p99). Encoding is synchronous and never re-enters user code, so one writer
// per process can serve every encode: `finish()` copies the bytes out and
// rewinds it. Only the exact-size copy is allocated.
import { BinaryWriter } from "@bufbuild/protobuf/wire";

/** Anything with a ts-proto style encode (generated types, MethodDef request/response types). */
export interface Encodes<T> {
  encode(m: T): { finish(): Uint8Array };
}

/** A writer that grew past this for one big message is dropped rather than kept forever. */
const KEEP_BYTES = 64 * 1024;

let writer = new BinaryWriter();

/** `type.encode(m).finish()`, without a writer and a buffer per call. */
export function encode<T>(type: Encodes<T>, m: T): Uint8Array {
  const w = writer;
  let out: Uint8Array;
  try {
    // Generated encoders take the writer to append to as a second argument.
    out = (type.encode as (m: T, w: BinaryWriter) => { finish(): Uint8Array })(m, w).finish();
  } catch (e) {
    // A throw mid-encode (e.g. an out-of-range uint32) leaves the writer
    // half-written, with forks open: start over with a fresh one.
    writer = new BinaryWriter();
    throw e;
  }
  if (out.length > KEEP_BYTES / 2) writer = new BinaryWriter();
  return out;
}

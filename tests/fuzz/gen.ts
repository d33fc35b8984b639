// The generators every target shares: request bodies built field by field
// from a method's generated type (numbers biased towards names the sender
// holds and towards the values that break parsers), or random bytes, or a
// well-formed body mutated or cut short; rights with every disposition. A
// generated case is plain data (indexes, not live names), resolved against
// the sender's space when it is sent, so fast-check can print and shrink it.
import fc from "fast-check";
import { MsgType } from "@hurdmesh/mach";
import type { MethodDef } from "@hurdmesh/mach/internal";

/** Integers that sit on boundaries: signs, widths, Mach's MACH_PORT_DEAD, proc's pid range. */
export const INTERESTING = [0, 1, -1, 2, 3, 4, 16, 100, 0x7f, 0xff, 0xffff, 0x10000, 2 ** 31 - 1, -(2 ** 31), 0xffffffff, 4194303, 4194304, Number.MAX_SAFE_INTEGER];

/** Every disposition, and two that are none. */
export const DISPOSITIONS = [0, 15, 16, 17, 18, 19, 20, 21, 22, 255];
/** The dispositions that move a right (most cases use these). */
export const LIVE_DISPOSITIONS = [MsgType.MSG_TYPE_MOVE_RECEIVE, MsgType.MSG_TYPE_MOVE_SEND, MsgType.MSG_TYPE_MOVE_SEND_ONCE, MsgType.MSG_TYPE_COPY_SEND, MsgType.MSG_TYPE_MAKE_SEND, MsgType.MSG_TYPE_MAKE_SEND_ONCE, MsgType.MSG_TYPE_PORT_NAME];

/** A number field: a name the sender holds (by index), a small value, a boundary, anything. */
export type Num = { name: number } | { small: number } | { edge: number } | { any: number };

export const num: fc.Arbitrary<Num> = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 63 }).map((name) => ({ name })) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 24 }).map((small) => ({ small })) },
  { weight: 2, arbitrary: fc.constantFrom(...INTERESTING).map((edge) => ({ edge })) },
  { weight: 1, arbitrary: fc.integer().map((any) => ({ any })) },
);

/** Resolves a Num against the sender's names (`names` in a stable order). */
export function numOf(n: Num, names: readonly number[]): number {
  if ("name" in n) return names.length ? names[n.name % names.length]! : n.name;
  if ("small" in n) return n.small;
  if ("edge" in n) return n.edge;
  return n.any;
}

export type Field = { num: Num } | { str: string } | { long: number } | { bool: boolean } | { list: Num[] } | { strs: string[] } | { bytes: Uint8Array };

/** One arbitrary per field of the request type's defaults; message-typed fields stay unset. */
export function fieldsOf(def: MethodDef): fc.Arbitrary<Record<string, Field>> {
  const proto = def.requestType.fromPartial({}) as Record<string, unknown>;
  const arbs: Record<string, fc.Arbitrary<Field>> = {};
  for (const [key, v] of Object.entries(proto)) {
    if (typeof v === "number") arbs[key] = num.map((n) => ({ num: n }));
    else if (typeof v === "string")
      arbs[key] = fc.oneof(
        { weight: 8, arbitrary: fc.string({ maxLength: 12 }).map((str) => ({ str })) },
        { weight: 1, arbitrary: fc.integer({ min: 256, max: 70_000 }).map((long) => ({ long })) },
      );
    else if (typeof v === "boolean") arbs[key] = fc.boolean().map((bool) => ({ bool }));
    else if (v instanceof Uint8Array) arbs[key] = fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ bytes }));
    else if (Array.isArray(v))
      arbs[key] = fc.oneof(fc.array(num, { maxLength: 6 }).map((list) => ({ list })), fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }).map((strs) => ({ strs })));
  }
  return fc.record(arbs);
}

/** The request object a Field record stands for. */
export function requestOf(fields: Record<string, Field>, names: readonly number[]): Record<string, unknown> {
  const req: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(fields)) {
    if ("num" in f) req[key] = numOf(f.num, names);
    else if ("str" in f) req[key] = f.str;
    else if ("long" in f) req[key] = "x".repeat(f.long);
    else if ("bool" in f) req[key] = f.bool;
    else if ("list" in f) req[key] = f.list.map((n) => numOf(n, names));
    else if ("strs" in f) req[key] = f.strs;
    else req[key] = f.bytes;
  }
  return req;
}

/** A body: well-formed from fields, random bytes, or well-formed then mutated or truncated. */
export type Body = { fields: Record<string, Field> } | { random: Uint8Array } | { flip: Record<string, Field>; at: Array<[number, number]> } | { cut: Record<string, Field>; keep: number };

export function bodyOf(def: MethodDef): fc.Arbitrary<Body> {
  const f = fieldsOf(def);
  return fc.oneof(
    { weight: 6, arbitrary: f.map((fields) => ({ fields })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 48 }).map((random) => ({ random })) },
    { weight: 2, arbitrary: fc.tuple(f, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 })).map(([flip, at]) => ({ flip, at })) },
    { weight: 1, arbitrary: fc.tuple(f, fc.nat()).map(([cut, keep]) => ({ cut, keep })) },
  );
}

/** Encodes a request; a request the generated code refuses to encode is sent empty. */
export function encodeRequest(def: MethodDef, req: Record<string, unknown>): Uint8Array {
  try {
    return def.requestType.encode(def.requestType.fromPartial(req)).finish();
  } catch {
    return new Uint8Array(0);
  }
}

export function bytesOf(def: MethodDef, b: Body, names: readonly number[]): Uint8Array {
  if ("random" in b) return b.random;
  if ("fields" in b) return encodeRequest(def, requestOf(b.fields, names));
  if ("flip" in b) {
    const out = encodeRequest(def, requestOf(b.flip, names)).slice();
    if (out.length) for (const [i, v] of b.at) out[i % out.length] = v;
    return out;
  }
  const out = encodeRequest(def, requestOf(b.cut, names));
  return out.subarray(0, out.length ? b.keep % out.length : 0);
}

/** A right attached to a message: a name the sender holds (by index) or a number, with a disposition. */
export interface RightCase {
  name: Num;
  disposition: number;
}

export const right: fc.Arbitrary<RightCase> = fc.record({
  name: num,
  disposition: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...LIVE_DISPOSITIONS) }, { weight: 1, arbitrary: fc.constantFrom(...DISPOSITIONS) }),
});

// W3C trace context in the binary form messages carry (Message.trace_context,
// Received.trace_context): trace-id (16 bytes), parent-id (8), trace-flags
// (1), the traceparent header's fields without its text. Text traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>") is the form at the edges only: NATS
// headers and gRPC metadata of kernel calls, and other programs' OTel SDKs.
//
// The runtime owns this format (it is on the wire); @hurdmesh/telemetry
// makes and reads the spans behind it.

/** Bytes of a binary trace context. */
export const TRACE_CONTEXT_BYTES = 25;
/** Where the flags byte is (bit 0: sampled). */
export const TRACE_FLAGS_AT = 24;
/** No trace context: what an untraced message carries. */
export const NO_TRACE_CONTEXT: Uint8Array = new Uint8Array(0);

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/** Hex digit values by char code (255: not a lowercase hex digit, as W3C requires). */
const UNHEX = new Uint8Array(128).fill(255);
for (let i = 0; i < 16; i++) UNHEX["0123456789abcdef".charCodeAt(i)] = i;

/** Lowercase hex of `b[from, to)`. */
export function hexOf(b: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += HEX[b[i]!]!;
  return s;
}

/**
 * Whether `c` is a usable context: 25 bytes, neither id all zero (W3C calls
 * those invalid, and a collector would reject the span). Anything else that
 * arrives in a message is treated as no context: the message starts a trace.
 */
export function isTraceContext(c: Uint8Array): boolean {
  if (c.length !== TRACE_CONTEXT_BYTES) return false;
  let t = 0;
  for (let i = 0; i < 16; i++) t |= c[i]!;
  let s = 0;
  for (let i = 16; i < 24; i++) s |= c[i]!;
  return t !== 0 && s !== 0;
}

/** Whether a usable context is sampled. */
export function isSampled(c: Uint8Array): boolean {
  return (c[TRACE_FLAGS_AT]! & 1) === 1;
}

// The last context turned into text: a handler making several kernel calls
// under one span (whose context bytes never change) formats it once.
let lastContext: Uint8Array | null = null;
let lastText = "";

/** The text traceparent of a binary context ("" for no or an unusable context). */
export function traceparentOf(c: Uint8Array): string {
  if (c === lastContext) return lastText;
  if (!isTraceContext(c)) return "";
  lastText = `00-${hexOf(c, 0, 16)}-${hexOf(c, 16, 24)}-${HEX[c[TRACE_FLAGS_AT]!]!}`;
  lastContext = c;
  return lastText;
}

/**
 * The binary context of a text traceparent; NO_TRACE_CONTEXT when absent or
 * malformed. Version 00 exactly; a later version is read for its first four
 * fields, as W3C asks of a parser that knows only 00.
 */
export function traceContextOf(s: string | undefined | null): Uint8Array {
  if (!s || s.length < 55) return NO_TRACE_CONTEXT;
  const v1 = hexDigit(s, 0);
  const v2 = hexDigit(s, 1);
  if (v1 < 0 || v2 < 0 || (v1 === 15 && v2 === 15)) return NO_TRACE_CONTEXT;
  if (v1 === 0 && v2 === 0 && s.length !== 55) return NO_TRACE_CONTEXT;
  if (s.length > 55 && s.charCodeAt(55) !== 45 /* - */) return NO_TRACE_CONTEXT;
  if (s.charCodeAt(2) !== 45 || s.charCodeAt(35) !== 45 || s.charCodeAt(52) !== 45) return NO_TRACE_CONTEXT;
  const c = new Uint8Array(TRACE_CONTEXT_BYTES);
  if (!unhex(s, 3, c, 0, 16) || !unhex(s, 36, c, 16, 8) || !unhex(s, 53, c, TRACE_FLAGS_AT, 1)) return NO_TRACE_CONTEXT;
  return isTraceContext(c) ? c : NO_TRACE_CONTEXT;
}

function hexDigit(s: string, i: number): number {
  const ch = s.charCodeAt(i);
  const v = ch < 128 ? UNHEX[ch]! : 255;
  return v === 255 ? -1 : v;
}

function unhex(s: string, at: number, out: Uint8Array, to: number, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const hi = hexDigit(s, at + 2 * i);
    const lo = hexDigit(s, at + 2 * i + 1);
    if (hi < 0 || lo < 0) return false;
    out[to + i] = (hi << 4) | lo;
  }
  return true;
}

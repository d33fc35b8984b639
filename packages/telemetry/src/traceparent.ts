// W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent
// header, version 00: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>".
import { randomBytes } from "node:crypto";

export interface TraceParent {
  traceId: string;
  spanId: string;
  /** Bit 0: sampled. */
  flags: number;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = "0".repeat(32);
const ZERO16 = "0".repeat(16);

const V00 = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Parses a traceparent; null when absent or malformed (all-zero ids are invalid). */
export function parseTraceparent(s: string | undefined | null): TraceParent | null {
  if (!s || s.length < 55) return null;
  if (s.length === 55 && V00.test(s)) {
    // The common case, version 00: one test, three slices.
    const traceId = s.slice(3, 35);
    const spanId = s.slice(36, 52);
    if (traceId === ZERO32 || spanId === ZERO16) return null;
    // Flags: two hex digits the test above checked ("01" in nearly every message).
    const f1 = s.charCodeAt(53);
    const f2 = s.charCodeAt(54);
    return { traceId, spanId, flags: ((f1 > 57 ? f1 - 87 : f1 - 48) << 4) | (f2 > 57 ? f2 - 87 : f2 - 48) };
  }
  const parts = s.trim().split("-");
  if (parts.length < 4) return null;
  const [v, traceId, spanId, fl] = parts as [string, string, string, string];
  if (v.length !== 2 || v === "ff" || v === "00" || !/^[0-9a-f]{2}$/.test(v)) return null;
  if (!HEX32.test(traceId) || traceId === ZERO32 || !HEX16.test(spanId) || spanId === ZERO16) return null;
  if (!/^[0-9a-f]{2}$/.test(fl)) return null;
  return { traceId, spanId, flags: parseInt(fl, 16) };
}

export function formatTraceparent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.flags & 0xff).toString(16).padStart(2, "0")}`;
}

export function newTraceId(): string {
  return randomBytes(16).toString("hex");
}

export function newSpanId(): string {
  return randomBytes(8).toString("hex");
}

/** A child context of `parent` (a new trace when there is none). */
export function childTraceparent(parent: string | null | undefined, sampled = true): string {
  const p = parseTraceparent(parent);
  return formatTraceparent({ traceId: p?.traceId ?? newTraceId(), spanId: newSpanId(), flags: p ? p.flags : sampled ? 1 : 0 });
}

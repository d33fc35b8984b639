// W3C Trace Context (https://www.w3.org/TR/trace-context/) as text, the
// traceparent header: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>",
// for code that holds ids as hex (the OTel API). The parser is the
// runtime's (trace-context.ts in @hurdmesh/mach), which reads the same
// header into the binary form messages carry.
import { hexOf, TRACE_FLAGS_AT, traceContextOf } from "@hurdmesh/mach/internal";

export interface TraceParent {
  traceId: string;
  spanId: string;
  /** Bit 0: sampled. */
  flags: number;
}

/** Parses a traceparent; null when absent or malformed (all-zero ids are invalid). */
export function parseTraceparent(s: string | undefined | null): TraceParent | null {
  const c = traceContextOf(s);
  if (c.length === 0) return null;
  return { traceId: hexOf(c, 0, 16), spanId: hexOf(c, 16, 24), flags: c[TRACE_FLAGS_AT]! };
}

export function formatTraceparent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.flags & 0xff).toString(16).padStart(2, "0")}`;
}

// Where tracing plugs into the runtime (set by @hurdmesh/telemetry's
// installTracingHooks). Both are null unless tracing is on, and the runtime
// checks them with one comparison per message.
import type { Received } from "@hurdmesh/proto/hurd/mach/v1/mach";

export const tracingHooks: {
  /** The binary trace context (trace-context.ts) of the active span, for messages sent without one. */
  current: (() => Uint8Array) | null;
  /** Runs a request's handling inside a server span (child of the delivery's trace context). */
  serve: ((m: Received, method: string | undefined, run: () => void | Promise<void>) => void | Promise<void>) | null;
} = { current: null, serve: null };

// Where tracing plugs into the runtime (set by @hurdmesh/telemetry's
// installTracingHooks). Both are null unless tracing is on, and the runtime
// checks them with one comparison per message.
import type { Received } from "@hurdmesh/proto/hurd/mach/v1/mach";

export const tracingHooks: {
  /** The binary trace context (trace-context.ts) of the active span, for messages sent without one. */
  current: (() => Uint8Array) | null;
  /**
   * Begins a request's handling: makes its server span (child of the
   * delivery's trace context, or null when none is made) and calls `run`
   * with it active for whatever the handler sends synchronously. The
   * runtime calls `end` with that span once the request is answered.
   */
  serve: ((m: Received, method: string | undefined, run: (m: Received, span: unknown) => void | Promise<void>) => void | Promise<void>) | null;
  /** The request `serve` began was answered (`error` undefined) or failed. */
  end: ((span: unknown, error: unknown) => void) | null;
} = { current: null, serve: null, end: null };

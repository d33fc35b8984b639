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
  serve: ((m: Received, method: string | undefined, run: (m: Received, span: unknown) => void | Promise<void>, task: { readonly id: number; readonly hurd: string; readonly system: string }) => void | Promise<void>) | null;
  /** The request `serve` began was answered (`error` undefined) or failed. */
  end: ((span: unknown, error: unknown) => void) | null;
} = { current: null, serve: null, end: null };

/**
 * One RPC method's duration series (rpc.server.call.duration or
 * rpc.client.call.duration), bound to its attributes once: recording is a
 * few stores, with no object made per call. `code` is the reply's (0: done).
 */
export interface RpcSeries {
  record(seconds: number, code: number): void;
}

/**
 * Where metrics plug into the runtime (set by @hurdmesh/telemetry's
 * installMetricsHooks). Null unless the program exports metrics: the
 * runtime then skips even reading the clock. Each returns the series of one
 * method as served or called by one task; the runtime asks once per server
 * (or client) and method, and again only if the hook itself is replaced.
 */
export const metricsHooks: {
  server: ((task: { readonly hurd: string }, method: string) => RpcSeries) | null;
  client: ((task: { readonly hurd: string }, method: string) => RpcSeries) | null;
} = { server: null, client: null };

// Spans in every program that serves ports: a SERVER span per request,
// child of the delivery's traceparent (the kernel's span for that message).
//
// The handler's span is the active context only while the handler runs
// synchronously: messages it sends before its first await carry it. No
// AsyncLocalStorage by default: on Node 20 it installs promise hooks that
// tax every promise in the process (a third of a brokered RPC's throughput
// at the last measurement), traced or not. Handlers that send after an
// await and want their calls under their span pass it explicitly
// (`{ traceparent }` from the request, see Context.traceparent), or the
// program opts in to async propagation with `asyncContext` (or
// HURD_TRACE_ASYNC_CONTEXT=1), which installs OTel's AsyncLocalStorage
// context manager (the SDK's, through Telemetry.asyncContextManager) and
// runs each handler inside its span's context.
//
// The spans themselves are the SDK's (Telemetry.light): this module only
// decides when one begins and ends, so servers load no SDK to be traced.
import { context, ROOT_CONTEXT, SpanKind, trace, type Attributes, type ContextManager } from "@opentelemetry/api";
import { HurdError, type Received } from "@hurdmesh/mach";
import { NO_TRACE_CONTEXT, traceContextOf, traceparentOf, tracingHooks } from "@hurdmesh/mach/internal";
import { formatTraceparent } from "./traceparent.js";
import { UNSAMPLED, type HotSpan, type ServingTask, type Telemetry } from "./types.js";

let manager: ContextManager | null = null;
/** The trace context of the handler running synchronously now (empty outside handlers, or an unsampled one). */
let active: Uint8Array = NO_TRACE_CONTEXT;
/**
 * The handler span running synchronously now (null outside handlers): its
 * traceparent is made only if the handler sends something (most answer and
 * return, and their reply carries the request's context).
 */
let activeSpan: HotSpan | null = null;

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs `run` (with no span) with `tp` as the active context for the messages it sends synchronously. */
function within(tp: Uint8Array, m: Received, run: (m: Received, span: unknown) => void | Promise<void>): void | Promise<void> {
  const prev = active;
  const prevSpan = activeSpan;
  active = tp;
  activeSpan = null;
  try {
    return run(m, null);
  } finally {
    active = prev;
    activeSpan = prevSpan;
  }
}

/** The context of the OTel API's active span, for programs that run a context manager. */
function otelCurrent(): Uint8Array {
  const s = trace.getSpan(context.active());
  if (!s) return NO_TRACE_CONTEXT;
  const sc = s.spanContext();
  return traceContextOf(formatTraceparent({ traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags }));
}

export interface HookOptions {
  /** Propagate the handler's span across awaits (AsyncLocalStorage; costly on Node 20). */
  asyncContext?: boolean;
}

/**
 * The context of a long sequence with no handler around it (a boot): what
 * this process sends outside handlers goes under it. Set only while such a
 * sequence runs; handlers' own spans still win inside them.
 */
let ambient: Uint8Array = NO_TRACE_CONTEXT;

/** The binary trace context a message sent now would carry (empty when there is none). */
export function currentTraceContext(): Uint8Array {
  return activeSpan !== null ? activeSpan.context : active.length !== 0 ? active : ambient.length !== 0 ? ambient : otelCurrent();
}

/** The same as a text traceparent ("" when there is none), for headers and other programs. */
export function currentTraceparent(): string {
  return traceparentOf(currentTraceContext());
}

/**
 * Spans for a sequence of steps (init's boot): one root span, one child per
 * phase; while a phase runs, messages and kernel calls this process sends
 * outside handlers are its children. Nothing (and no cost) without telemetry.
 */
export class StepTrace {
  private readonly root: HotSpan | null;
  private phaseSpan: HotSpan | null = null;
  constructor(
    private readonly tel: Telemetry | null,
    name: string,
    attributes: Attributes = {},
  ) {
    this.root = tel && tel.light.sampleRoot(name) ? tel.light.startSpan(name, SpanKind.INTERNAL, null, attributes) : null;
    if (this.root) ambient = this.root.context;
  }
  /** Ends the current phase and starts `name`. */
  phase(name: string): void {
    this.phaseSpan?.end();
    if (!this.root || !this.tel) return;
    this.phaseSpan = this.tel.light.startSpan(name, SpanKind.INTERNAL, this.root.context, {});
    ambient = this.phaseSpan.context;
  }
  end(error?: unknown): void {
    this.phaseSpan?.end();
    this.phaseSpan = null;
    if (!this.root) return;
    if (error) this.root.fail(errText(error));
    this.root.end();
    if (ambient.length !== 0) ambient = NO_TRACE_CONTEXT;
  }
  get traceparent(): string {
    return this.root ? traceparentOf(this.root.context) : "";
  }
}

/** Turns the runtime's hooks on for `tel` (null turns them off). Returns a function that turns them off. */
export function installTracingHooks(tel: Telemetry | null, o: HookOptions = {}): () => void {
  if (!tel) {
    tracingHooks.current = null;
    tracingHooks.serve = null;
    // `end` stays: spans begun while the hooks were on still end.
    return () => {};
  }
  const asyncContext = o.asyncContext ?? process.env.HURD_TRACE_ASYNC_CONTEXT === "1";
  if (asyncContext && !manager) {
    manager = tel.asyncContextManager();
    manager.enable();
    // register.mjs may have set its synchronous manager: the API keeps the first one registered.
    context.disable();
    context.setGlobalContextManager(manager);
  }
  const lt = tel.light;
  tracingHooks.current = currentTraceContext;
  tracingHooks.serve = (m: Received, method: string | undefined, run: (m: Received, span: unknown) => void | Promise<void>, task: ServingTask) => {
    const name = method ?? `msgid ${m.id}`;
    const parent = lt.parent(m.traceContext);
    // Unsampled: no span, but the decision travels on with what the handler sends.
    if (parent === UNSAMPLED) return within(m.traceContext, m, run);
    if (parent === null && !lt.sampleRoot(name)) return within(lt.unsampledContext(), m, run);
    const span = lt.startServerSpan(name, parent, method, m.id, task);
    const prev = active;
    const prevSpan = activeSpan;
    active = NO_TRACE_CONTEXT;
    activeSpan = span;
    try {
      // The runtime ends the span when it answers the request (tracingHooks.end).
      return asyncContext ? context.with(trace.setSpanContext(ROOT_CONTEXT, span.spanContext()), run, undefined, m, span) : run(m, span);
    } catch (e) {
      span.fail(errText(e), HurdError.from(e).code);
      span.end();
      throw e;
    } finally {
      active = prev;
      activeSpan = prevSpan;
    }
  };
  tracingHooks.end = endSpan;
  return () => {
    tracingHooks.current = null;
    tracingHooks.serve = null;
  };
}

function endSpan(span: unknown, error: unknown): void {
  const s = span as HotSpan;
  if (error !== undefined) s.fail(errText(error), HurdError.from(error).code);
  s.end();
}

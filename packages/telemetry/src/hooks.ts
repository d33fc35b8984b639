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
// context manager and runs each handler inside its span's context.
import { context, ROOT_CONTEXT, SpanKind, trace, type Attributes } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { tracingHooks, type Received } from "@hurdmesh/mach";
import { LightSpan, UNSAMPLED, type LightTracer, type Parent } from "./light.js";
import type { Telemetry } from "./otel.js";
import { constKV, keyBytes, type Writer } from "./otlp.js";
import { formatTraceparent } from "./traceparent.js";

let manager: AsyncLocalStorageContextManager | null = null;
/** The traceparent of the handler running synchronously now ("" outside handlers). */
let active = "";

const KV_RPC_SYSTEM = constKV("rpc.system.name", "hurdmesh");
const K_METHOD = keyBytes("rpc.method");

/** A request's handling in its server; attributes become an object only at export. */
class ServerSpan extends LightSpan {
  constructor(
    lt: LightTracer,
    name: string,
    parent: Parent | null,
    private readonly method: string | undefined,
    private readonly migId: number,
  ) {
    super(lt, name, SpanKind.SERVER, parent);
  }
  // The kernel's span above this one names the ports, tasks and MIG id;
  // repeating them here would only add to every export's serialization.
  override writeAttributes(w: Writer): void {
    w.kv(KV_RPC_SYSTEM);
    w.kvString(K_METHOD, this.method ?? String(this.migId));
  }
  protected override attrs(): Attributes {
    return { "rpc.system.name": "hurdmesh", "rpc.method": this.method ?? String(this.migId) };
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs `run` with `tp` as the active context for the messages it sends synchronously. */
function within(tp: string, run: () => void | Promise<void>): void | Promise<void> {
  const prev = active;
  active = tp;
  try {
    return run();
  } finally {
    active = prev;
  }
}

/** The traceparent of the OTel API's active span, for programs that run a context manager. */
function otelCurrent(): string {
  const s = trace.getSpan(context.active());
  if (!s) return "";
  const sc = s.spanContext();
  return formatTraceparent({ traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags });
}

export interface HookOptions {
  /** Propagate the handler's span across awaits (AsyncLocalStorage; costly on Node 20). */
  asyncContext?: boolean;
}

/** The traceparent a message sent now would carry ("" when there is none). */
export function currentTraceparent(): string {
  return active.length !== 0 ? active : otelCurrent();
}

/** Turns the runtime's hooks on for `tel` (null turns them off). Returns a function that turns them off. */
export function installTracingHooks(tel: Telemetry | null, o: HookOptions = {}): () => void {
  if (!tel) {
    tracingHooks.current = null;
    tracingHooks.serve = null;
    return () => {};
  }
  const asyncContext = o.asyncContext ?? process.env.HURD_TRACE_ASYNC_CONTEXT === "1";
  if (asyncContext && !manager) {
    manager = new AsyncLocalStorageContextManager();
    manager.enable();
    context.setGlobalContextManager(manager);
  }
  const lt = tel.light;
  tracingHooks.current = currentTraceparent;
  tracingHooks.serve = (m: Received, method: string | undefined, run: () => void | Promise<void>) => {
    const name = method ?? `msgid ${m.id}`;
    const parent = lt.parent(m.traceparent);
    // Unsampled: no span, but the decision travels on with what the handler sends.
    if (parent === UNSAMPLED) return within(m.traceparent, run);
    if (parent === null && !lt.sampleRoot(name)) return within(lt.unsampledContext(), run);
    const span = new ServerSpan(lt, name, parent, method, m.id);
    let r: void | Promise<void>;
    const prev = active;
    active = span.traceparent;
    try {
      r = asyncContext ? context.with(trace.setSpanContext(ROOT_CONTEXT, span.spanContext()), run) : run();
    } catch (e) {
      span.fail(errText(e));
      span.end();
      throw e;
    } finally {
      active = prev;
    }
    if (r && typeof (r as Promise<void>).then === "function")
      return (r as Promise<void>).then(
        () => span.end(),
        (e) => {
          span.fail(errText(e));
          span.end();
          throw e;
        },
      );
    span.end();
    return r;
  };
  return () => {
    tracingHooks.current = null;
    tracingHooks.serve = null;
  };
}

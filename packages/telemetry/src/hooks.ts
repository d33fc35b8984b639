// Spans in every program that serves ports: a SERVER span per request,
// child of the delivery's traceparent (the kernel's span for that message),
// active while the handler runs so the messages it sends carry it.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { tracingHooks, type Received } from "@hurdmesh/mach";
import type { Telemetry } from "./otel.js";
import { formatTraceparent, parseTraceparent } from "./traceparent.js";

let manager: AsyncLocalStorageContextManager | null = null;

function end(span: Span, failed: unknown): void {
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: failed instanceof Error ? failed.message : String(failed) });
  span.end();
}

/** Turns the runtime's hooks on for `tel` (null turns them off). Returns a function that turns them off. */
export function installTracingHooks(tel: Telemetry | null): () => void {
  if (!tel) {
    tracingHooks.current = null;
    tracingHooks.serve = null;
    return () => {};
  }
  if (!manager) {
    manager = new AsyncLocalStorageContextManager();
    manager.enable();
    context.setGlobalContextManager(manager);
  }
  tracingHooks.current = () => {
    const s = trace.getSpan(context.active());
    if (!s) return "";
    const sc = s.spanContext();
    return formatTraceparent({ traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags });
  };
  tracingHooks.serve = (m: Received, method: string | undefined, run: () => void | Promise<void>) => {
    const p = parseTraceparent(m.traceparent);
    const parent = p ? trace.setSpanContext(ROOT_CONTEXT, { traceId: p.traceId, spanId: p.spanId, traceFlags: p.flags, isRemote: true }) : ROOT_CONTEXT;
    const span = tel.tracer.startSpan(
      method ?? `msgid ${m.id}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system.name": "hurdmesh",
          "rpc.method": method ?? String(m.id),
          "hurd.mig.id": m.id,
          "hurd.port.receiver_name": m.local,
          "hurd.task.sender": Number(m.sender),
        },
      },
      parent,
    );
    let r: void | Promise<void>;
    try {
      r = context.with(trace.setSpan(parent, span), run);
    } catch (e) {
      end(span, e);
      throw e;
    }
    if (r && typeof (r as Promise<void>).then === "function")
      return (r as Promise<void>).then(
        () => end(span, null),
        (e) => {
          end(span, e);
          throw e;
        },
      );
    end(span, null);
    return r;
  };
  return () => {
    tracingHooks.current = null;
    tracingHooks.serve = null;
  };
}

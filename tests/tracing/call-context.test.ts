// A kernel call's trace context rides in the call, in binary
// (Call.trace_context, 25 bytes), with no text traceparent header on the
// bus; the kernel links what the call causes (here proc's task-terminated
// notification) to it. A call from an older runtime, without the field but
// with the header, is still linked: the kernel reads the header then.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { Task, type Bus } from "@hurdmesh/mach";
import { methods, NO_TRACE_CONTEXT } from "@hurdmesh/mach/internal";
import { MachDefinition, Trap } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { installTracingHooks } from "@hurdmesh/telemetry";
import { createTelemetry, type SdkTelemetry } from "@hurdmesh/telemetry-sdk";
import { busKinds, until } from "../harness.js";
import { world, type World } from "./kit.js";

interface Sent {
  data: Uint8Array;
  traceparent: string | undefined;
}

/** The task's bus, recording each request it makes (the traps of its kernel calls). */
function recording(bus: Bus, sent: Sent[]): Bus {
  return new Proxy(bus, {
    get(target, prop, receiver) {
      if (prop === "request")
        return (subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string) => {
          sent.push({ data, traceparent });
          return target.request(subject, data, timeoutMs, traceparent);
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const mach = methods(MachDefinition);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

for (const kind of busKinds) {
  describe(`a kernel call's trace context (${kind} bus)`, () => {
    let w: World;
    let tel: SdkTelemetry;
    let exporter: InMemorySpanExporter;
    let off: () => void;
    before(async () => {
      w = await world(kind);
      exporter = new InMemorySpanExporter();
      tel = createTelemetry({ service: "test", exporter, scheduledDelayMillis: 10 });
      w.b.h.kernel.trace.useTelemetry(tel);
      off = installTracingHooks(tel, { asyncContext: true });
    });
    after(async () => {
      off?.();
      installTracingHooks(null);
      w.b.h.kernel.trace.useTelemetry(null);
      await tel?.shutdown();
      await w.close();
    });

    /** A forked child attached over a recording bus: its kernel calls' traps are in `sent`. */
    async function child(sent: Sent[]): Promise<{ task: Task; bus: Bus; token: string }> {
      const f = await w.init.fork("call-context");
      const bus = recording(await w.b.h.taskBus(f.taskId), sent);
      const task = await Task.attach({ bus, system: w.b.h.kernel.config.system, taskId: f.taskId, token: f.token, timeoutMs: 5000 });
      return { task, bus, token: f.token };
    }

    /** proc's task-terminated notification for the child, once exported. */
    async function notification(traceId: string): Promise<ReadableSpan> {
      let found: ReadableSpan | undefined;
      await until(
        async () => {
          await tel.flush();
          found = exporter.getFinishedSpans().find((s) => s.name === "hurd_notify_task_terminated" && s.links.some((l) => l.context.traceId === traceId));
          return found !== undefined;
        },
        10000,
        `a task-terminated notification linked to trace ${traceId}`,
      );
      return found!;
    }

    it("rides in the call in binary, with no traceparent header, and the notification the call causes links to it", async () => {
      const sent: Sent[] = [];
      const { task } = await child(sent);
      const root = tel.tracer.startSpan("test: the child ends itself");
      const sc = root.spanContext();
      sent.length = 0;
      await context.with(trace.setSpan(ROOT_CONTEXT, root), () => task.taskTerminate(task.self)).catch(() => {});
      root.end();
      const calls = sent.map((s) => ({ trap: Trap.decode(s.data), traceparent: s.traceparent })).filter((s) => s.trap.call);
      assert.ok(calls.length >= 1, "the task_terminate trap was sent");
      const call = calls[0]!;
      assert.equal(call.trap.call!.msgid, mach.byKey.get("taskTerminate")!.msgid);
      const c = call.trap.call!.traceContext;
      assert.equal(c.length, 25, "trace id 16, span id 8, flags 1");
      assert.equal(hex(c.subarray(0, 16)), sc.traceId);
      assert.equal(hex(c.subarray(16, 24)), sc.spanId);
      assert.equal(c[24], 1, "sampled");
      assert.equal(call.traceparent, undefined, "no text header beside it");
      const n = await notification(sc.traceId);
      assert.equal(n.links[0]!.context.spanId, sc.spanId);
      assert.equal(n.links[0]!.attributes?.["hurd.link"], "cause");
    });

    it("outside any span a call carries none", async () => {
      const sent: Sent[] = [];
      const { task } = await child(sent);
      sent.length = 0;
      await task.names();
      const t = Trap.decode(sent[0]!.data);
      assert.equal(t.call!.traceContext.length, 0);
      assert.equal(sent[0]!.traceparent, undefined);
      await task.taskTerminate(task.self).catch(() => {});
    });

    it("a call from an older runtime (no trace_context, a traceparent header) is still linked through the header", async () => {
      const sent: Sent[] = [];
      const { task, bus, token } = await child(sent);
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const spanId = "00f067aa0ba902b7";
      const request = MachDefinition.methods.taskTerminate.requestType.encode({ task: task.self }).finish();
      const trap = Trap.encode({ task: task.id, token, credit: 0, seq: 0, call: { msgid: mach.byKey.get("taskTerminate")!.msgid, request, traceContext: NO_TRACE_CONTEXT } }).finish();
      await bus.request(w.b.h.kernel.subjects.trap, trap, 5000, `00-${traceId}-${spanId}-01`).catch(() => {});
      const n = await notification(traceId);
      assert.equal(n.links[0]!.context.spanId, spanId);
    });
  });
}

// OpenTelemetry spans: one kernel span per routed request or one-way
// message, child of the sender's span, ended when its reply is delivered
// (the reply's code is on it); the receiving server's span is its child.
// Tracing on and off give the same results; a stalled or absent collector
// costs bounded memory (spans dropped and counted).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { context, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace";
import { installTracingHooks, tracingEnabled } from "@hurdmesh/telemetry";
import { createTelemetry } from "@hurdmesh/telemetry-sdk";
import { busKinds } from "../harness.js";
import { sequence, world, type World } from "./kit.js";

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

for (const kind of busKinds) {
  describe(`spans (${kind} bus)`, () => {
    let w: World;
    before(async () => {
      w = await world(kind);
    });
    after(async () => {
      installTracingHooks(null);
      w.b.h.kernel.trace.useTelemetry(null);
      await w.close();
    });

    it("tracing is off by default: no endpoint, no spans, no tracer in the kernel", async () => {
      assert.equal(tracingEnabled({}), false);
      assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4318" }), true);
      assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4318", OTEL_SDK_DISABLED: "true" }), false);
      assert.equal(tracingEnabled({ HURD_TRACE: "1" }), true);
      assert.equal(w.b.h.kernel.tracer, null);
    });

    it("fork–signal–wait–exit: kernel spans are children of the caller's span, server spans children of the kernel's", async () => {
      const exporter = new InMemorySpanExporter();
      const tel = createTelemetry({ service: "test", exporter, scheduledDelayMillis: 10 });
      const k = w.b.h.kernel;
      k.trace.useTelemetry(tel);
      // The test's own span reaches init's calls across awaits: async context on.
      const off = installTracingHooks(tel, { asyncContext: true });
      const root = tel.tracer.startSpan("test sequence");
      const r = await context.with(trace.setSpan(ROOT_CONTEXT, root), () => sequence(w));
      root.end();
      off();
      k.trace.useTelemetry(null);
      assert.equal(k.tracer, null);
      await tel.flush();
      const spans = exporter.getFinishedSpans();
      const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
      const rootId = root.spanContext().spanId;
      const traceId = root.spanContext().traceId;
      const kernelSpan = (method: string) => spans.find((s) => s.kind === SpanKind.PRODUCER && s.attributes["rpc.method"] === method);

      for (const m of ["hurd.process.v1.Process/Child", "hurd.msg.v1.Msg/SigPost", "hurd.process.v1.Process/Waitid", "hurd.process.v1.Process/MarkExit"]) {
        const ks = kernelSpan(m);
        assert.ok(ks, `a kernel span for ${m}`);
        assert.equal(ks.spanContext().traceId, traceId, `${m} is in the test's trace`);
        assert.equal(ks.name, m);
        assert.equal(ks.attributes["rpc.system.name"], "hurdmesh");
        assert.equal(ks.attributes["messaging.system"], "hurdmesh");
        assert.equal(typeof ks.attributes["hurd.mig.id"], "number");
        assert.ok((ks.attributes["hurd.port.sender_name"] as number) > 0);
        assert.ok((ks.attributes["hurd.port.receiver_name"] as number) > 0);
        assert.ok((ks.attributes["hurd.task.receiver"] as number) > 0);
        assert.equal(typeof ks.attributes["hurd.namespace"], "number");
        assert.match(String(ks.attributes["messaging.destination.name"]), /^hurd\.[^.]+\.rcv\.\d+\.\d+$/);
        // The receiving server's span is the kernel span's child.
        const srv = spans.find((s) => s.kind === SpanKind.SERVER && parentOf(s) === ks.spanContext().spanId);
        assert.ok(srv, `a server span under the kernel span for ${m}`);
        assert.equal(srv.name, m);
      }
      // Who sent what: init's calls come straight from the test's span.
      const waitid = kernelSpan("hurd.process.v1.Process/Waitid")!;
      assert.equal(parentOf(waitid), rootId);
      assert.equal(waitid.attributes["hurd.task.sender"], w.init.task.id);
      const sig = kernelSpan("hurd.msg.v1.Msg/SigPost")!;
      assert.equal(sig.attributes["hurd.task.receiver"], r.childTask);
      assert.ok((sig.attributes["hurd.rights"] as string[]).some((x) => x.startsWith("copy-send")), "rights moved, with their dispositions");
      // The reply makes no span: its code is on the request's span, which ends once the reply is delivered.
      assert.equal(sig.attributes["hurd.reply.code"], 0);
      assert.equal(spans.filter((s) => s.attributes["hurd.reply"] !== undefined).length, 0);
      const sigSrv = spans.find((s) => s.kind === SpanKind.SERVER && parentOf(s) === sig.spanContext().spanId)!;
      const ns = (t: readonly [number, number]) => t[0] * 1e9 + t[1];
      assert.ok(ns(sigSrv.startTime) >= ns(sig.startTime), "the handling starts within the request's span");
      // proc's SIGCHLD to init (sent when the kernel says the child's task ended) is traced too.
      const sigchld = spans.find((s) => s.kind === SpanKind.PRODUCER && s.attributes["rpc.method"] === "hurd.msg.v1.Msg/SigPost" && s.attributes["hurd.task.receiver"] === w.init.task.id);
      assert.ok(sigchld, "proc's SIGCHLD has its kernel span");
      // The child's exit (a kernel call, its trace context in a bus header or
      // gRPC metadata) ends its task; the kernel's notification to proc starts
      // its own trace, linked to the call that caused it.
      const died = spans.find((s) => s.name === "hurd_notify_task_terminated" && s.links.some((l) => l.context.traceId === traceId));
      assert.ok(died, "the task-terminated notification links to the exit that caused it");
      assert.notEqual(died.spanContext().traceId, traceId, "a notification is a trace of its own");
      assert.equal(died.links[0]!.attributes?.["hurd.link"], "cause");
      // Every parent named in the trace exists (no dangling links) but the root's.
      for (const s of spans.filter((x) => x.spanContext().traceId === traceId && x !== undefined)) {
        const p = parentOf(s);
        if (p && s.spanContext().spanId !== rootId) assert.ok(byId.has(p), `parent of ${s.name} exported`);
      }
      assert.equal(tel.dropped, 0);
      await tel.shutdown();
    });

    it("errors are recorded: the reply's hurd.errno on the request's span", async () => {
      const exporter = new InMemorySpanExporter();
      const tel = createTelemetry({ service: "test", exporter, scheduledDelayMillis: 10 });
      w.b.h.kernel.trace.useTelemetry(tel);
      await assert.rejects(w.init.proc.getmsgport({ pid: 99999 }));
      w.b.h.kernel.trace.useTelemetry(null);
      await tel.flush();
      const rep = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER && s.attributes["rpc.method"] === "hurd.process.v1.Process/Getmsgport");
      assert.equal(rep?.attributes["hurd.errno"], "ESRCH");
      assert.equal(rep?.status.code, 2);
      await tel.shutdown();
    });

    it("a malformed trace context in a message is no context: the message is routed and its kernel span starts a trace", async () => {
      const exporter = new InMemorySpanExporter();
      const tel = createTelemetry({ service: "test", exporter, scheduledDelayMillis: 10 });
      const k = w.b.h.kernel;
      k.trace.useTelemetry(tel);
      const zeroIds = new Uint8Array(25);
      zeroIds[24] = 1;
      const long = new Uint8Array(40).fill(7);
      for (const traceContext of [new Uint8Array(7), zeroIds, long]) {
        const r = await w.init.proc.getpids({}, { traceContext });
        assert.ok(r.pid > 0);
      }
      k.trace.useTelemetry(null);
      await tel.flush();
      const gets = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.PRODUCER && s.attributes["rpc.method"] === "hurd.process.v1.Process/Getpids");
      assert.equal(gets.length, 3);
      for (const s of gets) {
        assert.equal(s.parentSpanContext, undefined, "a root");
        assert.match(s.spanContext().traceId, /^[0-9a-f]{32}$/);
        assert.notEqual(s.spanContext().traceId, "0".repeat(32));
      }
      await tel.shutdown();
    });

    it("tracing on and off give the same results", async () => {
      const k = w.b.h.kernel;
      const offRun = await sequence(w);
      const tel = createTelemetry({ service: "test", exporter: new InMemorySpanExporter() });
      k.trace.useTelemetry(tel);
      const unhook = installTracingHooks(tel);
      const stop = k.trace.watch({ bodies: true }, () => {});
      const onRun = await sequence(w);
      stop();
      unhook();
      k.trace.useTelemetry(null);
      const shape = (x: typeof offRun) => ({ ppid: x.ppid, got: x.got, exited: x.exited, status: x.status });
      assert.deepEqual(shape(onRun), shape(offRun));
      assert.equal(onRun.pid, offRun.pid + 1, "pids are handed out the same way");
      await tel.shutdown();
    });

    it("a stalled collector costs bounded memory: spans beyond the queue are dropped and counted, delivery goes on", async () => {
      let exports = 0;
      const stalled: SpanExporter = { export: () => void exports++, shutdown: async () => {} };
      const tel = createTelemetry({ service: "test", exporter: stalled, maxQueueSize: 200, maxExportBatchSize: 50, scheduledDelayMillis: 5, exportTimeoutMillis: 300 });
      const k = w.b.h.kernel;
      k.trace.useTelemetry(tel);
      for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 100 }, () => w.init.getpids()));
      k.trace.useTelemetry(null);
      assert.ok(tel.queued <= 200, `queued ${tel.queued}`);
      // 2000 kernel spans (one per RPC): each stalled export holds at most a batch of 50, the queue 200; the rest is dropped.
      assert.ok(tel.dropped > 1000, `dropped ${tel.dropped}`);
      assert.ok(tel.dropped + tel.queued + exports * 50 >= 2000, `dropped ${tel.dropped}, queued ${tel.queued}, exports ${exports}`);
      assert.ok(exports >= 1);
      await tel.shutdown().catch(() => {}); // the stalled export times out
    });

    it("an absent or stalled OTLP endpoint (http/protobuf, http/json, grpc) costs bounded memory; delivery goes on", async () => {
      // A collector that accepts connections and never answers.
      const sockets = new Set<import("node:net").Socket>();
      const stalled = createServer(() => {});
      stalled.on("connection", (c) => sockets.add(c));
      await new Promise<void>((r) => stalled.listen(0, "127.0.0.1", r));
      const stalledUrl = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
      const cases = [
        ["absent", "http/protobuf", "http://127.0.0.1:9"],
        ["absent", "http/json", "http://127.0.0.1:9"],
        ["absent", "grpc", "http://127.0.0.1:9"],
        ["stalled", "http/protobuf", stalledUrl],
      ] as const;
      try {
        for (const [how, proto, endpoint] of cases) {
          const tel = createTelemetry({
            service: "test",
            env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: proto },
            maxQueueSize: 100,
            maxExportBatchSize: 20,
            scheduledDelayMillis: 5,
            exportTimeoutMillis: 500,
          });
          const k = w.b.h.kernel;
          k.trace.useTelemetry(tel);
          let most = 0;
          const probe = setInterval(() => (most = Math.max(most, tel.queued)), 1);
          let done = 0;
          for (let i = 0; i < 20; i++) done += (await Promise.all(Array.from({ length: 100 }, () => w.init.getpids()))).length;
          clearInterval(probe);
          k.trace.useTelemetry(null);
          const what = `${how} ${proto}`;
          assert.equal(done, 2000, `${what}: every RPC answered`);
          assert.ok(most <= 100 && tel.queued <= 100, `${what}: queued at most ${most}`);
          // A stalled export holds its batch until the timeout: the queue fills and the rest is dropped, counted.
          if (how === "stalled") assert.ok(tel.dropped > 0, `${what}: dropped ${tel.dropped}`);
          await tel.shutdown().catch(() => {});
        }
      } finally {
        for (const c of sockets) c.destroy();
        stalled.close();
      }
    });
  });
}

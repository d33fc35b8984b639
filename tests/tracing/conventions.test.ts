// One vocabulary on every kind of span: the kernel's span for a routed
// request, the handler's span in the server, and the edge's gRPC spans all
// carry OpenTelemetry's RPC conventions — rpc.system.name, rpc.method
// ("service/method"), rpc.response.status_code ("OK" or the error's name),
// error.type on failures, server.address — and the hurd's name, so a
// subhurd's proc is told apart from the root's; every span's resource has
// service.instance.id and what OTEL_RESOURCE_ATTRIBUTES adds. Checked on
// both export paths: hurdmesh's own records encoded as OTLP/protobuf, and
// span objects for an SDK exporter. And dropped spans are counted, by the
// telemetry and on the kernel's metrics.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import type { ExportResult } from "@opentelemetry/core";
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { Process } from "@hurdmesh/libhurd";
import { installTracingHooks } from "@hurdmesh/telemetry";
import { createMetrics, createTelemetry, type SdkTelemetry } from "@hurdmesh/telemetry-sdk";
import { busKinds } from "../harness.js";
import { parsePrometheus, sample } from "../metrics/prometheus.js";
import { world, type World } from "./kit.js";

const OTLP = protobuf.parse(`
syntax = "proto3";
package o;
message Req { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message Span { string name = 5; int32 kind = 6; repeated KeyValue attributes = 9; }
`).root.lookupType("o.Req");

interface Seen {
  name: string;
  kind: SpanKind;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

const flat = (kvs: { key: string; value: Record<string, unknown> }[]) => Object.fromEntries(kvs.map((kv) => [kv.key, Object.values(kv.value)[0]]));

/** Spans as a collector reads them from hurdmesh's OTLP/protobuf bodies. */
function decode(bodies: Uint8Array[]): Seen[] {
  const out: Seen[] = [];
  for (const b of bodies) {
    const req = OTLP.toObject(OTLP.decode(b), { longs: Number }) as { resourceSpans: { resource: { attributes: never[] }; scopeSpans: { spans: { name: string; kind: number; attributes?: never[] }[] }[] }[] };
    for (const rs of req.resourceSpans)
      for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) out.push({ name: s.name, kind: s.kind - 1, attributes: flat(s.attributes ?? []), resource: flat(rs.resource.attributes) });
  }
  return out;
}

/** An exporter that takes hurdmesh's encoded requests and keeps them (or, stalled, never answers). */
class Capture {
  exported = 0;
  readonly bodies: Uint8Array[] = [];
  constructor(private readonly stalled = false) {}
  sendEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    if (this.stalled) return;
    this.bodies.push(body.slice());
    this.exported += spans;
    done({ code: 0 });
  }
  /** The SDK's own spans (none here) would come as objects. */
  export(_spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

const ENV = { OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=conventions,team=hurd%20hackers", OTEL_SERVICE_NAME: "hurd-conventions" };

for (const kind of busKinds) {
  describe(`span conventions (${kind} bus)`, () => {
    let w: World;
    let sub: Subhurd;
    let inner: Process;
    let system: string;
    before(async () => {
      w = await world(kind);
      system = w.b.h.kernel.config.system;
      const attach = (id: number, token: string) => w.b.h.attach(id, token, { window: 1024, timeoutMs: 20000 });
      sub = await bootSubhurd(w.b.initTask, "inner", attach, new InProcessLauncher(attach), { log: () => {} });
      inner = await Process.attach(sub.task, sub.init.booted!.proc, sub.init.booted!.auth, { msgport: false });
    });
    after(async () => {
      installTracingHooks(null);
      w.b.h.kernel.trace.useTelemetry(null);
      await w.close();
    });

    /** Traces a good call and a failing one in each hurd through `tel`. */
    async function traced(tel: SdkTelemetry): Promise<void> {
      w.b.h.kernel.trace.useTelemetry(tel);
      const off = installTracingHooks(tel);
      try {
        await w.init.getpids();
        await assert.rejects(w.init.proc.getmsgport({ pid: 99999 }));
        await inner.getpids();
      } finally {
        off();
        w.b.h.kernel.trace.useTelemetry(null);
      }
      await tel.flush();
    }

    function check(spans: Seen[]): void {
      const of = (k: SpanKind, method: string, hurd: string) => spans.find((s) => s.kind === k && s.attributes["rpc.method"] === method && s.attributes["hurd.name"] === hurd);
      for (const k of [SpanKind.PRODUCER, SpanKind.SERVER]) {
        const what = k === SpanKind.PRODUCER ? "kernel span" : "handler span";
        const ok = of(k, "hurd.process.v1.Process/Getpids", system);
        assert.ok(ok, `a ${what} for Getpids in ${system}`);
        assert.equal(ok.attributes["rpc.system.name"], "hurdmesh");
        assert.equal(ok.attributes["rpc.response.status_code"], "OK", what);
        assert.equal(ok.attributes["error.type"], undefined, what);
        assert.match(String(ok.attributes["server.address"]), new RegExp(`^hurd\\.${system}\\.rcv\\.\\d+$`), what);
        const bad = of(k, "hurd.process.v1.Process/Getmsgport", system);
        assert.ok(bad, `a ${what} for the failed Getmsgport`);
        assert.equal(bad.attributes["rpc.response.status_code"], "ESRCH", what);
        assert.equal(bad.attributes["error.type"], "ESRCH", what);
        // The subhurd's proc is told apart from the root's by hurd.name.
        assert.ok(of(k, "hurd.process.v1.Process/Getpids", "inner"), `a ${what} for Getpids in the subhurd, named by its hurd`);
        // The kernel and the handler agree on where the request was served.
        const srvOf = (s: Seen) => s.attributes["server.address"];
        assert.equal(srvOf(of(SpanKind.PRODUCER, "hurd.process.v1.Process/Getpids", system)!), srvOf(of(SpanKind.SERVER, "hurd.process.v1.Process/Getpids", system)!));
      }
      for (const s of spans) {
        assert.match(String(s.resource["service.instance.id"]), /^[0-9a-f-]{36}$/);
        assert.equal(s.resource["service.name"], "hurd-conventions", "OTEL_SERVICE_NAME wins");
        assert.equal(s.resource["deployment.environment.name"], "conventions", "OTEL_RESOURCE_ATTRIBUTES honoured");
        assert.equal(s.resource["team"], "hurd hackers", "values are percent-decoded");
      }
    }

    it("on hurdmesh's own OTLP/protobuf export (span records), every kernel and handler span carries the RPC conventions and its hurd", async () => {
      const cap = new Capture();
      const tel = createTelemetry({ service: "x", exporter: cap as never, exportThread: false, scheduledDelayMillis: 10, env: ENV });
      await traced(tel);
      check(decode(cap.bodies));
      await tel.shutdown();
    });

    it("on an SDK exporter (span objects), the same attributes", async () => {
      const exporter = new InMemorySpanExporter();
      const tel = createTelemetry({ service: "x", exporter, scheduledDelayMillis: 10, env: ENV });
      await traced(tel);
      const spans = exporter.getFinishedSpans().map((s: ReadableSpan): Seen => ({ name: s.name, kind: s.kind, attributes: s.attributes, resource: s.resource.attributes }));
      check(spans);
      await tel.shutdown();
    });
  });
}

describe("edge gRPC spans", () => {
  it("the gRPC instrumentation's rpc.system/rpc.service/rpc.grpc.status_code gain rpc.system.name, rpc.method as service/method, rpc.response.status_code, error.type and server.address", async () => {
    const exporter = new InMemorySpanExporter();
    const tel = createTelemetry({ service: "hurd-kernel", exporter, scheduledDelayMillis: 10, serverAddress: "127.0.0.1:7400", env: {} });
    // As @opentelemetry/instrumentation-grpc writes a server span and a failed client span.
    // (Not a Mach call: those make spans only inside a caller's trace, see EdgeCallsInTracesOnly.)
    const srv = tel.tracer.startSpan("grpc.hurd.process.v1.Process/Getpids", { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": "hurd.process.v1.Process", "rpc.method": "Getpids" } });
    srv.setAttribute("rpc.grpc.status_code", 0);
    srv.end();
    const cli = tel.tracer.startSpan("grpc.hurd.trace.v1.Trace/Watch", { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": "hurd.trace.v1.Trace", "rpc.method": "Watch", "server.address": "edge.example", "server.port": 7400 } });
    cli.setAttribute("rpc.grpc.status_code", 7);
    cli.end();
    await tel.flush();
    const s = exporter.getFinishedSpans().find((x) => x.kind === SpanKind.SERVER);
    const c = exporter.getFinishedSpans().find((x) => x.kind === SpanKind.CLIENT);
    assert.equal(s!.attributes["rpc.system.name"], "grpc");
    assert.equal(s!.attributes["rpc.method"], "hurd.process.v1.Process/Getpids");
    assert.equal(s!.attributes["rpc.response.status_code"], "OK");
    assert.equal(s!.attributes["error.type"], undefined);
    assert.equal(s!.attributes["server.address"], "127.0.0.1:7400");
    assert.equal(s!.resource.attributes["hurd.name"], undefined, "no hurd named by the environment");
    assert.equal(c!.attributes["rpc.method"], "hurd.trace.v1.Trace/Watch");
    assert.equal(c!.attributes["rpc.response.status_code"], "PERMISSION_DENIED");
    assert.equal(c!.attributes["error.type"], "PERMISSION_DENIED");
    assert.equal(c!.attributes["server.address"], "edge.example", "a client span's own server.address is kept");
    await tel.shutdown();
  });
});

describe("dropped spans are counted", () => {
  it("a stalled collector: spans past the export queue's bound are dropped and counted, and the kernel's metrics say how many", async () => {
    const w = await world("local");
    try {
      const tel = createTelemetry({ service: "x", exporter: new Capture(true) as never, exportThread: false, maxQueueSize: 64, maxExportBatchSize: 16, scheduledDelayMillis: 5, env: {} });
      const k = w.b.h.kernel;
      const m = await createMetrics({ service: "x", prometheus: "127.0.0.1:0", env: {} });
      k.useMetrics(m);
      k.trace.useTelemetry(tel);
      const off = installTracingHooks(tel);
      for (let i = 0; i < 100; i++) await w.init.getpids();
      off();
      k.trace.useTelemetry(null);
      // Two spans per call (the kernel's and the handler's), at most 64 waiting: the rest dropped.
      assert.equal(tel.queued, 64);
      assert.ok(tel.dropped >= 200 - 64, `${tel.dropped} dropped`);
      const s = parsePrometheus(await m.scrape());
      assert.equal(sample(s, "hurd_kernel_spans_dropped_total", {}), 0, "the kernel reports its telemetry's drops only while it has one");
      k.trace.useTelemetry(tel);
      assert.equal(sample(parsePrometheus(await m.scrape()), "hurd_kernel_spans_dropped_total", {}), tel.dropped);
      k.trace.useTelemetry(null);
      k.useMetrics(null);
      await m.shutdown();
    } finally {
      await w.close();
    }
  });
});

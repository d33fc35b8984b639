// hurdmesh's OTLP/protobuf encoder (otlp.ts) against the SDK's serializer:
// the same spans, encoded both ways and decoded with the OTLP schema, are
// the same messages. And the HTTP exporter posts what a collector reads.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import protobuf from "protobufjs";
import { SpanKind } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { installTracingHooks } from "@hurdmesh/telemetry";
import { createTelemetry, encodeSpans, NameBytes, NameTable, OtlpHttpExporter, PlainSpan, RecordChunk, RecordSink, encodeRecord, Writer, type LightSink, type LightSpan } from "@hurdmesh/telemetry-sdk";
import { sequence, world, type World } from "./kit.js";

// The parts of opentelemetry-proto the exporters write.
const OTLP = protobuf.parse(`
syntax = "proto3";
package o;
message Req { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { Scope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Scope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message Status { string message = 2; int32 code = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  uint32 dropped_events_count = 12; repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15; fixed32 flags = 16;
}
`).root.lookupType("o.Req");

interface Flat {
  resource: unknown;
  scope: unknown;
  span: Record<string, unknown>;
}

/** Every span of a request with its resource and scope, attributes sorted by key, times to the microsecond. */
function flatten(bytes: Uint8Array): Flat[] {
  const req = OTLP.toObject(OTLP.decode(bytes), { longs: String, bytes: String, defaults: true }) as {
    resourceSpans: { resource: { attributes: { key: string }[] }; scopeSpans: { scope: unknown; spans: Record<string, unknown>[] }[] }[];
  };
  const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const out: Flat[] = [];
  for (const rs of req.resourceSpans)
    for (const ss of rs.scopeSpans)
      for (const sp of ss.spans) {
        const span: Record<string, unknown> = { ...sp, attributes: [...(sp.attributes as { key: string }[])].sort(byKey) };
        // Times to 10 µs (the SDK rounds hrtime its own way), an unset status as the empty one it is.
        for (const t of ["startTimeUnixNano", "endTimeUnixNano"]) span[t] = Number(BigInt(span[t] as string) / 10000n);
        span.status ??= { code: 0, message: "" };
        out.push({ resource: { ...rs.resource, attributes: [...rs.resource.attributes].sort(byKey) }, scope: ss.scope, span });
      }
  return out.sort((a, b) => ((a.span.spanId as string) < (b.span.spanId as string) ? -1 : 1));
}

/** Spans of every kind: the traced sequence, an error reply, a plain span with odd names, extra attributes and a link. */
async function spanKinds(w: World, tel: ReturnType<typeof createTelemetry>): Promise<void> {
  await sequence(w);
  await assert.rejects(w.init.proc.getmsgport({ pid: 99999 }));
  const odd = new PlainSpan(tel.light, "odd — ünïcode", SpanKind.INTERNAL, null, { "k.ü": "värde", big: 2 ** 40, list: [1, 2] });
  odd.setAttribute("extra", true);
  odd.links = [{ context: { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1, isRemote: true }, attributes: { why: "cause" } }];
  odd.end();
}

describe("OTLP encoding (local bus)", () => {
  let w: World;
  before(async () => {
    w = await world("local");
  });
  after(async () => {
    installTracingHooks(null);
    w.b.h.kernel.trace.useTelemetry(null);
    await w.close();
  });

  it("encodes kernel, server and SDK spans as the SDK's serializer does", async () => {
    const exporter = new InMemorySpanExporter();
    const tel = createTelemetry({ service: "otlp-test", exporter, scheduledDelayMillis: 10 });
    w.b.h.kernel.trace.useTelemetry(tel);
    const off = installTracingHooks(tel);
    const root = tel.tracer.startSpan("root", { attributes: { "a.double": 1.5, "a.neg": -3, "a.list": ["x", "y"], "a.bool": false } });
    root.end();
    await spanKinds(w, tel);
    off();
    w.b.h.kernel.trace.useTelemetry(null);
    await tel.flush();
    const spans: ReadableSpan[] = exporter.getFinishedSpans();
    assert.ok(spans.length > 20, `${spans.length} spans`);
    assert.ok(spans.some((s) => s.attributes["hurd.errno"] === "ESRCH"));
    const ours = flatten(encodeSpans(spans));
    const sdk = flatten(ProtobufTraceSerializer.serializeRequest(spans)!);
    assert.equal(ours.length, spans.length);
    const near = (a: Flat[], b: Flat[]) => a.map((x, i) => {
      for (const t of ["startTimeUnixNano", "endTimeUnixNano"]) if (Math.abs((x.span[t] as number) - (b[i]!.span[t] as number)) <= 1) x.span[t] = b[i]!.span[t];
      return x;
    });
    assert.deepEqual(near(ours, sdk), sdk);
    await tel.shutdown();
  });

  it("OtlpHttpExporter posts application/x-protobuf to /v1/traces with the configured headers", async () => {
    const got: { url: string; type: string; auth: string; body: Buffer }[] = [];
    const srv = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (c: Buffer) => parts.push(c));
      req.on("end", () => {
        got.push({ url: req.url ?? "", type: String(req.headers["content-type"]), auth: String(req.headers.authorization), body: Buffer.concat(parts) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    const exporter = new OtlpHttpExporter({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}/`, OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Bearer%20x" });
    const tel = createTelemetry({ service: "otlp-http", exporter, scheduledDelayMillis: 10 });
    w.b.h.kernel.trace.useTelemetry(tel);
    await w.init.getpids();
    w.b.h.kernel.trace.useTelemetry(null);
    await tel.flush();
    await tel.shutdown();
    srv.close();
    assert.ok(got.length >= 1);
    assert.equal(got[0]!.url, "/v1/traces");
    assert.equal(got[0]!.type, "application/x-protobuf");
    assert.equal(got[0]!.auth, "Bearer x");
    const spans = got.flatMap((g) => flatten(g.body));
    assert.ok(spans.some((s) => s.span.name === "hurd.process.v1.Process/Getpids"));
    assert.equal(exporter.exported, spans.length);
  });

  for (const thread of [true, false])
    it(`span records exported ${thread ? "by the export worker" : "on the calling thread"} are what encodeSpans makes of the same spans`, async () => {
      const bodies: Buffer[] = [];
      const srv = createServer((req, res) => {
        const parts: Buffer[] = [];
        req.on("data", (c: Buffer) => parts.push(c));
        req.on("end", () => {
          bodies.push(Buffer.concat(parts));
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      const exporter = new OtlpHttpExporter({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
      const tel = createTelemetry({ service: "records", exporter, scheduledDelayMillis: 10, maxExportBatchSize: 7, exportThread: thread });
      // Every span the sink takes is also kept as the object it was.
      const lt = tel.light as unknown as { sink: LightSink };
      const sink = lt.sink as RecordSink;
      assert.ok(sink instanceof RecordSink);
      assert.equal(sink.threaded, thread);
      const seen: LightSpan[] = [];
      lt.sink = { add: (s) => (seen.push(s), sink.add(s)) };
      w.b.h.kernel.trace.useTelemetry(tel);
      const off = installTracingHooks(tel);
      await spanKinds(w, tel);
      off();
      w.b.h.kernel.trace.useTelemetry(null);
      await tel.flush();
      await tel.shutdown();
      srv.close();
      assert.ok(seen.length > 20, `${seen.length} spans`);
      assert.ok(bodies.length >= Math.ceil(seen.length / 7), `${bodies.length} requests of at most 7 spans`);
      assert.deepEqual(bodies.flatMap((b) => flatten(b)).sort((a, b) => ((a.span.spanId as string) < (b.span.spanId as string) ? -1 : 1)), flatten(encodeSpans(seen)));
      assert.equal(exporter.exported, seen.length);
      assert.equal(tel.dropped, 0);
    });

  it("a span whose name has no number (the name table is full) carries its name in its record's tail", async () => {
    const tel = createTelemetry({ service: "names", exporter: new InMemorySpanExporter() });
    const spans = ["first", "second", "third"].map((n) => new PlainSpan(tel.light, n, SpanKind.INTERNAL, null, { n }));
    for (const s of spans) s.end();
    const names = new NameTable(1);
    const c = new RecordChunk(4);
    for (const s of spans) s.toRecord(c, names);
    const bytes = new NameBytes();
    bytes.add(names.takeFresh());
    const wr = new Writer();
    for (let i = 0; i < c.n; i++) encodeRecord(wr, c, i, bytes);
    // The records, wrapped as encodeSpans wraps spans, decode to the same spans.
    const whole = encodeSpans(spans);
    const body = flatten(whole).map((f) => f.span.name);
    assert.deepEqual(body.sort(), ["first", "second", "third"]);
    const scopeSpans = Buffer.concat([Buffer.from([0x0a, 0x00]), Buffer.from(wr.buf.subarray(0, wr.pos))]);
    const resourceSpans = Buffer.concat([Buffer.from([0x12]), varint(scopeSpans.length), scopeSpans]);
    const direct = OTLP.decode(Buffer.concat([Buffer.from([0x0a]), varint(resourceSpans.length), resourceSpans])) as unknown as { resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[] };
    assert.deepEqual(direct.resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => s.name).sort(), ["first", "second", "third"]);
    await tel.shutdown();
  });
});

describe("where span export runs", () => {
  it("on a worker thread unless on NATS with two cores or fewer; HURD_TRACE_EXPORT_THREAD forces either", async () => {
    const { availableParallelism } = await import("node:os");
    const { SerializingExporter } = await import("@hurdmesh/telemetry-sdk");
    const threaded = (o: Parameters<typeof createTelemetry>[0]) => {
      const tel = createTelemetry({ exporter: new SerializingExporter(), ...o, service: "where" });
      const sink = (tel.light as unknown as { sink: RecordSink }).sink;
      void tel.shutdown();
      return sink.threaded;
    };
    assert.equal(threaded({ service: "", env: {} }), true);
    assert.equal(threaded({ service: "", env: {}, bus: "local" }), true);
    assert.equal(threaded({ service: "", env: {}, bus: "nats" }), availableParallelism() > 2);
    assert.equal(threaded({ service: "", env: { HURD_TRACE_EXPORT_THREAD: "1" }, bus: "nats" }), true);
    assert.equal(threaded({ service: "", env: { HURD_TRACE_EXPORT_THREAD: "0" } }), false);
    assert.equal(threaded({ service: "", env: {}, exportThread: false }), false);
  });
});

function varint(v: number): Buffer {
  const out: number[] = [];
  for (; v >= 0x80; v >>>= 7) out.push((v & 0x7f) | 0x80);
  out.push(v);
  return Buffer.from(out);
}

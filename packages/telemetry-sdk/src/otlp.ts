// OTLP/protobuf for the spans the hot path makes, and an exporter that
// posts it (OTLP over HTTP, application/x-protobuf).
//
// Why not the SDK's serializer: it is general, and at 100 % sampling its
// cost per span (two passes over every span, each reading every getter;
// every attribute key UTF-8 encoded again per span) was a quarter of a
// brokered RPC's CPU. Here a batch is encoded in one pass into one growing
// buffer; attribute keys, the resource and the scope are encoded once per
// process; LightSpans go through their records (records.ts), ids as the
// bytes they are kept in. Spans that are not
// LightSpans (the SDK tracer's, e.g. a test's root span) are encoded by the
// SDK's serializer and appended: concatenated ExportTraceServiceRequest
// messages are one message (repeated fields concatenate).
//
// Message layout (opentelemetry/proto/collector/trace/v1, trace/v1, common/v1):
//   ExportTraceServiceRequest { 1: repeated ResourceSpans }
//   ResourceSpans { 1: Resource, 2: repeated ScopeSpans }
//   Resource { 1: repeated KeyValue attributes }
//   ScopeSpans { 1: InstrumentationScope { 1: name, 2: version }, 2: repeated Span }
//   Span { 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 7/8 start/end fixed64 ns,
//          9 attributes, 13 links, 15 status { 2 message, 3 code }, 16 flags fixed32 }
//   KeyValue { 1 key, 2 AnyValue { 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue { 1 repeated AnyValue } } }
//   Link { 1 trace_id, 2 span_id, 4 attributes, 6 flags }
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import { LightSpan } from "./light.js";
import { attributes, LD, Writer } from "./otlp-writer.js";
import { encodeRecord, NameBytes, NameTable, RecordChunk } from "./records.js";
import { OtlpHttpSender, otlpHttpConfig } from "./otlp-http.js";

const scratch = new RecordChunk(1);
const scratchNames = new NameTable();
const scratchBytes = new NameBytes();

/** One Span (field 2 of ScopeSpans) for `sp`: its record, encoded (records.ts is the one encoder). */
export function encodeSpan(w: Writer, sp: LightSpan): void {
  scratch.n = 0;
  scratch.tails = [];
  sp.toRecord(scratch, scratchNames);
  scratchBytes.add(scratchNames.takeFresh());
  encodeRecord(w, scratch, 0, scratchBytes);
}

/** Resource (field 1 of ResourceSpans) and scope (field 1 of ScopeSpans), encoded once per pair. */
export interface Head {
  resource: Uint8Array;
  scope: Uint8Array;
}
const heads = new WeakMap<Resource, Map<string, Head>>();
function head(sp: LightSpan): Head {
  return headFor(sp.resource, sp.instrumentationScope);
}
export function headFor(resource: Resource, sc: InstrumentationScope): Head {
  let byScope = heads.get(resource);
  if (!byScope) heads.set(resource, (byScope = new Map()));
  const key = `${sc.name}@${sc.version ?? ""}`;
  let h = byScope.get(key);
  if (!h) {
    const w = new Writer();
    w.tag(1, LD);
    const r = w.open();
    attributes(w, 1, resource.attributes);
    w.close(r);
    const res = w.take();
    const v = new Writer();
    v.tag(1, LD);
    const s = v.open();
    v.tag(1, LD);
    v.string(sc.name);
    if (sc.version) {
      v.tag(2, LD);
      v.string(sc.version);
    }
    v.close(s);
    h = { resource: res, scope: v.take() };
    byScope.set(key, h);
  }
  return h;
}


let shared: Writer | null = null;

/** One ExportTraceServiceRequest (OTLP/protobuf) for `spans`. */
export function encodeSpans(spans: readonly ReadableSpan[]): Uint8Array {
  const w = (shared ??= new Writer());
  w.pos = 0;
  let others: ReadableSpan[] | null = null;
  // Light spans of one resource and scope go in one ResourceSpans (the usual
  // batch has one); a batch that mixes them gets one ResourceSpans per run.
  let i = 0;
  while (i < spans.length) {
    const first = spans[i]!;
    if (!(first instanceof LightSpan)) {
      (others ??= []).push(first);
      i++;
      continue;
    }
    const h = head(first);
    w.tag(1, LD);
    const rs = w.open();
    w.raw(h.resource);
    w.tag(2, LD);
    const ss = w.open();
    w.raw(h.scope);
    for (; i < spans.length; i++) {
      const sp = spans[i]!;
      if (!(sp instanceof LightSpan)) {
        (others ??= []).push(sp);
        continue;
      }
      if (sp.resource !== first.resource || sp.instrumentationScope !== first.instrumentationScope) break;
      encodeSpan(w, sp);
    }
    w.close(ss);
    w.close(rs);
  }
  let out = w.take();
  if (others !== null) {
    const more = ProtobufTraceSerializer.serializeRequest(others);
    if (more && more.length) {
      const both = new Uint8Array(out.length + more.length);
      both.set(out);
      both.set(more, out.length);
      out = both;
    }
  }
  // A batch far above the usual size leaves its buffer to the collector.
  if (w.buf.length > 4 * 1024 * 1024) shared = null;
  return out;
}

/**
 * OTLP over HTTP with protobuf bodies (the OTLP default protocol), for span
 * objects too (SDK spans, through a BatchSpanProcessor). Configured from
 * the OTEL_* environment (otlpHttpConfig).
 */
export class OtlpHttpExporter extends OtlpHttpSender implements SpanExporter {
  constructor(env: NodeJS.ProcessEnv, o: { timeoutMs?: number } = {}) {
    super(otlpHttpConfig(env, o.timeoutMs));
  }
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    let body: Uint8Array;
    try {
      body = encodeSpans(spans);
    } catch (error) {
      this.failed += spans.length;
      done({ code: ExportResultCode.FAILED, error: error as Error });
      return;
    }
    this.sendEncoded(body, spans.length, done);
  }
}

export { isEncodedExporter, OtlpHttpSender, otlpHttpConfig, type EncodedExporter, type ExporterConfig } from "./otlp-http.js";

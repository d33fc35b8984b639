// A small OTLP receiver (OTLP/HTTP with JSON bodies, POST /v1/traces) that
// keeps the last spans it was sent, for tests and for a look at spans
// without a Jaeger: GET /api/spans?service=S&name=N&trace=T answers them as
// JSON, GET /api/traces lists trace ids by root span, GET /healthz says it
// runs. Bounded: past `max` spans the oldest go, and are counted.
import { createServer, type IncomingMessage, type Server } from "node:http";

export interface SinkSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  service: string;
  kind: number;
  startNs: string;
  endNs: string;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  status: number;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}

function value(v: AnyValue | undefined): unknown {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return null;
}

function attrs(kvs: KeyValue[] | undefined): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const kv of kvs ?? []) o[kv.key] = value(kv.value);
  return o;
}

/** Trace and span ids arrive as hex in OTLP/JSON (the spec's exception to base64 for bytes). */
const hex = (s: unknown) => (typeof s === "string" ? s.toLowerCase() : "");

export class OtlpSink {
  readonly spans: SinkSpan[] = [];
  dropped = 0;
  received = 0;
  private head = 0;
  constructor(readonly max = 200_000) {}

  ingest(body: unknown): number {
    const rs = (body as { resourceSpans?: unknown[] })?.resourceSpans;
    if (!Array.isArray(rs)) throw new Error("an ExportTraceServiceRequest has resourceSpans");
    let n = 0;
    for (const r of rs as Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: unknown[] }> }>) {
      const service = String(attrs(r.resource?.attributes)["service.name"] ?? "");
      for (const ss of r.scopeSpans ?? [])
        for (const s of (ss.spans ?? []) as Array<Record<string, unknown>>) {
          this.push({
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            parentSpanId: hex(s.parentSpanId),
            name: String(s.name ?? ""),
            service,
            kind: Number(s.kind ?? 0),
            startNs: String(s.startTimeUnixNano ?? "0"),
            endNs: String(s.endTimeUnixNano ?? "0"),
            attributes: attrs(s.attributes as KeyValue[]),
            links: ((s.links as Array<{ traceId: unknown; spanId: unknown }>) ?? []).map((l) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId) })),
            status: Number((s.status as { code?: number })?.code ?? 0),
          });
          n++;
        }
    }
    this.received += n;
    return n;
  }

  private push(s: SinkSpan): void {
    if (this.spans.length < this.max) {
      this.spans.push(s);
      return;
    }
    // A ring once full: overwrite the oldest.
    this.spans[this.head] = s;
    this.head = (this.head + 1) % this.max;
    this.dropped++;
  }

  query(q: { service?: string; name?: string; trace?: string; limit?: number }): SinkSpan[] {
    const out: SinkSpan[] = [];
    const limit = q.limit ?? 1000;
    for (const s of this.spans) {
      if (q.service && s.service !== q.service) continue;
      if (q.name && !s.name.includes(q.name)) continue;
      if (q.trace && s.traceId !== q.trace) continue;
      out.push(s);
      if (out.length >= limit) break;
    }
    return out;
  }

  listen(port: number, host = "0.0.0.0"): Promise<Server> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://sink");
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method === "GET" && url.pathname === "/healthz") return send(200, { ok: true, spans: this.spans.length, received: this.received, dropped: this.dropped });
      if (req.method === "GET" && url.pathname === "/api/spans") {
        const p = url.searchParams;
        return send(200, this.query({ service: p.get("service") ?? undefined, name: p.get("name") ?? undefined, trace: p.get("trace") ?? undefined, limit: Number(p.get("limit") ?? 1000) }));
      }
      if (req.method === "POST" && url.pathname === "/v1/traces") {
        if (!String(req.headers["content-type"] ?? "").includes("json"))
          return send(415, { error: "this receiver takes OTLP/HTTP JSON: set OTEL_EXPORTER_OTLP_PROTOCOL=http/json" });
        void readBody(req, 16 << 20).then(
          (b) => {
            try {
              this.ingest(JSON.parse(b));
              send(200, {});
            } catch (e) {
              send(400, { error: (e as Error).message });
            }
          },
          (e: Error) => send(413, { error: e.message }),
        );
        return;
      }
      send(404, { error: `no ${req.method} ${url.pathname}` });
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n > max) {
        reject(new Error(`body over ${max} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

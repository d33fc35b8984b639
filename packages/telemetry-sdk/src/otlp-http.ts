// OTLP over HTTP with protobuf bodies: the sending half, which takes
// requests already encoded. Kept apart from the encoders of span objects
// (otlp.ts) so the export worker loads only this, the records and the writer.
import type { ExportResult } from "@opentelemetry/core";

// ExportResultCode's values (the export worker does not load @opentelemetry/core for two numbers).
const SUCCESS = 0 as ExportResult["code"];
const FAILED = 1 as ExportResult["code"];

/**
 * An exporter that takes spans already encoded (one ExportTraceServiceRequest
 * per call): hurdmesh's own OTLP exporters. With one of these, LightSpans
 * become records as they end (record-sink.ts) and are never queued as objects.
 */
export interface EncodedExporter {
  sendEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void;
  /** How the export worker makes the same exporter (absent: spans are encoded on this thread). */
  workerConfig?(): ExporterConfig;
  /** Counters; what the export worker did is added to them. */
  exported: number;
  failed?: number;
  bytes?: number;
}

/** An EncodedExporter as the export worker rebuilds it. */
export type ExporterConfig = { kind: "otlp-http"; url: string; headers: Record<string, string>; timeoutMs: number } | { kind: "serialize" };
export type OtlpHttpConfig = Extract<ExporterConfig, { kind: "otlp-http" }>;

export function isEncodedExporter(e: unknown): e is EncodedExporter {
  return typeof (e as EncodedExporter | null)?.sendEncoded === "function";
}

/**
 * Where OTLP/HTTP goes: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
 * OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, with
 * OTEL_EXPORTER_OTLP[_TRACES]_HEADERS; `timeoutMs` overrides
 * OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT.
 */
export function otlpHttpConfig(env: NodeJS.ProcessEnv, timeoutMs?: number): OtlpHttpConfig {
  const t = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318";
  const to = timeoutMs ?? Number(env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT ?? 10000);
  return {
    kind: "otlp-http",
    url: t || `${base.replace(/\/+$/, "")}/v1/traces`,
    headers: { "content-type": "application/x-protobuf", ...parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS), ...parseHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    timeoutMs: Number.isFinite(to) && to > 0 ? to : 10000,
  };
}

/**
 * Posts encoded requests (application/x-protobuf), one per batch; a failed
 * or timed-out request drops its batch (the queue before it stays bounded;
 * its spans are counted in `failed`).
 */
export class OtlpHttpSender implements EncodedExporter {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private inflight = new Set<Promise<void>>();
  exported = 0;
  failed = 0;
  constructor(c: OtlpHttpConfig) {
    this.url = c.url;
    this.headers = c.headers;
    this.timeoutMs = c.timeoutMs;
  }
  workerConfig(): ExporterConfig {
    return { kind: "otlp-http", url: this.url, headers: this.headers, timeoutMs: this.timeoutMs };
  }
  sendEncoded(body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    const p = fetch(this.url, { method: "POST", headers: this.headers, body, signal: AbortSignal.timeout(this.timeoutMs) }).then(
      async (res) => {
        await res.arrayBuffer().catch(() => null);
        if (res.ok) {
          this.exported += spans;
          done({ code: SUCCESS });
        } else {
          this.failed += spans;
          done({ code: FAILED, error: new Error(`OTLP ${this.url}: HTTP ${res.status}`) });
        }
      },
      (error: Error) => {
        this.failed += spans;
        done({ code: FAILED, error });
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }
  async forceFlush(): Promise<void> {
    await Promise.all([...this.inflight]);
  }
  async shutdown(): Promise<void> {
    await this.forceFlush();
  }
}

function parseHeaders(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    out[decodeURIComponent(part.slice(0, i).trim()).toLowerCase()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

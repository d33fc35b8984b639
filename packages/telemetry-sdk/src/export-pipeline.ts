// The far end of span export: chunks of records in, OTLP requests out, one
// request per chunk, sent one at a time through an EncodedExporter. It runs
// in the export worker (export-worker.ts), or on the calling thread when
// there is no worker (record-sink.ts) — the same code either way.
import type { ExportResult } from "@opentelemetry/core";
import type { Head } from "./otlp.js";
import type { EncodedExporter } from "./otlp-http.js";
import { LD, Writer } from "./otlp-writer.js";
import { encodeRecord, NameBytes, type RecordChunk } from "./records.js";

/** What the pipeline tells its owner. */
export interface PipelineEvents {
  /** A chunk was encoded: its buffer may be reused. */
  encoded(c: RecordChunk): void;
  /** The exporter answered for `spans` spans (`bytes` of OTLP). */
  exported(spans: number, ok: boolean, bytes: number): void;
}

export class ExportPipeline {
  private readonly names = new NameBytes();
  private w = new Writer();
  private readonly waiting: { body: Uint8Array; n: number }[] = [];
  private sending = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly exporter: EncodedExporter,
    private readonly head: Head,
    private readonly on: PipelineEvents,
  ) {}

  /** Takes a chunk and the names numbered since the last one. The chunk is encoded now and handed back. */
  push(c: RecordChunk, fresh: readonly string[]): void {
    this.names.add(fresh);
    let body: Uint8Array | null = null;
    const n = c.n;
    try {
      body = this.encode(c);
    } catch {
      // A chunk that cannot be encoded is lost and counted, never the pipeline.
      body = null;
    }
    this.on.encoded(c);
    if (body === null) {
      this.on.exported(n, false, 0);
      return;
    }
    this.waiting.push({ body, n });
    this.pump();
  }

  /** One ExportTraceServiceRequest: the resource and scope once, then every record of `c`. */
  private encode(c: RecordChunk): Uint8Array {
    const w = this.w;
    w.pos = 0;
    w.tag(1, LD); // ResourceSpans
    const rs = w.open();
    w.raw(this.head.resource);
    w.tag(2, LD); // ScopeSpans
    const ss = w.open();
    w.raw(this.head.scope);
    for (let i = 0; i < c.n; i++) encodeRecord(w, c, i, this.names);
    w.close(ss);
    w.close(rs);
    const body = w.take();
    // A burst far above the usual batch leaves its buffer to the collector.
    if (w.buf.length > 4 * 1024 * 1024) this.w = new Writer();
    return body;
  }

  private pump(): void {
    if (this.sending) return;
    const next = this.waiting.shift();
    if (next === undefined) {
      const idle = this.idle;
      this.idle = [];
      for (const f of idle) f();
      return;
    }
    this.sending = true;
    let answered = false;
    const done = (r: ExportResult) => {
      if (answered) return;
      answered = true;
      this.sending = false;
      this.on.exported(next.n, r.code === 0, next.body.length);
      this.pump();
    };
    try {
      this.exporter.sendEncoded(next.body, next.n, done);
    } catch (error) {
      done({ code: 1, error: error as Error });
    }
  }

  /** Resolves once every request taken so far has been answered. */
  drain(): Promise<void> {
    if (!this.sending && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }
}

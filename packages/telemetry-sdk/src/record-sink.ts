// Where hot-path spans go when the exporter is hurdmesh's own OTLP: each
// span, as it ends, becomes a record in a chunk (records.ts); a full chunk,
// or one `delayMs` old, moves whole to the export worker, which encodes and
// sends it (export-worker.ts). The routing thread pays for a few stores per
// span; the OTLP encoding and the HTTP request happen on another core.
//
// Bounded as a BatchSpanProcessor is: at most `maxQueue` spans are waiting
// (in the open chunk, or taken by the worker and not yet answered for by
// the collector); beyond that a span is dropped and counted. Without a
// worker (HURD_TRACE_EXPORT_THREAD=0, an exporter with no worker config, or
// a worker that failed) the same pipeline runs on this thread.
import { Worker } from "node:worker_threads";
import type { LightSink, LightSpan } from "./light.js";
import { ExportPipeline } from "./export-pipeline.js";
import type { FromWorker, ToWorker, WorkerData } from "./export-worker.js";
import type { Head } from "./otlp.js";
import type { EncodedExporter } from "./otlp-http.js";
import { NameTable, REC_BYTES, RecordChunk } from "./records.js";

const WORKER_FILE = new URL("./export-worker.mjs", import.meta.url);
/** Chunk buffers kept for reuse. */
const POOL = 4;

export interface RecordSinkOptions {
  maxQueue: number;
  maxBatch: number;
  delayMs: number;
  /** Encode and send on a worker thread (default true). */
  thread?: boolean;
}

export class RecordSink implements LightSink {
  /** Spans dropped: the queue was full, a record could not be written, or a worker died holding them. */
  dropped = 0;
  private readonly names = new NameTable();
  private readonly cap: number;
  private chunk: RecordChunk;
  private readonly pool: ArrayBuffer[] = [];
  /** Spans handed to the pipeline that the exporter has not answered for. */
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private worker: Worker | null = null;
  private pipeline: ExportPipeline | null = null;
  private readonly drains = new Map<number, () => void>();
  private drainIds = 0;

  constructor(
    private readonly exporter: EncodedExporter,
    private readonly head: Head,
    private readonly o: RecordSinkOptions,
  ) {
    this.cap = Math.max(1, Math.min(o.maxBatch, o.maxQueue));
    this.chunk = new RecordChunk(this.cap);
    const config = exporter.workerConfig?.();
    if (o.thread !== false && config) {
      try {
        this.startWorker({ exporter: config, head });
      } catch {
        this.worker = null;
      }
    }
    if (this.worker === null) this.inline();
  }

  /** Spans waiting for export (the open chunk, and those taken but not yet answered for). */
  get queued(): number {
    return this.inFlight + this.chunk.n;
  }

  /** Whether records are encoded on a worker thread. */
  get threaded(): boolean {
    return this.worker !== null;
  }

  add(sp: LightSpan): void {
    const c = this.chunk;
    if (this.inFlight + c.n >= this.o.maxQueue) {
      this.dropped++;
      return;
    }
    const n = c.n;
    try {
      sp.toRecord(c, this.names);
    } catch {
      // A span that cannot be written (a foreign attribute value) is lost, never the chunk.
      c.n = n;
      this.dropped++;
      return;
    }
    if (c.n >= this.cap) this.send();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.send();
      }, this.o.delayMs);
      this.timer.unref();
    }
  }

  /** Hands the open chunk to the pipeline and opens a new one. */
  private send(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const c = this.chunk;
    if (c.n === 0) return;
    this.inFlight += c.n;
    this.chunk = new RecordChunk(this.cap, this.pool.pop());
    const fresh = this.names.takeFresh();
    if (this.worker !== null) {
      const m: ToWorker = { t: "chunk", buf: c.buf, cap: this.cap, n: c.n, tails: c.tails, fresh };
      this.worker.postMessage(m, [c.buf]);
    } else this.pipeline!.push(c, fresh);
  }

  private recycle(buf: ArrayBuffer): void {
    if (this.pool.length < POOL && buf.byteLength === this.cap * REC_BYTES) this.pool.push(buf);
  }

  private startWorker(data: WorkerData): void {
    const w = new Worker(WORKER_FILE, { workerData: data });
    w.on("message", (m: FromWorker) => {
      if (m.t === "encoded") this.recycle(m.buf);
      else if (m.t === "exported") {
        this.inFlight -= m.spans;
        // The worker's exporter counted; this thread's exporter object is what callers read.
        if (m.ok) this.exporter.exported += m.spans;
        else if (this.exporter.failed !== undefined) this.exporter.failed += m.spans;
        if (this.exporter.bytes !== undefined) this.exporter.bytes += m.bytes;
      } else if (m.t === "drained") {
        const f = this.drains.get(m.id);
        this.drains.delete(m.id);
        f?.();
      }
    });
    // A worker that fails takes only the spans it held: they are counted as
    // dropped, and export goes on on this thread.
    w.on("error", (e) => {
      if (this.worker !== w) return;
      process.stderr.write(`hurdmesh telemetry: export worker failed (${e.message}); exporting on the main thread\n`);
      this.lostWorker();
    });
    w.on("exit", () => {
      if (this.worker === w) this.lostWorker();
    });
    // Last: adding a "message" listener refs the worker's port again. The
    // export never keeps a program alive (shutdown flushes it).
    w.unref();
    this.worker = w;
  }

  private lostWorker(): void {
    this.worker = null;
    this.dropped += this.inFlight;
    this.inFlight = 0;
    for (const f of this.drains.values()) f();
    this.drains.clear();
    this.inline();
  }

  private inline(): void {
    this.pipeline ??= new ExportPipeline(this.exporter, this.head, {
      encoded: (c) => this.recycle(c.buf),
      // The exporter on this thread keeps its own counters.
      exported: (spans) => (this.inFlight -= spans),
    });
  }

  /** Sends the open chunk; resolves once the exporter has answered for everything taken so far. */
  flush(): Promise<void> {
    this.send();
    const w = this.worker;
    if (w === null) return this.pipeline!.drain();
    return new Promise((r) => {
      const id = ++this.drainIds;
      this.drains.set(id, r);
      const m: ToWorker = { t: "drain", id };
      w.postMessage(m);
    });
  }

  async shutdown(): Promise<void> {
    await this.flush();
    const w = this.worker;
    this.worker = null;
    if (w !== null) await w.terminate();
  }
}

// The export worker: the thread where span records become OTLP and leave
// for the collector, so the thread that routes messages only writes
// records. Started by RecordSink (record-sink.ts) with the exporter's
// config and the resource and scope, encoded; answers each chunk by
// handing its buffer back, and each request with what the exporter said.
import { parentPort, workerData } from "node:worker_threads";
import type { ExportResult } from "@opentelemetry/core";
import { ExportPipeline } from "./export-pipeline.js";
import type { Head } from "./otlp.js";
import { OtlpHttpSender, type EncodedExporter, type ExporterConfig } from "./otlp-http.js";
import { RecordChunk } from "./records.js";

/** Messages to the worker. */
export type ToWorker =
  | { t: "chunk"; buf: ArrayBuffer; cap: number; n: number; tails: Uint8Array[]; fresh: string[] }
  | { t: "drain"; id: number };
/** Messages from the worker. */
export type FromWorker = { t: "encoded"; buf: ArrayBuffer } | { t: "exported"; spans: number; ok: boolean; bytes: number } | { t: "drained"; id: number };
export interface WorkerData {
  exporter: ExporterConfig;
  head: Head;
}

/** HURD_TRACE=serialize in the worker: the encoding's cost, bytes thrown away. */
class Discard implements EncodedExporter {
  exported = 0;
  sendEncoded(_body: Uint8Array, spans: number, done: (r: ExportResult) => void): void {
    this.exported += spans;
    done({ code: 0 as ExportResult["code"] });
  }
}

if (parentPort) {
  const port = parentPort;
  const data = workerData as WorkerData;
  const exporter: EncodedExporter = data.exporter.kind === "otlp-http" ? new OtlpHttpSender(data.exporter) : new Discard();
  const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  const pipeline = new ExportPipeline(exporter, data.head, {
    encoded: (c) => post({ t: "encoded", buf: c.buf }, [c.buf]),
    exported: (spans, ok, bytes) => post({ t: "exported", spans, ok, bytes }),
  });
  port.on("message", (m: ToWorker) => {
    if (m.t === "chunk") {
      const c = new RecordChunk(m.cap, m.buf);
      c.n = m.n;
      c.tails = m.tails;
      pipeline.push(c, m.fresh);
    } else if (m.t === "drain") void pipeline.drain().then(() => post({ t: "drained", id: m.id }));
  });
}

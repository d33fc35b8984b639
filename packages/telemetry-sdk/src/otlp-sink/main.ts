// otlp-sink: an OTLP/HTTP JSON receiver for tests and quick looks (sink.ts).
//   otlp-sink [--port 4318] [--host 0.0.0.0] [--max 200000]
import { parseArgs } from "node:util";
import { OtlpSink } from "./sink.js";

const { values } = parseArgs({ options: { port: { type: "string", default: "4318" }, host: { type: "string", default: "0.0.0.0" }, max: { type: "string", default: "200000" } } });
const sink = new OtlpSink(Number(values.max));
const server = await sink.listen(Number(values.port), values.host);
console.log(`otlp-sink: OTLP/HTTP JSON on ${values.host}:${values.port} (POST /v1/traces, GET /api/spans)`);
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

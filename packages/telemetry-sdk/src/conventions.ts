// One vocabulary for every RPC span: the kernel's spans and the handlers'
// spans are written with OpenTelemetry's current RPC conventions
// (rpc.system.name, rpc.method as "service/method", rpc.response.status_code,
// error.type, server.address); the gRPC instrumentation still writes the
// older ones (rpc.system, rpc.service and rpc.method apart, the numeric
// rpc.grpc.status_code). This processor adds the current names to those
// spans as they end, so a query in Jaeger or a span-metrics dimension reads
// the same attribute on every span of a call, whatever made it.
import { SpanKind } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace";

/** gRPC's status codes by number, as their names (grpc/doc/statuscodes.md). */
const GRPC_STATUS = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

export class RpcConventions implements SpanProcessor {
  /** `serverAddress`: what a gRPC server span of this program names as server.address (the kernel's edge). */
  constructor(private readonly serverAddress = "") {}
  onStart(): void {}
  onEnding(span: Span): void {
    const a = span.attributes;
    if (a["rpc.system"] !== "grpc" || a["rpc.system.name"] !== undefined) return;
    const set: Record<string, string> = { "rpc.system.name": "grpc" };
    const service = a["rpc.service"];
    const method = a["rpc.method"];
    if (typeof service === "string" && typeof method === "string" && !method.includes("/")) set["rpc.method"] = `${service}/${method}`;
    const code = a["rpc.grpc.status_code"];
    if (typeof code === "number") {
      const name = GRPC_STATUS[code] ?? String(code);
      set["rpc.response.status_code"] = name;
      if (code !== 0) set["error.type"] = name;
    }
    if (span.kind === SpanKind.SERVER && a["server.address"] === undefined && this.serverAddress) set["server.address"] = this.serverAddress;
    span.setAttributes(set);
  }
  onEnd(_span: ReadableSpan): void {}
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

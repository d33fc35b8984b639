// register.mjs, the file services start with (`node --import`) so grpc-js is
// instrumented under ESM: with tracing on, a gRPC call makes a client span
// and a server span under it, the runtime's own gRPC client (EdgeBus) makes
// its client spans in the caller's trace; with tracing off it installs
// nothing. Start commands include it only then.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { nodeImports, REGISTER_FILE } from "@hurdmesh/telemetry-sdk";

interface Span {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parent: string | null;
  attributes?: Record<string, unknown>;
}

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const SERVER = 1;
const CLIENT = 2;

/** Runs a fixture as a program is started (nodeImports) and returns the JSON line it prints. */
function run<T>(name: string, env: NodeJS.ProcessEnv): T {
  const base = { ...process.env };
  delete base.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete base.HURD_TRACE;
  const r = spawnSync(process.execPath, [...nodeImports(env), fixture(name)], { env: { ...base, ...env }, encoding: "utf8", timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

describe("register.mjs: gRPC instrumentation under ESM", () => {
  it("with tracing on, a call from a makeGenericClientConstructor client is a CLIENT span, parent of the server's SERVER span", () => {
    assert.deepEqual(nodeImports({ HURD_TRACE: "noop" }).slice(0, 2), ["--import", REGISTER_FILE]);
    const r = run<{ installed: boolean; spans: Span[] }>("grpc-spans.ts", { HURD_TRACE: "noop" });
    assert.equal(r.installed, true);
    const check = r.spans.filter((s) => s.name === "grpc.grpc.health.v1.Health/Check");
    const all = JSON.stringify(r.spans);
    const server = check.filter((s) => s.kind === SERVER);
    const client = check.filter((s) => s.kind === CLIENT);
    assert.equal(server.length, 1, all);
    assert.equal(client.length, 1, all);
    assert.equal(client[0]!.parent, null, all);
    assert.equal(server[0]!.traceId, client[0]!.traceId, all);
    assert.equal(server[0]!.parent, client[0]!.spanId, all);
  });

  it("with HURD_TRACE_ASYNC_CONTEXT=1 the same, under the AsyncLocalStorage context manager", () => {
    const r = run<{ spans: Span[] }>("grpc-spans.ts", { HURD_TRACE: "noop", HURD_TRACE_ASYNC_CONTEXT: "1" });
    const all = JSON.stringify(r.spans);
    const server = r.spans.find((s) => s.kind === SERVER);
    const client = r.spans.find((s) => s.kind === CLIENT);
    assert.ok(server && client, all);
    assert.equal(server.traceId, client.traceId, all);
    assert.equal(server.parent, client.spanId, all);
  });

  it("with tracing on, the runtime's edge client (EdgeBus) makes its client span in the caller's trace, parent of the kernel edge's span", () => {
    const r = run<{ installed: boolean; caller: string; spans: Span[] }>("edge-spans.ts", { HURD_TRACE: "noop" });
    assert.equal(r.installed, true);
    const all = JSON.stringify(r.spans);
    // The task's span around its kernel call (a StepTrace phase, under the step's root).
    const root = r.spans.find((s) => s.name === "edge-check");
    const phase = r.spans.find((s) => s.name === "allocate");
    assert.ok(root && phase, all);
    assert.equal(r.caller.split("-")[2], root.spanId);
    assert.equal(phase.parent, root.spanId);
    // The kernel call went over gRPC under that span: one CLIENT span, its child, in its trace...
    const traps = r.spans.filter((s) => s.name === "grpc.hurd.mach.v1.Mach/SendTrap" && s.traceId === phase.traceId);
    const client = traps.filter((s) => s.kind === CLIENT);
    assert.equal(client.length, 1, all);
    assert.equal(client[0]!.parent, phase.spanId, all);
    // ...whose context the edge received in the metadata (its SERVER span is the client's child).
    const server = traps.filter((s) => s.kind === SERVER);
    assert.equal(server.length, 1, all);
    assert.equal(server[0]!.parent, client[0]!.spanId, all);
    // Both in the vocabulary of the kernel's and handlers' spans (conventions.ts maps the instrumentation's).
    for (const s of [client[0]!, server[0]!]) {
      assert.equal(s.attributes?.["rpc.system.name"], "grpc", all);
      assert.equal(s.attributes?.["rpc.method"], "hurd.mach.v1.Mach/SendTrap", all);
      assert.equal(s.attributes?.["rpc.response.status_code"], "OK", all);
      assert.ok(s.attributes?.["server.address"] !== undefined || s.kind === SERVER, all);
    }
    // Calls made outside any trace (attach, heartbeats, detach, the Receive
    // stream) are not traced: each would be a one-span trace of its own.
    const edgeSpans = r.spans.filter((s) => s.name.startsWith("grpc.hurd.mach.v1.Mach/"));
    assert.ok(edgeSpans.every((s) => s.traceId === phase.traceId), all);
    assert.ok(!edgeSpans.some((s) => s.name === "grpc.hurd.mach.v1.Mach/Receive"), all);
  });

  it("with tracing off, nothing is installed and start commands leave it out", () => {
    // The sources, as this test runs them: the source condition and tsx, no register.mjs.
    assert.deepEqual(nodeImports({}), ["--conditions=@hurdmesh/source", "--import", "tsx"]);
    const r = spawnSync(process.execPath, ["--import", REGISTER_FILE, "--import", "tsx", fixture("grpc-spans.ts")], { env: { ...process.env, HURD_TRACE: "off", OTEL_EXPORTER_OTLP_ENDPOINT: "" }, encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(out.installed, false);
    // No propagator, no context manager, no instrumentation: the OTel API's globals are untouched.
    assert.deepEqual(out.globals, []);
    assert.equal(out.spans.length, 0);
  });
});

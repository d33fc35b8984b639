// register.mjs, the file services start with (`node --import`) so grpc-js is
// instrumented under ESM: with tracing on, a gRPC call makes a server span;
// with tracing off it installs nothing. Start commands include it only then.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { nodeImports, REGISTER_FILE } from "@hurdmesh/telemetry";

const fixture = new URL("./fixtures/grpc-spans.ts", import.meta.url).pathname;

function run(env: NodeJS.ProcessEnv): { installed: boolean; spans: { name: string; kind: number; traceId: string; parent: string | null }[] } {
  const base = { ...process.env };
  delete base.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete base.HURD_TRACE;
  const r = spawnSync(process.execPath, [...nodeImports(env), fixture], { env: { ...base, ...env }, encoding: "utf8", timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

describe("register.mjs: gRPC instrumentation under ESM", () => {
  it("with tracing on, a gRPC call is a server span (the kernel's edge is a gRPC server)", () => {
    assert.deepEqual(nodeImports({ HURD_TRACE: "noop" }).slice(0, 2), ["--import", REGISTER_FILE]);
    const r = run({ HURD_TRACE: "noop" });
    assert.equal(r.installed, true);
    const check = r.spans.filter((s) => s.name === "grpc.grpc.health.v1.Health/Check");
    // Server spans only: client calls made through makeGenericClientConstructor
    // under ESM are not wrapped by this instrumentation version (known gap).
    const server = check.find((s) => s.kind === 1);
    assert.ok(server, JSON.stringify(r.spans));
  });

  it("with tracing off, nothing is installed and start commands leave it out", () => {
    assert.deepEqual(nodeImports({}), ["--import", "tsx"]);
    const r = spawnSync(process.execPath, ["--import", REGISTER_FILE, "--import", "tsx", fixture], { env: { ...process.env, HURD_TRACE: "off", OTEL_EXPORTER_OTLP_ENDPOINT: "" }, encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(out.installed, false);
    assert.equal(out.spans.length, 0);
  });
});

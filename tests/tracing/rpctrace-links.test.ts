// rpctrace lines that lead to the trace: with tracing on, every record
// carries its trace's id (the kernel's span's), `--json` has it as traceId
// with the Jaeger page as traceUrl, and `--links` ends each text line with
// that page (base URL from --jaeger-url or HURD_JAEGER_URL). A request and
// its reply are one trace.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";
import { conforms } from "../cli/kit.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;

describe("hurd rpctrace --json and --links, with tracing on", () => {
  const name = `rl${process.pid}`;
  let proc: ChildProcess;
  let env: NodeJS.ProcessEnv;
  let out = "";
  before(async () => {
    // Spans made and thrown away (HURD_TRACE=noop): the kernel's spans give the records their trace ids.
    env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-rl-")), HURD_TRACE: "noop" };
    delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete env.HURD_JAEGER_URL;
    proc = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", name], { env, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || proc.exitCode !== null, 60000, "hurd up");
    assert.match(out, / is up in /, out);
  });
  after(async () => {
    spawnSync(process.execPath, ["--import", "tsx", main, "shutdown", "--hurd", name], { env, timeout: 30000 });
    proc.kill("SIGTERM");
  });

  const hurd = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, ["--import", "tsx", main, args[0]!, "--hurd", name, ...args.slice(1)], { env: { ...env, ...extra }, encoding: "utf8", timeout: 60000 });

  it("--json: traceId (32 hex digits, the same for a request and its reply) and traceUrl on the default Jaeger", () => {
    const r = hurd(["rpctrace", "--json", "--rpc", "Setprocargs", "-q", "--", "true"]);
    assert.equal(r.status, 0, r.stderr);
    const recs = conforms<{ traceId: string; traceUrl: string; rpc: string; isReply: boolean; args?: string }>("rpctrace", r.stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown));
    assert.equal(recs.length, 2, r.stdout);
    assert.match(recs[0].traceId, /^[0-9a-f]{32}$/);
    assert.equal(recs[1].traceId, recs[0].traceId, "the reply is in its request's trace");
    assert.equal(recs[0].traceUrl, `http://localhost:16686/trace/${recs[0].traceId}`);
    // The request's arguments decoded, as the text line has them (schema rpctrace.json).
    assert.deepEqual([recs[0].rpc, recs[0].isReply, recs[1].isReply], ["hurd.process.v1.Process/Setprocargs", false, true]);
    assert.match(recs[0].args!, /argv: \["true"\]/);
  });

  it("--links: each line ends with its trace's page, under --jaeger-url or HURD_JAEGER_URL", () => {
    const r = hurd(["rpctrace", "--links", "--jaeger-url", "http://jaeger.example:16686/", "--rpc", "Setprocargs", "-q", "--", "true"]);
    assert.equal(r.status, 0, r.stderr);
    const line = r.stdout.split("\n").find((l) => l.includes("Process/Setprocargs"));
    assert.ok(line, r.stdout);
    assert.match(line, /->hurd\.process\.v1\.Process\/Setprocargs \(argv: \["true"\]\) = 0 http:\/\/jaeger\.example:16686\/trace\/[0-9a-f]{32}$/);
    const e = hurd(["rpctrace", "--links", "--rpc", "Setprocargs", "-q", "--", "true"], { HURD_JAEGER_URL: "https://traces.example" });
    assert.match(e.stdout, /= 0 https:\/\/traces\.example\/trace\/[0-9a-f]{32}$/m);
  });
});

// The structured log: JSON lines off a terminal with level names, the
// component and its bindings; HURD_LOG_LEVEL; text for a terminal; the
// active trace's ids on the lines written inside it.
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatLogLine, logFormat } from "./log.js";

/** Runs `code` (with createLogger and tracingHooks in scope) in a fresh process: the root logger is made once per process. */
function run(code: string, env: NodeJS.ProcessEnv = {}): string[] {
  const src = `import { createLogger } from "@hurdmesh/mach"; import { tracingHooks } from "@hurdmesh/mach/internal"; ${code}`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", src], { env: { ...process.env, HURD_LOG_LEVEL: "", HURD_LOG_FORMAT: "", ...env }, encoding: "utf8", timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trimEnd().split("\n").filter(Boolean);
}

describe("log", () => {
  it("writes one JSON object a line with level, time, pid, name, bindings and msg", () => {
    const [l] = run(`createLogger("init", { hurd: "alpha" }).info("core servers up", { n: 2 });`);
    const o = JSON.parse(l!);
    assert.equal(o.level, "info");
    assert.match(o.time, /^\d{4}-\d\d-\d\dT/);
    assert.equal(typeof o.pid, "number");
    assert.deepEqual([o.name, o.hurd, o.msg, o.n], ["init", "alpha", "core servers up", 2]);
    assert.equal(o.trace_id, undefined, "no trace: no trace id");
  });

  it("HURD_LOG_LEVEL drops the lines below it; a sink takes the level as its second argument", () => {
    const lines = run(`const l = createLogger("k"); l.info("a"); l.warn("b"); l.sink("c", "error"); l.sink("d");`, { HURD_LOG_LEVEL: "warn" });
    assert.deepEqual(lines.map((x) => [JSON.parse(x).level, JSON.parse(x).msg]), [["warn", "b"], ["error", "c"]]);
  });

  it("carries the active span's trace and span ids", () => {
    const ctx = "0af7651916cd43dd8448eb211c80319c" + "b7ad6b7169203331" + "01";
    const [l] = run(`const c = Uint8Array.from(Buffer.from("${ctx}", "hex")); tracingHooks.current = () => c; createLogger("proc").info("inside");`);
    const o = JSON.parse(l!);
    assert.equal(o.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert.equal(o.span_id, "b7ad6b7169203331");
  });

  it("text on a terminal (or HURD_LOG_FORMAT=text): time, level, component[hurd], message, fields", () => {
    assert.equal(logFormat({}, true), "text");
    assert.equal(logFormat({}, false), "json");
    assert.equal(logFormat({ HURD_LOG_FORMAT: "json" }, true), "json");
    const [l] = run(`createLogger("init", { hurd: "alpha" }).warn("slow", { ms: 5 });`, { HURD_LOG_FORMAT: "text" });
    assert.match(l!, /^\d\d:\d\d:\d\d\.\d{3} WARN  init\[alpha\]: slow  ms=5$/);
    assert.equal(formatLogLine("not json"), "not json");
  });
});

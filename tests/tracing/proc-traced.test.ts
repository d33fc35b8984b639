// proc under tracing: the proc suites that load it hardest (the fuzz
// harness's proc target, random and mutated bodies to every Process and Msg
// RPC; robustness, waits, lifecycles) pass
// unchanged with every message traced at 100 % sampling and exported through
// a small queue (so spans are also dropped meanwhile). Tracing changes no
// answer, breaks no table, and never takes proc down.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

const root = new URL("../../", import.meta.url).pathname;

describe("proc under tracing", () => {
  it("fuzz, wait and lifecycle suites pass with 100 % sampling, batched export and a full queue", () => {
    const suites = ["tests/fuzz/fuzz.test.ts", "tests/proc/robustness.test.ts", "tests/proc/wait.test.ts", "tests/proc/lifecycle.test.ts"];
    // A test run of its own (without NODE_TEST_CONTEXT), asked for TAP on
    // stdout: Node 24's default reporter on a pipe is spec ("ℹ fail 0").
    const env: NodeJS.ProcessEnv = { ...process.env, HURD_TRACE: "serialize", OTEL_TRACES_SAMPLER: "always_on", OTEL_BSP_MAX_QUEUE_SIZE: "256", OTEL_BSP_SCHEDULE_DELAY: "50", HURD_FUZZ_MS: "3000", HURD_FUZZ_TARGETS: "proc" };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=tap", "--test-concurrency=1", ...suites], {
      cwd: root,
      env,
      encoding: "utf8",
      timeout: 240_000,
    });
    const summary = (r.stdout.match(/^# (tests|pass|fail) \d+$/gm) ?? []).join(", ");
    assert.equal(r.status, 0, `${summary}\n${r.stdout.split("\n").filter((l) => /not ok|error/.test(l)).slice(0, 20).join("\n")}\n${r.stderr.slice(-2000)}`);
    assert.match(r.stdout, /^# fail 0$/m);
    assert.doesNotMatch(r.stdout, /^# pass 0$/m);
  });
});

// Deterministic replay (issue 18's test; docs/kernel-log.md): the kernel
// conformance suites run with their kernel's log on (HURD_TEST_JOURNAL=1,
// tests/replay-check.ts), and at each suite's end its log, replayed into a
// fresh kernel from entry 1 and into one restored from a snapshot taken half
// way, gives the leader's state: the same canonical dump, byte for byte. And
// the check is one that fails: a replica that misses one entry differs.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { LocalHub, Task } from "@hurdmesh/mach";
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { idsBefore, recordKernel } from "../replay-check.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const SUITES = ["rights", "dispositions", "notifications", "destruction", "flow", "tasks", "malformed"].map((s) => `tests/kernel/${s}.test.ts`);

describe("kernel log replay", () => {
  it("the kernel conformance suites' logs replay to the leader's state, from entry 1 and from a snapshot", { timeout: 240_000 }, async () => {
    const p = spawn(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...SUITES], {
      cwd: ROOT,
      // Not NODE_TEST_CONTEXT: the child is a test run of its own, not a file of this one.
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, HURD_TEST_BUSES: "local", HURD_TEST_JOURNAL: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((r) => p.on("exit", (c) => r(c)));
    assert.equal(code, 0, out.slice(-6000));
    const checks = [...out.matchAll(/replay check \([^)]*\): (\{.*\})/g)].map((m) => JSON.parse(m[1]!) as { entries: number; snapshotAt: number; leaderSnapshotAt: number });
    assert.ok(checks.length >= SUITES.length, `a replay check per suite's hurd: ${checks.length}\n${out.slice(-3000)}`);
    const entries = checks.reduce((n, c) => n + c.entries, 0);
    assert.ok(entries > 1000, `the suites' logs hold ${entries} entries`);
    // The leader's own snapshots (a lone --journal kernel's) were checked too, in every hurd that wrote enough of its log.
    const led = checks.filter((c) => c.leaderSnapshotAt > 0).length;
    assert.ok(led >= SUITES.length, `hurds with a leader's snapshot checked: ${led}`);
    console.log(`# ${checks.length} hurds' logs replayed, ${entries} entries in all, ${led} of them also from a snapshot of the leader's own`);
  });

  it("a replica that misses one entry is told apart from its leader", async () => {
    const ids0 = idsBefore();
    const kernel = new Kernel({ system: `replay${process.pid}` }, { log: () => {} });
    const hub = new LocalHub();
    const kbus = hub.connect();
    const rec = recordKernel(kernel, {}, kbus, ids0);
    const trap = new TrapServer(kernel, rec.bus);
    trap.start();
    const b = kernel.bootTask({ name: "a", hostPriv: false });
    const tbus = hub.connect();
    const t = await Task.attach({ bus: tbus, system: kernel.config.system, taskId: b.task.id, token: b.token, timeoutMs: 5000 });
    try {
      for (let i = 0; i < 5; i++) await t.allocate();
      const good = await rec.check();
      assert.ok(good.entries >= 5);
      // The third port's allocation left out: the replica's space lacks a name.
      await assert.rejects(rec.check({ skip: good.entries - 1 }), /differs from the leader's/);
    } finally {
      t.abandon();
      trap.stop();
      kernel.close();
      await tbus.close();
      await kbus.close();
    }
  });
});

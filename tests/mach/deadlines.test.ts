// The runtime's coarse deadline timer (packages/mach/src/deadlines.ts): never
// early, at most a grain (plus loop delay) late, cancel and clear forget.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Deadlines, DEADLINE_GRAIN_MS } from "../../packages/mach/src/deadlines.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Deadlines", () => {
  it("expires an entry no earlier than its timeout, in deadline order", async () => {
    const fired: { e: string; at: number }[] = [];
    const d = new Deadlines<string>((e) => fired.push({ e, at: performance.now() }));
    const t0 = performance.now();
    d.add("late", 60);
    d.add("early", 20);
    d.add("mid", 40);
    await sleep(150);
    assert.deepEqual(
      fired.map((f) => f.e),
      ["early", "mid", "late"],
    );
    const want = { early: 20, mid: 40, late: 60 } as Record<string, number>;
    for (const f of fired) {
      assert.ok(f.at - t0 >= want[f.e]!, `${f.e} fired after ${f.at - t0} ms, before ${want[f.e]} ms`);
      // Generous: a grain plus scheduling delay on a loaded machine.
      assert.ok(f.at - t0 < want[f.e]! + DEADLINE_GRAIN_MS + 80, `${f.e} fired after ${f.at - t0} ms`);
    }
    assert.equal(d.size, 0);
  });

  it("does not expire cancelled entries, and forgets everything on clear", async () => {
    const fired: number[] = [];
    const d = new Deadlines<number>((e) => fired.push(e));
    const h1 = d.add(1, 10);
    d.add(2, 10);
    const h3 = d.add(3, 30);
    d.cancel(1, h1);
    d.cancel(3, h3);
    await sleep(60);
    assert.deepEqual(fired, [2]);
    d.add(4, 10);
    d.clear();
    await sleep(40);
    assert.deepEqual(fired, [2]);
  });

  it("an entry added while the timer waits for a later one still expires on time", async () => {
    const fired: string[] = [];
    const d = new Deadlines<string>((e) => fired.push(e));
    d.add("slow", 1000);
    const t0 = performance.now();
    d.add("fast", 20);
    await sleep(100);
    assert.deepEqual(fired, ["fast"]);
    assert.ok(performance.now() - t0 < 1000);
    d.clear();
  });

  it("treats a timeout that is not a number of ms as setTimeout does (1 ms), without holding up the others", async () => {
    const fired: string[] = [];
    const d = new Deadlines<string>((e) => fired.push(e));
    d.add("nan", NaN);
    d.add("negative", -5);
    d.add("zero", 0);
    d.add("later", 30);
    await sleep(80);
    assert.deepEqual(fired.slice(0, 3).sort(), ["nan", "negative", "zero"]);
    assert.equal(fired[3], "later");
  });

  it("keeps the process alive only while entries are pending", () => {
    // A child adds and cancels an entry with a long timeout, then has nothing
    // left to do: it must exit at once, as with a cleared per-call timer.
    const src = `
      import { Deadlines } from ${JSON.stringify(new URL("../../packages/mach/src/deadlines.ts", import.meta.url).pathname)};
      const d = new Deadlines(() => { console.log("expired"); });
      const h = d.add("x", 20000);
      setTimeout(() => d.cancel("x", h), 10);
    `;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", src], { encoding: "utf8", timeout: 15000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.ok(Date.now() - t0 < 10000, "the process waited for a cancelled deadline");
  });
});

// Short runs of every fuzz target, on both buses: a few seconds each, with
// the same checks as the long runs of `npm run fuzz` (no crash, no
// invariant violation, every entry point reached). HURD_FUZZ_MS sets the
// length of each (default 2500 ms); HURD_FUZZ_SEED replays a seed;
// HURD_FUZZ_TARGETS (comma-separated) runs some targets only (the traced
// proc run of tests/tracing/proc-traced.test.ts takes "proc").
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds } from "../harness.js";
import { formatReport, fuzz } from "./core.js";
import { TARGETS } from "./targets.js";

const MS = Number(process.env.HURD_FUZZ_MS ?? 2500);
const SEED = Number(process.env.HURD_FUZZ_SEED ?? Date.now() % 1_000_000_007);
const REACH_ALL = 20_000;
const NAMES = process.env.HURD_FUZZ_TARGETS ? process.env.HURD_FUZZ_TARGETS.split(",") : Object.keys(TARGETS);

for (const kind of busKinds) {
  describe(`fuzz (${kind} bus, seed ${SEED})`, () => {
    for (const name of NAMES) {
      it(`${name}: ${MS} ms of fuzzing, no crash, no invariant violation (every entry point reached past ${REACH_ALL} messages)`, async () => {
        const make = TARGETS[name];
        assert.ok(make, `no fuzz target ${name}: ${Object.keys(TARGETS).join(", ")}`);
        const target = await make();
        const r = await fuzz(target, kind, { messages: 1_000_000, seed: SEED, timeLimitMs: MS, shrinkMs: 20_000 });
        const report = formatReport(r);
        assert.equal(r.crashes, 0, report);
        assert.equal(r.violations, 0, report);
        assert.ok(r.messages > 0, report);
        // The calls that end a batch's tasks are rare by design (else batches
        // would end after a few traps): a short run on a loaded machine may
        // miss one. It must reach everything once it sent this many; the
        // long runs (`npm run fuzz`) always must.
        if (r.messages >= REACH_ALL) assert.deepEqual(r.unreached, [], report);
      });
    }
  });
}

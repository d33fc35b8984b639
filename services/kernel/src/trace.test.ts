// The TraceHub's batching, without a kernel around it: a watch without a
// rate gets a batch each turn of the event loop; a rate-limited watch (hurd
// web's) gets its records with its counters, at most every 100 ms, so a
// token bucket that lets a record through every few ms does not cost a
// batch (a stream write, a publish) per record; ending a watch hands over
// what it still holds.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Message } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { TraceCount, TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import type { KTask, Namespace } from "./objects.js";
import { TraceHub } from "./trace.js";

const ns = { id: 0, parent: null } as unknown as Namespace;
const task = { id: 7, ns, parentId: 1 } as unknown as KTask;
const turn = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One refused send, as the trap path tells it (a record, or a count past the rate). */
function refuse(h: TraceHub, id: number): void {
  h.refused(task, Message.fromPartial({ destination: 0x7fff_0000, id }), 15);
}

describe("TraceHub batches", () => {
  it("a watch without a rate gets a batch each turn of the loop", async () => {
    const h = new TraceHub(() => {}, "tracetest");
    const batches: TraceRecord[][] = [];
    const stop = h.watch({}, (rs) => batches.push(rs));
    for (let i = 0; i < 5; i++) {
      refuse(h, 1000 + i);
      await turn();
    }
    stop();
    assert.equal(batches.length, 5);
    assert.deepEqual(batches.map((b) => b.length), [1, 1, 1, 1, 1]);
  });

  it("a rate-limited watch's records wait for its counters: one batch per 100 ms, not one per record", async () => {
    const h = new TraceHub(() => {}, "tracetest");
    const batches: { records: TraceRecord[]; counts: TraceCount[] }[] = [];
    // A bucket of 3: three records, the rest counted.
    const stop = h.watch({ recordsPerSecond: 3 }, (records, _d, counts) => batches.push({ records, counts }));
    for (let i = 0; i < 10; i++) {
      refuse(h, 2000);
      await turn();
    }
    assert.equal(batches.length, 0, "nothing before the counters are due");
    await sleep(150);
    assert.equal(batches.length, 1);
    assert.equal(batches[0]!.records.length, 3);
    assert.equal(batches[0]!.counts.reduce((n, c) => n + c.count, 0), 7);
    // Ending the watch hands over what it holds.
    refuse(h, 2000);
    stop();
    assert.equal(batches.length, 2);
    assert.equal(batches[1]!.records.length + batches[1]!.counts.reduce((n, c) => n + c.count, 0), 1);
  });
});

// Kernel snapshots (snapshot.ts) on their own: what cannot be restored
// whole is refused when written, and what cannot be read whole is refused
// when restored, with a message that says which. The round trip on real
// states is tests/restart/replay.test.ts's (every conformance suite's
// kernel, restored from a snapshot half way) and the failover test's.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { Kernel } from "./kernel.js";
import { idCounters, Port, setIdCounters } from "./objects.js";
import { Replica } from "./replay.js";
import { dumpKernel, encodeSnapshot, restoreSnapshot } from "./snapshot.js";

describe("kernel snapshots", () => {
  it("a state restored from its snapshot dumps the same; the id counters carry on from it", () => {
    const ids0 = idCounters();
    const a = new Kernel({ system: "snapa" }, { log: () => {} });
    const t = a.bootTask({ name: "one", hostPriv: true });
    a.bootTask({ name: "two", hostPriv: false });
    const want = dumpKernel(a);
    const snap = encodeSnapshot(a);
    const idsA = idCounters();
    try {
      setIdCounters(ids0);
      const b = new Kernel({ system: "snapa" }, { log: () => {} });
      restoreSnapshot(b, snap);
      assert.deepEqual(idCounters(), idsA);
      assert.equal(dumpKernel(b), want);
      const restored = b.tasks.get(t.task.id)!;
      assert.equal(restored.token, t.token);
      assert.equal(restored.space.ns, b.root, "one object behind every reference: the task's hurd is the kernel's root");
      b.close();
    } finally {
      setIdCounters(idsA);
      a.close();
    }
  });

  it("refuses to write what it could not restore whole: a function outside a delivery, an object of a class it does not know", () => {
    const k = new Kernel({ system: "snapb" }, { log: () => {} });
    try {
      const p = new Port(4);
      // A kernel-held reply port, as the gateway makes (a logged kernel serves no gateway).
      p.kobject = { kind: "reply", received: () => {}, sendFailed: () => {} };
      k.root.notify = p;
      assert.throws(() => encodeSnapshot(k), /a function in field received is not state/);
      k.root.notify = Object.assign(new Port(4), { kobject: new (class Foreign {})() as never });
      assert.throws(() => encodeSnapshot(k), /a Foreign object is not state/);
    } finally {
      k.root.notify = null;
      k.close();
    }
  });

  it("refuses a snapshot it cannot read whole, saying why, and a standby refuses one after it applied entries", () => {
    const k = new Kernel({ system: "snapc" }, { log: () => {} });
    const ids = idCounters();
    try {
      assert.throws(() => restoreSnapshot(k, Buffer.from("not gzip")), /kernel snapshot unreadable/);
      assert.throws(() => restoreSnapshot(k, gzipSync(JSON.stringify({ v: 99, table: [] }))), /version 99; this kernel reads version 1/);
      assert.throws(() => restoreSnapshot(k, gzipSync(JSON.stringify({ v: 1, table: [["O", { root: { r: 7 } }]] }))), /reference 7 out of its table/);
      assert.throws(() => restoreSnapshot(k, gzipSync(JSON.stringify({ v: 1, table: [["X"]] }))), /unknown object kind X/);
      const r = new Replica(k);
      r.applied = 5;
      assert.throws(() => r.restore(9, encodeSnapshot(k)), /restored after entry 5 was applied/);
    } finally {
      setIdCounters(ids);
      k.close();
    }
  });
});

// Every task is leased: one that never attaches ends after attachGraceMs,
// like one whose connection was lost; one made to die with its parent
// lives on its parent's lease and ends with it (a chain of them too); and
// the runtime ends a task whose bus has been down longer than its lease,
// since the kernel has ended it meanwhile; and a kernel that fell behind on
// its input does not take its own lag for its tasks' silence.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { NotifyId, Task, type Bus } from "@hurdmesh/mach";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, kernelNats, natsUrl, startHurd, until, type Hurd } from "../harness.js";
import { inbox, nth, sleep } from "../kernel/kit.js";
import { natsRelay } from "../nats/kit.js";

for (const kind of busKinds) {
  describe(`leases for every task (${kind} bus)`, () => {
    let h: Hurd;
    let a: Task;
    before(async () => {
      h = await startHurd(kind, { attachGraceMs: 300, leaseMs: 2000 });
      a = await h.task("lease-root");
    });
    after(async () => {
      await h.close();
    });

    it("a task that never attaches is terminated after attachGraceMs; its holders get their dead-name notification", async () => {
      const c = await a.taskCreate("never-attaches");
      const n = await a.allocate();
      const box = inbox(a, n);
      await a.requestNotification(c.task, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      const t0 = Date.now();
      await until(() => !h.kernel.tasks.has(c.taskId), 3000, "the unattached task to end");
      assert.ok(Date.now() - t0 >= 150, "not before its grace");
      assert.equal((await nth(box, 1, "dead-name")).id, 72);
    });

    it("a task that attaches within the grace lives on its own lease", async () => {
      const c = await a.taskCreate("attaches");
      await h.attach(c.taskId, c.token);
      await sleep(700);
      assert.ok(h.kernel.tasks.has(c.taskId));
    });

    it("die_with_parent: no attach needed, and the task ends with its parent, down a chain", async () => {
      const p = await a.taskCreate("parent");
      const pt = await h.attach(p.taskId, p.token);
      const b1 = await pt.taskCreate("bound-1", { dieWithParent: true });
      const b2 = await pt.taskCreate("bound-2", { parent: b1.task, dieWithParent: true });
      const free = await pt.taskCreate("unbound", { parent: b1.task });
      await h.attach(free.taskId, free.token);
      assert.equal((await pt.taskInfo(b1.task)).dieWithParent, true);
      await sleep(700);
      assert.ok(h.kernel.tasks.has(b1.taskId) && h.kernel.tasks.has(b2.taskId), "kept past the grace by their parent");
      await pt.detach();
      await until(() => !h.kernel.tasks.has(b1.taskId) && !h.kernel.tasks.has(b2.taskId), 3000, "the bound chain to end with its head");
      assert.ok(h.kernel.tasks.has(free.taskId), "a task not made to die with its parent lives on");
    });
  });
}

/** A bus that passes everything to a real one and says it is disconnected when told (a test double). */
class CutBus implements Bus {
  down = 0;
  constructor(private readonly inner: Bus) {}
  get kind() {
    return this.inner.kind;
  }
  get closed() {
    return this.inner.closed;
  }
  get disconnectedSince() {
    return this.down;
  }
  publish(...a: Parameters<Bus["publish"]>) {
    this.inner.publish(...a);
  }
  subscribe(...a: Parameters<Bus["subscribe"]>) {
    return this.inner.subscribe(...a);
  }
  request(...a: Parameters<Bus["request"]>) {
    return this.inner.request(...a);
  }
  flush() {
    return this.inner.flush();
  }
  close() {
    return this.inner.close();
  }
}

describe("the runtime and a lost bus", () => {
  it("a Task whose bus has been down longer than busLostMs ends itself and says so (onTerminated); past the lease alone it waits", async () => {
    const h = await startHurd("local", { leaseMs: 300 });
    try {
      const b = h.kernel.bootTask({ name: "cut-off" });
      const bus = new CutBus(await h.connect());
      const t = await Task.attach({ bus, system: h.kernel.config.system, taskId: b.task.id, token: b.token, busLostMs: 1200 });
      let ended = false;
      t.onTerminated = () => (ended = true);
      await sleep(250);
      assert.equal(ended, false);
      bus.down = Date.now();
      // Past the lease (300 ms) but within busLostMs: a NATS restart is ridden out.
      await sleep(700);
      assert.equal(ended, false, "ended before busLostMs");
      await until(() => ended, 3000, "the task to end itself");
      assert.ok(Date.now() - bus.down >= 1200, "not before busLostMs");
      assert.equal(t.detached, true);
    } finally {
      await h.close();
    }
  });
});

if (busKinds.includes("nats")) {
  describe("leases and a kernel behind on its input (nats bus)", () => {
    it("heartbeats that wait on their way to the kernel keep their task: the sweep is confirmed by a round trip first", async () => {
      const leaseMs = 400;
      const r = await natsRelay(natsUrl());
      const system = `lag${process.pid}`;
      // With NATS authorization on (npm test's server), the kernel mints the task's user, as hurd-kernel does.
      const nats = await kernelNats(system);
      const kernel = new Kernel({ system, leaseMs }, { log: () => {}, nats: nats?.options });
      const kbus = await NatsBus.connect(r.url, { name: "lagging kernel", credentials: kernel.natsUsers?.kernel() });
      const trap = new TrapServer(kernel, kbus);
      trap.start();
      await kbus.flush();
      const b = kernel.bootTask({ name: "beats" });
      // The task's own connection goes straight to the server: it is not behind.
      const t = await attachOverNats(natsUrl(), { system, taskId: b.task.id, token: b.token, credentials: kernel.natsUsers?.task(b.task) ?? null });
      try {
        await sleep(2 * leaseMs);
        assert.ok(kernel.tasks.has(b.task.id), "kept by its heartbeats");
        // For three leases the kernel reads nothing: the task's heartbeats,
        // sent all along, wait in the relay behind each other.
        r.hold();
        await sleep(3 * leaseMs);
        assert.ok(kernel.tasks.has(b.task.id), "not ended while the kernel cannot tell");
        r.release();
        await sleep(2 * leaseMs);
        assert.ok(kernel.tasks.has(b.task.id), "a task that kept beating outlives its kernel's lag");
        // A task that does go silent still ends: the round trip only confirms.
        t.abandon();
        await until(() => !kernel.tasks.has(b.task.id), 10 * leaseMs, "the silent task to end");
      } finally {
        t.abandon();
        trap.stop();
        kernel.close();
        await kbus.close();
        await nats?.close();
        await r.close();
      }
    });
  });
}

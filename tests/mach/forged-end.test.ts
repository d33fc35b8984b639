// Defence in depth (issue 15): a task that hears of its own end confirms it
// with the kernel before it ends itself. Where deliveries can be forged (the
// in-process bus to code in the same process, NATS without authorization)
// a forged notice leaves it attached; the kernel's real one still ends it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno } from "@hurdmesh/mach";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { Delivery } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";

for (const kind of busKinds) {
  describe(`a notice of a task's own end (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(() => h?.close());

    it("a forged KERN_TERMINATED on its delivery subject is checked with the kernel and ignored; the kernel's own ends it", async () => {
      const t = await h.task("victim");
      let forged = 0;
      let ended = 0;
      t.onForgedEnd = () => forged++;
      t.onTerminated = () => ended++;
      const raw = await h.connect();
      const notice = Delivery.encode({ failed: { seq: 0, code: Errno.KERN_TERMINATED, reply: 0 }, seq: 0 }).finish();
      raw.publish(subjectsOf(h.kernel.config.system).delivery(t.id, 0), notice);
      await raw.flush();
      // (On NATS the harness's bare connection may publish anywhere in the system, as on a fabric
      // without authorization; with it, only the kernel may: tests/security shows that.)
      await until(() => forged === 1, 3000, "the forged notice checked");
      assert.equal(t.detached, false);
      assert.equal(ended, 0);
      assert.equal((await t.taskInfo()).taskId, t.id, "still the kernel's task");
      h.kernel.terminate(h.kernel.tasks.get(t.id)!, "test");
      await until(() => t.detached, 3000, "the real end");
      assert.equal(ended, 1);
    });
  });
}

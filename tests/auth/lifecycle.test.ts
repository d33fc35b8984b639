// Handle lifetime (libports' no-senders, auth.c's clean routine): a handle
// lives while a send right to it exists anywhere, so auth's space and table
// stay flat however many handles come and go; and what a failed reply would
// leave behind (a caller that gave up) is reclaimed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, portAt, Rights } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { busKinds } from "../harness.js";
import { ids, rejectsWith, until, World, type Party } from "./world.js";

for (const kind of busKinds) {
  describe(`auth handle lifetime (${kind} bus)`, () => {
    let w: World;
    let u: Party;
    before(async () => {
      w = await World.start(kind, { rendezvousWaitMs: 2000 });
      u = await w.party("user", { timeoutMs: 10_000 });
    });
    after(async () => {
      await w.close();
    });

    it("the last send right going frees the handle, wherever the rights were", async () => {
      const base = w.auth.handleCount;
      const h = await w.handle(u, { euids: [42] });
      assert.equal(w.auth.handleCount, base + 1);
      const copy = await w.give(u, h, MsgType.MSG_TYPE_COPY_SEND, w.boot);
      await u.task.deallocate(h);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(w.auth.handleCount, base + 1, "boot's copy keeps it alive");
      assert.deepEqual(ids(await w.authc(w.boot.task, copy).getIds({})), ids({ euids: [42] }));
      await w.boot.task.deallocate(copy);
      await until(() => w.auth.handleCount === base, 3000, "the handle to be freed");
    });

    it("5,000 handles made and dropped: auth's handle table and space return to their baseline", async () => {
      const h = await w.handle(u, { euids: [7], egids: [7] });
      const c = w.authc(u.task, h);
      const baseCount = w.auth.handleCount;
      // auth's names less its pool of armed ports, whose level varies between refills.
      const live = async () => (await w.authNames()) - w.auth.handles.pooled;
      const baseNames = await live();
      const baseRefs = await w.authRefs();
      const N = 5000;
      let next = 0;
      const worker = async () => {
        while (next < N) {
          next++;
          const res = await c.makeAuth(ids({ euids: [7], egids: [7] }));
          await u.task.deallocate(portAt(res, res.newhandle));
          // The in-process hub delivers in one microtask drain: without a turn
          // of the event loop now and then, no timer (heartbeats, lease
          // sweeps) runs and idle tasks' leases lapse, which is not under test.
          await new Promise((r) => setImmediate(r));
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      await until(() => w.auth.handleCount === baseCount, 10_000, `handles back to ${baseCount} (now ${w.auth.handleCount})`);
      let names = 0;
      try {
        await until(async () => (names = await live()) === baseNames, 10_000, "auth's names back to their baseline");
      } finally {
        assert.equal(names, baseNames, `auth's names (less the pool) back to their baseline; kernel log: ${w.log.join("; ")}`);
      }
      await w.authSpaceIs(baseRefs);
    });

    it("makeauth answered to a caller that gave up: the handle nobody received is freed", async () => {
      const h = await w.handle(u, { euids: [0] });
      const base = w.auth.handleCount;
      const baseRefs = await w.authRefs();
      const req = AuthDefinition.methods.makeAuth.requestType;
      const body = req.encode(req.fromPartial(ids({ euids: [1] }))).finish();
      for (let i = 0; i < 3; i++) {
        const rp = await u.task.allocate();
        u.task.send({ destination: h, id: 25001, body, reply: rp, replyDisposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE });
        await u.task.destroy(rp);
      }
      await until(() => w.auth.handleCount === base, 5000, `handles back to ${base} (now ${w.auth.handleCount})`);
      await w.authSpaceIs(baseRefs, "no dead reply names left in auth");
    });

    it("a user that gave up before its server came: the server still learns its ids, and the port meant for it is not kept by auth", async () => {
      const uh = await w.handle(u, { euids: [1000] });
      const s = await w.party("server");
      const sh = await w.handle(s, { euids: [4] });
      const baseRefs = await w.authRefs();
      const R = await u.task.allocate();
      const rs = await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, s);
      const ur = new Rights();
      const user = w.authc(u.task, uh).userAuthenticate({ rendezvous: ur.makeSend(R), timeoutMs: 2000 }, { rights: ur, timeoutMs: 100 });
      await rejectsWith(user, "ETIMEDOUT");
      assert.equal(w.auth.pending.users, 1, "auth still waits for the server");
      const P = await s.task.allocate();
      const sr = new Rights();
      const rv = sr.copySend(rs);
      const np = sr.makeSend(P);
      const got = await w.authc(s.task, sh).serverAuthenticate({ rendezvous: rv, newport: np, timeoutMs: 0 }, { rights: sr });
      assert.deepEqual(got.euids, [1000]);
      await until(async () => !(await s.task.call("portGetReceiveStatus", { name: P })).srights, 5000, "the send right to P to be released");
      await s.task.deallocate(rs);
      await w.authSpaceIs(baseRefs);
    });
  });
}

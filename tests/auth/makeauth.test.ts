// auth_getids and auth_makeauth (hurd-semantics.md §5, auth/auth.c's
// S_auth_makeauth): the root handle, the union rule, uid 0 effective or
// available, gids, ports that are not handles among the extras, and the
// consumption of the extras' send rights.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, PortRight, portAt, Rights } from "@hurdmesh/mach";
import { Auth } from "@hurdmesh/auth";
import { busKinds } from "../harness.js";
import { ids, rejectsWith, until, World, type Party } from "./world.js";

for (const kind of busKinds) {
  describe(`auth_makeauth (${kind} bus)`, () => {
    let w: World;
    let u: Party;
    before(async () => {
      w = await World.start(kind);
      u = await w.party("user");
    });
    after(async () => {
      await w.close();
    });

    /** makeauth on `handle` (in u's space) with `extras` as (name, disposition) pairs; answers the new handle's ids. */
    async function make(handle: number, want: Parameters<typeof ids>[0], extras: [number, MsgType][] = []) {
      const r = new Rights();
      const otherHandles = extras.map(([n, d]) => r.add(n, d));
      const c = w.authc(u.task, handle);
      const res = await c.makeAuth({ otherHandles, ...ids(want) }, { rights: r });
      const nh = portAt(res, res.newhandle);
      assert.ok(nh !== 0, "a new handle arrives as a send right");
      const got = await w.authc(u.task, nh).getIds({});
      await u.task.deallocate(nh);
      return got;
    }

    it("auth_getids on the bootstrap root handle answers {0} {0,0} {0} {0,0}", async () => {
      const got = await w.authc(w.boot.task, w.root).getIds({});
      assert.deepEqual(ids(got), { euids: [0], auids: [0, 0], egids: [0], agids: [0, 0] });
    });

    it("root makes any handle; duplicates are kept and empty vectors allowed", async () => {
      const h = await w.handle(u, { euids: [0] });
      assert.deepEqual(ids(await make(h, { euids: [5, 5, 7], auids: [], egids: [9, 9], agids: [1, 2, 1] })), { euids: [5, 5, 7], auids: [], egids: [9, 9], agids: [1, 2, 1] });
      assert.deepEqual(ids(await make(h, {})), ids({}), "an identity-less handle");
    });

    it("a non-root handle may make any subset of its uids and gids, turning available ids effective", async () => {
      const h = await w.handle(u, { euids: [1000], auids: [1000, 1001], egids: [100], agids: [200] });
      assert.deepEqual(ids(await make(h, { euids: [1001], auids: [1000, 1000], egids: [200], agids: [100] })), { euids: [1001], auids: [1000, 1000], egids: [200], agids: [100] });
      assert.deepEqual(ids(await make(h, { euids: [1000, 1001, 1000] })), ids({ euids: [1000, 1001, 1000] }));
    });

    it("EPERM for a uid held by no handle, in either uid vector", async () => {
      const h = await w.handle(u, { euids: [1000], auids: [1000], egids: [100], agids: [100] });
      const before = w.auth.handleCount;
      await rejectsWith(make(h, { euids: [1002] }), "EPERM");
      await rejectsWith(make(h, { auids: [1000, 1002] }), "EPERM");
      await rejectsWith(make(h, { euids: [0] }), "EPERM");
      assert.equal(w.auth.handleCount, before, "a refused makeauth creates nothing");
    });

    it("EPERM for a gid held by no handle, in either gid vector", async () => {
      const h = await w.handle(u, { euids: [1000], egids: [100], agids: [200] });
      await rejectsWith(make(h, { egids: [300] }), "EPERM");
      await rejectsWith(make(h, { agids: [100, 300] }), "EPERM");
    });

    it("uids and gids are separate spaces: a gid does not grant the same uid, nor a uid the same gid", async () => {
      const h = await w.handle(u, { euids: [1000], egids: [50] });
      await rejectsWith(make(h, { euids: [50] }), "EPERM");
      await rejectsWith(make(h, { egids: [1000] }), "EPERM");
    });

    it("uid 0 available (not effective) allows anything, as auth.c's isroot checks both vectors", async () => {
      const h = await w.handle(u, { euids: [1000], auids: [0] });
      assert.deepEqual(ids(await make(h, { euids: [7], auids: [8], egids: [9], agids: [10] })), ids({ euids: [7], auids: [8], egids: [9], agids: [10] }));
    });

    it("uid 0 effective allows anything; gid 0 grants nothing", async () => {
      const r = await w.handle(u, { euids: [0] });
      assert.deepEqual(ids(await make(r, { euids: [3], egids: [4] })), ids({ euids: [3], egids: [4] }));
      const g = await w.handle(u, { euids: [1000], egids: [0], agids: [0] });
      await rejectsWith(make(g, { euids: [3] }), "EPERM");
      assert.deepEqual(ids(await make(g, { euids: [1000], egids: [0] })), ids({ euids: [1000], egids: [0] }));
    });

    it("the union of the target and the extra handles decides: ids from several handles combine", async () => {
      const a = await w.handle(u, { euids: [1000], egids: [10] });
      const b = await w.handle(u, { auids: [2000], agids: [20] });
      const want = { euids: [1000, 2000], egids: [10, 20] };
      await rejectsWith(make(a, want), "EPERM");
      assert.deepEqual(ids(await make(a, want, [[b, MsgType.MSG_TYPE_COPY_SEND]])), ids(want));
      assert.deepEqual(ids(await make(b, want, [[a, MsgType.MSG_TYPE_COPY_SEND]])), ids(want), "either handle may be the target");
    });

    it("an extra handle holding uid 0 (even only available) makes the union root", async () => {
      const a = await w.handle(u, { euids: [1000] });
      const r = await w.handle(u, { auids: [0] });
      assert.deepEqual(ids(await make(a, { euids: [0], egids: [0] }, [[r, MsgType.MSG_TYPE_COPY_SEND]])), ids({ euids: [0], egids: [0] }));
    });

    it("ports that are not this server's handles are ignored among the extras (a plain port, another auth's root, a null)", async () => {
      const a = await w.handle(u, { euids: [1000] });
      const plain = await u.task.allocate();
      // A second auth server: its root handle is a real handle, but not of this server.
      const other = await w.party("auth2");
      const auth2 = await Auth.start(other.task);
      const otherRoot = await w.give(other, auth2.root, MsgType.MSG_TYPE_MAKE_SEND, u);
      try {
        const extras: [number, MsgType][] = [
          [plain, MsgType.MSG_TYPE_MAKE_SEND],
          [otherRoot, MsgType.MSG_TYPE_COPY_SEND],
          [0, MsgType.MSG_TYPE_COPY_SEND],
        ];
        await rejectsWith(make(a, { euids: [0] }, extras), "EPERM");
        assert.deepEqual(ids(await make(a, { euids: [1000] }, extras)), ids({ euids: [1000] }), "ignored, not refused");
        const st = await u.task.call("portGetReceiveStatus", { name: plain });
        assert.equal(st.srights, false, "auth released the plain port's send rights it was given");
      } finally {
        await auth2.close();
      }
    });

    it("the extras' send rights are consumed: MOVE_SEND of the last right frees the extra handle", async () => {
      const a = await w.handle(u, { euids: [1000] });
      const b = await w.handle(u, { euids: [2000] });
      const count = w.auth.handleCount;
      await make(a, { euids: [2000] }, [[b, MsgType.MSG_TYPE_MOVE_SEND]]);
      await rejectsWith(u.task.type(b), "KERN_INVALID_NAME");
      await until(() => w.auth.handleCount === count - 1, 3000, "the moved extra handle to be freed");
    });

    it("auth keeps no reference to an extra after makeauth, succeeded or refused (COPY_SEND leaves the user's)", async () => {
      const a = await w.handle(u, { euids: [1000] });
      const b = await w.handle(u, { euids: [2000] });
      const before = await w.authRefs();
      await make(a, { euids: [2000] }, [[b, MsgType.MSG_TYPE_COPY_SEND], [b, MsgType.MSG_TYPE_COPY_SEND]]);
      await w.authSpaceIs(before, "no send urefs left in auth after a successful makeauth");
      await rejectsWith(make(a, { euids: [3000] }, [[b, MsgType.MSG_TYPE_COPY_SEND]]), "EPERM");
      await w.authSpaceIs(before, "no send urefs left in auth after a refused makeauth");
      assert.equal(await u.task.getRefs(b, PortRight.PORT_RIGHT_SEND), 1, "the user still holds its copy");
      assert.deepEqual(ids(await w.authc(u.task, b).getIds({})), ids({ euids: [2000] }));
    });

    it("other_handles naming rights the request does not carry, or receive/send-once rights, is EINVAL and changes nothing", async () => {
      const a = await w.handle(u, { euids: [0] });
      const before = await w.authRefs();
      const count = w.auth.handleCount;
      const c = w.authc(u.task, a);
      await rejectsWith(c.makeAuth({ otherHandles: [3], ...ids({ euids: [1] }) }), "EINVAL");
      const so = await u.task.allocate();
      const r1 = new Rights();
      await rejectsWith(c.makeAuth({ otherHandles: [r1.makeSendOnce(so)], ...ids({}) }, { rights: r1 }), "EINVAL");
      const rcv = await u.task.allocate();
      const r2 = new Rights();
      await rejectsWith(c.makeAuth({ otherHandles: [r2.moveReceive(rcv)], ...ids({}) }, { rights: r2 }), "EINVAL");
      assert.equal(w.auth.handleCount, count);
      await w.authSpaceIs(before);
    });

    it("more ids than the bound in one vector is E2BIG", async () => {
      const a = await w.handle(u, { euids: [0] });
      await rejectsWith(w.authc(u.task, a).makeAuth(ids({ egids: new Array(w.auth.config.maxIdsPerVector + 1).fill(1) })), "E2BIG");
    });

    it("a handle is frozen: the ids it was made with are what getids answers later", async () => {
      const want = { euids: [1, 2], auids: [3], egids: [4], agids: [] };
      const a = await w.handle(u, { euids: [0] });
      const res = await w.authc(u.task, a).makeAuth(ids(want));
      const nh = portAt(res, res.newhandle);
      for (let i = 0; i < 3; i++) assert.deepEqual(ids(await w.authc(u.task, nh).getIds({})), ids(want));
    });
  });
}

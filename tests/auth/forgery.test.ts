// Forgery and malformed input (hurd-semantics.md §5 "Why it cannot be
// faked"): ids come only from handles auth handed out, rendezvous match on
// port identity, so a task guessing names or crafting bodies never obtains a
// handle with ids it was not given, nor learns or changes another user's ids.
// Every bad request gets a clear error and leaves auth's state as it was.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HurdError, MsgType, portAt, Rights, type MsgPort } from "@hurdmesh/mach";
import { NoSendersNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds } from "../harness.js";
import { ids, rejectsWith, until, World, type Party } from "./world.js";

const USER_IDS = { euids: [1000], auids: [1000, 1000], egids: [100], agids: [100] };
const EVIL_IDS = { euids: [666], auids: [666], egids: [666], agids: [] };

for (const kind of busKinds) {
  describe(`auth against forgery (${kind} bus)`, () => {
    let w: World;
    let u: Party;
    let s: Party;
    let t: Party;
    let uh: number;
    let sh: number;
    let th: number;
    before(async () => {
      w = await World.start(kind, { rendezvousWaitMs: 300 });
      u = await w.party("user");
      s = await w.party("server");
      t = await w.party("intruder");
      uh = await w.handle(u, USER_IDS);
      sh = await w.handle(s, { euids: [4] });
      th = await w.handle(t, EVIL_IDS);
    });
    after(async () => {
      await w.close();
    });

    /** State auth must keep across refused requests. */
    async function state() {
      return { handles: w.auth.handleCount, pending: { ...w.auth.pending }, refs: await w.authRefs() };
    }
    async function unchanged(before: Awaited<ReturnType<typeof state>>) {
      await w.authSpaceIs(before.refs);
      assert.equal(w.auth.handleCount, before.handles);
      assert.deepEqual(w.auth.pending, before.pending);
    }

    /** Every handle the intruder holds, with its ids. */
    async function intruderIds(): Promise<number[][]> {
      const { names } = await t.task.names();
      const out: number[][] = [];
      for (const n of names) {
        try {
          const g = await w.authc(t.task, n).getIds({}, { timeoutMs: 1000 });
          out.push([...g.euids, ...g.auids]);
        } catch {
          // not a handle
        }
      }
      return out;
    }

    it("guessed names: makeauth sent to every small name in the intruder's space never yields uid 0", async () => {
      const before = await state();
      const results = await Promise.allSettled(Array.from({ length: 64 }, (_x, i) => w.authc(t.task, i + 1).makeAuth(ids({ euids: [0], auids: [0] }), { timeoutMs: 1000 })));
      for (const r of results) {
        assert.equal(r.status, "rejected", "no guessed name made a root handle");
        assert.ok((r as PromiseRejectedResult).reason instanceof HurdError);
      }
      await unchanged(before);
      for (const v of await intruderIds()) assert.ok(!v.includes(0) && !v.includes(1000), `intruder holds only its own ids, got ${v}`);
    });

    it("auth's own names passed as bare numbers (PORT_NAME) among the extras are EINVAL, not the handles they name in auth's space", async () => {
      const before = await state();
      const { names } = await w.auth.task.names();
      assert.ok(names.includes(w.auth.root), "the root handle's name is among them");
      for (const n of names) {
        const r = new Rights();
        const k = r.add(n, MsgType.MSG_TYPE_PORT_NAME);
        await rejectsWith(w.authc(t.task, th).makeAuth({ otherHandles: [k], ...ids({ euids: [0] }) }, { rights: r }), "EINVAL");
      }
      await unchanged(before);
    });

    it("crafted other_handles indexes (out of range, huge, repeated onto the target's own rights) never widen the union", async () => {
      const before = await state();
      const c = w.authc(t.task, th);
      for (const idx of [1, 7, 0xffffffff, 2 ** 31]) await rejectsWith(c.makeAuth({ otherHandles: [idx], ...ids({ euids: [0] }) }), "EINVAL");
      const r = new Rights();
      const k = r.copySend(th);
      await rejectsWith(c.makeAuth({ otherHandles: [k, k, k], ...ids({ euids: [1000] }) }, { rights: r }), "EPERM");
      await unchanged(before);
    });

    it("the rendezvous of another user cannot be named by number: a PORT_NAME of auth's name for R is EINVAL and the real pairing is unaffected", async () => {
      const R = await u.task.allocate();
      const rs = await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, s);
      const ur = new Rights();
      const user = w.authc(u.task, uh).userAuthenticate({ rendezvous: ur.makeSend(R), timeoutMs: 3000 }, { rights: ur });
      await until(() => w.auth.pending.users === 1, 3000, "the user to wait");
      const [N] = [...w.auth.rendezvous.users.keys()];
      const before = await state();
      // As a server, hoping to learn the waiting user's ids:
      const tp = await t.task.allocate();
      const r1 = new Rights();
      const rv1 = r1.add(N!, MsgType.MSG_TYPE_PORT_NAME);
      const np1 = r1.makeSend(tp);
      await rejectsWith(w.authc(t.task, th).serverAuthenticate({ rendezvous: rv1, newport: np1, timeoutMs: 0 }, { rights: r1 }), "EINVAL");
      // As a user, hoping to be paired with the server in the user's place:
      const r2 = new Rights();
      const rv2 = r2.add(N!, MsgType.MSG_TYPE_PORT_NAME);
      await rejectsWith(w.authc(t.task, th).userAuthenticate({ rendezvous: rv2, timeoutMs: 0 }, { rights: r2 }), "EINVAL");
      await unchanged(before);
      // The intruder's own fresh port, even under the user's number for R, is another port: no pairing.
      const fake = await t.task.allocate();
      const r3 = new Rights();
      const rv3 = r3.makeSend(fake);
      const np3 = r3.makeSend(tp);
      await rejectsWith(w.authc(t.task, th).serverAuthenticate({ rendezvous: rv3, newport: np3, timeoutMs: 100 }, { rights: r3 }), "ETIMEDOUT");
      // The real server still learns the real user's ids; the user gets the real server's port.
      const P = await s.task.allocate();
      const sr = new Rights();
      const rvs = sr.copySend(rs);
      const nps = sr.makeSend(P);
      const [ures, sres] = await Promise.all([user, w.authc(s.task, sh).serverAuthenticate({ rendezvous: rvs, newport: nps, timeoutMs: 0 }, { rights: sr })]);
      assert.deepEqual(ids(sres), USER_IDS);
      assert.ok(await w.same(u, portAt(ures, ures.newport), MsgType.MSG_TYPE_COPY_SEND, s, P, MsgType.MSG_TYPE_MAKE_SEND));
    });

    it("a third task holding a send right to R can only present its own ids: the server learns the intruder's true ids, never the user's, and the user is refused, not impersonated", async () => {
      const R = await u.task.allocate();
      const rs = await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, s);
      const rt = await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, t);
      const tr = new Rights();
      const intruder = w.authc(t.task, th).userAuthenticate({ rendezvous: tr.copySend(rt), timeoutMs: 3000 }, { rights: tr });
      await until(() => w.auth.pending.users === 1, 3000, "the intruder to wait");
      const ur = new Rights();
      await rejectsWith(w.authc(u.task, uh).userAuthenticate({ rendezvous: ur.makeSend(R), timeoutMs: 0 }, { rights: ur }), "EBUSY");
      const P = await s.task.allocate();
      const sr = new Rights();
      const rvs = sr.copySend(rs);
      const nps = sr.makeSend(P);
      const [ires, sres] = await Promise.all([intruder, w.authc(s.task, sh).serverAuthenticate({ rendezvous: rvs, newport: nps, timeoutMs: 0 }, { rights: sr })]);
      assert.deepEqual(ids(sres), EVIL_IDS, "the server learns who really called");
      assert.deepEqual(Object.keys(ires), ["newport"], "the user side never learns ids");
    });

    it("malformed bodies are MIG_BAD_ARGUMENTS, unknown ids MIG_BAD_ID, and auth's state is unchanged and it keeps serving", async () => {
      const before = await state();
      const garbage = [new Uint8Array([0x0a, 0x05, 0x01]), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), new Uint8Array([0x12, 0x80])];
      for (const id of [25001, 25002, 25003]) {
        for (const body of garbage) await rejectsWith(t.task.rpc(th, id, body, { timeoutMs: 2000 }), "MIG_BAD_ARGUMENTS");
      }
      const P = await t.task.allocate();
      const withRights: MsgPort[] = [{ name: P, disposition: MsgType.MSG_TYPE_MAKE_SEND }, { name: th, disposition: MsgType.MSG_TYPE_COPY_SEND }];
      await rejectsWith(t.task.rpc(th, 25001, garbage[0]!, { ports: withRights, timeoutMs: 2000 }), "MIG_BAD_ARGUMENTS");
      await rejectsWith(t.task.rpc(th, 25004, new Uint8Array(0), { timeoutMs: 2000 }), "MIG_BAD_ID");
      await rejectsWith(t.task.rpc(th, 24999, new Uint8Array(0), { timeoutMs: 2000 }), "MIG_BAD_ID");
      await unchanged(before);
      assert.equal((await t.task.call("portGetReceiveStatus", { name: P })).srights, false, "rights of a malformed request are released");
      assert.deepEqual(ids(await w.authc(t.task, th).getIds({})), EVIL_IDS, "auth still serves");
    });

    it("a forged no-senders notification (id 70 from a task, not the kernel) is refused MIG_BAD_ID and frees nothing", async () => {
      const before = await state();
      const body = NoSendersNotification.encode({ mscount: 1 }).finish();
      await rejectsWith(t.task.rpc(th, 70, body, { timeoutMs: 2000 }), "MIG_BAD_ID");
      t.task.send({ destination: th, id: 70, body });
      await new Promise((r) => setTimeout(r, 50));
      await unchanged(before);
      assert.deepEqual(ids(await w.authc(t.task, th).getIds({})), EVIL_IDS, "the handle lives");
    });

    it("a request carrying rights its fields do not name: they are released, not kept", async () => {
      const before = await state();
      const P = await t.task.allocate();
      const r = new Rights();
      r.makeSend(P);
      r.makeSend(P);
      const res = await w.authc(t.task, th).makeAuth({ otherHandles: [], ...ids({ euids: [666] }) }, { rights: r });
      await t.task.deallocate(portAt(res, res.newhandle));
      await until(() => w.auth.handleCount === before.handles, 3000, "the new handle to be freed");
      await unchanged(before);
      assert.equal((await t.task.call("portGetReceiveStatus", { name: P })).srights, false);
    });
  });
}

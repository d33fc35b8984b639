// The reauthentication rendezvous (hurd-semantics.md §5 steps 1-6, auth.c's
// S_auth_user_authenticate and S_auth_server_authenticate): pairing by R's
// identity in both arrival orders, the server answered first, deadlines, R
// dying mid-wait, what is not a rendezvous, bounds, and many at once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, portAt, Rights, type Message } from "@hurdmesh/mach";
import { busKinds } from "../harness.js";
import { ids, rejectsWith, until, World, type Party } from "./world.js";

const USER_IDS = { euids: [1000], auids: [1000, 1000], egids: [100], agids: [100, 27] };

for (const kind of busKinds) {
  describe(`auth rendezvous (${kind} bus)`, () => {
    let w: World;
    let u: Party;
    let s: Party;
    let uh: number;
    let sh: number;
    before(async () => {
      w = await World.start(kind, { rendezvousWaitMs: 400 });
      u = await w.party("user");
      s = await w.party("server");
      uh = await w.handle(u, USER_IDS);
      sh = await w.handle(s, { euids: [4] });
    });
    after(async () => {
      await w.close();
    });

    /** U's fresh rendezvous port R and the server's send right to it. */
    async function rendezvous(): Promise<{ R: number; rs: number }> {
      const R = await u.task.allocate();
      return { R, rs: await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, s) };
    }
    function userCall(R: number, o: { handle?: number; party?: Party; timeoutMs?: number; disp?: MsgType } = {}) {
      const p = o.party ?? u;
      const r = new Rights();
      const rendezvous = r.add(R, o.disp ?? MsgType.MSG_TYPE_MAKE_SEND);
      return w.authc(p.task, o.handle ?? uh).userAuthenticate({ rendezvous, timeoutMs: o.timeoutMs ?? 0 }, { rights: r });
    }
    function serverCall(rs: number, P: number, o: { party?: Party; handle?: number; timeoutMs?: number; disp?: MsgType } = {}) {
      const p = o.party ?? s;
      const r = new Rights();
      const rendezvous = r.add(rs, o.disp ?? MsgType.MSG_TYPE_COPY_SEND);
      const newport = r.makeSend(P);
      return w.authc(p.task, o.handle ?? sh).serverAuthenticate({ rendezvous, newport, timeoutMs: o.timeoutMs ?? 0 }, { rights: r });
    }
    /** Records the ids of the replies auth sends, in order. */
    function replies(): { log: number[]; stop(): void } {
      const t = w.auth.task;
      const log: number[] = [];
      t.send = (m: Partial<Message>) => {
        if (m.id) log.push(m.id);
        return Object.getPrototypeOf(t).send.call(t, m);
      };
      return { log, stop: () => delete (t as { send?: unknown }).send };
    }

    for (const order of ["user first", "server first"] as const) {
      it(`pairs by R's identity with the ${order}: the server learns the user's ids, the user gets the server's port, the server is answered first`, async () => {
        const before = await w.authRefs();
        const { R, rs } = await rendezvous();
        const P = await s.task.allocate();
        const rec = replies();
        try {
          let user, server;
          if (order === "user first") {
            user = userCall(R);
            await until(() => w.auth.pending.users === 1, 3000, "the user to wait");
            server = serverCall(rs, P);
          } else {
            server = serverCall(rs, P);
            await until(() => w.auth.pending.servers === 1, 3000, "the server to wait");
            user = userCall(R);
          }
          const [ur, sr] = await Promise.all([user, server]);
          assert.deepEqual(ids(sr), USER_IDS);
          const np = portAt(ur, ur.newport);
          assert.ok(await w.same(u, np, MsgType.MSG_TYPE_COPY_SEND, s, P, MsgType.MSG_TYPE_MAKE_SEND), "the user's newport is the server's P");
          assert.deepEqual(rec.log.filter((id) => id === 25102 || id === 25103), [25103, 25102], "auth_server_authenticate is answered before auth_user_authenticate");
        } finally {
          rec.stop();
        }
        assert.deepEqual(w.auth.pending, { users: 0, servers: 0 });
        await w.authSpaceIs(before, "auth released R and P");
        const st = await u.task.call("portGetReceiveStatus", { name: R });
        await s.task.deallocate(rs);
        assert.equal(st.srights, true, "only the server's copy of R was still around");
      });
    }

    it("a server that never calls: the user fails ETIMEDOUT at auth's deadline and auth forgets it", async () => {
      const before = await w.authRefs();
      const { R } = await rendezvous();
      const t0 = Date.now();
      await rejectsWith(userCall(R), "ETIMEDOUT");
      assert.ok(Date.now() - t0 >= 350, `waited ${Date.now() - t0} ms, the deadline is 400`);
      assert.deepEqual(w.auth.pending, { users: 0, servers: 0 });
      await w.authSpaceIs(before);
    });

    it("a user that never calls: the server fails ETIMEDOUT at its own shorter deadline and its newport is released", async () => {
      const before = await w.authRefs();
      const { rs } = await rendezvous();
      const P = await s.task.allocate();
      const t0 = Date.now();
      await rejectsWith(serverCall(rs, P, { timeoutMs: 150 }), "ETIMEDOUT");
      assert.ok(Date.now() - t0 < 380, "the caller's timeout_ms was honoured");
      await w.authSpaceIs(before);
      assert.equal((await s.task.call("portGetReceiveStatus", { name: P })).srights, false, "auth dropped the send right to P it was given");
    });

    it("R destroyed while the user waits: the user fails EINVAL at once", async () => {
      const before = await w.authRefs();
      const { R } = await rendezvous();
      const user = userCall(R, { timeoutMs: 5000 });
      await until(() => w.auth.pending.users === 1, 3000, "the user to wait");
      const t0 = Date.now();
      await u.task.destroy(R);
      await rejectsWith(user, "EINVAL");
      assert.ok(Date.now() - t0 < 2000, "not at the deadline");
      await w.authSpaceIs(before);
    });

    it("R destroyed while the server waits: the server fails EINVAL and the late user finds no rendezvous", async () => {
      const before = await w.authRefs();
      const { R, rs } = await rendezvous();
      const P = await s.task.allocate();
      const server = serverCall(rs, P, { timeoutMs: 5000 });
      await until(() => w.auth.pending.servers === 1, 3000, "the server to wait");
      await u.task.destroy(R);
      await rejectsWith(server, "EINVAL");
      await w.authSpaceIs(before);
      assert.equal((await s.task.call("portGetReceiveStatus", { name: P })).srights, false);
    });

    it("what is not a rendezvous is EINVAL: a bare name, a send-once right, a dead name, auth's own handle, a missing right", async () => {
      const before = await w.authRefs();
      const { R } = await rendezvous();
      const c = w.authc(u.task, uh);
      await rejectsWith(userCall(R, { disp: MsgType.MSG_TYPE_PORT_NAME }), "EINVAL");
      await rejectsWith(userCall(R, { disp: MsgType.MSG_TYPE_MAKE_SEND_ONCE }), "EINVAL");
      await rejectsWith(userCall(uh, { disp: MsgType.MSG_TYPE_COPY_SEND }), "EINVAL");
      await rejectsWith(c.userAuthenticate({ rendezvous: 0, timeoutMs: 0 }), "EINVAL");
      const X = await s.task.allocate();
      const xu = await w.give(s, X, MsgType.MSG_TYPE_MAKE_SEND, u);
      await s.task.destroy(X);
      await rejectsWith(userCall(xu, { disp: MsgType.MSG_TYPE_COPY_SEND }), "EINVAL");
      assert.deepEqual(w.auth.pending, { users: 0, servers: 0 });
      await w.authSpaceIs(before);
    });

    it("a server offering a receive right, or the rendezvous itself as newport, is EINVAL", async () => {
      const before = await w.authRefs();
      const { rs } = await rendezvous();
      const P = await s.task.allocate();
      const r = new Rights();
      const rv = r.copySend(rs);
      const newport = r.moveReceive(P);
      await rejectsWith(w.authc(s.task, sh).serverAuthenticate({ rendezvous: rv, newport, timeoutMs: 0 }, { rights: r }), "EINVAL");
      const r2 = new Rights();
      const same = r2.copySend(rs);
      await rejectsWith(w.authc(s.task, sh).serverAuthenticate({ rendezvous: same, newport: same, timeoutMs: 0 }, { rights: r2 }), "EINVAL");
      assert.deepEqual(w.auth.pending, { users: 0, servers: 0 });
      await w.authSpaceIs(before);
    });

    it("a second user on a rendezvous already waited on is EBUSY; the first is undisturbed", async () => {
      const { R, rs } = await rendezvous();
      const t = await w.party("third");
      const th = await w.handle(t, { euids: [666] });
      const rt = await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, t);
      const first = userCall(R);
      await until(() => w.auth.pending.users === 1, 3000, "the user to wait");
      await rejectsWith(userCall(rt, { party: t, handle: th, disp: MsgType.MSG_TYPE_COPY_SEND }), "EBUSY");
      const P = await s.task.allocate();
      const [, sr] = await Promise.all([first, serverCall(rs, P)]);
      assert.deepEqual(ids(sr), USER_IDS);
    });

    it("a server may present the rendezvous with a send-once newport; the user gets it as one", async () => {
      const { R, rs } = await rendezvous();
      const P = await s.task.allocate();
      const r = new Rights();
      const rv = r.copySend(rs);
      const newport = r.makeSendOnce(P);
      const user = userCall(R);
      const [ur, sr] = await Promise.all([user, w.authc(s.task, sh).serverAuthenticate({ rendezvous: rv, newport, timeoutMs: 0 }, { rights: r })]);
      assert.deepEqual(ids(sr), USER_IDS);
      const np = portAt(ur, ur.newport);
      assert.equal(await u.task.type(np), 1 << 18, "a send-once right");
    });

    it("50 rendezvous interleaved at random pair without cross-talk", async () => {
      const N = 50;
      const before = await w.authRefs();
      const hs: number[] = [];
      for (let i = 0; i < N; i++) hs.push(await w.handle(u, { euids: [2000 + i], egids: [3000 + i] }));
      const rv = await Promise.all(Array.from({ length: N }, () => rendezvous()));
      const Ps = await Promise.all(Array.from({ length: N }, () => s.task.allocate()));
      const userRes: Promise<number>[] = new Array(N);
      const serverRes: Promise<unknown>[] = new Array(N);
      const jobs: (() => void)[] = [];
      for (let i = 0; i < N; i++) {
        jobs.push(() => {
          userRes[i] = userCall(rv[i]!.R, { handle: hs[i], timeoutMs: 5000 }).then((r) => portAt(r, r.newport));
        });
        jobs.push(() => {
          serverRes[i] = serverCall(rv[i]!.rs, Ps[i]!, { timeoutMs: 5000 });
        });
      }
      for (let i = jobs.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!];
      }
      await Promise.all(jobs.map((job, k) => new Promise<void>((r) => setTimeout(() => (job(), r()), k % 7))));
      const users = await Promise.all(userRes);
      const servers = (await Promise.all(serverRes)) as { euids: number[]; egids: number[] }[];
      for (let i = 0; i < N; i++) {
        assert.deepEqual(servers[i]!.euids, [2000 + i], `server ${i} learned user ${i}'s uid`);
        assert.deepEqual(servers[i]!.egids, [3000 + i]);
        assert.ok(await w.same(u, users[i]!, MsgType.MSG_TYPE_COPY_SEND, s, Ps[i]!, MsgType.MSG_TYPE_MAKE_SEND), `user ${i} got P${i}`);
      }
      assert.deepEqual(w.auth.pending, { users: 0, servers: 0 });
      await w.authSpaceIs(before);
    });
  });

  describe(`auth rendezvous bounds (${kind} bus)`, () => {
    let w: World;
    before(async () => {
      w = await World.start(kind, { maxPendingPerSide: 2, rendezvousWaitMs: 2000 });
    });
    after(async () => {
      await w.close();
    });

    it("past maxPendingPerSide waiting users, the next is EAGAIN and nothing is kept for it", async () => {
      const u = await w.party("user");
      const uh = await w.handle(u, { euids: [1] });
      const before = await w.authRefs();
      const call = async () => {
        const R = await u.task.allocate();
        const r = new Rights();
        const rendezvous = r.makeSend(R);
        return { R, p: w.authc(u.task, uh).userAuthenticate({ rendezvous, timeoutMs: 0 }, { rights: r }) };
      };
      const a = await call();
      const b = await call();
      await until(() => w.auth.pending.users === 2, 3000, "two waiting users");
      const c = await call();
      await rejectsWith(c.p, "EAGAIN");
      await u.task.destroy(a.R);
      await u.task.destroy(b.R);
      await rejectsWith(a.p, "EINVAL");
      await rejectsWith(b.p, "EINVAL");
      await w.authSpaceIs(before);
    });
  });
}

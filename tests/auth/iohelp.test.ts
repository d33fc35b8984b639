// @hurdmesh/iohelp: both sides of reauthentication as a server and a client
// use them (libiohelp's iohelp_reauth, glibc's reauth after io_reauthenticate),
// end to end through a server whose reauthenticate call is a simpleroutine.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, HurdError, MsgType, Rights, serve } from "@hurdmesh/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { serverAuthenticate, userReauthenticate, type Ids } from "@hurdmesh/iohelp";
import { busKinds } from "../harness.js";
import { ids, rejectsWith, until, World, type Party } from "./world.js";

const USER_IDS = { euids: [1000, 1000], auids: [1000], egids: [100], agids: [100, 10] };

for (const kind of busKinds) {
  describe(`iohelp reauthentication (${kind} bus)`, () => {
    let w: World;
    let u: Party;
    let s: Party;
    let uh: number;
    let sh: number;
    let uq: number;
    const seen: ({ ids: Ids; P: number } | { err: unknown })[] = [];
    before(async () => {
      w = await World.start(kind, { rendezvousWaitMs: 2000 });
      u = await w.party("user");
      s = await w.party("server");
      uh = await w.handle(u, USER_IDS);
      sh = await w.handle(s, { euids: [4] });
      // The server's "io_reauthenticate": Ping.Notice is a simpleroutine carrying one right.
      const q = await s.task.allocate();
      serve(s.task, PingDefinition, {
        notice: async (req, ctx) => {
          const R = ctx.right(req.port, MsgType.MSG_TYPE_MOVE_SEND).name;
          const P = await s.task.allocate();
          try {
            seen.push({ ids: await serverAuthenticate(s.task, sh, R, P, { timeoutMs: 2500 }), P });
          } catch (err) {
            seen.push({ err });
          }
          return {};
        },
      }).add(q, {});
      uq = await w.give(s, q, MsgType.MSG_TYPE_MAKE_SEND, u);
    });
    after(async () => {
      await w.close();
    });

    const ask = (R: number) => {
      const r = new Rights();
      return client(u.task, PingDefinition, uq).notice({ port: r.makeSend(R) }, { rights: r });
    };

    it("userReauthenticate and serverAuthenticate: the server learns the user's ids, the user holds the server's new port, R is gone", async () => {
      await w.authc(u.task, uh).getIds({}); // the runtime's reply port exists from now on
      const before = await u.task.names();
      const n = seen.length;
      const newport = await userReauthenticate(u.task, uh, ask, { timeoutMs: 3000 });
      await until(() => seen.length === n + 1, 3000, "the server's side to finish");
      const got = seen[n]!;
      assert.ok("ids" in got, `the server side failed: ${"err" in got ? String(got.err) : ""}`);
      assert.deepEqual(ids(got.ids), USER_IDS);
      assert.ok(await w.same(u, newport, MsgType.MSG_TYPE_COPY_SEND, s, got.P, MsgType.MSG_TYPE_MAKE_SEND));
      const now = await u.task.names();
      const added = now.names.filter((x) => !before.names.includes(x) && x !== newport);
      assert.ok(now.names.includes(newport));
      // Besides the new port, only iohelp's pool of fresh ports may have appeared:
      // receive rights no send right was ever made for. R had one made (mscount 1).
      for (const x of added) assert.equal((await u.task.call("portGetReceiveStatus", { name: x })).mscount, 0, `name ${x} is a used port left behind (R not destroyed?)`);
      assert.deepEqual(w.auth.pending, { users: 0, servers: 0 });
    });

    it("ten reauthentications at once each get their own server port", async () => {
      const n = seen.length;
      const ports = await Promise.all(Array.from({ length: 10 }, () => userReauthenticate(u.task, uh, ask, { timeoutMs: 3000 })));
      await until(() => seen.length === n + 10, 3000, "every server side to finish");
      const Ps = seen.slice(n).map((x) => ("P" in x ? x.P : 0));
      for (const np of ports) {
        let matches = 0;
        for (const P of Ps) if (await w.same(u, np, MsgType.MSG_TYPE_COPY_SEND, s, P, MsgType.MSG_TYPE_MAKE_SEND)) matches++;
        assert.equal(matches, 1, "each new port is exactly one of the server's ports");
      }
    });

    it("a request to the server that fails ends the user's wait at once, not at auth's deadline", async () => {
      const t0 = Date.now();
      const boom = new HurdError(0x40000000 | 5, "server unreachable");
      await assert.rejects(
        userReauthenticate(u.task, uh, () => Promise.reject(boom), { timeoutMs: 3000 }),
        (e) => e === boom || (e instanceof HurdError && e.errno === "EINVAL"),
      );
      await until(() => w.auth.pending.users === 0, 3000, "auth to forget the user");
      assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
    });

    it("serverAuthenticate with no rendezvous is EINVAL; with a user that never comes, ETIMEDOUT within its deadline", async () => {
      await rejectsWith(serverAuthenticate(s.task, sh, 0, 0), "EINVAL");
      const R = await u.task.allocate();
      const rs = await w.give(u, R, MsgType.MSG_TYPE_MAKE_SEND, s);
      const P = await s.task.allocate();
      const t0 = Date.now();
      await rejectsWith(serverAuthenticate(s.task, sh, rs, P, { timeoutMs: 800 }), "ETIMEDOUT");
      assert.ok(Date.now() - t0 < 800, "auth's wait ends before the caller's deadline");
      await until(async () => (await u.task.call("portGetReceiveStatus", { name: R })).srights === false, 3000, "the server's copy of R to be released");
    });
  });
}

// NatsBus.request's error mapping (packages/mach/src/bus/nats.ts): nobody
// subscribed is MACH_SEND_INVALID_DEST, no answer in time is ETIMEDOUT (not
// before the deadline), a closed connection is refused.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, HurdError } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsUrl, mintTestUser } from "../harness.js";

const isErr = (code: number) => (e: unknown) => e instanceof HurdError && e.code === code;

if (busKinds.includes("nats")) {
  describe("NatsBus request", () => {
    let a: NatsBus;
    let b: NatsBus;
    const subject = `t${process.pid}.natsbus`;
    // With NATS authorization on: a user of these subjects and its own inbox.
    const inboxPrefix = `_INBOX.t${process.pid}natsbus`;
    const creds = mintTestUser("natsbus", { pub: [`${subject}.>`], sub: [`${subject}.>`, `${inboxPrefix}.>`], resp: { max: 1, ttlMs: 10_000 }, inboxPrefix, subs: -1 });
    const connect = () => NatsBus.connect(natsUrl(), { credentials: creds ?? undefined, inboxPrefix: creds ? inboxPrefix : undefined });
    before(async () => {
      a = await connect();
      b = await connect();
      b.subscribe(`${subject}.echo`, (_s, d, reply) => reply && b.publish(reply, d));
      b.subscribe(`${subject}.silent`, () => {});
      await b.flush();
    });
    after(async () => {
      await a.close();
      await b.close();
    });

    it("answers, maps no responders and timeouts, and refuses once closed", async () => {
      assert.deepEqual([...(await a.request(`${subject}.echo`, new Uint8Array([4]), 2000))], [4]);
      await assert.rejects(a.request(`${subject}.nobody`, new Uint8Array(1), 2000), isErr(Errno.MACH_SEND_INVALID_DEST));
      const t0 = performance.now();
      await assert.rejects(a.request(`${subject}.silent`, new Uint8Array(1), 100), isErr(Errno.ETIMEDOUT));
      assert.ok(performance.now() - t0 >= 99);
      const c = await connect();
      await c.close();
      assert.throws(() => c.publish(`${subject}.echo`, new Uint8Array(1)), isErr(Errno.MACH_SEND_INVALID_DEST));
      await assert.rejects(c.request(`${subject}.echo`, new Uint8Array(1), 100), (e: unknown) => e instanceof HurdError);
    });
  });
}

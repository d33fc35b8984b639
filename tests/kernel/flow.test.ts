// Conformance: bounded queues (mach_port_set_qlimit, MACH_SEND_TIMEOUT) and the
// rule that send-once messages (replies) are never held back by a full queue.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, PortRight, type SendFailed } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { child, code, rejectsWith, sendRefs, sleep, snapshot } from "./kit.js";

for (const kind of busKinds) {
  describe(`kernel bounded queues (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    /**
     * b never returns credit (window 1, a handler that never settles) and its
     * port q holds at most one message; a fills it. Answers a's names.
     */
    async function full(label: string) {
      const a = await h.task(`${label}-a`);
      const { task: b, port: bTask } = await child(h, a, `${label}-b`, { window: 1 });
      const q = await b.allocate();
      let got = 0;
      b.receive(q, () => {
        got++;
        return new Promise(() => {});
      });
      await b.call("portSetQlimit", { name: q, qlimit: 1 });
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const fails: SendFailed[] = [];
      a.onSendFailed = (f) => fails.push(f);
      a.send({ destination: qs, id: 1 });
      await until(() => got === 1, 3000, "b holds the first message");
      a.send({ destination: qs, id: 2 });
      await until(async () => (await b.call("portGetReceiveStatus", { name: q })).msgcount === 1, 3000, "q full");
      assert.equal(fails.length, 0);
      // A right for a to carry: a send right with 2 urefs to a port of its own.
      const x = await a.allocate();
      await a.extractRight(0, x, MsgType.MSG_TYPE_MAKE_SEND);
      await a.modRefs(x, PortRight.PORT_RIGHT_SEND, 1);
      return { a, b, bTask, q, qs, x, fails, got: () => got };
    }

    it("a send with timeoutMs 0 to a full queue fails MACH_SEND_TIMED_OUT and the sender keeps its rights", async () => {
      const { a, b, q, qs, x, fails } = await full("qfull0");
      const before = await snapshot(a);
      a.send({ destination: qs, id: 3, timeoutMs: 0, ports: [{ name: x, disposition: MsgType.MSG_TYPE_MOVE_SEND }], seq: 77 });
      await until(() => fails.length === 1, 3000, "send failure");
      assert.equal(fails[0]!.code, code("MACH_SEND_TIMED_OUT"));
      assert.equal(fails[0]!.seq, 77);
      assert.deepEqual(await snapshot(a), before);
      assert.equal(await sendRefs(a, x), 2);
      assert.equal((await b.call("portGetReceiveStatus", { name: q })).msgcount, 1);
      // The RPC form fails the same way.
      await rejectsWith(a.rpc(qs, 4, new Uint8Array(0), { sendTimeoutMs: 0, timeoutMs: 2000 }), "MACH_SEND_TIMED_OUT");
    });

    it("a send with timeoutMs 100 waits about 100 ms, fails MACH_SEND_TIMED_OUT, and gives the rights back", async () => {
      const { a, b, q, qs, x, fails } = await full("qfull100");
      const t0 = Date.now();
      a.send({ destination: qs, id: 3, timeoutMs: 100, ports: [{ name: x, disposition: MsgType.MSG_TYPE_MOVE_SEND }], seq: 78 });
      await until(() => fails.length === 1, 3000, "send failure");
      const took = Date.now() - t0;
      assert.equal(fails[0]!.code, code("MACH_SEND_TIMED_OUT"));
      assert.ok(took >= 90 && took < 1500, `failed after ${took} ms`);
      assert.equal(await sendRefs(a, x), 2, "the moved uref came back");
      assert.equal((await b.call("portGetReceiveStatus", { name: q })).msgcount, 1, "the message never entered the queue");
      const t1 = Date.now();
      await rejectsWith(a.rpc(qs, 4, new Uint8Array(0), { sendTimeoutMs: 100, timeoutMs: 3000 }), "MACH_SEND_TIMED_OUT");
      assert.ok(Date.now() - t1 >= 90);
    });

    it("a timed-out send gives back a destination right it moved", async () => {
      const { a, qs, fails } = await full("qdest");
      await a.modRefs(qs, PortRight.PORT_RIGHT_SEND, 1);
      assert.equal(await sendRefs(a, qs), 2);
      a.send({ destination: qs, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND, id: 8, timeoutMs: 50 });
      await until(() => fails.length === 1, 3000, "send failure");
      assert.equal(fails[0]!.code, code("MACH_SEND_TIMED_OUT"));
      assert.equal(await sendRefs(a, qs), 2, "the moved destination uref came back");
      // Copied destination rights are not multiplied either.
      a.send({ destination: qs, id: 9, timeoutMs: 50 });
      await until(() => fails.length === 2, 3000, "second send failure");
      assert.equal(await sendRefs(a, qs), 2);
    });

    it("a waiting sender fails MACH_SEND_INVALID_DEST when the port dies, and gets its rights back", async () => {
      const { a, b, q, qs, x, fails } = await full("qdie");
      a.send({ destination: qs, id: 10, timeoutMs: 5000, ports: [{ name: x, disposition: MsgType.MSG_TYPE_MOVE_SEND }] });
      await sleep(30);
      assert.equal(await sendRefs(a, x), 1, "the blocked message holds the moved uref");
      const t0 = Date.now();
      await b.destroy(q);
      await until(() => fails.length === 1, 3000, "send failure");
      assert.ok(Date.now() - t0 < 1000);
      assert.equal(fails[0]!.code, code("MACH_SEND_INVALID_DEST"));
      assert.equal(await sendRefs(a, x), 2);
    });

    it("a waiting sender gets in when the queue makes room (qlimit raised)", async () => {
      const { a, b, q, qs, fails } = await full("qroom");
      a.send({ destination: qs, id: 5, timeoutMs: 2000 });
      await sleep(50);
      assert.equal((await b.call("portGetReceiveStatus", { name: q })).msgcount, 1);
      await b.call("portSetQlimit", { name: q, qlimit: 4 });
      await until(async () => (await b.call("portGetReceiveStatus", { name: q })).msgcount === 2, 3000, "admitted");
      assert.equal(fails.length, 0);
    });

    it("send-once messages (replies) bypass qlimit", async () => {
      const { a, b, bTask, q, fails } = await full("qso");
      const so1 = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      const so2 = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      a.send({ destination: so1, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 6, timeoutMs: 0 });
      a.send({ destination: so2, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 7, timeoutMs: 0 });
      await until(async () => (await b.call("portGetReceiveStatus", { name: q })).msgcount === 3, 3000, "replies queued past qlimit 1");
      assert.equal(fails.length, 0);
      assert.equal((await b.call("portGetReceiveStatus", { name: q })).qlimit, 1);
    });

    it("qlimit must be within 1..qlimitMax", async () => {
      const a = await h.task("qbad");
      const p = await a.allocate();
      await rejectsWith(a.call("portSetQlimit", { name: p, qlimit: 0 }), "KERN_INVALID_VALUE");
      await rejectsWith(a.call("portSetQlimit", { name: p, qlimit: h.kernel.config.qlimitMax + 1 }), "KERN_INVALID_VALUE");
      const so = (await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      await rejectsWith(a.call("portSetQlimit", { name: so, qlimit: 3 }), "KERN_INVALID_RIGHT");
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).qlimit, h.kernel.config.qlimit);
    });
  });
}

// Conformance: notifications (hurd-semantics.md §1 "Notifications"):
// no-senders, dead-name, port-deleted, port-destroyed, send-once (and the
// MIG_SERVER_DIED it means for an RPC), the atomic swap of registration, and
// forged notifications.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, MsgType, NotifyId, PortRight, serve } from "@hurdmesh/mach";
import { DeadNameNotification, NoSendersNotification, PortDeletedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { child, deadRefs, gate, give, inbox, nth, rejectsWith, sleep, TYPE_DEAD_NAME, TYPE_DNREQUEST, TYPE_RECEIVE, TYPE_SEND, TYPE_SEND_ONCE } from "./kit.js";

const mscountOf = (b: Uint8Array) => NoSendersNotification.decode(b).mscount;

for (const kind of busKinds) {
  describe(`kernel notifications (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    it("no-senders fires when the last send right goes, carrying the make-send count", async () => {
      const a = await h.task("ns-a");
      const { task: b, port: bTask } = await child(h, a, "ns-b");
      const p = await a.allocate();
      const n = await a.allocate();
      const box = inbox(a, n);
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      // A second MAKE_SEND into the same name merges: 2 urefs, mscount 2.
      await a.insertRight(bTask, s, p, MsgType.MSG_TYPE_MAKE_SEND);
      assert.equal(await b.getRefs(s, PortRight.PORT_RIGHT_SEND), 2);
      assert.equal(await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, n, 0), 0);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).nsrequest, true);
      await b.deallocate(s);
      await sleep(30);
      assert.equal(box.length, 0, "a send uref remains");
      await b.deallocate(s);
      const m = await nth(box, 1, "no-senders");
      assert.equal(m.id, 70);
      assert.equal(m.kernel, true);
      assert.equal(m.sender, 0);
      assert.equal(mscountOf(m.body), 2);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).nsrequest, false, "a notification is sent once");
    });

    it("no-senders does not overtake the message that carried the last send right as its destination", async () => {
      const a = await h.task("ns-order-a");
      const { task: b, port: bTask } = await child(h, a, "ns-order-b");
      const p = await a.allocate();
      const box = inbox(a, p);
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      // The Hurd's usual pattern: no-senders is sent to the port itself.
      await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, p, 1);
      b.send({ destination: s, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND, id: 500 });
      await nth(box, 2, "the message, then no-senders");
      assert.deepEqual(
        box.map((m) => [m.id, m.kernel]),
        [
          [500, false],
          [70, true],
        ],
      );
      await rejectsWith(b.type(s), "KERN_INVALID_NAME");
    });

    it("no-senders fires at once on registration when no send right exists and mscount >= sync", async () => {
      const a = await h.task("ns-now");
      const p = await a.allocate();
      const n = await a.allocate();
      const box = inbox(a, n);
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.deallocate(p);
      // mscount is 1: a request with sync 2 waits (a send right may still be on its way).
      await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, n, 2);
      await sleep(30);
      assert.equal(box.length, 0, "mscount 1 < sync 2: no notification yet");
      // Re-registering with sync 1 fires at once and hands back the first request.
      const prev = await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, n, 1);
      assert.equal(await a.type(prev), TYPE_SEND_ONCE);
      const m = await nth(box, 1, "immediate no-senders");
      assert.equal(m.id, 70);
      assert.equal(m.kernel, true);
      assert.equal(mscountOf(m.body), 1);
      await a.deallocate(prev);
      const so = await nth(box, 2, "send-once of the unused first request");
      assert.equal(so.id, 71);
    });

    it("registration is an atomic swap: the previous right comes back and the new one is used", async () => {
      const a = await h.task("swap-a");
      const { task: b, port: bTask } = await child(h, a, "swap-b");
      const p = await a.allocate();
      const n1 = await a.allocate();
      const n2 = await a.allocate();
      const box1 = inbox(a, n1);
      const box2 = inbox(a, n2);
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      assert.equal(await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, n1, 0), 0);
      const prev = await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, n2, 0);
      assert.ok(prev !== 0 && prev !== 0xffffffff);
      assert.equal(await a.type(prev), TYPE_SEND_ONCE, "the first request is handed back as a send-once right");
      await b.deallocate(s);
      const m = await nth(box2, 1, "no-senders on the new right");
      assert.equal(m.id, 70);
      assert.equal(box1.length, 0);
      // The returned right is the one to n1: using it reaches n1.
      a.send({ destination: prev, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 5 });
      assert.equal((await nth(box1)).id, 5);
      // Cancelling (notify 0) also swaps: with nothing registered the answer is 0.
      assert.equal(await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, 0, 0), 0);
    });

    it("a dead-name request is swapped and cancelled like the others, returning the previous right", async () => {
      const a = await h.task("dnswap-a");
      const { task: b, port: bTask } = await child(h, a, "dnswap-b");
      const p = await a.allocate();
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      const n1 = await b.allocate();
      const n2 = await b.allocate();
      const box1 = inbox(b, n1);
      const box2 = inbox(b, n2);
      assert.equal(await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n1, 0), 0);
      const prev1 = await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n2, 0);
      assert.equal(await b.type(prev1), TYPE_SEND_ONCE);
      const prev2 = await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, 0, 0);
      assert.equal(await b.type(prev2), TYPE_SEND_ONCE);
      assert.notEqual(prev1, prev2);
      assert.equal(await b.type(s), TYPE_SEND, "no request left on the name");
      await a.destroy(p);
      await sleep(30);
      assert.equal(box1.length + box2.length, 0, "a cancelled request never fires");
      assert.equal(await deadRefs(b, s), 1, "no extra uref without a request");
      // The returned rights lead to n1 and n2.
      b.send({ destination: prev1, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 1 });
      b.send({ destination: prev2, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 2 });
      assert.equal((await nth(box1)).id, 1);
      assert.equal((await nth(box2)).id, 2);
    });

    it("dead-name: the port behind a send right dies, the name gains an extra uref, the notification names it", async () => {
      const a = await h.task("dn-a");
      const { task: b, port: bTask } = await child(h, a, "dn-b");
      const p = await a.allocate();
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      const n = await b.allocate();
      const box = inbox(b, n);
      assert.equal(await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n, 0), 0);
      assert.equal((await b.type(s)) >>> 0, (TYPE_SEND | TYPE_DNREQUEST) >>> 0);
      await a.destroy(p);
      const m = await nth(box, 1, "dead-name");
      assert.equal(m.id, 72);
      assert.equal(m.kernel, true);
      assert.equal(DeadNameNotification.decode(m.body).name, s);
      assert.equal(await b.type(s), TYPE_DEAD_NAME);
      assert.equal(await deadRefs(b, s), 2, "1 uref of the send right + 1 for the notification");
    });

    it("dead-name on a send-once right: it becomes a dead name with 2 urefs", async () => {
      const a = await h.task("dnso-a");
      const { task: b, port: bTask } = await child(h, a, "dnso-b");
      const p = await a.allocate();
      const so = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      const n = await b.allocate();
      const box = inbox(b, n);
      await b.requestNotification(so, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      await a.destroy(p);
      const m = await nth(box, 1, "dead-name");
      assert.equal(DeadNameNotification.decode(m.body).name, so);
      assert.equal(await deadRefs(b, so), 2);
    });

    it("dead-name on an already dead name fires at once with sync != 0 and is refused with sync 0", async () => {
      const a = await h.task("dnnow-a");
      const { task: b, port: bTask } = await child(h, a, "dnnow-b");
      const p = await a.allocate();
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.destroy(p);
      assert.equal(await b.type(s), TYPE_DEAD_NAME);
      const n = await b.allocate();
      const box = inbox(b, n);
      await rejectsWith(b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n, 0), "KERN_INVALID_ARGUMENT");
      assert.equal(await deadRefs(b, s), 1);
      assert.equal((await b.call("portGetReceiveStatus", { name: n })).sorights, 0, "the refused request took no right");
      assert.equal(await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n, 1), 0);
      const m = await nth(box, 1, "immediate dead-name");
      assert.equal(m.id, 72);
      assert.equal(m.kernel, true);
      assert.equal(DeadNameNotification.decode(m.body).name, s);
      assert.equal(await deadRefs(b, s), 2);
    });

    it("port-deleted: a name with a dead-name request is freed before the port dies", async () => {
      const a = await h.task("pd-a");
      const { task: b, port: bTask } = await child(h, a, "pd-b");
      const p = await a.allocate();
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      const so = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      const n = await b.allocate();
      const box = inbox(b, n);
      await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      await b.requestNotification(so, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      await b.deallocate(s);
      const m = await nth(box, 1, "port-deleted after deallocate");
      assert.equal(m.id, 65);
      assert.equal(m.kernel, true);
      assert.equal(PortDeletedNotification.decode(m.body).name, s);
      // Using the send-once right frees its name too.
      b.send({ destination: so, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 9 });
      const m2 = await nth(box, 2, "port-deleted after use");
      assert.equal(m2.id, 65);
      assert.equal(PortDeletedNotification.decode(m2.body).name, so);
      // The port stays alive: nothing turns into a dead-name notification later.
      await a.destroy(p);
      await sleep(30);
      assert.equal(box.length, 2);
    });

    it("port-destroyed: destroying a receive right with a backup hands it over, the port lives on", async () => {
      const a = await h.task("pdes-a");
      const { task: b, port: bTask } = await child(h, a, "pdes-b");
      const { task: c, port: cTask } = await child(h, a, "pdes-c");
      const p = await a.allocate();
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      const backup = await c.allocate();
      const got: { id: number; kernel: boolean; name: number; type: number }[] = [];
      const later: number[] = [];
      c.receive(backup, (m) => {
        got.push({ id: m.id, kernel: m.kernel, name: m.ports[0]?.name ?? 0, type: m.ports[0]?.type ?? 0 });
        if (m.ports[0]) c.receive(m.ports[0].name, (mm) => void later.push(mm.id));
      });
      const bso = (await a.extractRight(cTask, backup, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      await rejectsWith(a.requestNotification(p, NotifyId.NOTIFY_PORT_DESTROYED, bso, 1, MsgType.MSG_TYPE_MOVE_SEND_ONCE), "KERN_INVALID_VALUE");
      assert.equal(await a.type(bso), TYPE_SEND_ONCE, "the refused request left the right in place");
      assert.equal(await a.requestNotification(p, NotifyId.NOTIFY_PORT_DESTROYED, bso, 0, MsgType.MSG_TYPE_MOVE_SEND_ONCE), 0);
      await rejectsWith(a.type(bso), "KERN_INVALID_NAME");
      await a.destroy(p);
      await until(() => got.length === 1, 3000, "port-destroyed");
      assert.equal(got[0]!.id, 69);
      assert.equal(got[0]!.kernel, true);
      assert.equal(got[0]!.type, MsgType.MSG_TYPE_MOVE_RECEIVE);
      assert.equal(await c.type(got[0]!.name), TYPE_RECEIVE);
      assert.equal(await b.type(s), TYPE_SEND, "senders keep a live right");
      b.send({ destination: s, id: 44 });
      await until(() => later.length === 1, 3000, "message to the rescued port");
      assert.equal(later[0], 44);
    });

    it("port-destroyed keeps the queue: the backup gets the notification first, then the queued messages", async () => {
      const a = await h.task("pdq-a", { window: 1 });
      const { task: c, port: cTask } = await child(h, a, "pdq-c");
      const busy = await a.allocate();
      const g = gate();
      let busyGot = 0;
      a.receive(busy, async () => {
        busyGot++;
        await g.promise;
      });
      const p = await a.allocate();
      a.receive(p, () => {});
      const cp = await give(a, cTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      const cb = await give(a, cTask, busy, MsgType.MSG_TYPE_MAKE_SEND);
      c.send({ destination: cb, id: 1 });
      await until(() => busyGot === 1, 3000, "a busy");
      c.send({ destination: cp, id: 11 });
      c.send({ destination: cp, id: 12 });
      await until(async () => (await a.call("portGetReceiveStatus", { name: p })).msgcount === 2, 3000, "queued on p");
      const backup = await c.allocate();
      const order: string[] = [];
      c.receive(backup, (m) => {
        order.push(String(m.id));
        c.receive(m.ports[0]!.name, (mm) => void order.push(String(mm.id)));
      });
      const bso = (await a.extractRight(cTask, backup, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      await a.requestNotification(p, NotifyId.NOTIFY_PORT_DESTROYED, bso, 0, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
      await a.destroy(p);
      await until(() => order.length === 3, 3000, "notification and queue at the backup").catch((e: Error) => assert.fail(`${e.message}; got ${order}`));
      assert.deepEqual(order, ["69", "11", "12"]);
      g.open();
    });

    it("send-once notification: a send-once right destroyed unused notifies its port", async () => {
      const a = await h.task("so-a");
      const { task: b, port: bTask } = await child(h, a, "so-b");
      const p = await a.allocate();
      const box = inbox(a, p);
      const so = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      const so2 = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      await b.destroy(so);
      await b.modRefs(so2, PortRight.PORT_RIGHT_SEND_ONCE, -1);
      await nth(box, 2, "two send-once notifications");
      assert.deepEqual(
        box.map((m) => [m.id, m.kernel]),
        [
          [71, true],
          [71, true],
        ],
      );
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).sorights, 0);
    });

    it("a server task that dies holding a request fails the client's RPC with MIG_SERVER_DIED", async () => {
      const a = await h.task("died-client");
      const { task: srv, port: srvTask } = await child(h, a, "died-server");
      const sp = await srv.allocate();
      let held = 0;
      const s = serve(srv, PingDefinition, {
        ping: () => {
          held++;
          return new Promise(() => {});
        },
      });
      s.add(sp, {});
      const dest = (await a.extractRight(srvTask, sp, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const c = client(a, PingDefinition, dest);
      // The expectation is attached at once: the rejection may come before detach() returns.
      const failed = rejectsWith(c.ping({ payload: new Uint8Array([1]) }), "MIG_SERVER_DIED");
      await until(() => held === 1, 3000, "server holds the request");
      await srv.detach();
      await failed;
      // Sending to the dead server now fails at once.
      await rejectsWith(c.ping({ payload: new Uint8Array([2]) }), "MACH_SEND_INVALID_DEST");
    });

    it("a task sending ids 72 and 70 to a port cannot forge notifications: they arrive with kernel=false", async () => {
      const a = await h.task("forge-a");
      const { task: b, port: bTask } = await child(h, a, "forge-b");
      const n = await a.allocate();
      const box = inbox(a, n);
      const s = await give(a, bTask, n, MsgType.MSG_TYPE_MAKE_SEND);
      b.send({ destination: s, id: 72, body: DeadNameNotification.encode({ name: 1 }).finish() });
      b.send({ destination: s, id: 70, body: NoSendersNotification.encode({ mscount: 0 }).finish() });
      await nth(box, 2);
      assert.deepEqual(
        box.map((m) => [m.id, m.kernel, m.sender]),
        [
          [72, false, b.id],
          [70, false, b.id],
        ],
      );
    });

    it("a Server does not treat a forged notification as one: it is refused as an unknown request", async () => {
      const a = await h.task("forge-srv");
      const { task: b, port: bTask } = await child(h, a, "forge-cli");
      const sp = await a.allocate();
      const seen: number[] = [];
      const s = serve(a, PingDefinition, { ping: (req) => ({ payload: req.payload }) });
      s.onNotify = (m) => void seen.push(m.id);
      s.add(sp, {});
      const dest = await give(a, bTask, sp, MsgType.MSG_TYPE_MAKE_SEND);
      await rejectsWith(b.rpc(dest, 72, DeadNameNotification.encode({ name: sp }).finish()), "MIG_BAD_ID");
      b.send({ destination: dest, id: 70, body: NoSendersNotification.encode({ mscount: 0 }).finish() });
      await until(() => s.stats.errors === 2, 3000, "both refused");
      assert.deepEqual(seen, [], "onNotify never saw a forged notification");
      // A real one does reach onNotify: b's send right goes, no-senders fires.
      const n = await a.allocate();
      s.add(n, {});
      await a.requestNotification(sp, NotifyId.NOTIFY_NO_SENDERS, n, 0);
      await b.deallocate(dest);
      await until(() => seen.length === 1, 3000, "the kernel's no-senders");
      assert.deepEqual(seen, [70]);
      assert.equal(s.stats.errors, 2);
    });
  });
}

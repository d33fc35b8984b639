// Conformance: destruction of a receive right with messages still queued, and
// the header's rights (hurd-semantics.md §1 "Destruction", "Rights in
// messages", "Task special ports").
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, NotifyId, TaskSpecialPort } from "@hurdmesh/mach";
import { DeadNameNotification, NoSendersNotification, PortDeletedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { child, DEAD, deadRefs, gate, give, inbox, nth, rejectsWith, sendRefs, sleep, TYPE_DEAD_NAME, TYPE_SEND } from "./kit.js";

for (const kind of busKinds) {
  describe(`kernel destruction and header rights (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    it("destroying a receive right destroys its queued messages and releases every right they carry", async () => {
      // b (window 1, busy) holds q; a queues one message on q carrying a send
      // right to a's x, a receive right y (c holds a send right to it), and a
      // reply send-once right to a's r. Then b destroys q.
      const a = await h.task("dq-a");
      const { task: b, port: bTask } = await child(h, a, "dq-b", { window: 1 });
      const { task: c, port: cTask } = await child(h, a, "dq-c");
      const q = await b.allocate();
      const busy = await b.allocate();
      const g = gate();
      let busyGot = 0;
      b.receive(busy, async () => {
        busyGot++;
        await g.promise;
      });
      const qbox = inbox(b, q);
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const bs = (await a.extractRight(bTask, busy, MsgType.MSG_TYPE_MAKE_SEND)).name;
      a.send({ destination: bs, id: 1 });
      await until(() => busyGot === 1, 3000, "b busy");
      const x = await a.allocate();
      const n = await a.allocate();
      const nbox = inbox(a, n);
      await a.requestNotification(x, NotifyId.NOTIFY_NO_SENDERS, n, 1);
      const y = await a.allocate();
      const cy = await give(a, cTask, y, MsgType.MSG_TYPE_MAKE_SEND);
      const cn = await c.allocate();
      const cbox = inbox(c, cn);
      await c.requestNotification(cy, NotifyId.NOTIFY_DEAD_NAME, cn, 0);
      const r = await a.allocate();
      const rbox = inbox(a, r);
      a.send({
        destination: qs,
        id: 2,
        reply: r,
        replyDisposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE,
        ports: [
          { name: x, disposition: MsgType.MSG_TYPE_MAKE_SEND },
          { name: y, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE },
        ],
      });
      await until(async () => (await b.call("portGetReceiveStatus", { name: q })).msgcount === 1, 3000, "queued");
      assert.equal(nbox.length, 0);
      await b.destroy(q);
      await until(() => nbox.length === 1 && rbox.length === 1 && cbox.length === 1, 3000, "every right of the destroyed message released");
      assert.equal(nbox[0]!.id, 70, "the carried send right was released: no-senders");
      assert.equal(NoSendersNotification.decode(nbox[0]!.body).mscount, 1);
      assert.equal(rbox[0]!.id, 71, "the reply send-once right fired a send-once notification");
      assert.equal(rbox[0]!.kernel, true);
      assert.equal(cbox[0]!.id, 72, "the carried receive right died: its senders see a dead name");
      assert.equal(DeadNameNotification.decode(cbox[0]!.body).name, cy);
      assert.equal(await c.type(cy), TYPE_DEAD_NAME);
      assert.equal(await a.type(qs), TYPE_DEAD_NAME);
      g.open();
      await sleep(20);
      assert.equal(qbox.length, 0, "the destroyed message was never delivered");
    });

    it("destroy of a name with a dead-name request yields port-deleted", async () => {
      const a = await h.task("dd-a");
      const { task: b, port: bTask } = await child(h, a, "dd-b");
      const p = await a.allocate();
      const s = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await b.modRefs(s, 0, 2);
      const n = await b.allocate();
      const box = inbox(b, n);
      await b.requestNotification(s, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      await b.destroy(s);
      const m = await nth(box, 1, "port-deleted");
      assert.equal(m.id, 65);
      assert.equal(PortDeletedNotification.decode(m.body).name, s);
      await rejectsWith(b.type(s), "KERN_INVALID_NAME");
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).srights, false, "all three urefs went at once");
    });

    it("MACH_PORT_NULL and MACH_PORT_DEAD are legal in place of rights, and PORT_NAME moves no right", async () => {
      const a = await h.task("null-a");
      const { task: b, port: bTask } = await child(h, a, "null-b");
      const q = await b.allocate();
      const box = inbox(b, q);
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const p = await a.allocate();
      const fails: number[] = [];
      a.onSendFailed = (f) => fails.push(f.code);
      a.send({
        destination: qs,
        id: 3,
        reply: DEAD,
        ports: [
          { name: 0, disposition: MsgType.MSG_TYPE_COPY_SEND },
          { name: DEAD, disposition: MsgType.MSG_TYPE_MOVE_SEND },
          { name: p, disposition: MsgType.MSG_TYPE_PORT_NAME },
        ],
      });
      const m = await nth(box).catch((e: Error) => assert.fail(`${e.message}; failures ${fails.map((c) => c.toString(16))}`));
      assert.equal(m.reply, DEAD);
      assert.equal(m.ports[0]!.name, 0);
      assert.equal(m.ports[1]!.name, DEAD);
      assert.equal(m.ports[2]!.name, p, "a plain integer, as the sender wrote it");
      assert.equal(m.ports[2]!.type, MsgType.MSG_TYPE_PORT_NAME);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).srights, false);
      assert.ok(!(await b.names()).names.includes(p) || (await b.type(p)) !== TYPE_SEND);
    });

    it("a reply right may be a send right (MAKE_SEND / COPY_SEND); it arrives as one", async () => {
      const a = await h.task("rs-a");
      const { task: b, port: bTask } = await child(h, a, "rs-b");
      const q = await b.allocate();
      const box = inbox(b, q);
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const r = await a.allocate();
      const rbox = inbox(a, r);
      a.send({ destination: qs, id: 4, reply: r, replyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
      const m = await nth(box);
      assert.equal(m.replyType, MsgType.MSG_TYPE_MOVE_SEND);
      assert.equal(await b.type(m.reply), TYPE_SEND);
      assert.equal((await a.call("portGetReceiveStatus", { name: r })).mscount, 1);
      // A send reply right can be used more than once.
      b.send({ destination: m.reply, id: 104 });
      b.send({ destination: m.reply, id: 105 });
      await nth(rbox, 2);
      assert.deepEqual(
        rbox.map((x) => x.id),
        [104, 105],
      );
      assert.equal(await sendRefs(b, m.reply), 1);
    });

    it("messages sent while a receive right is in transit wait for it and reach the new holder", async () => {
      const a = await h.task("tr-a");
      const { task: b, port: bTask } = await child(h, a, "tr-b", { window: 1 });
      const { task: c, port: cTask } = await child(h, a, "tr-c");
      const busy = await b.allocate();
      const g = gate();
      let busyGot = 0;
      b.receive(busy, async () => {
        busyGot++;
        await g.promise;
      });
      const q = await b.allocate();
      const got: string[] = [];
      b.receive(q, (m) => {
        got.push("carrier");
        b.receive(m.ports[0]!.name, (mm) => void got.push(String(mm.id)));
      });
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const bs = (await a.extractRight(bTask, busy, MsgType.MSG_TYPE_MAKE_SEND)).name;
      a.send({ destination: bs, id: 1 });
      await until(() => busyGot === 1, 3000, "b busy");
      const p = await a.allocate();
      const cp = await give(a, cTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      a.send({ destination: qs, id: 2, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }] });
      await until(async () => (await b.call("portGetReceiveStatus", { name: q })).msgcount === 1, 3000, "carrier queued");
      // p's receive right is now in flight: c's sends still work and queue on p.
      const cfails: number[] = [];
      c.onSendFailed = (f) => cfails.push(f.code);
      c.send({ destination: cp, id: 301 });
      c.send({ destination: cp, id: 302 });
      await sleep(30);
      assert.deepEqual(cfails, []);
      assert.equal(got.length, 0);
      g.open();
      await until(() => got.length === 3, 3000, "carrier then both messages").catch((e: Error) => assert.fail(`${e.message}; got ${got}`));
      assert.deepEqual(got, ["carrier", "301", "302"]);
    });

    it("task special ports: the kernel port is the task's own, bootstrap is set, read and inherited", async () => {
      const a = await h.task("sp-a");
      assert.equal(await a.getSpecialPort(0, TaskSpecialPort.TASK_KERNEL_PORT), a.self);
      assert.equal(await a.getSpecialPort(0, TaskSpecialPort.TASK_BOOTSTRAP_PORT), 0);
      const boot = await a.allocate();
      await a.setSpecialPort(0, TaskSpecialPort.TASK_BOOTSTRAP_PORT, boot);
      assert.equal((await a.call("portGetReceiveStatus", { name: boot })).mscount, 1, "a send right made from the receive right is counted");
      assert.equal(await a.getSpecialPort(0, TaskSpecialPort.TASK_BOOTSTRAP_PORT), boot, "a send right under the receive right's name");
      const { task: b, port: bTask } = await child(h, a, "sp-b");
      assert.ok(b.bootstrap !== 0, "a child inherits its parent's bootstrap port");
      const box = inbox(a, boot);
      b.send({ destination: b.bootstrap, id: 7 });
      assert.equal((await nth(box)).id, 7);
      assert.equal(await a.getSpecialPort(bTask, TaskSpecialPort.TASK_KERNEL_PORT), bTask);
      await a.destroy(boot);
      assert.equal(await b.getSpecialPort(0, TaskSpecialPort.TASK_BOOTSTRAP_PORT), DEAD);
      assert.equal(await b.type(b.bootstrap), TYPE_DEAD_NAME);
      assert.equal(await deadRefs(b, b.bootstrap), 1);
    });
  });
}

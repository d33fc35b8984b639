// Conformance: rights in messages (hurd-semantics.md §1 "Rights in messages"):
// each sender-side disposition, what arrives, what stays with the sender, dead
// names and ports that die in flight, and moving a receive right with its queue.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, PortRight, type Task } from "@hurdmesh/mach";
import { NoSendersNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { child, DEAD, deadRefs, gate, give, inbox, nth, rejectsWith, sendRefs, TYPE_DEAD_NAME, TYPE_RECEIVE, TYPE_SEND, TYPE_SEND_ONCE } from "./kit.js";

for (const kind of busKinds) {
  describe(`kernel message dispositions (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    /** a, its child b, b's port q with an inbox, and a's send right to q. */
    async function pair(label: string, o: { window?: number } = {}) {
      const a = await h.task(`${label}-a`);
      const { task: b, port: bTask } = await child(h, a, `${label}-b`, o);
      const q = await b.allocate();
      const box = inbox(b, q);
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      return { a, b, bTask, q, box, qs };
    }

    const portOf = (t: Task, name: number) => h.kernel.tasks.get(t.id)!.space.entries.get(name)!.port!;

    it("COPY_SEND leaves the sender's urefs unchanged and gives the receiver a send right", async () => {
      const { a, b, box, qs } = await pair("copy");
      const p = await a.allocate();
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.modRefs(p, PortRight.PORT_RIGHT_SEND, 1);
      a.send({ destination: qs, id: 10, ports: [{ name: p, disposition: MsgType.MSG_TYPE_COPY_SEND }] });
      const m = await nth(box);
      assert.equal(m.id, 10);
      assert.equal(m.kernel, false);
      assert.equal(m.sender, a.id);
      assert.equal(m.ports[0]!.type, MsgType.MSG_TYPE_MOVE_SEND);
      assert.equal(await b.type(m.ports[0]!.name), TYPE_SEND);
      assert.equal(await sendRefs(a, p), 2, "COPY_SEND keeps the sender's urefs");
      assert.equal(portOf(a, p).srights, 2, "one send right in each space");
      const st = await a.call("portGetReceiveStatus", { name: p });
      assert.equal(st.mscount, 1, "copying does not mint");
    });

    it("COPY_SEND of a receive-only name fails MACH_SEND_INVALID_RIGHT and nothing moves", async () => {
      const { a, box, qs } = await pair("copy-bad");
      const p = await a.allocate();
      const fails: number[] = [];
      a.onSendFailed = (f) => fails.push(f.code);
      a.send({ destination: qs, id: 11, ports: [{ name: p, disposition: MsgType.MSG_TYPE_COPY_SEND }] });
      await until(() => fails.length === 1);
      assert.equal(fails[0], 0x1000000a);
      assert.equal(box.length, 0);
      assert.equal(await a.type(p), TYPE_RECEIVE);
    });

    it("MOVE_SEND drops one of the sender's urefs", async () => {
      const { a, b, box, qs } = await pair("move");
      const p = await a.allocate();
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.modRefs(p, PortRight.PORT_RIGHT_SEND, 1);
      a.send({ destination: qs, id: 12, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_SEND }] });
      const m = await nth(box);
      assert.equal(await sendRefs(a, p), 1);
      assert.equal(await sendRefs(b, m.ports[0]!.name), 1);
      assert.equal(portOf(a, p).srights, 2);
    });

    it("MOVE_SEND of the last uref removes the name and keeps srights", async () => {
      const { a, b, bTask, q, box, qs } = await pair("move-last");
      // a holds one uref of a send right to b's second port x; b watches x for no-senders.
      const x = await b.allocate();
      const xs = (await a.extractRight(bTask, x, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const nport = await b.allocate();
      const nbox = inbox(b, nport);
      await b.requestNotification(x, 70, nport, 0);
      const port = portOf(b, x);
      assert.equal(port.srights, 1);
      a.send({ destination: qs, id: 13, ports: [{ name: xs, disposition: MsgType.MSG_TYPE_MOVE_SEND }] });
      const m = await nth(box);
      await rejectsWith(a.type(xs), "KERN_INVALID_NAME");
      // It arrives in the space holding x's receive right: under x's own name.
      assert.equal(m.ports[0]!.name, x);
      assert.equal(await b.type(x), TYPE_SEND | TYPE_RECEIVE);
      assert.equal(port.srights, 1, "the right moved, no send right was lost or made");
      assert.equal(nbox.length, 0, "no no-senders for a right that only moved");
      assert.notEqual(q, x);
    });

    it("MAKE_SEND mints a send right from the receive right and counts it in mscount", async () => {
      const { a, b, box, qs } = await pair("make");
      const p = await a.allocate();
      for (let i = 0; i < 3; i++) a.send({ destination: qs, id: 14, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MAKE_SEND }] });
      await nth(box, 3);
      const st = await a.call("portGetReceiveStatus", { name: p });
      assert.equal(st.mscount, 3);
      assert.equal(st.srights, true);
      assert.equal(await a.type(p), TYPE_RECEIVE, "the sender's name gains no send right");
      const n = box[0]!.ports[0]!.name;
      assert.ok(box.every((m) => m.ports[0]!.name === n));
      assert.equal(await sendRefs(b, n), 3);
      // MAKE_SEND needs the receive right.
      const fails: number[] = [];
      a.onSendFailed = (f) => fails.push(f.code);
      a.send({ destination: qs, id: 15, ports: [{ name: qs, disposition: MsgType.MSG_TYPE_MAKE_SEND }] });
      await until(() => fails.length === 1);
      assert.equal(fails[0], 0x1000000a);
      assert.equal(await sendRefs(a, qs), 1);
    });

    it("MAKE_SEND_ONCE mints a send-once right that arrives under a fresh name", async () => {
      const { a, b, box, qs } = await pair("makeso");
      const p = await a.allocate();
      const pbox = inbox(a, p);
      a.send({
        destination: qs,
        id: 16,
        ports: [
          { name: p, disposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE },
          { name: p, disposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE },
        ],
      });
      const m = await nth(box);
      assert.equal(m.ports[0]!.type, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
      assert.notEqual(m.ports[0]!.name, m.ports[1]!.name);
      assert.equal(await b.type(m.ports[0]!.name), TYPE_SEND_ONCE);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).sorights, 2);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).mscount, 0);
      // Using it sends exactly one message and consumes it.
      b.send({ destination: m.ports[0]!.name, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 17 });
      const r = await nth(pbox);
      assert.equal(r.id, 17);
      assert.equal(r.sender, b.id);
      await rejectsWith(b.type(m.ports[0]!.name), "KERN_INVALID_NAME");
      await until(async () => (await a.call("portGetReceiveStatus", { name: p })).sorights === 1);
    });

    it("MOVE_SEND_ONCE moves the right: the sender's name goes, the receiver can use it", async () => {
      const { a, b, box, qs } = await pair("moveso");
      const p = await a.allocate();
      const pbox = inbox(a, p);
      const so = (await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      a.send({ destination: qs, id: 18, ports: [{ name: so, disposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE }] });
      const m = await nth(box);
      await rejectsWith(a.type(so), "KERN_INVALID_NAME");
      assert.equal(m.ports[0]!.type, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).sorights, 1);
      b.send({ destination: m.ports[0]!.name, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 19 });
      assert.equal((await nth(pbox)).id, 19);
      // A send-once right cannot be copied.
      const so2 = (await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      const fails: number[] = [];
      a.onSendFailed = (f) => fails.push(f.code);
      a.send({ destination: qs, id: 20, ports: [{ name: so2, disposition: MsgType.MSG_TYPE_COPY_SEND }] });
      await until(() => fails.length === 1);
      assert.equal(fails[0], 0x1000000a);
      assert.equal(await a.type(so2), TYPE_SEND_ONCE);
    });

    it("a reply right travels as a send-once right; the reply goes to it", async () => {
      const { a, b, box, qs } = await pair("reply");
      const r = await a.allocate();
      const rbox = inbox(a, r);
      a.send({ destination: qs, id: 21, reply: r, replyDisposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE });
      const m = await nth(box);
      assert.equal(m.replyType, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
      assert.equal(await b.type(m.reply), TYPE_SEND_ONCE);
      b.send({ destination: m.reply, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 121 });
      const rep = await nth(rbox);
      assert.equal(rep.id, 121);
      assert.equal(rep.kernel, false);
    });

    it("a dead name sent with COPY_SEND or MOVE_SEND arrives as MACH_PORT_DEAD", async () => {
      const { a, box, qs } = await pair("deadname");
      const d = await a.allocate(PortRight.PORT_RIGHT_DEAD_NAME);
      await a.modRefs(d, PortRight.PORT_RIGHT_DEAD_NAME, 1);
      a.send({
        destination: qs,
        id: 22,
        ports: [
          { name: d, disposition: MsgType.MSG_TYPE_COPY_SEND },
          { name: d, disposition: MsgType.MSG_TYPE_MOVE_SEND },
        ],
      });
      const m = await nth(box);
      assert.equal(m.ports[0]!.name, DEAD);
      assert.equal(m.ports[1]!.name, DEAD);
      assert.equal(await deadRefs(a, d), 1, "MOVE_SEND of a dead name drops one uref, COPY_SEND none");
    });

    it("a right whose port dies while the message is queued arrives as MACH_PORT_DEAD", async () => {
      const a = await h.task("inflight-a");
      const { task: b, port: bTask } = await child(h, a, "inflight-b", { window: 1 });
      const q = await b.allocate();
      const g = gate();
      const got: { id: number; ports: { name: number; type: number }[] }[] = [];
      b.receive(q, async (m) => {
        got.push(m);
        if (m.id === 1) await g.promise;
      });
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const x = await a.allocate();
      a.send({ destination: qs, id: 1 });
      await until(() => got.length === 1, 3000, "first message");
      a.send({ destination: qs, id: 2, ports: [{ name: x, disposition: MsgType.MSG_TYPE_MAKE_SEND }, { name: x, disposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE }] });
      await until(async () => (await b.call("portGetReceiveStatus", { name: q })).msgcount === 1, 3000, "queued");
      await a.destroy(x);
      g.open();
      await until(() => got.length === 2, 3000, "second message");
      assert.equal(got[1]!.ports[0]!.name, DEAD);
      assert.equal(got[1]!.ports[1]!.name, DEAD);
      const names = await b.names();
      assert.ok(names.types.every((t) => t !== TYPE_DEAD_NAME), "nothing was copied out for the dead port");
    });

    it("MOVE_RECEIVE resets mscount, keeps queued messages and extant senders, and delivers to the new holder", async () => {
      // a holds p (window 1, busy on another port, so messages to p queue up);
      // c holds a send right to p; a moves p's receive right to b.
      const a = await h.task("mr-a", { window: 1 });
      const { task: b, port: bTask } = await child(h, a, "mr-b");
      const { task: c, port: cTask } = await child(h, a, "mr-c");
      const busy = await a.allocate();
      const g = gate();
      let busyGot = 0;
      a.receive(busy, async () => {
        busyGot++;
        await g.promise;
      });
      const p = await a.allocate();
      const aGot: number[] = [];
      a.receive(p, (m) => void aGot.push(m.id));
      const cp = await give(a, cTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.deallocate(p);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).mscount, 2);
      const busyS = await give(a, cTask, busy, MsgType.MSG_TYPE_MAKE_SEND);
      c.send({ destination: busyS, id: 100 });
      await until(() => busyGot === 1, 3000, "a busy");
      for (let i = 1; i <= 3; i++) c.send({ destination: cp, id: 200 + i });
      await until(async () => (await a.call("portGetReceiveStatus", { name: p })).msgcount === 3, 3000, "queued on p");
      // b's port q, where the receive right goes.
      const q = await b.allocate();
      const order: string[] = [];
      let newName = 0;
      b.receive(q, (m) => {
        order.push(`carrier`);
        newName = m.ports[0]!.name;
        assert.equal(m.ports[0]!.type, MsgType.MSG_TYPE_MOVE_RECEIVE);
        b.receive(newName, (mm) => void order.push(String(mm.id)));
      });
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      a.send({ destination: qs, id: 300, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }] });
      await until(() => order.length >= 4, 3000, "carrier and queued messages at b").catch((e: Error) => assert.fail(`${e.message}; got ${order.join(",")}`));
      assert.deepEqual(order, ["carrier", "201", "202", "203"], "the carrier first, then the queue, in order");
      await rejectsWith(a.type(p), "KERN_INVALID_NAME");
      assert.equal(await b.type(newName), TYPE_RECEIVE);
      const st = await b.call("portGetReceiveStatus", { name: newName });
      assert.equal(st.mscount, 0, "moving a receive right resets the make-send count");
      assert.equal(st.srights, true, "extant send rights survive the move");
      c.send({ destination: cp, id: 204 });
      await until(() => order.length === 5, 3000, "a send after the move");
      assert.equal(order[4], "204");
      g.open();
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(aGot, [], "the old holder got none of them");
    });

    it("a receive right arriving where a send right to its port is held lands on the same name", async () => {
      const { a, b, bTask, box, qs } = await pair("mr-merge");
      const p = await a.allocate();
      const n = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      a.send({ destination: qs, id: 30, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }] });
      const m = await nth(box);
      assert.equal(m.ports[0]!.name, n, "send and receive rights of one port share one name");
      assert.equal(await b.type(n), TYPE_SEND | TYPE_RECEIVE);
      assert.equal(await sendRefs(b, n), 1);
      // insert_right does the same at the name of the send right, and refuses any other name.
      const p2 = await a.allocate();
      const n2 = await give(a, bTask, p2, MsgType.MSG_TYPE_MAKE_SEND);
      await rejectsWith(a.insertRight(bTask, n2 + 1000, p2, MsgType.MSG_TYPE_MOVE_RECEIVE), "KERN_RIGHT_EXISTS");
      assert.equal(await a.type(p2), TYPE_RECEIVE);
      await a.insertRight(bTask, n2, p2, MsgType.MSG_TYPE_MOVE_RECEIVE);
      await rejectsWith(a.type(p2), "KERN_INVALID_NAME");
      assert.equal(await b.type(n2), TYPE_SEND | TYPE_RECEIVE);
    });

    it("MOVE_RECEIVE takes the port out of the sender's port set", async () => {
      const { a, b, box, qs } = await pair("mr-pset");
      const p = await a.allocate();
      const set = await a.allocate(PortRight.PORT_RIGHT_PORT_SET);
      await a.call("portMoveMember", { member: p, after: set });
      assert.deepEqual((await a.call("portGetSetStatus", { name: set })).members, [p]);
      a.send({ destination: qs, id: 32, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }] });
      const m = await nth(box);
      assert.deepEqual((await a.call("portGetSetStatus", { name: set })).members, []);
      assert.equal((await b.call("portGetReceiveStatus", { name: m.ports[0]!.name })).pset, 0);
    });

    it("MOVE_RECEIVE keeps the port's no-senders and port-destroyed requests", async () => {
      const { a, b, box, qs } = await pair("mr-req");
      const { task: c, port: cTask } = await child(h, a, "mr-req-c");
      const p = await a.allocate();
      const n = await a.allocate();
      const nbox = inbox(a, n);
      const cs = await give(a, cTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.requestNotification(p, 70, n, 0);
      const backup = await a.allocate();
      const bkbox = inbox(a, backup);
      await a.requestNotification(p, 69, backup, 0);
      a.send({ destination: qs, id: 31, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }] });
      const m = await nth(box);
      const bp = m.ports[0]!.name;
      const st = await b.call("portGetReceiveStatus", { name: bp });
      assert.equal(st.nsrequest, true);
      assert.equal(st.pdrequest, true);
      assert.equal(st.mscount, 0);
      await c.deallocate(cs);
      const ns = await nth(nbox, 1, "no-senders after the move");
      assert.equal(ns.id, 70);
      assert.equal(NoSendersNotification.decode(ns.body).mscount, 0, "the count restarted at the move");
      await b.destroy(bp);
      const pd = await nth(bkbox, 1, "port-destroyed after the move");
      assert.equal(pd.id, 69);
      assert.equal(pd.ports[0]!.type, MsgType.MSG_TYPE_MOVE_RECEIVE);
      assert.equal(await a.type(pd.ports[0]!.name), TYPE_RECEIVE);
    });

    it("a receive right cannot travel to its own port; the failed send leaves it in place", async () => {
      const a = await h.task("mr-self");
      const p = await a.allocate();
      const ps = (await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const fails: number[] = [];
      a.onSendFailed = (f) => fails.push(f.code);
      a.send({ destination: ps, id: 1, ports: [{ name: p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }] });
      await until(() => fails.length === 1);
      assert.equal(fails[0], 0x1000000a);
      assert.equal(await a.type(p), TYPE_SEND | TYPE_RECEIVE);
      assert.equal(await sendRefs(a, p), 1);
    });
  });
}

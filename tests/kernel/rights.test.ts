// Conformance: names and rights (hurd-semantics.md §1 "Ports vs names",
// "Right kinds", "Destruction"): allocate, deallocate, destroy, mod_refs,
// get_refs, names, type; one name per port for send+receive; distinct names
// for send-once rights; dead names with their urefs.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, PortRight } from "@hurdmesh/mach";
import { busKinds, startHurd, type Hurd } from "../harness.js";
import {
  child,
  deadRefs,
  give,
  inbox,
  nth,
  rejectsWith,
  sendRefs,
  snapshot,
  spaceOf,
  TYPE_DEAD_NAME,
  TYPE_PORT_SET,
  TYPE_RECEIVE,
  TYPE_SEND,
  TYPE_SEND_ONCE,
} from "./kit.js";

for (const kind of busKinds) {
  describe(`kernel names and rights (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    it("allocate RECEIVE makes a new name holding only a receive right", async () => {
      const a = await h.task("alloc");
      const before = await a.names();
      const p = await a.allocate();
      assert.ok(p !== 0 && p !== 0xffffffff);
      assert.ok(!before.names.includes(p));
      assert.equal(await a.type(p), TYPE_RECEIVE);
      assert.equal(await a.getRefs(p, PortRight.PORT_RIGHT_RECEIVE), 1);
      assert.equal(await a.getRefs(p, PortRight.PORT_RIGHT_SEND), 0);
      const after = await a.names();
      assert.equal(after.names.length, before.names.length + 1);
      assert.equal(after.types[after.names.indexOf(p)], TYPE_RECEIVE);
      const q = await a.allocate();
      assert.notEqual(q, p, "every allocation gets a fresh name");
    });

    it("allocate PORT_SET and DEAD_NAME give a port set and a dead name with one uref", async () => {
      const a = await h.task("alloc2");
      const s = await a.allocate(PortRight.PORT_RIGHT_PORT_SET);
      const d = await a.allocate(PortRight.PORT_RIGHT_DEAD_NAME);
      assert.equal(await a.type(s), TYPE_PORT_SET);
      assert.equal(await a.type(d), TYPE_DEAD_NAME);
      assert.equal(await deadRefs(a, d), 1);
      await rejectsWith(a.allocate(PortRight.PORT_RIGHT_SEND), "KERN_INVALID_VALUE");
      await a.deallocate(d);
      await rejectsWith(a.type(d), "KERN_INVALID_NAME");
    });

    it("a send right made from a receive right shares its name and merges urefs", async () => {
      const a = await h.task("share");
      const p = await a.allocate();
      const r1 = await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      assert.equal(r1.name, p, "send and receive rights of one port share one name");
      assert.equal(r1.type, MsgType.MSG_TYPE_MOVE_SEND);
      assert.equal(await a.type(p), TYPE_SEND | TYPE_RECEIVE);
      assert.equal(await sendRefs(a, p), 1);
      const r2 = await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      assert.equal(r2.name, p);
      assert.equal(await sendRefs(a, p), 2, "a second send right bumps urefs on the same name");
    });

    it("send rights to one port received twice in another task land on one name with 2 urefs", async () => {
      const a = await h.task("merge-a");
      const { task: b, port: bTask } = await child(h, a, "merge-b");
      const q = await b.allocate();
      const box = inbox(b, q);
      const qs = await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND);
      const p = await a.allocate();
      a.send({
        destination: qs.name,
        id: 1,
        ports: [
          { name: p, disposition: MsgType.MSG_TYPE_MAKE_SEND },
          { name: p, disposition: MsgType.MSG_TYPE_MAKE_SEND },
        ],
      });
      const m = await nth(box);
      assert.equal(m.ports.length, 2);
      assert.equal(m.ports[0]!.name, m.ports[1]!.name, "same port, same name");
      assert.equal(m.ports[0]!.type, MsgType.MSG_TYPE_MOVE_SEND);
      assert.equal(await sendRefs(b, m.ports[0]!.name), 2);
      // The kernel counts one send right per space, however many urefs.
      assert.equal(h.kernel.tasks.get(a.id)!.space.entries.get(p)!.port!.srights, 1);
    });

    it("every send-once right gets a distinct name of its own", async () => {
      const a = await h.task("so-names");
      const p = await a.allocate();
      const s1 = await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      const s2 = await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      assert.equal(s1.type, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
      assert.notEqual(s1.name, p);
      assert.notEqual(s2.name, p);
      assert.notEqual(s1.name, s2.name);
      assert.equal(await a.type(s1.name), TYPE_SEND_ONCE);
      assert.equal(await a.getRefs(s1.name, PortRight.PORT_RIGHT_SEND_ONCE), 1);
      assert.equal(await a.type(p), TYPE_RECEIVE, "the receive name gains no send-once bits");
      const st = await a.call("portGetReceiveStatus", { name: p });
      assert.equal(st.sorights, 2);
    });

    it("mod_refs adjusts send urefs; reaching 0 drops the send right but keeps the receive right", async () => {
      const a = await h.task("modrefs");
      const p = await a.allocate();
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.modRefs(p, PortRight.PORT_RIGHT_SEND, 2);
      assert.equal(await sendRefs(a, p), 3);
      await rejectsWith(a.modRefs(p, PortRight.PORT_RIGHT_SEND, -4), "KERN_INVALID_VALUE");
      assert.equal(await sendRefs(a, p), 3, "a failed mod_refs changes nothing");
      await a.modRefs(p, PortRight.PORT_RIGHT_SEND, -3);
      assert.equal(await sendRefs(a, p), 0);
      assert.equal(await a.type(p), TYPE_RECEIVE);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).srights, false);
      await rejectsWith(a.modRefs(p, PortRight.PORT_RIGHT_SEND, 1), "KERN_INVALID_RIGHT");
    });

    it("mod_refs on receive, send-once and port set accepts only 0 and -1; -1 destroys", async () => {
      const a = await h.task("modrefs1");
      const p = await a.allocate();
      await rejectsWith(a.modRefs(p, PortRight.PORT_RIGHT_RECEIVE, 1), "KERN_INVALID_VALUE");
      await a.modRefs(p, PortRight.PORT_RIGHT_RECEIVE, 0);
      assert.equal(await a.type(p), TYPE_RECEIVE);
      const so = await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      await rejectsWith(a.modRefs(so.name, PortRight.PORT_RIGHT_SEND_ONCE, 1), "KERN_INVALID_VALUE");
      await rejectsWith(a.modRefs(so.name, PortRight.PORT_RIGHT_SEND, -1), "KERN_INVALID_RIGHT");
      await a.modRefs(p, PortRight.PORT_RIGHT_RECEIVE, -1);
      await rejectsWith(a.type(p), "KERN_INVALID_NAME");
      // The port died: the send-once right under its own name is now a dead name.
      assert.equal(await a.type(so.name), TYPE_DEAD_NAME);
      const s = await a.allocate(PortRight.PORT_RIGHT_PORT_SET);
      await a.modRefs(s, PortRight.PORT_RIGHT_PORT_SET, -1);
      await rejectsWith(a.type(s), "KERN_INVALID_NAME");
    });

    it("mod_refs on a dead name adds and removes urefs; 0 frees the name", async () => {
      const a = await h.task("modrefs-dead");
      const d = await a.allocate(PortRight.PORT_RIGHT_DEAD_NAME);
      await a.modRefs(d, PortRight.PORT_RIGHT_DEAD_NAME, 4);
      assert.equal(await deadRefs(a, d), 5);
      await rejectsWith(a.modRefs(d, PortRight.PORT_RIGHT_SEND, 1), "KERN_INVALID_RIGHT");
      await a.modRefs(d, PortRight.PORT_RIGHT_DEAD_NAME, -5);
      await rejectsWith(a.type(d), "KERN_INVALID_NAME");
    });

    it("deallocate drops one send uref; the last one removes the name", async () => {
      const a = await h.task("dealloc-a");
      const { task: b, port: bTask } = await child(h, a, "dealloc-b");
      const p = await a.allocate();
      const n = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await b.modRefs(n, PortRight.PORT_RIGHT_SEND, 1);
      assert.equal(await sendRefs(b, n), 2);
      await b.deallocate(n);
      assert.equal(await sendRefs(b, n), 1);
      assert.equal(await b.type(n), TYPE_SEND);
      await b.deallocate(n);
      await rejectsWith(b.type(n), "KERN_INVALID_NAME");
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).srights, false, "the port has no senders left");
    });

    it("deallocate of a receive right alone fails KERN_INVALID_RIGHT and changes nothing", async () => {
      const a = await h.task("dealloc-recv");
      const p = await a.allocate();
      const before = await snapshot(a);
      await rejectsWith(a.deallocate(p), "KERN_INVALID_RIGHT");
      await rejectsWith(a.deallocate(987654), "KERN_INVALID_NAME");
      assert.deepEqual(await snapshot(a), before);
    });

    it("deallocate of a send-once right frees its name and sends a send-once notification", async () => {
      const a = await h.task("dealloc-so");
      const p = await a.allocate();
      const box = inbox(a, p);
      const so = await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      await a.deallocate(so.name);
      await rejectsWith(a.type(so.name), "KERN_INVALID_NAME");
      const m = await nth(box);
      assert.equal(m.id, 71);
      assert.equal(m.kernel, true);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).sorights, 0);
    });

    it("destroy of a receive+send name kills the port: other holders see a dead name", async () => {
      const a = await h.task("destroy-a");
      const { task: b, port: bTask } = await child(h, a, "destroy-b");
      const p = await a.allocate();
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.modRefs(p, PortRight.PORT_RIGHT_SEND, 2);
      const n = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.destroy(p);
      await rejectsWith(a.type(p), "KERN_INVALID_NAME");
      assert.ok(!(await a.names()).names.includes(p), "every right under the name went");
      assert.equal(await b.type(n), TYPE_DEAD_NAME);
    });

    it("when a port dies, send rights become dead names keeping their urefs", async () => {
      const a = await h.task("dead-a");
      const { task: b, port: bTask } = await child(h, a, "dead-b");
      const p = await a.allocate();
      const n = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await b.modRefs(n, PortRight.PORT_RIGHT_SEND, 2);
      const so = await give(a, bTask, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      await a.destroy(p);
      assert.equal(await b.type(n), TYPE_DEAD_NAME);
      assert.equal(await deadRefs(b, n), 3);
      assert.equal(await sendRefs(b, n), 0);
      assert.equal(await b.type(so), TYPE_DEAD_NAME, "a send-once right dies into a dead name too");
      assert.equal(await deadRefs(b, so), 1);
      const names = await b.names();
      assert.equal(names.types[names.names.indexOf(n)], TYPE_DEAD_NAME);
      await b.deallocate(n);
      await b.deallocate(n);
      assert.equal(await deadRefs(b, n), 1);
      await b.deallocate(n);
      await rejectsWith(b.type(n), "KERN_INVALID_NAME");
    });

    it("port sets: a port is in at most one set, get_set_status lists members", async () => {
      const a = await h.task("psets");
      const p = await a.allocate();
      const s1 = await a.allocate(PortRight.PORT_RIGHT_PORT_SET);
      const s2 = await a.allocate(PortRight.PORT_RIGHT_PORT_SET);
      await a.call("portMoveMember", { member: p, after: s1 });
      assert.deepEqual((await a.call("portGetSetStatus", { name: s1 })).members, [p]);
      assert.equal((await a.call("portGetReceiveStatus", { name: p })).pset, s1);
      await a.call("portMoveMember", { member: p, after: s2 });
      assert.deepEqual((await a.call("portGetSetStatus", { name: s1 })).members, []);
      assert.deepEqual((await a.call("portGetSetStatus", { name: s2 })).members, [p]);
      await a.call("portMoveMember", { member: p, after: 0 });
      assert.deepEqual((await a.call("portGetSetStatus", { name: s2 })).members, []);
      await rejectsWith(a.call("portMoveMember", { member: s1, after: s2 }), "KERN_INVALID_RIGHT");
      // A port set is not transferable.
      const before = await spaceOf(a);
      await rejectsWith(a.extractRight(0, s1, MsgType.MSG_TYPE_MOVE_RECEIVE), "KERN_INVALID_RIGHT");
      assert.deepEqual(await spaceOf(a), before);
    });
  });
}

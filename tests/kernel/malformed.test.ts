// Conformance: bad input. Tokens are checked on every trap; garbage, unknown
// names, wrong right types, wrong dispositions and oversize messages fail with
// a clear HurdError and leave the kernel state exactly as it was.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, HurdError, MsgType, NotifyId, PortRight, type Task } from "@hurdmesh/mach";
import { methods, subjectsOf } from "@hurdmesh/mach/internal";
import { CallReply, MachDefinition, Trap, type MsgPort, type SendFailed } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { child, inbox, rejectsWith, sleep, snapshot } from "./kit.js";

const mach = methods(MachDefinition);

for (const kind of busKinds) {
  describe(`kernel bad input (${kind} bus)`, () => {
    let h: Hurd;
    let trapSubject: string;
    before(async () => {
      h = await startHurd(kind, { maxBodyBytes: 64, maxPortsPerMessage: 4 });
      trapSubject = subjectsOf(h.kernel.config.system).trap;
    });
    after(async () => {
      await h.close();
    });

    /**
     * A raw trap on the bus, as the process of task `as` could publish it
     * (on NATS as that task's own user: nobody else may publish traps, and
     * the kernel answers only on the asker's inbox); answers the kernel's CallReply.
     */
    async function rawTrap(bytes: Uint8Array, as: number): Promise<CallReply> {
      return CallReply.decode(await (await h.taskBus(as)).request(trapSubject, bytes, 3000));
    }
    const tokenOf = (t: Task) => h.kernel.tasks.get(t.id)!.token;

    /** a, its child b with an inbox on q, a's send right qs to q, and a's port p with send (2 urefs) and a send-once. */
    async function scene(label: string) {
      const a = await h.task(`${label}-a`);
      const { task: b, port: bTask } = await child(h, a, `${label}-b`);
      const q = await b.allocate();
      const box = inbox(b, q);
      const qs = (await a.extractRight(bTask, q, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const p = await a.allocate();
      await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND);
      await a.modRefs(p, PortRight.PORT_RIGHT_SEND, 1);
      const so = (await a.extractRight(0, p, MsgType.MSG_TYPE_MAKE_SEND_ONCE)).name;
      const dead = await a.allocate(PortRight.PORT_RIGHT_DEAD_NAME);
      const fails: SendFailed[] = [];
      a.onSendFailed = (f) => fails.push(f);
      return { a, b, bTask, q, box, qs, p, so, dead, fails };
    }

    /** Everything observable about a's and b's spaces and a's port p. */
    async function state(s: Awaited<ReturnType<typeof scene>>) {
      const st = await s.a.call("portGetReceiveStatus", { name: s.p });
      const bq = await s.b.call("portGetReceiveStatus", { name: s.q });
      return { a: await snapshot(s.a), b: await snapshot(s.b), p: st, q: bq, srights: h.kernel.tasks.get(s.a.id)!.space.entries.get(s.p)!.port!.srights };
    }

    /** Sends one bad message and expects it refused with `expect`, changing nothing. */
    async function refused(s: Awaited<ReturnType<typeof scene>>, m: Parameters<Task["send"]>[0], expect: keyof typeof Errno) {
      const before = await state(s);
      const n = s.fails.length;
      s.a.send(m);
      await until(() => s.fails.length === n + 1, 3000, `failure of ${JSON.stringify(m)}`);
      assert.equal(new HurdError(s.fails[n]!.code).errno, expect);
      assert.deepEqual(await state(s), before, `state unchanged after ${expect}`);
    }

    it("Task.attach with a wrong token rejects KERN_INVALID_TASK", async () => {
      const a = await h.task("tok-a");
      const r = await a.taskCreate("tok-b");
      const rejected = h.kernel.stats.rejectedTraps;
      await rejectsWith(h.attach(r.taskId, r.token.replace(/^./, (c) => (c === "A" ? "B" : "A"))), "KERN_INVALID_TASK");
      await rejectsWith(h.attach(r.taskId, ""), "KERN_INVALID_TASK");
      await rejectsWith(h.attach(r.taskId, tokenOf(a)), "KERN_INVALID_TASK");
      await rejectsWith(h.attach(987654321, r.token), "KERN_INVALID_TASK");
      assert.equal(h.kernel.stats.rejectedTraps, rejected + 4);
      assert.equal(h.kernel.tasks.get(r.taskId)!.attached, false);
      // The right token still works.
      const b = await h.attach(r.taskId, r.token);
      assert.equal(b.id, r.taskId);
    });

    it("a token of the right length but with non-ASCII characters is refused, not a crash", async () => {
      const a = await h.task("tok-utf8");
      const r = await a.taskCreate("tok-utf8-b");
      await rejectsWith(h.attach(r.taskId, "é" + r.token.slice(1)), "KERN_INVALID_TASK");
      await rejectsWith(h.attach(r.taskId, "€".repeat(r.token.length)), "KERN_INVALID_TASK");
      // The kernel still answers.
      assert.ok((await a.allocate()) > 0);
    });

    it("an attach with a malformed request answers MIG_BAD_ARGUMENTS", async () => {
      const a = await h.task("attach-garbage");
      const r = await a.taskCreate("attach-garbage-b");
      const ans = await rawTrap(Trap.encode(Trap.fromPartial({ task: r.taskId, token: r.token, call: { msgid: mach.byKey.get("attach")!.msgid, request: new Uint8Array([0xff, 0xff, 0x07]) } })).finish(), r.taskId);
      assert.equal(new HurdError(ans.code).errno, "MIG_BAD_ARGUMENTS");
      assert.equal(h.kernel.tasks.get(r.taskId)!.attached, false);
    });

    it("a raw trap with a wrong token is not routed and not answered as a success", async () => {
      const s = await scene("rawtok");
      const before = await state(s);
      const rejected = h.kernel.stats.rejectedTraps;
      const send = { destination: s.qs, destinationDisposition: MsgType.MSG_TYPE_COPY_SEND, reply: 0, replyDisposition: 0, id: 66, body: new Uint8Array(0), ports: [{ name: s.p, disposition: MsgType.MSG_TYPE_MAKE_SEND }], timeoutMs: 0, seq: 1, traceContext: new Uint8Array(0), code: 0 };
      const bad = Trap.encode(Trap.fromPartial({ task: s.a.id, token: "x".repeat(tokenOf(s.a).length), credit: 5, send })).finish();
      const ans = await rawTrap(bad, s.a.id);
      assert.equal(ans.code, Errno.KERN_INVALID_TASK);
      // Another task's token does not stand for a.
      const ans2 = await rawTrap(Trap.encode(Trap.fromPartial({ task: s.a.id, token: tokenOf(s.b), send })).finish(), s.b.id);
      assert.equal(ans2.code, Errno.KERN_INVALID_TASK);
      // Published without a reply subject: dropped all the same.
      (await h.taskBus(s.a.id)).publish(trapSubject, bad);
      // A kernel call with a wrong token is refused too.
      const call = Trap.encode(Trap.fromPartial({ task: s.a.id, token: "nope", call: { msgid: mach.byKey.get("portDestroy")!.msgid, request: MachDefinition.methods.portDestroy.requestType.encode({ name: s.p }).finish() } })).finish();
      assert.equal((await rawTrap(call, s.a.id)).code, Errno.KERN_INVALID_TASK);
      await until(() => h.kernel.stats.rejectedTraps === rejected + 4, 3000, "four rejected traps");
      await sleep(30);
      assert.equal(s.box.length, 0, "nothing was routed");
      assert.deepEqual(await state(s), before);
    });

    it("garbage bytes on the trap subject answer MIG_BAD_ARGUMENTS and change nothing", async () => {
      const s = await scene("garbage");
      const before = await state(s);
      const rejected = h.kernel.stats.rejectedTraps;
      const ans = await rawTrap(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 0x07]), s.a.id);
      assert.equal(ans.code, Errno.MIG_BAD_ARGUMENTS);
      (await h.taskBus(s.a.id)).publish(trapSubject, new Uint8Array([0x0a, 0xff, 0xff]));
      await until(() => h.kernel.stats.rejectedTraps === rejected + 2, 3000, "garbage counted");
      assert.deepEqual(await state(s), before);
    });

    it("a call with an unknown msgid or a malformed request is refused with MIG codes", async () => {
      const s = await scene("badcall");
      const before = await state(s);
      const token = tokenOf(s.a);
      const unknown = await rawTrap(Trap.encode(Trap.fromPartial({ task: s.a.id, token, call: { msgid: 1234567, request: new Uint8Array(0) } })).finish(), s.a.id);
      assert.equal(unknown.code, Errno.MIG_BAD_ID);
      const bad = await rawTrap(Trap.encode(Trap.fromPartial({ task: s.a.id, token, call: { msgid: mach.byKey.get("portDestroy")!.msgid, request: new Uint8Array([0xff, 0xff, 0x07]) } })).finish(), s.a.id);
      assert.equal(bad.code, Errno.MIG_BAD_ARGUMENTS);
      assert.deepEqual(await state(s), before);
    });

    it("unknown names in a message fail with the matching MACH_SEND code and change nothing", async () => {
      const s = await scene("unknown");
      await refused(s, { destination: 999999, id: 1 }, "MACH_SEND_INVALID_DEST");
      await refused(s, { destination: s.qs, id: 1, reply: 999999 }, "MACH_SEND_INVALID_REPLY");
      await refused(s, { destination: s.qs, id: 1, ports: [{ name: s.p, disposition: MsgType.MSG_TYPE_MOVE_SEND }, { name: 999999, disposition: MsgType.MSG_TYPE_COPY_SEND }] }, "MACH_SEND_INVALID_RIGHT");
      await refused(s, { destination: s.dead, id: 1 }, "MACH_SEND_INVALID_DEST");
      assert.equal(s.box.length, 0);
    });

    it("wrong right types and dispositions fail cleanly, undoing the rights already copied in", async () => {
      const s = await scene("types");
      const good: MsgPort[] = [
        { name: s.p, disposition: MsgType.MSG_TYPE_MOVE_SEND },
        { name: s.p, disposition: MsgType.MSG_TYPE_MOVE_SEND },
        { name: s.p, disposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE },
        { name: s.so, disposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE },
      ];
      // Each bad right comes last, after rights that were already taken from a.
      const cases: [MsgPort, keyof typeof Errno][] = [
        [{ name: s.qs, disposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE }, "MACH_SEND_INVALID_RIGHT"],
        [{ name: s.qs, disposition: MsgType.MSG_TYPE_MAKE_SEND }, "MACH_SEND_INVALID_RIGHT"],
        [{ name: s.qs, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }, "MACH_SEND_INVALID_RIGHT"],
        [{ name: s.qs, disposition: 99 as MsgType }, "MACH_SEND_INVALID_TYPE"],
        [{ name: s.qs, disposition: MsgType.MSG_TYPE_UNSPECIFIED }, "MACH_SEND_INVALID_TYPE"],
      ];
      for (const [bad, expect] of cases) await refused(s, { destination: s.qs, id: 2, ports: [...good.slice(0, 3), bad] }, expect);
      // The receive right itself, moved and then failed: it stays with a, queue and all.
      await refused(s, { destination: s.qs, id: 2, ports: [{ name: s.p, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE }, { name: s.so, disposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE }, { name: 424242, disposition: MsgType.MSG_TYPE_COPY_SEND }] }, "MACH_SEND_INVALID_RIGHT");
      // Header dispositions.
      await refused(s, { destination: s.qs, destinationDisposition: MsgType.MSG_TYPE_MOVE_RECEIVE, id: 3 }, "MACH_SEND_INVALID_HEADER");
      await refused(s, { destination: s.qs, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: 3 }, "MACH_SEND_INVALID_DEST");
      await refused(s, { destination: s.qs, id: 3, reply: s.p, replyDisposition: MsgType.MSG_TYPE_MOVE_RECEIVE }, "MACH_SEND_INVALID_REPLY");
      await refused(s, { destination: s.qs, id: 3, reply: s.qs, replyDisposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE }, "MACH_SEND_INVALID_REPLY");
      await refused(s, { destination: s.qs, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND, id: 3, reply: s.so, replyDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, ports: [{ name: 55555, disposition: MsgType.MSG_TYPE_MOVE_SEND }] }, "MACH_SEND_INVALID_RIGHT");
      assert.equal(s.box.length, 0, "no bad message was delivered");
      // And the same rights still work in a good message.
      s.a.send({ destination: s.qs, id: 4, ports: good });
      await until(() => s.box.length === 1, 3000, "the good message");
      assert.equal(s.box[0]!.ports.length, 4);
    });

    it("a failed send that had taken a name with a dead-name request puts it back and sends no port-deleted", async () => {
      const s = await scene("dnrollback");
      const { a, b, bTask } = s;
      const y = await b.allocate();
      const ys = (await a.extractRight(bTask, y, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const n = await a.allocate();
      const nbox = inbox(a, n);
      await a.requestNotification(ys, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      const before = await snapshot(a);
      const n0 = s.fails.length;
      a.send({ destination: s.qs, id: 8, ports: [{ name: ys, disposition: MsgType.MSG_TYPE_MOVE_SEND }, { name: 777777, disposition: MsgType.MSG_TYPE_COPY_SEND }] });
      await until(() => s.fails.length === n0 + 1, 3000, "failure");
      assert.deepEqual(await snapshot(a), before);
      await sleep(30);
      assert.equal(nbox.length, 0, "no port-deleted for a name that was put back");
      // The request still works.
      await b.destroy(y);
      const m = await until(() => nbox.length === 1, 3000, "dead-name").then(() => nbox[0]!);
      assert.equal(m.id, 72);
    });

    it("oversize bodies and too many rights fail MACH_SEND_NO_BUFFER and change nothing", async () => {
      const s = await scene("oversize");
      await refused(s, { destination: s.qs, id: 5, body: new Uint8Array(65), ports: [{ name: s.p, disposition: MsgType.MSG_TYPE_MOVE_SEND }] }, "MACH_SEND_NO_BUFFER");
      const five = Array.from({ length: 5 }, () => ({ name: s.p, disposition: MsgType.MSG_TYPE_COPY_SEND }));
      await refused(s, { destination: s.qs, id: 5, ports: five }, "MACH_SEND_NO_BUFFER");
      await rejectsWith(s.a.rpc(s.qs, 5, new Uint8Array(100), { timeoutMs: 2000 }), "MACH_SEND_NO_BUFFER");
      s.a.send({ destination: s.qs, id: 6, body: new Uint8Array(64), ports: five.slice(1) });
      await until(() => s.box.length === 1, 3000, "a message at the limits");
      assert.equal(s.box[0]!.body.length, 64);
    });

    it("a dead name offered as a notify right is refused without consuming it", async () => {
      const s = await scene("deadnotify");
      const a = await h.task("deadnotify-proc", { hostPriv: true });
      const d = await a.allocate(PortRight.PORT_RIGHT_DEAD_NAME);
      const before = await state(s);
      await rejectsWith(s.a.requestNotification(s.p, NotifyId.NOTIFY_NO_SENDERS, s.dead, 0, MsgType.MSG_TYPE_MOVE_SEND_ONCE), "KERN_INVALID_CAPABILITY");
      await rejectsWith(s.a.requestNotification(s.qs, NotifyId.NOTIFY_DEAD_NAME, s.dead, 0, MsgType.MSG_TYPE_MOVE_SEND_ONCE), "KERN_INVALID_CAPABILITY");
      assert.deepEqual(await state(s), before);
      const pbefore = await snapshot(a);
      await rejectsWith(a.call("registerNewTaskNotification", { hostPriv: a.hostPriv, notify: d, notifyDisposition: MsgType.MSG_TYPE_MOVE_SEND }), "KERN_INVALID_CAPABILITY");
      assert.deepEqual(await snapshot(a), pbefore);
    });

    it("a message to a task port (a kernel object) is answered MIG_BAD_ID; the kernel's calls are traps", async () => {
      const s = await scene("kobject");
      // The first RPC allocates the runtime's reply port, which it keeps.
      await rejectsWith(s.a.rpc(s.bTask, 2008, new Uint8Array(0), { timeoutMs: 2000 }), "MIG_BAD_ID");
      const before = await state(s);
      await rejectsWith(s.a.rpc(s.bTask, 2008, new Uint8Array(0), { timeoutMs: 2000 }), "MIG_BAD_ID");
      assert.equal(h.kernel.tasks.has(s.b.id), true);
      assert.deepEqual(await state(s), before);
    });

    it("bad kernel calls answer a clear code and change nothing", async () => {
      const s = await scene("calls");
      const { a, bTask, p, so, dead, qs } = s;
      const before = await state(s);
      await rejectsWith(a.deallocate(999999), "KERN_INVALID_NAME");
      await rejectsWith(a.destroy(999999), "KERN_INVALID_NAME");
      await rejectsWith(a.type(999999), "KERN_INVALID_NAME");
      await rejectsWith(a.getRefs(999999, PortRight.PORT_RIGHT_SEND), "KERN_INVALID_NAME");
      await rejectsWith(a.getRefs(p, 99 as PortRight), "KERN_INVALID_VALUE");
      await rejectsWith(a.modRefs(p, 99 as PortRight, 1), "KERN_INVALID_VALUE");
      await rejectsWith(a.modRefs(so, PortRight.PORT_RIGHT_RECEIVE, -1), "KERN_INVALID_RIGHT");
      await rejectsWith(a.allocate(99 as PortRight), "KERN_INVALID_VALUE");
      await rejectsWith(a.requestNotification(p, 99 as NotifyId, p), "KERN_INVALID_VALUE");
      await rejectsWith(a.requestNotification(qs, NotifyId.NOTIFY_NO_SENDERS, p), "KERN_INVALID_RIGHT");
      await rejectsWith(a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, p, 0, MsgType.MSG_TYPE_MAKE_SEND), "KERN_INVALID_VALUE");
      await rejectsWith(a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, qs, 0, MsgType.MSG_TYPE_MOVE_SEND_ONCE), "KERN_INVALID_CAPABILITY");
      await rejectsWith(a.requestNotification(dead, NotifyId.NOTIFY_DEAD_NAME, 999999, 1), "KERN_INVALID_CAPABILITY");
      await rejectsWith(a.insertRight(bTask, 0, p, MsgType.MSG_TYPE_MAKE_SEND), "KERN_INVALID_VALUE");
      await rejectsWith(a.insertRight(bTask, 5000, p, MsgType.MSG_TYPE_PORT_NAME), "KERN_INVALID_VALUE");
      await rejectsWith(a.insertRight(bTask, 5000, 999999, MsgType.MSG_TYPE_MAKE_SEND), "KERN_INVALID_NAME");
      await rejectsWith(a.insertRight(bTask, 5000, so, MsgType.MSG_TYPE_MAKE_SEND), "KERN_INVALID_RIGHT");
      await rejectsWith(a.insertRight(bTask, 5000, qs, MsgType.MSG_TYPE_COPY_SEND), "KERN_RIGHT_EXISTS");
      await rejectsWith(a.insertRight(bTask, s.q, p, MsgType.MSG_TYPE_MAKE_SEND), "KERN_NAME_EXISTS");
      await rejectsWith(a.insertRight(p, 5000, p, MsgType.MSG_TYPE_MAKE_SEND), "KERN_INVALID_TASK");
      await rejectsWith(a.extractRight(bTask, 999999, MsgType.MSG_TYPE_COPY_SEND), "KERN_INVALID_RIGHT");
      await rejectsWith(a.extractRight(bTask, s.q, 3 as MsgType), "KERN_INVALID_VALUE");
      await rejectsWith(a.extractRight(0, so, MsgType.MSG_TYPE_COPY_SEND), "KERN_INVALID_RIGHT");
      await rejectsWith(a.taskCreate("x", { parent: qs }), "KERN_INVALID_TASK");
      await rejectsWith(a.taskInfo(p), "KERN_INVALID_TASK");
      await rejectsWith(a.call("portSetQlimit", { name: qs, qlimit: 3 }), "KERN_INVALID_RIGHT");
      await rejectsWith(a.call("registerNewTaskNotification", { hostPriv: p, notify: p, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND }), "KERN_INVALID_HOST");
      await rejectsWith(a.call("namespaceTerminate", { hostPriv: bTask }), "KERN_INVALID_HOST");
      await rejectsWith(a.setSpecialPort(0, 1, p), "KERN_INVALID_ARGUMENT");
      await rejectsWith(a.setSpecialPort(0, 4, 999999), "KERN_INVALID_RIGHT");
      assert.deepEqual(await state(s), before);
    });
  });
}

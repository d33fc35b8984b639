// Conformance: task death, leases, namespaces (hurd-semantics.md §1 "Task
// death", "GNU Mach extensions proc uses"; ARCHITECTURE "Namespace").
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, NotifyId, type Received } from "@hurdmesh/mach";
import { DeadNameNotification, NewTaskNotification, NoSendersNotification, TaskEvent, TaskEventsNotification, TaskTerminatedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { child, deadRefs, give, inbox, nth, rejectsWith, sleep, TYPE_DEAD_NAME, TYPE_SEND } from "./kit.js";

for (const kind of busKinds) {
  describe(`kernel task death (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    it("task death: receive rights die, send rights are released, unused send-once rights fire, task port holders get a dead name", async () => {
      const a = await h.task("death-a");
      const { task: b, port: bTask } = await child(h, a, "death-b");
      const { task: d, port: dTask } = await child(h, a, "death-d");
      // d holds: a receive right r (b has a send right to it, with a dead-name request),
      // a send right to a's port p (a asked for no-senders), a send-once right to a's port q.
      const r = await d.allocate();
      const rs = (await a.extractRight(dTask, r, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const br = await give(a, bTask, rs, MsgType.MSG_TYPE_MOVE_SEND);
      const bn = await b.allocate();
      const bbox = inbox(b, bn);
      await b.requestNotification(br, NotifyId.NOTIFY_DEAD_NAME, bn, 0);
      const p = await a.allocate();
      const q = await a.allocate();
      const n = await a.allocate();
      const abox = inbox(a, n);
      const qbox = inbox(a, q);
      await give(a, dTask, p, MsgType.MSG_TYPE_MAKE_SEND);
      await give(a, dTask, q, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      await a.requestNotification(p, NotifyId.NOTIFY_NO_SENDERS, n, 0);
      // a watches d's task port.
      await a.requestNotification(dTask, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      assert.equal(await a.type(dTask) & TYPE_SEND, TYPE_SEND);

      await d.detach();
      assert.equal(h.kernel.tasks.has(d.id), false);
      await until(() => abox.length === 2 && qbox.length === 1 && bbox.length === 1, 3000, "every notification of d's death");
      // b: d's receive right died.
      assert.equal(bbox[0]!.id, 72);
      assert.equal(DeadNameNotification.decode(bbox[0]!.body).name, br);
      assert.equal(await b.type(br), TYPE_DEAD_NAME);
      // a: no-senders for p (d's send right was released).
      const ns = abox.find((m) => m.id === 70);
      assert.ok(ns, "no-senders for p");
      assert.equal(ns.local, n);
      assert.equal(NoSendersNotification.decode(ns.body).mscount, 1);
      // a: the send-once right d never used fires through itself, to q.
      assert.equal(qbox[0]!.id, 71);
      assert.equal(qbox[0]!.kernel, true);
      // a: its task port for d is now a dead name, +1 uref for the dead-name notification.
      const dn = abox.find((m) => m.id === 72);
      assert.ok(dn, "dead-name for d's task port");
      assert.equal(DeadNameNotification.decode(dn.body).name, dTask);
      assert.equal(await a.type(dTask), TYPE_DEAD_NAME);
      assert.equal(await deadRefs(a, dTask), 2);
      // d's task port is no task any more.
      await rejectsWith(a.taskInfo(dTask), "KERN_INVALID_TASK");
      assert.ok(abox.every((m) => m.kernel));
    });

    it("task death honours port-destroyed: a receive right with a backup is handed over, not killed", async () => {
      const a = await h.task("death-pd-a");
      const { task: d, port: dTask } = await child(h, a, "death-pd-d");
      const { task: b, port: bTask } = await child(h, a, "death-pd-b");
      const r = await d.allocate();
      const br = await give(a, bTask, (await a.extractRight(dTask, r, MsgType.MSG_TYPE_MAKE_SEND)).name, MsgType.MSG_TYPE_MOVE_SEND);
      const backup = await a.allocate();
      const got: number[] = [];
      let rescued = 0;
      a.receive(backup, (m) => {
        got.push(m.id);
        rescued = m.ports[0]!.name;
        a.receive(rescued, (mm) => void got.push(mm.id));
      });
      const so = await give(a, dTask, backup, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      await d.requestNotification(r, NotifyId.NOTIFY_PORT_DESTROYED, so, 0, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
      await d.detach();
      await until(() => got.length === 1, 3000, "port-destroyed");
      assert.equal(got[0], 69);
      assert.equal(await b.type(br), TYPE_SEND, "b's send right still names a live port");
      b.send({ destination: br, id: 5 });
      await until(() => got.length === 2, 3000, "message to the rescued port");
      assert.equal(got[1], 5);
    });

    it("a dying task's queued requests fail their callers with MIG_SERVER_DIED", async () => {
      const a = await h.task("death-q-a");
      const { task: d, port: dTask } = await child(h, a, "death-q-d", { window: 1 });
      const sp = await d.allocate();
      d.receive(sp, () => new Promise(() => {}));
      const dest = (await a.extractRight(dTask, sp, MsgType.MSG_TYPE_MAKE_SEND)).name;
      // Expectations attached at once: the rejections may come before taskTerminate returns.
      const calls = [1, 2, 3].map((i) => rejectsWith(a.rpc(dest, 33000, new Uint8Array([i])), "MIG_SERVER_DIED"));
      await until(async () => (await d.call("portGetReceiveStatus", { name: sp })).msgcount === 2, 3000, "two requests queued");
      await a.taskTerminate(dTask);
      await Promise.all(calls);
    });

    it("holding a task port does not keep a task alive; terminating it gives holders a dead name", async () => {
      const a = await h.task("tp-a");
      const { task: b, port: bTask } = await child(h, a, "tp-b");
      const dup = (await a.extractRight(0, bTask, MsgType.MSG_TYPE_COPY_SEND)).name;
      assert.equal(dup, bTask, "same port, same name");
      await a.taskTerminate(bTask);
      assert.equal(h.kernel.tasks.has(b.id), false);
      // The kernel tells an attached task of its own end (seq 0, KERN_TERMINATED).
      await until(() => b.detached, 3000, "the task to hear of its own end");
      assert.equal(await a.type(bTask), TYPE_DEAD_NAME);
      assert.equal(await deadRefs(a, bTask), 2, "both urefs survive as dead-name urefs");
      await rejectsWith(b.allocate(), "KERN_INVALID_TASK");
    });
  });

  describe(`kernel leases (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind, { leaseMs: 300 });
    });
    after(async () => {
      await h.close();
    });

    it("a task that stops talking (abandon) is terminated after leaseMs; live tasks are not", async () => {
      const a = await h.task("lease-a");
      const { task: d, port: dTask } = await child(h, a, "lease-d");
      const n = await a.allocate();
      const box = inbox(a, n);
      await a.requestNotification(dTask, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      await d.allocate();
      // A task that keeps its heartbeat outlives several leases.
      await sleep(700);
      assert.equal(h.kernel.tasks.has(d.id), true, "d heartbeats: still alive after 2 leases");
      const t0 = Date.now();
      d.abandon();
      await until(() => !h.kernel.tasks.has(d.id), 3000, "lease expiry");
      const took = Date.now() - t0;
      // Its last heartbeat may be up to a third of a lease old (plus the kernel's lease/8 slack).
      assert.ok(took >= 150, `terminated ${took} ms after going silent, lease is 300`);
      const m = await nth(box, 1, "dead-name for the expired task");
      assert.equal(m.id, 72);
      assert.equal(DeadNameNotification.decode(m.body).name, dTask);
      assert.equal(h.kernel.tasks.has(a.id), true, "the task that kept talking lives");
      assert.ok((await a.names()).names.length > 0);
    });
  });

  describe(`kernel namespaces (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => {
      await h.close();
    });

    it("namespaces nest 32 deep; one more fails EINVAL and creates nothing", async () => {
      const a = await h.task("ns-depth", { hostPriv: true });
      let parent = 0;
      let last = 0;
      for (let i = 1; i <= 32; i++) {
        const r = await a.taskCreate(`sub${i}`, { parent, newNamespace: true });
        parent = r.task;
        last = r.taskId;
      }
      assert.equal(h.kernel.tasks.get(last)!.ns.depth, 32);
      const tasks = h.kernel.tasks.size;
      const names = (await a.names()).names.length;
      await rejectsWith(a.taskCreate("sub33", { parent, newNamespace: true }), "EINVAL");
      assert.equal(h.kernel.tasks.size, tasks);
      assert.equal((await a.names()).names.length, names);
      // Without a new namespace the deepest hurd can still have tasks.
      const r = await a.taskCreate("leaf", { parent });
      assert.equal(h.kernel.tasks.get(r.taskId)!.ns.depth, 32);
    });

    it("register_new_task_notification twice on one namespace answers KERN_NO_ACCESS", async () => {
      const a = await h.task("proc-twice", { hostPriv: true });
      const sub = await a.taskCreate("hurd2", { newNamespace: true });
      assert.ok(sub.hostPriv !== 0);
      const n1 = await a.allocate();
      const n2 = await a.allocate();
      await a.call("registerNewTaskNotification", { hostPriv: sub.hostPriv, notify: n1, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
      await rejectsWith(
        a.call("registerNewTaskNotification", { hostPriv: sub.hostPriv, notify: n2, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND }),
        "KERN_NO_ACCESS",
      );
      assert.equal((await a.call("portGetReceiveStatus", { name: n2 })).mscount, 0, "the refused registration made no right");
      await rejectsWith(
        a.call("registerNewTaskNotification", { hostPriv: sub.task, notify: n2, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND }),
        "KERN_INVALID_HOST",
      );
    });

    it("new-task and task-terminated notifications do not use up the kernel's send right to the registered port", async () => {
      const a = await h.task("proc-srights", { hostPriv: true });
      const sub = await a.taskCreate("hurd4", { newNamespace: true });
      const n = await a.allocate();
      const box = inbox(a, n);
      await a.call("registerNewTaskNotification", { hostPriv: sub.hostPriv, notify: n, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
      const port = h.kernel.tasks.get(a.id)!.space.entries.get(n)!.port!;
      assert.equal(port.srights, 1, "the kernel holds one send right");
      // proc watches its notify port for no-senders (mscount 1: the registration).
      const w = await a.allocate();
      const wbox = inbox(a, w);
      await a.requestNotification(n, NotifyId.NOTIFY_NO_SENDERS, w, 1);
      const t1 = await a.taskCreate("s1", { parent: sub.task });
      await a.taskCreate("s2", { parent: sub.task });
      await a.taskTerminate(t1.task);
      await nth(box, 3, "two new-task and one task-terminated");
      await sleep(20);
      assert.equal(port.srights, 1, "still exactly the kernel's send right");
      assert.equal((await a.call("portGetReceiveStatus", { name: n })).srights, true);
      assert.equal(wbox.length, 0, "no no-senders while the kernel still holds its right");
      // Tearing the namespace down releases the kernel's right: now no-senders fires.
      await a.call("namespaceTerminate", { hostPriv: sub.hostPriv });
      const m = await nth(wbox, 1, "no-senders after the namespace went");
      assert.equal(m.id, 70);
      assert.equal(port.srights, 0);
    });

    it("new-task notifications reach a namespace's port for its tasks and its nested hurds' tasks, never a parent's or a sibling's", async () => {
      const a = await h.task("proc-ns", { hostPriv: true });
      const sub = await a.taskCreate("hurd3", { newNamespace: true });
      const n = await a.allocate();
      const box: Received[] = inbox(a, n);
      await a.call("registerNewTaskNotification", { hostPriv: sub.hostPriv, notify: n, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
      // A task in the subhurd: announced, with its task port and its parent's.
      const t1 = await a.taskCreate("in-sub", { parent: sub.task });
      const m = await nth(box, 1, "new-task");
      assert.equal(m.id, 4400);
      assert.equal(m.kernel, true);
      const body = NewTaskNotification.decode(m.body);
      assert.equal(body.taskId, t1.taskId);
      assert.equal(body.parentId, sub.taskId);
      assert.equal(body.namespaceId, sub.namespaceId);
      assert.equal(m.ports.length, 2);
      assert.equal(m.ports[0]!.name, t1.task, "the task port lands on the name a already has for it");
      assert.equal(m.ports[1]!.name, sub.task);
      // Tasks of the parent (root) hurd and of a sibling subhurd are not announced here.
      await a.taskCreate("in-root");
      const sibling = await a.taskCreate("sibling", { newNamespace: true });
      await a.taskCreate("in-sibling", { parent: sibling.task });
      // A task of a hurd nested in this one is (Linux PID namespaces: visible upward), with its own namespace id,
      // as a task event (4402): by id, without rights.
      const nested = await a.taskCreate("in-subsub", { parent: t1.task, newNamespace: true });
      const m2 = await nth(box, 2, "nested new-task");
      assert.equal(m2.id, 4402);
      assert.equal(m2.ports.length, 0);
      const ev = TaskEventsNotification.decode(m2.body);
      assert.deepEqual(ev, { kind: [TaskEvent.TASK_EVENT_CREATED], taskId: [nested.taskId], parentId: [t1.taskId], namespaceId: [nested.namespaceId], name: ["in-subsub"] });
      // A second task in the subhurd: the next message, so nothing came between.
      const t2 = await a.taskCreate("in-sub-2", { parent: sub.task });
      const m3 = await nth(box, 3, "second new-task");
      assert.equal(NewTaskNotification.decode(m3.body).taskId, t2.taskId);
      // Its termination is announced too (task-terminated, 4401).
      await a.taskTerminate(t2.task);
      const m4 = await nth(box, 4, "task-terminated");
      assert.equal(m4.id, 4401);
      assert.equal(TaskTerminatedNotification.decode(m4.body).taskId, t2.taskId);
      await sleep(20);
      assert.equal(box.length, 4);
      assert.ok(box.every((x) => x.kernel));
    });
  });

  describe(`kernel nested-task events (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      // A small batch bound, so a burst of tasks spans several messages.
      h = await startHurd(kind, { maxTaskEventsPerMessage: 8 });
    });
    after(async () => {
      await h.close();
    });

    /** `a` registered as the proc of a new hurd `sub`, with a hurd `inner` nested in it: what `a` hears of inner's tasks. */
    async function setup(name: string) {
      const a = await h.task(name, { hostPriv: true });
      const sub = await a.taskCreate(`${name}-sub`, { newNamespace: true });
      const n = await a.allocate();
      const box = inbox(a, n);
      await a.call("registerNewTaskNotification", { hostPriv: sub.hostPriv, notify: n, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
      const inner = await a.taskCreate(`${name}-inner`, { parent: sub.task, newNamespace: true });
      await nth(box, 1, "the inner hurd's first task");
      box.length = 0;
      return { a, sub, inner, box };
    }

    /** Every event in `box`, flattened in arrival order. */
    function events(box: Received[]) {
      const out: { kind: number; taskId: number; parentId: number; namespaceId: number; name: string }[] = [];
      for (const m of box) {
        assert.equal(m.id, 4402);
        assert.equal(m.kernel, true);
        const e = TaskEventsNotification.decode(m.body);
        for (let i = 0; i < e.kind.length; i++) out.push({ kind: e.kind[i]!, taskId: e.taskId[i]!, parentId: e.parentId[i]!, namespaceId: e.namespaceId[i]!, name: e.name[i]! });
      }
      return out;
    }

    it("many nested tasks created at once travel in few messages, in order, each at most maxTaskEventsPerMessage long", async () => {
      const { a, inner, box } = await setup("ev-many");
      const made = await Promise.all(Array.from({ length: 30 }, (_, i) => a.taskCreate(`many${i}`, { parent: inner.task })));
      await until(() => events(box).length >= 30, 3000, "30 events");
      const ev = events(box);
      assert.equal(ev.length, 30);
      assert.ok(box.length < 30, `gathered: ${box.length} messages for 30 tasks`);
      for (const m of box) assert.ok(TaskEventsNotification.decode(m.body).kind.length <= 8);
      // The kernel created them in call order; the events are in creation order.
      assert.deepEqual(
        ev.map((e) => e.taskId),
        made.map((m) => m.taskId).sort((x, y) => x - y),
      );
      for (const e of ev) {
        assert.equal(e.kind, TaskEvent.TASK_EVENT_CREATED);
        assert.equal(e.parentId, inner.taskId);
        assert.equal(e.namespaceId, inner.namespaceId);
        assert.match(e.name, /^many\d+$/);
      }
    });

    it("a nested task's creation always comes before its end, even within one message", async () => {
      const { a, inner, box } = await setup("ev-order");
      // Created and terminated in the same burst: both land in one queue.
      const ts = await Promise.all(Array.from({ length: 5 }, (_, i) => a.taskCreate(`order${i}`, { parent: inner.task })));
      await Promise.all(ts.map((t) => a.taskTerminate(t.task)));
      await until(() => events(box).length >= 10, 3000, "10 events");
      const ev = events(box);
      for (const t of ts) {
        const created = ev.findIndex((e) => e.taskId === t.taskId && e.kind === TaskEvent.TASK_EVENT_CREATED);
        const ended = ev.findIndex((e) => e.taskId === t.taskId && e.kind === TaskEvent.TASK_EVENT_TERMINATED);
        assert.ok(created >= 0 && ended > created, `task ${t.taskId}: created at ${created}, ended at ${ended}`);
        assert.equal(ev[ended]!.namespaceId, inner.namespaceId);
        assert.equal(ev[ended]!.name, "");
      }
    });

    it("events queued for a proc that dies are dropped; the hurds above it still hear of everything", async () => {
      // Two registered levels: `top` is sub's proc, `mid` is inner's; mid dies with events queued for it.
      const { a: top, inner, box: topBox } = await setup("ev-dead");
      const { task: mid, port: midPort } = await child(h, top, "ev-dead-mid");
      const midHost = await give(top, midPort, inner.hostPriv, MsgType.MSG_TYPE_COPY_SEND);
      const mn = await mid.allocate();
      const midBox = inbox(mid, mn);
      await mid.call("registerNewTaskNotification", { hostPriv: midHost, notify: mn, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
      const deep = await top.taskCreate("ev-dead-deep", { parent: inner.task, newNamespace: true });
      await nth(midBox, 1, "mid hears of the deeper hurd");
      await until(() => events(topBox).length >= 1, 3000, "top hears of the deeper hurd");
      // A burst of deep tasks and mid's death together: mid's queue goes to a dead port.
      const made = await Promise.all([...Array.from({ length: 12 }, (_, i) => top.taskCreate(`dead${i}`, { parent: deep.task })), top.taskTerminate(midPort).then(() => null)]);
      const ids = made.filter((m) => m !== null).map((m) => m!.taskId);
      await until(() => ids.every((id) => events(topBox).some((e) => e.taskId === id)), 3000, "top to hear of all 12");
      assert.equal(h.kernel.tasks.has(mid.id), false);
      // The kernel goes on: the next deep task is announced upward as before.
      const after = await top.taskCreate("dead-after", { parent: deep.task });
      await until(() => events(topBox).some((e) => e.taskId === after.taskId), 3000, "the next event");
      assert.ok(events(topBox).every((e) => e.namespaceId !== 0));
    });

    it("task_for_id answers a task of the host's hurd or a nested one, and nothing else", async () => {
      const { a, sub, inner } = await setup("tfi");
      const t = await a.taskCreate("tfi-deep", { parent: inner.task });
      const other = await a.taskCreate("tfi-other", { newNamespace: true });
      const sibling = await a.taskCreate("tfi-sibling", { parent: other.task });
      const name = await a.taskForId(sub.hostPriv, t.taskId);
      assert.equal(name, t.task, "the task port lands on the name a already has for it");
      assert.equal((await a.taskInfo(name)).taskId, t.taskId);
      // Neither an ancestor's task (a itself is of the root hurd) nor a sibling hurd's.
      await rejectsWith(a.taskForId(sub.hostPriv, a.id), "KERN_INVALID_ARGUMENT");
      await rejectsWith(a.taskForId(sub.hostPriv, sibling.taskId), "KERN_INVALID_ARGUMENT");
      await rejectsWith(a.taskForId(sub.hostPriv, 0), "KERN_INVALID_ARGUMENT");
      await a.taskTerminate(t.task);
      await rejectsWith(a.taskForId(sub.hostPriv, t.taskId), "KERN_INVALID_ARGUMENT");
      // Only a host port names a hurd.
      await rejectsWith(a.taskForId(inner.task, inner.taskId), "KERN_INVALID_HOST");
      await rejectsWith(a.taskForId(0x7777, inner.taskId), "KERN_INVALID_HOST");
    });
  });

  describe(`kernel task limits (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind, { maxTasks: 3 });
    });
    after(async () => {
      await h.close();
    });

    it("task_create past maxTasks fails KERN_RESOURCE_SHORTAGE and leaves no namespace behind", async () => {
      const a = await h.task("limit-a", { hostPriv: true });
      await a.taskCreate("limit-1");
      await a.taskCreate("limit-2");
      const children = h.kernel.root.children.size;
      const names = (await a.names()).names.length;
      await rejectsWith(a.taskCreate("limit-3"), "KERN_RESOURCE_SHORTAGE");
      await rejectsWith(a.taskCreate("limit-ns", { newNamespace: true }), "KERN_RESOURCE_SHORTAGE");
      assert.equal(h.kernel.tasks.size, 3);
      assert.equal(h.kernel.root.children.size, children, "the refused namespace was not linked in");
      assert.equal((await a.names()).names.length, names);
    });
  });
}

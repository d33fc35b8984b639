// host_ipc_graph (hurdmesh 4930): every IPC space of a hurd at once, as
// mach_debug's mach_port_space_info shows one task's, with ports named by
// kernel id so a port's receiver and its holders can be joined. Only the
// holder of the hurd's host_priv port may look; what it sees is the hurd
// (and, when asked, the hurds nested in it), never a sibling or a parent.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HostIpcGraphReply } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, type Hurd } from "../harness.js";
import { child, give, MsgType, PortRight, rejectsWith, TYPE_DEAD_NAME, TYPE_DNREQUEST, TYPE_RECEIVE, TYPE_SEND, TYPE_SEND_ONCE } from "./kit.js";
import type { Task } from "@hurdmesh/mach";

type Graph = HostIpcGraphReply;
const graph = (t: Task, req: object) => t.call("hostIpcGraph", req) as Promise<Graph>;

for (const kind of busKinds) {
  describe(`host_ipc_graph (${kind} bus)`, () => {
    let h: Hurd;
    let host: Task & { hostPriv: number };
    before(async () => {
      h = await startHurd(kind);
      host = await h.task("host", { hostPriv: true });
    });
    after(async () => h.close());

    it("shows a receive right and the send rights to the same port under one port id, with urefs", async () => {
      const a = await child(h, host, "a");
      const b = await child(h, a.task, "b");
      const port = await a.task.allocate();
      const inB = await give(a.task, b.port, port, MsgType.MSG_TYPE_MAKE_SEND);
      await b.task.modRefs(inB, PortRight.PORT_RIGHT_SEND, 2);
      const g = await graph(host, { hostPriv: host.hostPriv, tasks: [a.task.id, b.task.id] });
      const sa = g.spaces.find((s) => s.taskId === a.task.id)!;
      const sb = g.spaces.find((s) => s.taskId === b.task.id)!;
      assert.equal(sa.name, "a");
      const rcv = sa.names.find((n) => n.name === port)!;
      assert.ok(rcv.type & TYPE_RECEIVE);
      const snd = sb.names.find((n) => n.name === inB)!;
      assert.ok(snd.type & TYPE_SEND);
      assert.equal(snd.urefs, 3);
      assert.equal(snd.port, rcv.port, "the holders of one port are joined by its id");
      const info = g.ports.find((p) => p.port === rcv.port)!;
      assert.equal(info.receiver, a.task.id);
      assert.ok(info.srights >= 1);
      assert.equal(info.active, true);
      // Each task names its own task port: a kernel object.
      const selfPort = g.ports.find((p) => p.kobject === `task ${a.task.id}`);
      assert.ok(selfPort, "the task port is listed as a kernel object");
    });

    it("marks a send-once right, a dead name and a dead-name request", async () => {
      const a = await child(h, host, "so");
      const b = await child(h, a.task, "dn");
      const port = await a.task.allocate();
      const so = await give(a.task, b.port, port, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
      const snd = await give(a.task, b.port, port, MsgType.MSG_TYPE_MAKE_SEND);
      const notify = await b.task.allocate();
      await b.task.requestNotification(snd, 72, notify);
      let g = await graph(host, { hostPriv: host.hostPriv, tasks: [b.task.id] });
      let names = g.spaces[0]!.names;
      assert.ok(names.find((n) => n.name === so)!.type & TYPE_SEND_ONCE);
      assert.ok(names.find((n) => n.name === snd)!.type & TYPE_DNREQUEST);
      // The receiver goes: the send right reads as the dead name it becomes.
      await a.task.destroy(port);
      g = await graph(host, { hostPriv: host.hostPriv, tasks: [b.task.id] });
      names = g.spaces[0]!.names;
      const dead = names.find((n) => n.name === snd)!;
      assert.ok(dead.type & TYPE_DEAD_NAME);
      assert.equal(dead.port, 0);
    });

    it("covers the hurd's tasks and, with nested, its subhurds' (named), and pages by task id within a bound", async () => {
      const nsTask = await host.taskCreate("inner:startup", { newNamespace: true });
      const inner = await h.attach(nsTask.taskId, nsTask.token);
      await inner.allocate();
      let g = await graph(host, { hostPriv: host.hostPriv });
      assert.ok(!g.spaces.some((s) => s.taskId === inner.id), "a nested hurd's task only with nested");
      assert.deepEqual(g.hurds.map((x) => x.hurd), [h.kernel.config.system]);
      g = await graph(host, { hostPriv: host.hostPriv, nested: true });
      assert.ok(g.spaces.some((s) => s.taskId === inner.id));
      const hi = g.hurds.find((x) => x.hurd === "inner")!;
      assert.equal(hi.namespaceId, nsTask.namespaceId);
      assert.equal(hi.depth, 1);
      // Pages: a small bound makes several, which together list every task once.
      const seen: number[] = [];
      let start = 0;
      let pages = 0;
      do {
        const p = await graph(host, { hostPriv: host.hostPriv, nested: true, startTask: start, maxEntries: 4 });
        pages++;
        for (const s of p.spaces) seen.push(s.taskId);
        start = p.nextTask;
      } while (start !== 0 && pages < 1000);
      assert.ok(pages > 1);
      assert.deepEqual(seen, g.spaces.map((s) => s.taskId));
      assert.equal(new Set(seen).size, seen.length);
      // The subhurd's own host port shows it alone: never its parent's tasks.
      const own = await graph(inner, { hostPriv: await innerHost(host, nsTask, inner) });
      assert.ok(own.spaces.every((s) => s.namespaceId === nsTask.namespaceId));
    });

    it("needs the host_priv port: a task port or a plain name is KERN_INVALID_HOST", async () => {
      const a = await child(h, host, "nopriv");
      await rejectsWith(graph(a.task, { hostPriv: 0 }), "KERN_INVALID_HOST");
      await rejectsWith(graph(host, { hostPriv: a.port }), "KERN_INVALID_HOST");
    });

    it("refuses a task of another hurd by id as if it did not exist", async () => {
      const nsTask = await host.taskCreate("other:startup", { newNamespace: true });
      const other = await h.attach(nsTask.taskId, nsTask.token);
      const own = await innerHost(host, nsTask, other);
      await rejectsWith(graph(other, { hostPriv: own, tasks: [host.id] }), "KERN_INVALID_ARGUMENT");
    });
  });
}

/** Hands the subhurd's host_priv (a name in `host`'s space) to the subhurd's first task; answers its name there. */
async function innerHost(host: Task, made: { task: number; hostPriv: number }, _inner: Task): Promise<number> {
  return give(host, made.task, made.hostPriv, MsgType.MSG_TYPE_COPY_SEND);
}

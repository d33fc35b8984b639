// proc conformance: proc_make_task_namespace (24057, the Hurd's 2014 task
// namespaces, hurd-semantics §8): tasks a member creates are its children
// without proc_child, the root hears of them, members are reaped at once,
// orphans go to the root, and the root's death ends the namespace.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Rights, type Received } from "@hurdmesh/mach";
import { busKinds, until } from "../harness.js";
import { Errno, assertConsistent, bootProcHurd, exitProcess, rejectsWith, type ProcHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`proc task namespaces (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("make_task_namespace: EINVAL without a live notify port, EBUSY the second time; a member's new task is its child at once and the root hears of it", async () => {
      const root = await ph.spawn(ph.startup, "boot");
      await rejectsWith(root.proc.makeTaskNamespace({ notify: 0 }), Errno.EINVAL);
      const notify = await root.task.allocate();
      const heard: Received[] = [];
      root.task.receive(notify, (m) => {
        heard.push(m);
        root.task.dropRights(m);
      });
      const r = new Rights();
      await root.proc.makeTaskNamespace({ notify: r.makeSend(notify) }, { rights: r });
      const r2 = new Rights();
      await rejectsWith(root.proc.makeTaskNamespace({ notify: r2.makeSend(notify) }, { rights: r2 }), Errno.EBUSY);
      const t = await root.task.taskCreate("member");
      const rr = new Rights();
      const { pid } = await root.proc.task2pid({ task: rr.copySend(t.task) }, { rights: rr });
      await until(async () => (await ph.startup.proc.getprocinfo({ which: pid, flags: 0 })).procinfo!.ppid === root.pid, 3000, "member adopted by its creator");
      await until(() => heard.some((m) => m.id === 4400), 3000, "new-task relayed to the root");
      // A member's death leaves no zombie: reaped at once.
      await root.task.taskTerminate(t.task);
      await until(() => ph.startup.proc.getprocinfo({ which: pid, flags: 0 }).then(() => false, () => true), 3000, "member reaped");
      await rejectsWith(root.proc.wait({ pid, options: 1 }), Errno.ECHILD);
      assertConsistent(ph.proc);
      await exitProcess(root);
      await ph.startup.proc.wait({ pid: root.pid, options: 0 });
    });

    it("orphans of a namespace member go to the namespace root; the root's death terminates every member", async () => {
      const root = await ph.spawn(ph.startup, "boot2");
      const notify = await root.task.allocate();
      root.task.receive(notify, (m) => root.task.dropRights(m));
      const r = new Rights();
      await root.proc.makeTaskNamespace({ notify: r.makeSend(notify) }, { rights: r });
      const m1 = await ph.spawn(root, "m1", { adopted: true });
      const m2 = await ph.spawn(m1, "m2", { adopted: true });
      assert.equal((await m2.proc.getpids({})).ppid, m1.pid);
      // proc_child is refused in a namespace, as in the Hurd: the task is parented already.
      const r2 = new Rights();
      await rejectsWith(m1.proc.child({ child: r2.copySend(m2.taskInParent) }, { rights: r2 }), Errno.EBUSY);
      await m1.task.detach();
      await until(async () => (await m2.proc.getpids({})).ppid === root.pid, 3000, "m2 reparented to the root");
      await exitProcess(root);
      await until(() => m2.task.taskInfo().then(() => false, () => true), 3000, "m2 terminated with its namespace");
      await ph.startup.proc.wait({ pid: root.pid, options: 0 });
      assertConsistent(ph.proc);
    });
  });
}

// proc conformance: who may reach whom. The 2021 reauthentication protocol
// (proc_reauthenticate, proc_reauthenticate_reassign,
// proc_reauthenticate_complete), the 2021 ownership rule of pid2task and
// pid2proc (check_owner), and task2pid/task2proc/proc2task.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, Rights, client, portAt } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds, until } from "../harness.js";
import { Errno, bootProcHurd, exitProcess, reauthenticate, rejectsWith, settle, userProcess, type ProcHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`proc ownership and reauthentication (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("proc_reauthenticate (2021): the ids come from auth, the process moves to the new port, the old port is destroyed", async () => {
      const c = await ph.spawn(ph.startup, "reauth");
      const before = (await c.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!;
      assert.equal(before.owner, 0, "inherited root from startup");
      const u = await reauthenticate(ph, c, [1000, 1001]);
      const ids = await u.proc.getpids({});
      assert.equal(ids.pid, c.pid, "same process");
      const info = (await u.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!;
      assert.equal(info.owner, 1000);
      assert.notEqual(u.port, c.port);
      assert.notEqual(await c.proc.getpids({}).then(() => 0, () => 1), 0, "the old process port is dead");
      // Root's privileges are gone with the new ids.
      await rejectsWith(u.proc.getprivports({}), Errno.EPERM);
      await exitProcess(u);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("proc_reauthenticate_complete on an ordinary process port changes nothing (simpleroutine, no effect)", async () => {
      const c = await ph.spawn(ph.startup, "nocomplete");
      await c.proc.reauthenticateComplete({});
      await settle(c);
      assert.equal((await c.proc.getpids({})).pid, c.pid);
      assert.equal((await c.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!.owner, 0);
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("a reauthentication whose user drops the new port without completing leaves the process as it was", async () => {
      const c = await ph.spawn(ph.startup, "dropped");
      const { userReauthenticate } = await import("@hurdmesh/iohelp");
      const { authHandle } = await import("./kit.js");
      const handle = await authHandle(ph, [2000]);
      const NAME = 0x6abc;
      await ph.startup.task.insertRight(c.taskInParent, NAME, handle, MsgType.MSG_TYPE_MOVE_SEND);
      const newport = await userReauthenticate(c.task, NAME, (rv) => {
        const r = new Rights();
        return c.proc.reauthenticate({ rendezvous: r.makeSend(rv) }, { rights: r });
      });
      await c.task.deallocate(newport);
      await settle(c, 4);
      assert.equal((await c.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!.owner, 0, "ids unchanged");
      assert.equal((await c.proc.getpids({})).pid, c.pid, "the old port still works");
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("proc_reauthenticate_reassign (2021, setuid exec into a new task): new ids and new task at once, same pid, old task terminated", async () => {
      const p = await ph.spawn(ph.startup, "setuid-exec");
      // startup plays the exec server, which holds the process port and a handle with the new ids.
      const pp = await ph.startup.proc.pid2proc({ pid: p.pid });
      const exec = client(ph.startup.task, ProcessDefinition, portAt(pp, pp.proc));
      const nt = await ph.startup.task.taskCreate("setuid-image");
      const { userReauthenticate } = await import("@hurdmesh/iohelp");
      const { authHandle } = await import("./kit.js");
      const handle = await authHandle(ph, [3000]);
      const newport = await userReauthenticate(ph.startup.task, handle, (rv) => {
        const r = new Rights();
        return exec.reauthenticateReassign({ rendezvous: r.makeSend(rv), newTask: r.copySend(nt.task) }, { rights: r });
      });
      await client(ph.startup.task, ProcessDefinition, newport).reauthenticateComplete({});
      const np = client(ph.startup.task, ProcessDefinition, newport);
      assert.equal((await np.getpids({})).pid, p.pid);
      const r = new Rights();
      assert.equal((await ph.startup.proc.task2pid({ task: r.copySend(nt.task) }, { rights: r })).pid, p.pid, "the new task is the process's");
      assert.equal((await np.getprocinfo({ which: p.pid, flags: 0 })).procinfo!.owner, 3000);
      await until(() => p.task.taskInfo().then(() => false, () => true), 3000, "old task terminated");
      await ph.startup.task.taskTerminate(nt.task);
      const w = await ph.startup.proc.wait({ pid: p.pid, options: 0 });
      assert.equal(w.status, 9, "the new image died without mark_exit");
    });

    it("pid2task/pid2proc follow the 2021 check_owner: root reaches all; a user reaches processes whose every uid it holds, else EPERM", async () => {
      const a = await userProcess(ph, ph.startup, [1000], "a");
      const b = await userProcess(ph, ph.startup, [1001], "b");
      const ab = await userProcess(ph, ph.startup, [1000, 1001], "ab");
      const a2 = await userProcess(ph, ph.startup, [1000], "a2");
      // A user never reaches root's processes.
      await rejectsWith(a.proc.pid2task({ pid: 2 }), Errno.EPERM);
      await rejectsWith(a.proc.pid2proc({ pid: 2 }), Errno.EPERM);
      // Same uid: yes.
      const t = await a.proc.pid2task({ pid: a2.pid });
      assert.ok(portAt(t, t.task) > 0);
      const pp = await a.proc.pid2proc({ pid: a2.pid });
      assert.equal((await client(a.task, ProcessDefinition, portAt(pp, pp.proc)).getpids({})).pid, a2.pid, "the process port of a2");
      // Another uid: no.
      await rejectsWith(a.proc.pid2task({ pid: b.pid }), Errno.EPERM);
      // Holding every uid of the target: yes, both ways round only when that holds.
      await ab.proc.pid2task({ pid: a.pid });
      await ab.proc.pid2task({ pid: b.pid });
      await rejectsWith(a.proc.pid2task({ pid: ab.pid }), Errno.EPERM, "a lacks 1001");
      // Root reaches everyone.
      await ph.startup.proc.pid2task({ pid: ab.pid });
      // Unowned processes (a task nobody proc_child'ed has no ids) are root's only.
      const t2 = await ph.startup.task.taskCreate("unowned");
      const r = new Rights();
      const { pid: unowned } = await ph.startup.proc.task2pid({ task: r.copySend(t2.task) }, { rights: r });
      await rejectsWith(a.proc.pid2task({ pid: unowned }), Errno.EPERM);
      await ph.startup.proc.pid2task({ pid: unowned });
      await rejectsWith(a.proc.pid2task({ pid: 88888 }), Errno.ESRCH);
      await ph.startup.task.taskTerminate(t2.task);
      for (const p of [a, b, ab, a2]) await exitProcess(p);
    });

    it("task2pid and task2proc need only the task port; an unknown or dead task is ESRCH; proc2task answers the caller's own task", async () => {
      const u = await userProcess(ph, ph.startup, [1234]);
      const r = new Rights();
      assert.equal((await u.proc.task2pid({ task: r.copySend(u.task.self) }, { rights: r })).pid, u.pid);
      const t = await ph.startup.task.taskCreate("short");
      await ph.startup.task.taskTerminate(t.task);
      const r2 = new Rights();
      await rejectsWith(ph.startup.proc.task2pid({ task: r2.copySend(t.task) }, { rights: r2 }), Errno.ESRCH);
      const own = await u.proc.proc2task({});
      assert.equal(portAt(own, own.task), u.task.self, "the same port, so the same name in u's space");
      await exitProcess(u);
    });

  });
}

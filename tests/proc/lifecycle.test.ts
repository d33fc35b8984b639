// proc conformance: process lifecycle (mgt.c, host.c, wait.c's exit half).
// proc_child, proc_reassign, exec marks and exec data, proc_mark_exit, task
// death, zombies, reparenting, SIGCHLD, proc_set_init_task, the boot pids.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, Rights, client, portAt } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds, until } from "../harness.js";
import { CLD, Errno, SIG, W, W_EXITCODE, W_STOPCODE, asProcess, bindInit, bootProcHurd, exitProcess, rejectsWith, settle, userProcess, type ProcHurd } from "./kit.js";

const PI_ZOMBIE = 0x100;
const PI_EXECED = 0x2;
const PI_NOPARENT = 0x80;

for (const kind of busKinds) {
  describe(`proc lifecycle (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("visible pids: 1 init, 2 startup, 3 kernel, 4 proc itself, all in getallpids and getprocinfo (the Hurd since 2013)", async () => {
      const { pids } = await ph.startup.proc.getallpids({});
      for (const p of [1, 2, 3, 4]) assert.ok(pids.includes(p), `pid ${p} in ${pids}`);
      assert.ok(!pids.includes(0), "nothing is pid 0");
      const me = await ph.startup.proc.getprocinfo({ which: 4, flags: 0 });
      assert.equal(me.procinfo!.pid, 4);
      assert.match(me.procinfo!.exe, /proc$/);
      const init = await ph.startup.proc.getprocinfo({ which: 1, flags: 0 });
      assert.equal(init.procinfo!.ppid, 1, "pid 1 is its own parent");
      assert.equal((await ph.startup.proc.getlogin({})).logname, "root");
      assert.equal((await ph.startup.proc.getpids({})).pid, 2);
    });

    it("proc_child works once per task: a second proc_child is EBUSY (mgt.c)", async () => {
      const c = await ph.spawn(ph.startup, "once");
      const r = new Rights();
      await rejectsWith(ph.startup.proc.child({ child: r.copySend(c.taskInParent) }, { rights: r }), Errno.EBUSY);
      const other = await ph.spawn(ph.startup, "other");
      const NAME = 0x2222;
      await ph.startup.task.insertRight(other.taskInParent, NAME, c.taskInParent, MsgType.MSG_TYPE_COPY_SEND);
      const r2 = new Rights();
      await rejectsWith(other.proc.child({ child: r2.copySend(NAME) }, { rights: r2 }), Errno.EBUSY, "another process is refused too");
      assert.equal((await c.proc.getpids({})).ppid, 2, "still startup's child");
      await exitProcess(c);
      await exitProcess(other);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      await ph.startup.proc.wait({ pid: other.pid, options: 0 });
    });

    it("two unparented processes cannot adopt each other (EINVAL; the Hurd's proc_child leaves a cycle that getloginid loops on)", async () => {
      const st = ph.startup;
      const t1 = await st.task.taskCreate("t1");
      const t2 = await st.task.taskCreate("t2");
      const procOf = async (task: number) => {
        const r = new Rights();
        const rep = await st.proc.task2proc({ task: r.copySend(task) }, { rights: r });
        return client(st.task, ProcessDefinition, portAt(rep, rep.proc));
      };
      const a = await procOf(t1.task);
      const b = await procOf(t2.task);
      const r = new Rights();
      await a.child({ child: r.copySend(t2.task) }, { rights: r });
      const r2 = new Rights();
      await rejectsWith(b.child({ child: r2.copySend(t1.task) }, { rights: r2 }), Errno.EINVAL);
      const { pid: pidA } = await a.getpids({});
      const { pid: pidB, ppid } = await b.getpids({});
      assert.equal(ppid, pidA);
      // The walk up from b ends (at init, the login leader).
      assert.equal((await st.proc.getloginid({ pid: pidB }, { timeoutMs: 2000 })).loginId, 1);
      await st.task.taskTerminate(t2.task);
      await st.task.taskTerminate(t1.task);
    });

    it("before proc_child a new task is a process of init's with no parent set and no ids (Hurd discovery)", async () => {
      const t = await ph.startup.task.taskCreate("orphan-task");
      const r = new Rights();
      const { pid } = await ph.startup.proc.task2pid({ task: r.copySend(t.task) }, { rights: r });
      const info = (await ph.startup.proc.getprocinfo({ which: pid, flags: 0 })).procinfo!;
      assert.equal(info.ppid, 1);
      assert.ok(info.state & PI_NOPARENT, "NOPARENT");
      assert.equal(info.owned, false);
      await ph.startup.task.taskTerminate(t.task);
    });

    it("proc_child: the child inherits login, uids and pgrp from its new parent", async () => {
      const mid = await ph.spawn(ph.startup, "mid");
      await mid.proc.setlogin({ logname: "alice" });
      await mid.proc.setsid({});
      const user = await userProcess(ph, mid, [1000], "u");
      const kid = await ph.spawn(user, "kid");
      assert.equal((await kid.proc.getlogin({})).logname, "alice");
      const info = (await kid.proc.getprocinfo({ which: kid.pid, flags: 0 })).procinfo!;
      assert.equal(info.owner, 1000);
      assert.equal(info.owned, true);
      assert.equal(info.pgrp, mid.pid);
      assert.equal(info.session, mid.pid);
      assert.equal(info.ppid, user.pid);
      // Inheritance is by value of the ids: the kid cannot become root.
      await rejectsWith(kid.proc.setlogin({ logname: "root" }), Errno.EPERM);
      for (const p of [kid, user, mid]) await exitProcess(p);
    });

    it("proc_reassign (sent by the exec server): the process takes the new task and the stub's port; the old task and port die; getmsgport waits for the new image", async () => {
      const p = await ph.spawn(ph.startup, "exec-old");
      // startup plays the exec server: it holds p's process port and makes the new task.
      const pp = await ph.startup.proc.pid2proc({ pid: p.pid });
      const exec = client(ph.startup.task, ProcessDefinition, portAt(pp, pp.proc));
      const nt = await ph.startup.task.taskCreate("exec-new");
      const r = new Rights();
      const t2p = await exec.task2proc({ task: r.copySend(nt.task) }, { rights: r });
      const NAME = 0x4321;
      await ph.startup.task.insertRight(nt.task, NAME, portAt(t2p, t2p.proc), MsgType.MSG_TYPE_MOVE_SEND);
      const r0 = new Rights();
      const stubPid = (await exec.task2pid({ task: r0.copySend(nt.task) }, { rights: r0 })).pid;
      assert.notEqual(stubPid, p.pid);
      const newTask = await ph.h.attach(nt.taskId, nt.token);
      const r2 = new Rights();
      await exec.reassign({ newtask: r2.copySend(nt.task) }, { rights: r2 });

      // The old task is terminated by proc.
      await until(() => p.task.taskInfo().then(() => false, () => true), 3000, "old task terminated");
      const np = client(newTask, ProcessDefinition, NAME);
      const ids = await np.getpids({});
      assert.equal(ids.pid, p.pid, "same pid");
      assert.equal(ids.ppid, 2, "same parent");
      const { pids } = await ph.startup.proc.getallpids({});
      assert.ok(!pids.includes(stubPid), "the stub vanished");
      // The old process port is gone (exec's copy of it is a dead name now).
      assert.notEqual(await exec.getpids({}).then(() => 0, () => 1), 0, "old port dead");

      // proc_getmsgport blocks until the new image registers its message port (msg.c, PI_GETMSG).
      let got: number | null = null;
      const waiting = ph.startup.proc.getmsgport({ pid: p.pid }).then((m) => (got = portAt(m, m.msgport)));
      await settle(ph.startup, 3);
      assert.equal(got, null, "getmsgport waits while the process is between images");
      const np2 = await asProcess(newTask, NAME, true);
      await waiting;
      assert.ok(got, "answered once the new image set its msgport");
      assert.equal(np2.pid, p.pid);
      // The stub vanished silently; the reassigned process is still startup's living child.
      await rejectsWith(ph.startup.proc.wait({ pid: p.pid, options: W.NOHANG }), Errno.EAGAIN);
      await exitProcess(np2, W_EXITCODE(7, 0));
      const w = await ph.startup.proc.wait({ pid: p.pid, options: 0 });
      assert.equal(w.status, W_EXITCODE(7, 0));
    });

    it("proc_reassign to the caller's own task is EINVAL; to a task of another hurd ESRCH", async () => {
      const p = await ph.spawn(ph.startup, "re");
      const r = new Rights();
      await rejectsWith(p.proc.reassign({ newtask: r.copySend(p.task.self) }, { rights: r }), Errno.EINVAL);
      const other = await ph.startup.task.taskCreate("other-hurd", { newNamespace: true });
      const NAME = 0x2468;
      await ph.startup.task.insertRight(p.taskInParent, NAME, other.task, MsgType.MSG_TYPE_COPY_SEND);
      const r2 = new Rights();
      await rejectsWith(p.proc.reassign({ newtask: r2.copySend(NAME) }, { rights: r2 }), Errno.ESRCH);
      await ph.startup.task.taskTerminate(other.task);
      await exitProcess(p);
      await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });

    it("proc_mark_exec sets EXECED and makes the parent's setpgid EACCES (POSIX, pgrp.c)", async () => {
      const c = await ph.spawn(ph.startup, "execer");
      await c.proc.markExec({});
      const info = (await c.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!;
      assert.ok(info.state & PI_EXECED);
      await rejectsWith(ph.startup.proc.setpgrp({ pid: c.pid, pgrp: c.pid }), Errno.EACCES);
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("exec data: getexecdata is ENOENT before any setexecdata; setexecdata is root only (host.c)", async () => {
      const fresh = await bootProcHurd(kind);
      try {
        await rejectsWith(fresh.startup.proc.getexecdata({}), Errno.ENOENT);
        const u = await userProcess(fresh, fresh.startup, [1000]);
        await rejectsWith(u.proc.setexecdata({ ports: [], ints: [1] }), Errno.EPERM);
        const r = new Rights();
        const port = r.copySend(fresh.startup.task.self);
        await fresh.startup.proc.setexecdata({ ports: [port], ints: [3, 5, 8] }, { rights: r });
        const d = await u.proc.getexecdata({});
        assert.deepEqual(d.ints, [3, 5, 8]);
        assert.equal(d.ports.length, 1);
        assert.ok(portAt(d, d.ports[0]!) > 0, "the port arrives");
      } finally {
        await fresh.close();
      }
    });

    it("proc_mark_exit: the parent's wait sees the status and sigcode; a stop status is EINVAL, a second mark EBUSY (wait.c)", async () => {
      const c = await ph.spawn(ph.startup, "exit");
      await rejectsWith(c.proc.markExit({ status: W_STOPCODE(SIG.STOP), sigcode: 0 }), Errno.EINVAL);
      await c.proc.markExit({ status: W_EXITCODE(42, 0), sigcode: 7 });
      await rejectsWith(c.proc.markExit({ status: 0, sigcode: 0 }), Errno.EBUSY);
      await c.task.detach();
      const w = await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      assert.equal(w.pidStatus, c.pid);
      assert.equal(w.status, W_EXITCODE(42, 0));
      assert.equal(w.sigcode, 7);
      assert.ok(w.rusage, "rusage comes with an exit");
    });

    it("a task that dies without proc_mark_exit is reported as killed by SIGKILL, sigcode -1 (mgt.c)", async () => {
      const c = await ph.spawn(ph.startup, "crash");
      await c.task.detach();
      const w = await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      assert.equal(w.status, 9);
      assert.equal(w.status & 0x7f, SIG.KILL);
      assert.equal(w.sigcode, -1);
    });

    it("a task whose lease runs out (abandoned, as a crashed program) dies the same way", async () => {
      const c = await ph.spawn(ph.startup, "abandon");
      c.task.abandon();
      const w = await ph.startup.proc.wait({ pid: c.pid, options: 0 }, { timeoutMs: 20_000 });
      assert.equal(w.status, 9);
      assert.equal(w.sigcode, -1);
    });

    it("a dead child stays a zombie until waited: still in getprocinfo (ZOMBIE), not in getallpids, pid2task null", async () => {
      const c = await ph.spawn(ph.startup, "zombie");
      await exitProcess(c, W_EXITCODE(1, 0));
      await until(async () => ((await ph.startup.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!.state & PI_ZOMBIE) !== 0, 3000, "zombie");
      const info = (await ph.startup.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!;
      assert.equal(info.exitstatus, W_EXITCODE(1, 0));
      const { pids } = await ph.startup.proc.getallpids({});
      assert.ok(!pids.includes(c.pid));
      const t = await ph.startup.proc.pid2task({ pid: c.pid });
      assert.equal(t.task, 0, "a zombie answers a null task");
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      await rejectsWith(ph.startup.proc.getprocinfo({ which: c.pid, flags: 0 }), Errno.ESRCH);
      await rejectsWith(ph.startup.proc.pid2task({ pid: c.pid }), Errno.ESRCH);
    });

    it("SIGCHLD goes to the parent's msgport: CLD_EXITED on exit, CLD_KILLED on death without mark_exit", async () => {
      const par = await ph.spawn(ph.startup, "parent");
      const a = await ph.spawn(par, "a");
      const b = await ph.spawn(par, "b");
      await exitProcess(a, 0);
      await until(() => par.signals.length >= 1, 3000, "SIGCHLD");
      assert.deepEqual(par.signals[0], { signal: SIG.CHLD, sigcode: CLD.EXITED });
      await b.task.detach();
      await until(() => par.signals.length >= 2, 3000, "second SIGCHLD");
      assert.deepEqual(par.signals[1], { signal: SIG.CHLD, sigcode: CLD.KILLED });
      await par.proc.wait({ pid: a.pid, options: 0 });
      await par.proc.wait({ pid: b.pid, options: 0 });
      await exitProcess(par);
      await ph.startup.proc.wait({ pid: par.pid, options: 0 });
    });

    it("when a parent dies its children go to pid 1 and hear it (msg_proc_newids); a zombie among them is reported to pid 1 (mgt.c)", async () => {
      const fresh = await bootProcHurd(kind);
      try {
        const init = await bindInit(fresh);
        assert.equal(init.pid, 1);
        const par = await fresh.spawn(fresh.startup, "dying-parent");
        const live = await fresh.spawn(par, "live");
        const dead = await fresh.spawn(par, "dead");
        await exitProcess(dead, W_EXITCODE(3, 0));
        await until(() => par.signals.length > 0, 3000, "SIGCHLD to par");
        await exitProcess(par);
        await until(async () => (await live.proc.getpids({})).ppid === 1, 3000, "reparented");
        await until(() => live.newids.some((n) => n.ppid === 1), 3000, "newids with ppid 1");
        await until(() => init.signals.some((s) => s.signal === SIG.CHLD), 3000, "SIGCHLD to init");
        const w = await init.proc.wait({ pid: -1, options: W.NOHANG });
        assert.equal(w.pidStatus, dead.pid);
        assert.equal(w.status, W_EXITCODE(3, 0));
        await exitProcess(live);
        const w2 = await init.proc.wait({ pid: live.pid, options: 0 });
        assert.equal(w2.pidStatus, live.pid);
        await fresh.startup.proc.wait({ pid: par.pid, options: 0 });
      } finally {
        await fresh.close();
      }
    });

    it("proc_set_init_task binds pid 1 (only from startup, pid 2; else EPERM) and drops the task's own entry (fb3698eb)", async () => {
      const fresh = await bootProcHurd(kind);
      try {
        const c = await fresh.spawn(fresh.startup, "not-startup");
        const t = await fresh.startup.task.taskCreate("would-be-init");
        const tp = await fresh.startup.proc.pid2task({ pid: c.pid });
        const childTask = portAt(tp, tp.task);
        const NAME = 0x3333;
        await fresh.startup.task.insertRight(childTask, NAME, t.task, MsgType.MSG_TYPE_COPY_SEND);
        const r = new Rights();
        await rejectsWith(c.proc.setInitTask({ task: r.copySend(NAME) }, { rights: r }), Errno.EPERM);
        // Let proc hear of the task first, so that a duplicate entry exists.
        const r1 = new Rights();
        const dupPid = (await fresh.startup.proc.task2pid({ task: r1.copySend(t.task) }, { rights: r1 })).pid;
        assert.notEqual(dupPid, 1);
        const r2 = new Rights();
        await fresh.startup.proc.setInitTask({ task: r2.copySend(t.task) }, { rights: r2 });
        const r3 = new Rights();
        assert.equal((await fresh.startup.proc.task2pid({ task: r3.copySend(t.task) }, { rights: r3 })).pid, 1);
        const { pids } = await fresh.startup.proc.getallpids({});
        assert.ok(!pids.includes(dupPid), "the duplicate entry is gone");
      } finally {
        await fresh.close();
      }
    });

    it("proc_setowner is EOPNOTSUPP (obsolete since the 2021 reauthentication)", async () => {
      await rejectsWith(ph.startup.proc.setowner({ owner: 0, clear: 0 }), Errno.EOPNOTSUPP);
    });

    it("a task of a hurd nested in this one gets a pid marked with its namespace, but nobody adopts it and group kills miss it", async () => {
      const t = await ph.startup.task.taskCreate("subhurd-task", { newNamespace: true });
      const r = new Rights();
      const { pid } = await ph.startup.proc.task2pid({ task: r.copySend(t.task) }, { rights: r });
      const info = (await ph.startup.proc.getprocinfo({ which: pid, flags: 0 })).procinfo!;
      assert.equal(info.namespaceId, t.namespaceId);
      const r3 = new Rights();
      await rejectsWith(ph.startup.proc.child({ child: r3.copySend(t.task) }, { rights: r3 }), Errno.EPERM);
      const { pids } = await ph.startup.proc.getpgrppids({ pgrp: info.pgrp });
      assert.ok(!pids.includes(pid), "kill(-pgrp) from this hurd does not reach into a subhurd");
      await ph.startup.task.taskTerminate(t.task);
      // Reaped at once: its own hurd's proc does the waiting, not this one.
      await until(async () => !(await ph.startup.proc.getallpids({})).pids.includes(pid), 3000, "the nested process to be reaped");
    });

    it("proc_getchildren_rusage accumulates the rusage of reaped children", async () => {
      const par = await ph.spawn(ph.startup, "acc");
      const c = await ph.spawn(par, "c");
      await c.proc.getpids({});
      await exitProcess(c);
      await par.proc.wait({ pid: c.pid, options: 0 });
      const r = await par.proc.getchildrenRusage({});
      assert.ok(r.childrenRusage && r.childrenRusage.msgsnd > 0, `children rusage ${JSON.stringify(r.childrenRusage)}`);
      await exitProcess(par);
      await ph.startup.proc.wait({ pid: par.pid, options: 0 });
    });
  });
}

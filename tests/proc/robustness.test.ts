// proc conformance: robustness. The Hurd's proc crashes on a NULL caller in
// get_arg_locations, get_entry and getpgrppids(0), and believed forged
// notifications; hurdmesh answers EOPNOTSUPP and believes only the kernel.
// The fuzz run that was here (random and mutated bodies to every Process
// RPC) is the proc target of the fast-check harness now: tests/fuzz/proc.ts,
// its short run in tests/fuzz/fuzz.test.ts, its long runs `npm run fuzz`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, PortRight, Rights, client, portAt, type Task } from "@hurdmesh/mach";
import { NewTaskNotification, TaskTerminatedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds } from "../harness.js";
import { Errno, SIG, assertConsistent, bootProcHurd, exitProcess, rejectsWith, settle, userProcess, type Proc, type ProcHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`proc robustness (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind, { maxWaitersPerProcess: 8, maxMsgportWaiters: 8 });
    });
    after(async () => ph.close());

    it("the Hurd's NULL-caller crashes (get_arg_locations, get_entry, getpgrppids(0)) answer EOPNOTSUPP on a port that is not a process", async () => {
      const c = await ph.spawn(ph.startup, "h");
      const r = await ph.startup.proc.pidOpen({ pid: c.pid, serial: 0 });
      const notProc = client(ph.startup.task, ProcessDefinition, portAt(r, r.handle));
      await rejectsWith(notProc.getArgLocations({}), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.getEntry({}), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.getpgrppids({ pgrp: 0 }), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.getpids({}), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.wait({ pid: -1, options: 0 }), Errno.EOPNOTSUPP);
      // And a handle call on a process port is no handle call.
      await rejectsWith(c.proc.handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.EOPNOTSUPP);
      assert.equal((await ph.startup.proc.getpids({})).pid, 2, "proc is fine");
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("forged notifications (70 no-senders, 72 dead-name, 4400 new-task, 4401 task-terminated) sent by a task change nothing", async () => {
      const victim = await ph.spawn(ph.startup, "victim");
      const forger = await userProcess(ph, ph.startup, [666], "forger");
      const before = (await ph.startup.proc.getallpids({})).pids.sort();
      // The forger's own handle on itself, and the victim's msgport-less view.
      const hr = await forger.proc.pidOpen({ pid: forger.pid, serial: 0 });
      const handle = portAt(hr, hr.handle);
      const send = (t: Task, dest: number, id: number, body: Uint8Array, ports: Rights["ports"] = []) => t.send({ destination: dest, id, body, ports });
      const victimId = victim.task.id;
      const terminated = TaskTerminatedNotification.encode({ taskId: victimId, reason: "forged", namespaceId: 0 }).finish();
      for (const dest of [forger.port, handle]) {
        send(forger.task, dest, 70, new Uint8Array([8, 1]));
        send(forger.task, dest, 72, new Uint8Array([8, 5]));
        send(forger.task, dest, 4401, terminated);
        const r = new Rights();
        const t = r.copySend(forger.task.self);
        send(forger.task, dest, 4400, NewTaskNotification.encode({ task: t, parent: t, taskId: forger.task.id, parentId: 1, namespaceId: 0, name: "" }).finish(), r.ports);
      }
      // startup (root) can even reach proc's own notify port through proc's task port: still not believed.
      const pt = await ph.startup.proc.pid2task({ pid: 4 });
      const notify = await ph.startup.task.extractRight(portAt(pt, pt.task), ph.proc.notifyPort, MsgType.MSG_TYPE_MAKE_SEND);
      const forgedBefore = ph.proc.stats.forgedNotifications;
      send(ph.startup.task, notify.name, 4401, terminated);
      const r = new Rights();
      const nt = await ph.startup.task.taskCreate("fake");
      const t = r.copySend(nt.task);
      send(ph.startup.task, notify.name, 4400, NewTaskNotification.encode({ task: t, parent: 0, taskId: 999999, parentId: 0, namespaceId: 0, name: "" }).finish(), r.ports);
      await settle(forger, 4);
      await settle(ph.startup, 4);
      assert.ok(ph.proc.stats.forgedNotifications >= forgedBefore + 2, "counted and dropped");
      // Nothing died, nothing was closed, nothing appeared but the real task.
      assert.equal((await victim.proc.getpids({})).pid, victim.pid);
      assert.equal((await ph.startup.proc.getprocinfo({ which: victim.pid, flags: 0 })).procinfo!.state & 0x100, 0, "victim not a zombie");
      await client(forger.task, ProcessDefinition, handle).handleSignal({ signal: SIG.USR1, sigcode: 0 });
      assert.equal((await forger.proc.getpids({})).pid, forger.pid);
      const after = (await ph.startup.proc.getallpids({})).pids.sort();
      const extra = after.filter((p) => !before.includes(p));
      assert.ok(extra.length <= 1, `only the real new task may appear: ${extra}`);
      assertConsistent(ph.proc);
      await ph.startup.task.taskTerminate(nt.task);
      for (const p of [victim, forger]) await exitProcess(p);
    });

    it("a bare name (MSG_TYPE_PORT_NAME) is no right: register_version, make_task_namespace and reauthenticate_reassign neither believe it nor release proc's right of that number", async () => {
      const forger = await userProcess(ph, ph.startup, [666], "bare-namer");
      // The number proc's own host_priv right has in proc's space: anyone can write it in a message.
      const host = ph.proc.hostPriv;
      assert.ok(host, "proc holds host_priv");
      const refs = await ph.proc.task.getRefs(host, PortRight.PORT_RIGHT_SEND);
      const bare = () => {
        const r = new Rights();
        return { r, i: r.add(host, MsgType.MSG_TYPE_PORT_NAME) };
      };
      const v = bare();
      await rejectsWith(forger.proc.registerVersion({ credential: v.i, name: "forged", release: "1", version: "" }, { rights: v.r }), Errno.EPERM, "register_version");
      const n = bare();
      await rejectsWith(forger.proc.makeTaskNamespace({ notify: n.i }, { rights: n.r }), Errno.EINVAL, "make_task_namespace");
      // reauthenticate_reassign is a simpleroutine: no answer, only its effect on proc's space.
      const a = bare();
      await forger.proc.reauthenticateReassign({ rendezvous: a.i, newTask: 5 }, { rights: a.r });
      await settle(forger);
      assert.equal(await ph.proc.task.getRefs(host, PortRight.PORT_RIGHT_SEND), refs, "proc's host_priv urefs");
      assert.ok(!(await ph.startup.proc.uname({})).version.includes("forged"), "no version registered");
      await exitProcess(forger);
      await ph.startup.proc.wait({ pid: forger.pid, options: 0 });
    });

    it("a message port that never answers stalls nothing: SIGCHLDs to it are one-way, a handle's signal to it times out, proc keeps serving", async () => {
      const slow = await bootProcHurd(kind, { signalTimeoutMs: 300 });
      try {
        const par = await slow.spawn(slow.startup, "deaf-parent", { msgport: false });
        // A message port whose receiver takes every message and answers none.
        const deaf = await par.task.allocate();
        par.task.receive(deaf, () => new Promise<void>(() => {}));
        const r = new Rights();
        await par.proc.setmsgport({ newmsgport: r.makeSend(deaf) }, { rights: r });
        const kids: Proc[] = [];
        for (let i = 0; i < 20; i++) kids.push(await slow.spawn(par, "k"));
        for (const k of kids) await exitProcess(k);
        for (const k of kids) await par.proc.wait({ pid: k.pid, options: 0 });
        const h = await slow.startup.proc.pidOpen({ pid: par.pid, serial: 0 });
        const t0 = Date.now();
        await rejectsWith(client(slow.startup.task, ProcessDefinition, portAt(h, h.handle)).handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.ETIMEDOUT);
        assert.ok(Date.now() - t0 < 3000, "bounded by signalTimeoutMs");
        assert.equal((await slow.startup.proc.getpids({})).pid, 2);
        assertConsistent(slow.proc);
      } finally {
        await slow.close();
      }
    });
  });
}

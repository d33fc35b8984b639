// proc conformance: hurdmesh's process handles (24300-24303). A handle names
// one incarnation of one process, pins its pid until the last send right
// goes, counts against its owner's quota, and never reaches a newer process
// that got the same pid: Linux's pidfd guarantees, plus the pid reservation
// of Windows' OpenProcess (hurd-semantics §9).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, portAt } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds, until } from "../harness.js";
import { Errno, SIG, assertConsistent, bindInit, bootProcHurd, exitProcess, reauthenticate, rejectsWith, settle, userProcess, type Proc, type ProcHurd } from "./kit.js";

type Handle = ReturnType<typeof client<typeof ProcessDefinition>> & { name: number; pid: number; serial: number };

async function open(by: Proc, pid: number, serial = 0): Promise<Handle> {
  const r = await by.proc.pidOpen({ pid, serial });
  const name = portAt(r, r.handle);
  return Object.assign(client(by.task, ProcessDefinition, name), { name, pid: r.pid, serial: r.serial });
}

/** fork + exit + wait: one pid used and freed. */
async function churnOne(ph: ProcHurd, parent: Proc): Promise<Proc> {
  const c = await ph.spawn(parent, "churn");
  await exitProcess(c);
  await parent.proc.wait({ pid: c.pid, options: 0 });
  return c;
}

for (const kind of busKinds) {
  describe(`proc process handles (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("pidOpen checks ownership as pid2task does (EPERM), ESRCH for an unknown pid or another incarnation", async () => {
      const u = await userProcess(ph, ph.startup, [1000]);
      await rejectsWith(u.proc.pidOpen({ pid: 2, serial: 0 }), Errno.EPERM);
      await rejectsWith(u.proc.pidOpen({ pid: 77777, serial: 0 }), Errno.ESRCH);
      const own = await open(u, u.pid);
      assert.equal(own.pid, u.pid);
      await rejectsWith(u.proc.pidOpen({ pid: u.pid, serial: own.serial + 1000 }), Errno.ESRCH);
      const h = await open(ph.startup, u.pid, own.serial);
      const g = await h.handleGetpid({});
      assert.deepEqual({ pid: g.pid, serial: g.serial, alive: g.alive }, { pid: u.pid, serial: own.serial, alive: true });
      await exitProcess(u);
    });

    it("a signal through a handle reaches that process, with the sigcode given; signal 0 only probes", async () => {
      const t = await ph.spawn(ph.startup, "target");
      const h = await open(ph.startup, t.pid);
      await h.handleSignal({ signal: SIG.USR1, sigcode: 0 });
      await h.handleSignal({ signal: 0, sigcode: 0 });
      assert.deepEqual(t.signals, [{ signal: SIG.USR1, sigcode: 0 }], "synchronous: delivered when the call returns");
      await rejectsWith(h.handleSignal({ signal: 99, sigcode: 0 }), Errno.EINVAL);
      await exitProcess(t);
      await ph.startup.proc.wait({ pid: t.pid, options: 0 });
    });

    it("a handle's signal is checked again when sent (as pidfd_send_signal): after its target reauthenticates to ids the opener lacks, EPERM", async () => {
      const u = await userProcess(ph, ph.startup, [1000], "opener");
      const x = await userProcess(ph, u, [1000], "x");
      const h = await open(u, x.pid);
      await h.handleSignal({ signal: SIG.USR1, sigcode: 0 });
      const x2 = await reauthenticate(ph, x, [2000]);
      await rejectsWith(h.handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.EPERM);
      assert.equal((await h.handleGetpid({})).alive, true, "the handle still names it");
      assert.deepEqual(x.signals, [{ signal: SIG.USR1, sigcode: 0 }]);
      // Root's handles reach everyone.
      const hr = await open(ph.startup, x.pid);
      await hr.handleSignal({ signal: SIG.USR1, sigcode: 0 });
      assert.equal(x.signals.length, 2);
      await exitProcess(x2);
      await exitProcess(u);
    });

    it("SIGKILL through a handle terminates the task (glibc's kill does task_terminate); the parent sees death by SIGKILL", async () => {
      const t = await ph.spawn(ph.startup, "killed");
      const h = await open(ph.startup, t.pid);
      await h.handleSignal({ signal: SIG.KILL, sigcode: 0 });
      const w = await ph.startup.proc.wait({ pid: t.pid, options: 0 });
      assert.equal(w.status, SIG.KILL);
      assert.deepEqual(t.signals, [], "SIGKILL never goes through the message port");
    });

    it("after the process is reaped a signal through the old handle is ESRCH; handleGetpid says it is not alive; handleWait tells how it ended", async () => {
      const t = await ph.spawn(ph.startup, "short");
      const h = await open(ph.startup, t.pid);
      await exitProcess(t, 3 << 8);
      await ph.startup.proc.wait({ pid: t.pid, options: 0 });
      await rejectsWith(h.handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.ESRCH);
      assert.equal((await h.handleGetpid({})).alive, false);
      const w = await h.handleWait({ options: 0 });
      assert.equal(w.status, 3 << 8);
    });

    it("a pinned pid is skipped by allocation; closing the handle releases the pin and the pid is reused (pid_max 200, floor 100)", async () => {
      const small = await bootProcHurd(kind, { pidMax: 200, pidFloor: 100 });
      try {
        const x = await small.spawn(small.startup, "pinned");
        const h = await open(small.startup, x.pid);
        await exitProcess(x);
        await small.startup.proc.wait({ pid: x.pid, options: 0 });
        const seen = new Set<number>();
        // More than the whole range: every free pid comes round at least once.
        for (let i = 0; i < 110; i++) seen.add((await churnOne(small, small.startup)).pid);
        assert.ok(seen.size > 90, `churn covered the range (${seen.size})`);
        assert.ok(!seen.has(x.pid), `pinned pid ${x.pid} was never handed out`);
        await rejectsWith(h.handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.ESRCH);
        // Dropping the last send right: no-senders releases the pin.
        await small.startup.task.deallocate(h.name);
        let reused: Proc | null = null;
        for (let i = 0; i < 220 && !reused; i++) {
          const c = await small.spawn(small.startup, "again");
          if (c.pid === x.pid) reused = c;
          else {
            await exitProcess(c);
            await small.startup.proc.wait({ pid: c.pid, options: 0 });
          }
        }
        assert.ok(reused, `pid ${x.pid} came back once its handle was closed`);
        // The new process is another incarnation: opening the old one is ESRCH.
        await rejectsWith(small.startup.proc.pidOpen({ pid: x.pid, serial: h.serial }), Errno.ESRCH);
        assert.deepEqual(reused.signals, []);
      } finally {
        await small.close();
      }
    });

    it("a pid is not reused while a pgrp or session of that id lives on, after its process is reaped (the Hurd's genpid)", async () => {
      const small = await bootProcHurd(kind, { pidMax: 130, pidFloor: 100 });
      try {
        const init = await bindInit(small);
        const L = await small.spawn(small.startup, "leader");
        await L.proc.setsid({});
        const member = await small.spawn(L, "member");
        await exitProcess(L);
        await small.startup.proc.wait({ pid: L.pid, options: 0 });
        assert.equal((await member.proc.getsid({ pid: member.pid })).sid, L.pid, "the session outlives its leader");
        const seen = new Set<number>();
        for (let i = 0; i < 40; i++) seen.add((await churnOne(small, small.startup)).pid);
        assert.ok(!seen.has(L.pid), `pid ${L.pid} still names a session and a pgrp`);
        // The member, orphaned, is init's to reap (a zombie would keep the session).
        await exitProcess(member);
        await init.proc.wait({ pid: member.pid, options: 0 });
        let back = false;
        for (let i = 0; i < 70 && !back; i++) back = (await churnOne(small, small.startup)).pid === L.pid;
        assert.ok(back, "free once the session is gone");
      } finally {
        await small.close();
      }
    });

    it("an exhausted pid space answers EAGAIN (as Linux's fork) and proc goes on; a freed pid is handed out again", async () => {
      const tiny = await bootProcHurd(kind, { pidMax: 108, pidFloor: 100 });
      try {
        const kids: Proc[] = [];
        for (let i = 0; i < 8; i++) kids.push(await tiny.spawn(tiny.startup, "fill"));
        const t = await tiny.startup.task.taskCreate("one-too-many");
        const { Rights } = await import("@hurdmesh/mach");
        const r = new Rights();
        await rejectsWith(tiny.startup.proc.task2pid({ task: r.copySend(t.task) }, { rights: r }), Errno.EAGAIN);
        assert.equal((await tiny.startup.proc.getpids({})).pid, 2, "proc still answers");
        await tiny.startup.task.taskTerminate(t.task);
        await exitProcess(kids[3]!);
        await tiny.startup.proc.wait({ pid: kids[3]!.pid, options: 0 });
        const again = await tiny.spawn(tiny.startup, "again");
        assert.equal(again.pid, kids[3]!.pid);
        assertConsistent(tiny.proc);
      } finally {
        await tiny.close();
      }
    });

    it("recycled pid, after Linux's pidfd selftest: churn with a small pid_max until the pid is reused; the old handle is ESRCH and the new process sees nothing", async () => {
      const small = await bootProcHurd(kind, { pidMax: 140, pidFloor: 100 });
      try {
        const x = await small.spawn(small.startup, "old");
        const h = await open(small.startup, x.pid);
        const oldPid = x.pid;
        await exitProcess(x);
        await small.startup.proc.wait({ pid: x.pid, options: 0 });
        // While the handle lives the pid cannot come back: a whole cycle of churn proves it.
        const live: Proc[] = [];
        for (let i = 0; i < 45; i++) {
          const c = await small.spawn(small.startup, "churn");
          assert.notEqual(c.pid, oldPid);
          live.push(c);
          if (live.length > 5) {
            const d = live.shift()!;
            await exitProcess(d);
            await small.startup.proc.wait({ pid: d.pid, options: 0 });
          }
        }
        await rejectsWith(h.handleSignal({ signal: SIG.TERM, sigcode: 0 }), Errno.ESRCH);
        await rejectsWith(h.handleWait({ options: 1 }).then((w) => (w.pidStatus === oldPid ? Promise.reject({ code: Errno.ESRCH }) : w)), Errno.ESRCH);
        // Close it, churn until the pid is someone else's.
        await small.startup.task.deallocate(h.name);
        let y: Proc | null = null;
        for (let i = 0; i < 100 && !y; i++) {
          const c = await small.spawn(small.startup, "new");
          if (c.pid === oldPid) y = c;
          else live.push(c);
          if (live.length > 5) {
            const d = live.shift()!;
            await exitProcess(d);
            await small.startup.proc.wait({ pid: d.pid, options: 0 });
          }
        }
        assert.ok(y, "the pid was reused");
        await rejectsWith(small.startup.proc.pidOpen({ pid: oldPid, serial: h.serial }), Errno.ESRCH);
        await settle(y);
        assert.deepEqual(y.signals, [], "the new process received nothing");
        for (const c of live) assert.deepEqual(c.signals, []);
      } finally {
        await small.close();
      }
    });

    it("handles count against their owner's quota: EDQUOT past it; closing one makes room", async () => {
      const q = await bootProcHurd(kind, { handleQuota: 3 });
      try {
        const u = await userProcess(q, q.startup, [1500]);
        const hs = [await open(u, u.pid), await open(u, u.pid), await open(u, u.pid)];
        await rejectsWith(u.proc.pidOpen({ pid: u.pid, serial: 0 }), Errno.EDQUOT);
        // Another uid has its own quota.
        await open(q.startup, u.pid);
        await u.task.deallocate(hs[0]!.name);
        await until(() => u.proc.pidOpen({ pid: u.pid, serial: 0 }).then(() => true, () => false), 3000, "room again");
      } finally {
        await q.close();
      }
    });

    it("a handle holder that dies releases its handles (no-senders when its space goes)", async () => {
      const small = await bootProcHurd(kind, { pidMax: 130, pidFloor: 100 });
      try {
        const holder = await small.spawn(small.startup, "holder");
        const x = await small.spawn(small.startup, "x");
        await open(holder, x.pid);
        await exitProcess(x);
        await small.startup.proc.wait({ pid: x.pid, options: 0 });
        await exitProcess(holder);
        await small.startup.proc.wait({ pid: holder.pid, options: 0 });
        let back = false;
        for (let i = 0; i < 70 && !back; i++) back = (await churnOne(small, small.startup)).pid === x.pid;
        assert.ok(back, `pid ${x.pid} is free again`);
      } finally {
        await small.close();
      }
    });

    it("killall under churn (getallprocinfo + pidOpen with serial + handleSignal): every target signalled exactly once, no other process touched", async () => {
      const victims: Proc[] = [];
      for (let i = 0; i < 12; i++) {
        const v = await ph.spawn(ph.startup, "victim");
        await v.proc.setprocargs({ argv: ["victim"], envp: [] });
        victims.push(v);
      }
      // Some victims exit while the killall runs; bystanders come and go all along.
      const leaving = victims.slice(0, 4);
      const staying = victims.slice(4);
      const bystanders: Proc[] = [];
      let churning = true;
      const churn = (async () => {
        while (churning) {
          const b = await ph.spawn(ph.startup, "bystander");
          await b.proc.setprocargs({ argv: ["bystander"], envp: [] });
          bystanders.push(b);
          if (bystanders.length % 2 === 0) {
            const d = bystanders[bystanders.length - 2]!;
            await exitProcess(d);
            await ph.startup.proc.wait({ pid: d.pid, options: 0 });
          }
        }
      })();
      const exits = (async () => {
        for (const v of leaving) {
          await exitProcess(v);
          await ph.startup.proc.wait({ pid: v.pid, options: 0 });
        }
      })();
      // The killall: list, open each target by (pid, serial), signal through the handle.
      try {
        let start = 1;
        do {
          const page = await ph.startup.proc.getallprocinfo({ startPid: start, max: 4, flags: 0 });
          for (const pi of page.procs) {
            if (pi.command !== "victim") continue;
            try {
              const h = await open(ph.startup, pi.pid, Number(pi.serial));
              await h.handleSignal({ signal: SIG.TERM, sigcode: 0 });
              await ph.startup.task.deallocate(h.name);
            } catch (e) {
              assert.equal((e as { code?: number }).code, Errno.ESRCH, `only a vanished target may fail (pid ${pi.pid}): ${(e as Error).message}`);
            }
          }
          start = page.nextPid;
        } while (start);
      } finally {
        churning = false;
        await churn;
        await exits;
      }
      for (const v of staying) assert.deepEqual(v.signals, [{ signal: SIG.TERM, sigcode: 0 }], `victim ${v.pid} exactly once`);
      for (const v of leaving) assert.ok(v.signals.length <= 1, `leaving victim ${v.pid} at most once`);
      for (const b of bystanders) assert.deepEqual(b.signals, [], `bystander ${b.pid} untouched`);
      assert.ok(bystanders.length > 0, "churn happened");
      for (const v of staying) {
        await exitProcess(v);
        await ph.startup.proc.wait({ pid: v.pid, options: 0 });
      }
    });
  });
}

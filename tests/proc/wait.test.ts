// proc conformance: proc_wait / proc_waitid (wait.c) and the mark bits that
// feed them (proc_mark_stop, proc_mark_cont, proc_mark_traced,
// proc_mod_stopchild), with SIGCHLD to the parent.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds, until } from "../harness.js";
import { CLD, Errno, SIG, W, W_EXITCODE, W_STOPCODE, bootProcHurd, exitProcess, rejectsWith, settle, type Proc, type ProcHurd } from "./kit.js";

const W_CONTINUED = 0xffff;

for (const kind of busKinds) {
  describe(`proc wait (${kind} bus)`, () => {
    let ph: ProcHurd;
    /** A fresh parent per test, with a message port that records SIGCHLD. */
    let par: Proc;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());
    const parent = async () => (par = await ph.spawn(ph.startup, "parent"));
    const done = async () => {
      await exitProcess(par);
      await ph.startup.proc.wait({ pid: par.pid, options: 0 });
    };

    it("a process without children gets ECHILD (wait.c), with or without WNOHANG", async () => {
      await parent();
      await rejectsWith(par.proc.wait({ pid: -1, options: 0 }), Errno.ECHILD);
      await rejectsWith(par.proc.wait({ pid: -1, options: W.NOHANG }), Errno.ECHILD);
      await rejectsWith(par.proc.waitid({ pid: 0, options: W.EXITED }), Errno.ECHILD);
      await done();
    });

    it("waiting for a pid that is not one's child, or a pgrp with no child in it, is ECHILD", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      const stranger = await ph.spawn(ph.startup, "stranger");
      await rejectsWith(par.proc.wait({ pid: stranger.pid, options: W.NOHANG }), Errno.ECHILD);
      await rejectsWith(par.proc.wait({ pid: 99999, options: 0 }), Errno.ECHILD);
      await rejectsWith(par.proc.wait({ pid: -99999, options: 0 }), Errno.ECHILD);
      await exitProcess(c);
      await exitProcess(stranger);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await ph.startup.proc.wait({ pid: stranger.pid, options: 0 });
      await done();
    });

    it("WNOHANG with nothing ready is EWOULDBLOCK (EAGAIN, glibc maps it to 0); pid 0 with no child in the pgrp too (the Hurd's had_a_match)", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      await rejectsWith(par.proc.wait({ pid: c.pid, options: W.NOHANG }), Errno.EAGAIN);
      await rejectsWith(par.proc.wait({ pid: -1, options: W.NOHANG }), Errno.EAGAIN);
      // c leaves par's pgrp: pid 0 now matches no child, which is still EWOULDBLOCK, not ECHILD.
      await par.proc.setpgrp({ pid: c.pid, pgrp: c.pid });
      await rejectsWith(par.proc.wait({ pid: 0, options: W.NOHANG }), Errno.EAGAIN);
      await exitProcess(c);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await done();
    });

    it("a blocking wait is answered when the child exits, with its pid and status; the pid is then free of it", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      const w = par.proc.wait({ pid: -1, options: 0 });
      await settle(par);
      await exitProcess(c, W_EXITCODE(5, 0));
      const r = await w;
      assert.equal(r.pidStatus, c.pid);
      assert.equal(r.status, W_EXITCODE(5, 0));
      await rejectsWith(par.proc.wait({ pid: c.pid, options: W.NOHANG }), Errno.ECHILD, "reaped");
      await done();
    });

    it("pid 0 waits for children in the caller's pgrp, -pgid for children in that pgrp (POSIX)", async () => {
      await parent();
      const same = await ph.spawn(par, "same");
      const other = await ph.spawn(par, "other");
      await par.proc.setpgrp({ pid: other.pid, pgrp: other.pid });
      await exitProcess(other, W_EXITCODE(2, 0));
      await until(async () => ((await ph.startup.proc.getprocinfo({ which: other.pid, flags: 0 })).procinfo!.state & 0x100) !== 0, 3000, "zombie");
      await rejectsWith(par.proc.wait({ pid: 0, options: W.NOHANG }), Errno.EAGAIN, "the dead child is in another pgrp");
      const r = await par.proc.wait({ pid: -other.pid, options: W.NOHANG });
      assert.equal(r.pidStatus, other.pid);
      await exitProcess(same, W_EXITCODE(1, 0));
      const r2 = await par.proc.wait({ pid: 0, options: 0 });
      assert.equal(r2.pidStatus, same.pid);
      await done();
    });

    it("waitid needs one of WEXITED, WSTOPPED, WCONTINUED (EINVAL); proc_wait forces WEXITED", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      await rejectsWith(par.proc.waitid({ pid: c.pid, options: W.NOHANG }), Errno.EINVAL);
      await exitProcess(c, W_EXITCODE(9, 0));
      await until(async () => ((await ph.startup.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!.state & 0x100) !== 0, 3000, "zombie");
      await rejectsWith(par.proc.waitid({ pid: c.pid, options: W.STOPPED | W.NOHANG }), Errno.EAGAIN, "a dead child is no stopped one");
      const r = await par.proc.wait({ pid: c.pid, options: W.NOHANG });
      assert.equal(r.status, W_EXITCODE(9, 0));
      await done();
    });

    it("WUNTRACED reports a stopped child once; without it a stop is not reported; SIGCHLD CLD_STOPPED goes to the parent", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      await c.proc.markStop({ signo: SIG.TSTP, sigcode: 0 });
      await until(() => par.signals.some((s) => s.sigcode === CLD.STOPPED), 3000, "SIGCHLD CLD_STOPPED");
      assert.ok(par.signals.every((s) => s.signal === SIG.CHLD));
      await rejectsWith(par.proc.wait({ pid: c.pid, options: W.NOHANG }), Errno.EAGAIN, "no WUNTRACED");
      const r = await par.proc.wait({ pid: c.pid, options: W.UNTRACED | W.NOHANG });
      assert.equal(r.status, W_STOPCODE(SIG.TSTP));
      await rejectsWith(par.proc.wait({ pid: c.pid, options: W.UNTRACED | W.NOHANG }), Errno.EAGAIN, "reported once");
      // A blocked WUNTRACED wait is woken by the next stop.
      await c.proc.markCont({});
      const w = par.proc.waitid({ pid: c.pid, options: W.STOPPED });
      await settle(par);
      await c.proc.markStop({ signo: SIG.STOP, sigcode: 0 });
      assert.equal((await w).status, W_STOPCODE(SIG.STOP));
      await exitProcess(c);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await done();
    });

    it("a traced child's stops are reported without WUNTRACED (proc_mark_traced)", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      await c.proc.markTraced({});
      await c.proc.markStop({ signo: SIG.STOP, sigcode: 0 });
      const r = await par.proc.wait({ pid: c.pid, options: W.NOHANG });
      assert.equal(r.status, W_STOPCODE(SIG.STOP));
      await exitProcess(c);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await done();
    });

    it("WCONTINUED reports a continued child with the status W_CONTINUED, and SIGCHLD CLD_CONTINUED", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      await c.proc.markStop({ signo: SIG.STOP, sigcode: 0 });
      await c.proc.markCont({});
      await until(() => par.signals.some((s) => s.sigcode === CLD.CONTINUED), 3000, "SIGCHLD CLD_CONTINUED");
      await rejectsWith(par.proc.waitid({ pid: c.pid, options: W.EXITED | W.NOHANG }), Errno.EAGAIN);
      const r = await par.proc.waitid({ pid: c.pid, options: W.CONTINUED | W.NOHANG });
      assert.equal(r.status, W_CONTINUED);
      assert.equal(r.pidStatus, c.pid);
      await rejectsWith(par.proc.waitid({ pid: c.pid, options: W.CONTINUED | W.NOHANG }), Errno.EAGAIN, "reported once");
      await exitProcess(c);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await done();
    });

    it("WNOWAIT reports without consuming: the zombie is still there for the next wait", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      await exitProcess(c, W_EXITCODE(4, 0));
      const a = await par.proc.waitid({ pid: c.pid, options: W.EXITED | W.NOWAIT });
      const b = await par.proc.waitid({ pid: c.pid, options: W.EXITED | W.NOWAIT | W.NOHANG });
      assert.equal(a.status, W_EXITCODE(4, 0));
      assert.deepEqual(a, b);
      await ph.startup.proc.getprocinfo({ which: c.pid, flags: 0 });
      const r = await par.proc.waitid({ pid: c.pid, options: W.EXITED });
      assert.equal(r.status, W_EXITCODE(4, 0));
      await rejectsWith(ph.startup.proc.getprocinfo({ which: c.pid, flags: 0 }), Errno.ESRCH, "reaped now");
      await done();
    });

    it("proc_mod_stopchild(0) stops SIGCHLD for stops and continues but not for exits (SA_NOCLDSTOP)", async () => {
      await parent();
      await par.proc.modStopchild({ doit: 0 });
      const c = await ph.spawn(par, "c");
      await c.proc.markStop({ signo: SIG.STOP, sigcode: 0 });
      await c.proc.markCont({});
      await exitProcess(c);
      await until(() => par.signals.length > 0, 3000, "SIGCHLD on exit");
      await settle(par);
      assert.deepEqual(par.signals, [{ signal: SIG.CHLD, sigcode: CLD.EXITED }]);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await done();
    });

    it("a wait pending when the waiter dies does not outlive it, and the child's exit still reaches the zombie waiter's parent chain", async () => {
      await parent();
      const c = await ph.spawn(par, "c");
      const w = par.proc.wait({ pid: c.pid, options: 0 }).then(() => "answered", (e: { code?: number }) => e.code);
      await settle(par);
      await par.task.detach();
      const outcome = await w;
      assert.notEqual(outcome, "answered");
      // c is reparented to init; par is startup's zombie.
      await until(async () => (await c.proc.getpids({})).ppid === 1, 3000, "reparented");
      const r = await ph.startup.proc.wait({ pid: par.pid, options: 0 });
      assert.equal(r.status, 9);
      await exitProcess(c);
    });

    it("many waits pending at once on one process are bounded (EAGAIN past maxWaitersPerProcess)", async () => {
      const fresh = await bootProcHurd(kind, { maxWaitersPerProcess: 4 });
      try {
        const p = await fresh.spawn(fresh.startup, "p");
        const c = await fresh.spawn(p, "c");
        const pending = [0, 1, 2, 3].map(() => p.proc.wait({ pid: c.pid, options: 0 }));
        await settle(p);
        await rejectsWith(p.proc.wait({ pid: c.pid, options: 0 }), Errno.EAGAIN);
        await exitProcess(c, W_EXITCODE(1, 0));
        const first = await Promise.race(pending);
        assert.equal(first.pidStatus, c.pid);
        await exitProcess(p);
        await Promise.allSettled(pending);
      } finally {
        await fresh.close();
      }
    });
  });
}

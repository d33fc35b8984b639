// proc conformance: message ports and signals (msg.c, hurd-semantics §4):
// getmsgport/setmsgport, the wait while a process is between images, and
// the refports of the signals proc sends.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Rights, client, portAt } from "@hurdmesh/mach";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds, until } from "../harness.js";
import { CLD, Errno, SIG, bootProcHurd, exitProcess, rejectsWith, settle, userProcess, type ProcHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`proc message ports and signals (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("getmsgport: any process gets any other's message port (no check: the refport authorises), ESRCH for unknown; setmsgport answers the old one", async () => {
      const u = await userProcess(ph, ph.startup, [4242]);
      const other = await ph.spawn(ph.startup, "target");
      const m = await u.proc.getmsgport({ pid: other.pid });
      const msgport = portAt(m, m.msgport);
      assert.ok(msgport > 0);
      // A signal sent there arrives (authorisation is the receiver's business).
      const r = new Rights();
      await client(u.task, MsgDefinition, msgport).sigPost({ signal: SIG.USR1, sigcode: 0, refport: r.copySend(u.task.self) }, { rights: r });
      await until(() => other.signals.some((s) => s.signal === SIG.USR1), 3000, "USR1 arrived");
      await rejectsWith(u.proc.getmsgport({ pid: 99998 }), Errno.ESRCH);
      // setmsgport answers the previous right.
      const fresh = await other.task.allocate();
      const r2 = new Rights();
      const old = await other.proc.setmsgport({ newmsgport: r2.makeSend(fresh) }, { rights: r2 });
      assert.equal(portAt(old, old.oldmsgport), other.msgport, "the old msgport comes back (same name: other holds its receive right)");
      const m2 = await u.proc.getmsgport({ pid: other.pid });
      assert.notEqual(portAt(m2, m2.msgport), msgport, "the new one is answered now");
      const info = (await u.proc.getprocinfo({ which: other.pid, flags: 0 })).procinfo!;
      assert.equal(info.state & 0x10, 0, "not NOMSG");
      await exitProcess(other);
      await exitProcess(u);
      await ph.startup.proc.wait({ pid: other.pid, options: 0 });
    });

    it("a pending getmsgport fails once the target dies (instead of waiting forever)", async () => {
      const p = await ph.spawn(ph.startup, "between-images");
      const pp = await ph.startup.proc.pid2proc({ pid: p.pid });
      const exec = client(ph.startup.task, ProcessDefinition, portAt(pp, pp.proc));
      const nt = await ph.startup.task.taskCreate("img2");
      const r = new Rights();
      await exec.reassign({ newtask: r.copySend(nt.task) }, { rights: r });
      const w = ph.startup.proc.getmsgport({ pid: p.pid }).then((m) => `port ${portAt(m, m.msgport)}`, (e: { code?: number }) => e.code);
      await settle(ph.startup, 3);
      await ph.startup.task.taskTerminate(nt.task);
      const outcome = await w;
      assert.ok(outcome === "port 0" || outcome === Errno.ESRCH, `answered ${outcome}`);
      await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });
    it("SIGCHLD carries the parent's own task port as refport (mgt.c alert_parent), which glibc's signal_allowed accepts for any signal", async () => {
      const par = await ph.spawn(ph.startup, "par");
      const c = await ph.spawn(par, "c");
      await exitProcess(c);
      await until(() => par.signals.length > 0, 3000, "SIGCHLD");
      assert.deepEqual(par.signals[0], { signal: SIG.CHLD, sigcode: CLD.EXITED });
      assert.equal(par.refIsSelf[0], true);
      await par.proc.wait({ pid: c.pid, options: 0 });
      await exitProcess(par);
      await ph.startup.proc.wait({ pid: par.pid, options: 0 });
    });

    it("a signal through a process handle carries the target's own task port, like orphan SIGHUP/SIGCONT (pgrp.c)", async () => {
      const t = await ph.spawn(ph.startup, "t");
      const h = await ph.startup.proc.pidOpen({ pid: t.pid, serial: 0 });
      await client(ph.startup.task, ProcessDefinition, portAt(h, h.handle)).handleSignal({ signal: SIG.USR1, sigcode: 0 });
      assert.deepEqual(t.signals, [{ signal: SIG.USR1, sigcode: 0 }]);
      assert.deepEqual(t.refIsSelf, [true]);
      await exitProcess(t);
      await ph.startup.proc.wait({ pid: t.pid, options: 0 });
    });

    it("glibc's kill(pid, sig): getmsgport + pid2task for the refport; a process without a message port answers a null msgport (NOMSG)", async () => {
      const t = await ph.spawn(ph.startup, "kill-target");
      const m = await ph.startup.proc.getmsgport({ pid: t.pid });
      const tk = await ph.startup.proc.pid2task({ pid: t.pid });
      const r = new Rights();
      await client(ph.startup.task, MsgDefinition, portAt(m, m.msgport)).sigPost({ signal: SIG.TERM, sigcode: 0, refport: r.moveSend(portAt(tk, tk.task)) }, { rights: r });
      assert.deepEqual(t.signals, [{ signal: SIG.TERM, sigcode: 0 }]);
      assert.deepEqual(t.refIsSelf, [true], "the target's task port, as glibc's kill passes it");
      const quiet = await ph.spawn(ph.startup, "no-msgport", { msgport: false });
      const m2 = await ph.startup.proc.getmsgport({ pid: quiet.pid });
      assert.equal(m2.msgport, 0);
      assert.ok((await ph.startup.proc.getprocinfo({ which: quiet.pid, flags: 0 })).procinfo!.state & 0x10, "NOMSG");
      for (const p of [t, quiet]) await exitProcess(p);
      for (const p of [t, quiet]) await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });
  });
}

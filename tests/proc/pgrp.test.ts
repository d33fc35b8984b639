// proc conformance: sessions and process groups (pgrp.c), orphaned process
// groups, login collections (info.c / mgt.c).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { portAt } from "@hurdmesh/mach";
import { busKinds, until } from "../harness.js";
import { Errno, SIG, bootProcHurd, exitProcess, rejectsWith, settle, userProcess, type ProcHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`proc sessions and process groups (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("proc_setsid makes a new session and pgrp with the caller's pid; a second setsid is EPERM (already a pgrp leader)", async () => {
      const p = await ph.spawn(ph.startup, "leader");
      await p.proc.setsid({});
      assert.equal((await p.proc.getsid({ pid: p.pid })).sid, p.pid);
      assert.equal((await p.proc.getpgrp({ pid: p.pid })).pgrp, p.pid);
      assert.deepEqual((await p.proc.getsessionpids({ sid: p.pid })).pids, [p.pid]);
      assert.deepEqual((await p.proc.getsessionpgids({ sid: p.pid })).pids, [p.pid]);
      await until(() => p.newids.some((n) => n.pgrp === p.pid), 3000, "msg_proc_newids with the new pgrp");
      await rejectsWith(p.proc.setsid({}), Errno.EPERM);
      const info = (await p.proc.getprocinfo({ which: p.pid, flags: 0 })).procinfo!;
      assert.ok(info.state & 0x20, "SESSLD");
      await exitProcess(p);
      await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });

    it("getsid, getpgrp of an unknown pid and getsessionpids/pgids, getpgrppids of unknown ids are ESRCH", async () => {
      await rejectsWith(ph.startup.proc.getsid({ pid: 77777 }), Errno.ESRCH);
      await rejectsWith(ph.startup.proc.getpgrp({ pid: 77777 }), Errno.ESRCH);
      await rejectsWith(ph.startup.proc.getsessionpids({ sid: 77777 }), Errno.ESRCH);
      await rejectsWith(ph.startup.proc.getsessionpgids({ sid: 77777 }), Errno.ESRCH);
      await rejectsWith(ph.startup.proc.getpgrppids({ pgrp: 77777 }), Errno.ESRCH);
    });

    it("proc_setpgrp: a parent moves its child (pgid 0 = the child's pid), into an existing pgrp of the session; the rules' errors (pgrp.c)", async () => {
      const L = await ph.spawn(ph.startup, "L");
      await L.proc.setsid({});
      const a = await ph.spawn(L, "a");
      const b = await ph.spawn(L, "b");
      assert.equal((await a.proc.getpgrp({ pid: a.pid })).pgrp, L.pid, "inherited");
      await L.proc.setpgrp({ pid: a.pid, pgrp: 0 });
      assert.equal((await a.proc.getpgrp({ pid: a.pid })).pgrp, a.pid);
      await L.proc.setpgrp({ pid: b.pid, pgrp: a.pid });
      assert.equal((await b.proc.getpgrp({ pid: b.pid })).pgrp, a.pid);
      assert.deepEqual((await L.proc.getpgrppids({ pgrp: a.pid })).pids.sort(), [a.pid, b.pid].sort());
      assert.deepEqual((await L.proc.getsessionpgids({ sid: L.pid })).pids.sort(), [L.pid, a.pid].sort());
      // Not the caller nor its child: ESRCH.
      const stranger = await ph.spawn(ph.startup, "stranger");
      await rejectsWith(L.proc.setpgrp({ pid: stranger.pid, pgrp: 0 }), Errno.ESRCH);
      // A session leader keeps its pgrp.
      await rejectsWith(L.proc.setpgrp({ pid: 0, pgrp: a.pid }), Errno.EPERM);
      // A pgrp that does not exist (other than the target's own pid).
      await rejectsWith(L.proc.setpgrp({ pid: b.pid, pgrp: stranger.pid }), Errno.EPERM);
      // A child in another session: its parent may not move it.
      await a.proc.setpgrp({ pid: 0, pgrp: a.pid }).catch(() => {});
      const c = await ph.spawn(L, "c");
      await c.proc.setsid({});
      await rejectsWith(L.proc.setpgrp({ pid: c.pid, pgrp: L.pid }), Errno.EPERM);
      for (const p of [a, b, c]) await exitProcess(p);
      for (const p of [a, b, c]) await L.proc.wait({ pid: p.pid, options: 0 });
      await exitProcess(L);
      await exitProcess(stranger);
      await ph.startup.proc.wait({ pid: L.pid, options: 0 });
      await ph.startup.proc.wait({ pid: stranger.pid, options: 0 });
    });

    it("proc_getpgrppids skips important processes (so kill(0)/kill(-1) spare the system servers); pgid 0 is the caller's pgrp", async () => {
      const p = await ph.spawn(ph.startup, "plain");
      const { pids } = await p.proc.getpgrppids({ pgrp: 1 });
      for (const sys of [1, 2, 3, 4]) assert.ok(!pids.includes(sys), `important pid ${sys} skipped`);
      assert.ok(pids.includes(p.pid));
      assert.deepEqual((await p.proc.getpgrppids({ pgrp: 0 })).pids.sort(), pids.sort(), "pgid 0 = the caller's");
      await p.proc.markImportant({}).catch(() => {});
      // startup's children may mark themselves important (mgt.c).
      assert.equal((await p.proc.isImportant({})).essential, true);
      assert.ok(!(await p.proc.getpgrppids({ pgrp: 0 })).pids.includes(p.pid));
      await exitProcess(p);
      await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });

    it("proc_mark_important is EPERM for a non-root process that is not startup's child", async () => {
      const u = await userProcess(ph, ph.startup, [1000]);
      const kid = await ph.spawn(u, "kid");
      await rejectsWith(kid.proc.markImportant({}), Errno.EPERM);
      assert.equal((await kid.proc.isImportant({})).essential, false);
      await exitProcess(kid);
      await exitProcess(u);
    });

    it("proc_getsidport: one port per session, the same for every member, another for another session", async () => {
      const L = await ph.spawn(ph.startup, "sess");
      await L.proc.setsid({});
      const a = await ph.spawn(L, "a");
      const s1 = await L.proc.getsidport({});
      const s2 = await L.proc.getsidport({});
      assert.equal(portAt(s1, s1.sessport), portAt(s2, s2.sessport), "same port, same name in one space");
      const other = await ph.startup.proc.getsidport({});
      assert.ok(portAt(other, other.sessport) > 0);
      const sa = await a.proc.getsidport({});
      assert.ok(portAt(sa, sa.sessport) > 0);
      await exitProcess(a);
      await L.proc.wait({ pid: a.pid, options: 0 });
      await exitProcess(L);
      await ph.startup.proc.wait({ pid: L.pid, options: 0 });
    });

    it("a pgrp that becomes orphaned with a stopped member: every member hears newids (orphaned) and gets SIGHUP then SIGCONT (POSIX, pgrp.c)", async () => {
      const L = await ph.spawn(ph.startup, "L");
      await L.proc.setsid({});
      const a = await ph.spawn(L, "a");
      await L.proc.setpgrp({ pid: a.pid, pgrp: a.pid });
      const b = await ph.spawn(a, "b");
      assert.equal((await a.proc.getpids({})).orphaned, false, "a's parent L is in another pgrp of the session");
      await b.proc.markStop({ signo: SIG.TSTP, sigcode: 0 });
      await settle(b);
      assert.ok(!b.signals.some((s) => s.signal === SIG.HUP), "stopping alone hangs nothing up");
      await exitProcess(L);
      await until(() => b.signals.filter((s) => s.signal === SIG.HUP || s.signal === SIG.CONT).length >= 2, 3000, "SIGHUP+SIGCONT to b");
      await until(() => a.signals.filter((s) => s.signal === SIG.HUP || s.signal === SIG.CONT).length >= 2, 3000, "SIGHUP+SIGCONT to a");
      assert.deepEqual(b.signals.filter((s) => s.signal !== SIG.CHLD).map((s) => s.signal), [SIG.HUP, SIG.CONT]);
      assert.deepEqual(a.signals.filter((s) => s.signal !== SIG.CHLD).map((s) => s.signal), [SIG.HUP, SIG.CONT]);
      assert.ok(b.newids.some((n) => n.orphaned), "b told it is orphaned");
      assert.equal((await a.proc.getpids({})).orphaned, true);
      const info = (await a.proc.getprocinfo({ which: a.pid, flags: 0 })).procinfo!;
      assert.ok(info.state & 0x8, "ORPHAN");
      await exitProcess(b);
      await a.proc.wait({ pid: b.pid, options: 0 });
      await exitProcess(a);
      await ph.startup.proc.wait({ pid: L.pid, options: 0 });
    });

    it("a member moving to its parent's pgrp hands the link to its children: the pgrp never counts as orphaned, no SIGHUP (POSIX)", async () => {
      const L = await ph.spawn(ph.startup, "L3");
      await L.proc.setsid({});
      const m = await ph.spawn(L, "m");
      await L.proc.setpgrp({ pid: m.pid, pgrp: m.pid });
      const s = await ph.spawn(m, "s");
      await s.proc.markStop({ signo: SIG.TSTP, sigcode: 0 });
      // m joins L's pgrp: s's parent is now in another pgrp of the session, so s's pgrp stays linked.
      await m.proc.setpgrp({ pid: 0, pgrp: L.pid });
      await settle(s, 4);
      assert.equal((await s.proc.getpids({})).orphaned, false);
      assert.deepEqual(s.signals, [], "no SIGHUP/SIGCONT to the stopped member");
      assert.deepEqual(m.signals.filter((x) => x.signal !== SIG.CHLD), [], "nor to the one that moved");
      await exitProcess(s);
      await m.proc.wait({ pid: s.pid, options: 0 });
      await exitProcess(m);
      await L.proc.wait({ pid: m.pid, options: 0 });
      await exitProcess(L);
      await ph.startup.proc.wait({ pid: L.pid, options: 0 });
    });

    it("links move between members without a transient orphaning; when the last goes, the stopped member left behind gets SIGHUP then SIGCONT and the members that moved away earlier nothing", async () => {
      const L = await ph.spawn(ph.startup, "L4");
      await L.proc.setsid({});
      const a = await ph.spawn(L, "a");
      const b = await ph.spawn(L, "b");
      await L.proc.setpgrp({ pid: a.pid, pgrp: a.pid });
      await L.proc.setpgrp({ pid: b.pid, pgrp: a.pid });
      const s = await ph.spawn(a, "s");
      // s is stopped in pgrp a; the links are a's and b's (their parent L is in pgrp L).
      await s.proc.markStop({ signo: SIG.TSTP, sigcode: 0 });
      await b.proc.setpgrp({ pid: 0, pgrp: L.pid });
      await a.proc.setpgrp({ pid: 0, pgrp: L.pid });
      // s's parent a is in pgrp L now: still linked. a's exit reparents s to init, in another session: orphaned.
      await exitProcess(a);
      await until(() => s.signals.filter((x) => x.signal === SIG.HUP || x.signal === SIG.CONT).length >= 2, 3000, "SIGHUP+SIGCONT to s");
      assert.deepEqual(s.signals.map((x) => x.signal), [SIG.HUP, SIG.CONT]);
      assert.deepEqual(b.signals.filter((x) => x.signal !== SIG.CHLD), [], "b left pgrp a before: untouched");
      await exitProcess(s);
      await exitProcess(b);
      await L.proc.wait({ pid: a.pid, options: 0 });
      await L.proc.wait({ pid: b.pid, options: 0 });
      await exitProcess(L);
      await ph.startup.proc.wait({ pid: L.pid, options: 0 });
    });

    it("a pgrp orphaned with no stopped member is only told (newids), not signalled", async () => {
      const L = await ph.spawn(ph.startup, "L2");
      await L.proc.setsid({});
      const a = await ph.spawn(L, "a");
      await L.proc.setpgrp({ pid: a.pid, pgrp: a.pid });
      await exitProcess(L);
      await until(() => a.newids.some((n) => n.orphaned), 3000, "orphaned newids");
      await settle(a);
      assert.deepEqual(a.signals, []);
      await exitProcess(a);
      await ph.startup.proc.wait({ pid: L.pid, options: 0 });
    });

    it("login collections: make_login_coll, getloginid (nearest leader), getloginpids (stops at other leaders, ESRCH for a non-leader); setlogin is root only", async () => {
      const l = await ph.spawn(ph.startup, "login");
      await l.proc.makeLoginColl({});
      const a = await ph.spawn(l, "a");
      const inner = await ph.spawn(a, "inner");
      await inner.proc.makeLoginColl({});
      const deep = await ph.spawn(inner, "deep");
      assert.equal((await a.proc.getloginid({ pid: a.pid })).loginId, l.pid);
      assert.equal((await a.proc.getloginid({ pid: deep.pid })).loginId, inner.pid);
      assert.deepEqual((await a.proc.getloginpids({ id: l.pid })).pids.sort(), [l.pid, a.pid].sort());
      assert.deepEqual((await a.proc.getloginpids({ id: inner.pid })).pids.sort(), [inner.pid, deep.pid].sort());
      await rejectsWith(a.proc.getloginpids({ id: a.pid }), Errno.ESRCH);
      await l.proc.setlogin({ logname: "bob" });
      assert.equal((await l.proc.getlogin({})).logname, "bob");
      const u = await userProcess(ph, ph.startup, [1000]);
      await rejectsWith(u.proc.setlogin({ logname: "root" }), Errno.EPERM);
      for (const p of [deep, inner, a, l, u]) await exitProcess(p);
    });
  });
}

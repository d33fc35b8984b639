// proc conformance: information for ps and top (info.c): getprocinfo with
// its flags and state bits, getprocargs/getprocenv, getallpids, the batched
// getallprocinfo, and the small per-process records (exe, code, entry, arg
// locations), uname, getnports, get_tty.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds } from "../harness.js";
import { Errno, SIG, bootProcHurd, exitProcess, rejectsWith, settle, type ProcHurd } from "./kit.js";

const PI_FETCH_TASKINFO = 0x1;
const PI_FETCH_THREADS = 0x2;
const PI_FETCH_THREAD_WAITS = 0x10;
const PI = { STOPPED: 0x1, EXECED: 0x2, WAITING: 0x4, ORPHAN: 0x8, NOMSG: 0x10, SESSLD: 0x20, NOTOWNED: 0x40, NOPARENT: 0x80, ZOMBIE: 0x100, TRACED: 0x200, LOGINLD: 0x800 };
const dec = new TextDecoder();

for (const kind of busKinds) {
  describe(`proc info (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind, { maxArgsBytes: 256 });
    });
    after(async () => ph.close());

    it("getprocinfo: PI_FETCH_TASKINFO is honoured for a live task and cleared where it cannot be (pid 1 has no task yet); thread flags are cleared", async () => {
      const c = await ph.spawn(ph.startup, "info");
      const r = await c.proc.getprocinfo({ which: c.pid, flags: PI_FETCH_TASKINFO | PI_FETCH_THREADS | PI_FETCH_THREAD_WAITS });
      assert.equal(r.flags, PI_FETCH_TASKINFO);
      assert.ok(r.procinfo!.portNames > 0, "task info fetched");
      assert.ok(Number(r.procinfo!.taskId) > 0);
      const init = await c.proc.getprocinfo({ which: 1, flags: PI_FETCH_TASKINFO });
      assert.equal(init.flags & PI_FETCH_TASKINFO, 0, "no task to ask");
      await rejectsWith(c.proc.getprocinfo({ which: 55555, flags: 0 }), Errno.ESRCH);
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("getprocinfo state bits: STOPPED, TRACED, EXECED, WAITING, SESSLD, LOGINLD, NOMSG, NOPARENT, NOTOWNED, ZOMBIE; ppid, pgrp, session, owner", async () => {
      const st = async (pid: number) => (await ph.startup.proc.getprocinfo({ which: pid, flags: 0 })).procinfo!;
      const p = await ph.spawn(ph.startup, "states");
      const c = await ph.spawn(p, "child");
      let s = await st(c.pid);
      assert.equal(s.ppid, p.pid);
      assert.equal(s.owner, 0);
      assert.equal(s.state & (PI.STOPPED | PI.EXECED | PI.NOMSG | PI.NOPARENT | PI.NOTOWNED | PI.ZOMBIE), 0);
      await c.proc.markStop({ signo: SIG.STOP, sigcode: 0 });
      await c.proc.markTraced({});
      await c.proc.markExec({});
      await c.proc.setsid({});
      await c.proc.makeLoginColl({});
      s = await st(c.pid);
      for (const b of [PI.STOPPED, PI.TRACED, PI.EXECED, PI.SESSLD, PI.LOGINLD]) assert.ok(s.state & b, `bit ${b.toString(16)} in ${s.state.toString(16)}`);
      assert.equal(s.session, c.pid);
      assert.equal(s.pgrp, c.pid);
      assert.equal(s.logincollection, c.pid);
      // (A traced stop is reported to a wait at once: collect it first.)
      await p.proc.wait({ pid: c.pid, options: 1 });
      await exitProcess(c, 1 << 8);
      await p.proc.wait({ pid: c.pid, options: 0 });
      // NOMSG, NOPARENT, NOTOWNED: a task nobody forked.
      const t = await ph.startup.task.taskCreate("bare");
      const { Rights } = await import("@hurdmesh/mach");
      const r = new Rights();
      const { pid: bare } = await ph.startup.proc.task2pid({ task: r.copySend(t.task) }, { rights: r });
      s = await st(bare);
      for (const b of [PI.NOMSG, PI.NOPARENT, PI.NOTOWNED]) assert.ok(s.state & b, `bit ${b.toString(16)} in ${s.state.toString(16)}`);
      assert.equal(s.owned, false);
      await ph.startup.task.taskTerminate(t.task);
      // ZOMBIE (the Hurd never sets it; hurdmesh does).
      const z = await ph.spawn(p, "z");
      // WAITING while a wait is pending.
      const w = p.proc.wait({ pid: z.pid, options: 0 });
      await settle(p);
      assert.ok((await st(p.pid)).state & PI.WAITING, "WAITING");
      await exitProcess(z, 0);
      await w;
      const z2 = await ph.spawn(p, "z2");
      await exitProcess(z2, 0);
      await p.proc.waitid({ pid: z2.pid, options: 16 | 8 });
      assert.ok((await st(z2.pid)).state & PI.ZOMBIE, "ZOMBIE");
      await p.proc.wait({ pid: z2.pid, options: 0 });
      await exitProcess(p);
      await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });

    it("getprocargs/getprocenv answer what setprocargs registered, NUL-separated, to anyone (no check, as in the Hurd); E2BIG past the bound; ESRCH for unknown", async () => {
      const c = await ph.spawn(ph.startup, "args");
      await c.proc.setprocargs({ argv: ["ls", "-l", "/"], envp: ["HOME=/root", "TERM=dumb"] });
      const other = await ph.spawn(ph.startup, "reader");
      assert.equal(dec.decode((await other.proc.getprocargs({ pid: c.pid })).data), "ls\0-l\0/\0");
      assert.equal(dec.decode((await other.proc.getprocenv({ pid: c.pid })).data), "HOME=/root\0TERM=dumb\0");
      const info = (await other.proc.getprocinfo({ which: c.pid, flags: 0 })).procinfo!;
      assert.match(info.command, /^ls/);
      await rejectsWith(c.proc.setprocargs({ argv: ["x".repeat(300)], envp: [] }), Errno.E2BIG);
      assert.equal(dec.decode((await other.proc.getprocargs({ pid: c.pid })).data), "ls\0-l\0/\0", "unchanged after E2BIG");
      await rejectsWith(other.proc.getprocargs({ pid: 54321 }), Errno.ESRCH);
      await rejectsWith(other.proc.getprocenv({ pid: 54321 }), Errno.ESRCH);
      for (const p of [c, other]) await exitProcess(p);
      for (const p of [c, other]) await ph.startup.proc.wait({ pid: p.pid, options: 0 });
    });

    it("getallpids lists live processes: a new child appears, a dead one (zombie or reaped) does not", async () => {
      const c = await ph.spawn(ph.startup, "listed");
      assert.ok((await ph.startup.proc.getallpids({})).pids.includes(c.pid));
      await exitProcess(c);
      await ph.startup.proc.waitid({ pid: c.pid, options: 16 | 8 });
      assert.ok(!(await ph.startup.proc.getallpids({})).pids.includes(c.pid));
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      assert.ok(!(await ph.startup.proc.getallpids({})).pids.includes(c.pid));
    });

    it("getallprocinfo pages through every process in pid order, each page at most `max`, next_pid 0 on the last", async () => {
      const kids = [];
      for (let i = 0; i < 7; i++) kids.push(await ph.spawn(ph.startup, `p${i}`));
      const seen: number[] = [];
      let start = 1;
      let pages = 0;
      do {
        const page = await ph.startup.proc.getallprocinfo({ startPid: start, max: 3, flags: 0 });
        assert.ok(page.procs.length <= 3);
        seen.push(...page.procs.map((p) => p.pid));
        start = page.nextPid;
        pages++;
      } while (start && pages < 100);
      assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "pid order");
      assert.equal(new Set(seen).size, seen.length, "no pid twice");
      const all = (await ph.startup.proc.getallpids({})).pids;
      for (const p of all) assert.ok(seen.includes(p), `pid ${p} listed`);
      for (const k of kids) await exitProcess(k);
      for (const k of kids) await ph.startup.proc.wait({ pid: k.pid, options: 0 });
    });

    it("exe, code range, entry and arg locations are recorded per process; exe is inherited by proc_child", async () => {
      const c = await ph.spawn(ph.startup, "rec");
      await c.proc.setExe({ path: "/bin/sh" });
      await rejectsWith(c.proc.setExe({ path: "/".repeat(1025) }), Errno.EINVAL);
      await c.proc.setCode({ startCode: 0x1000, endCode: 0x2000 });
      await c.proc.setEntry({ entry: 0x1234 });
      await c.proc.setArgLocations({ argv: 0x7000, envp: 0x8000 });
      assert.equal((await ph.startup.proc.getExe({ pid: c.pid })).path, "/bin/sh");
      assert.deepEqual({ ...(await c.proc.getCode({})) }, { startCode: 0x1000, endCode: 0x2000 });
      assert.equal((await c.proc.getEntry({})).entry, 0x1234);
      assert.deepEqual({ ...(await c.proc.getArgLocations({})) }, { argv: 0x7000, envp: 0x8000 });
      const k = await ph.spawn(c, "kid");
      assert.equal((await ph.startup.proc.getExe({ pid: k.pid })).path, "/bin/sh");
      assert.deepEqual({ ...(await k.proc.getCode({})) }, { startCode: 0x1000, endCode: 0x2000 });
      await rejectsWith(c.proc.getExe({ pid: 65432 }), Errno.ESRCH);
      await exitProcess(k);
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("uname answers GNU; register_version needs host_priv (EPERM); getnports counts a task's names; get_tty is EOPNOTSUPP (nor in the Hurd)", async () => {
      const u = await ph.startup.proc.uname({});
      assert.equal(u.sysname, "GNU");
      const { Rights } = await import("@hurdmesh/mach");
      const r = new Rights();
      await rejectsWith(ph.startup.proc.registerVersion({ credential: r.copySend(ph.startup.task.self), name: "x", release: "1", version: "v" }, { rights: r }), Errno.EPERM);
      const r2 = new Rights();
      await ph.startup.proc.registerVersion({ credential: r2.copySend((ph.startup.task as typeof ph.startup.task & { hostPriv: number }).hostPriv), name: "proc", release: "0.1", version: "test" }, { rights: r2 });
      assert.match((await ph.startup.proc.uname({})).version, /proc 0\.1 test/);
      assert.ok((await ph.startup.proc.getnports({ pid: 2 })).nports > 0);
      await rejectsWith(ph.startup.proc.getTty({ targetProcess: 2 }), Errno.EOPNOTSUPP);
    });
  });
}

// Subhurds, modelled on Linux's pid_namespace selftests and the seed's
// complaint: a hurd nested in another has its own proc, auth and init and
// its own pids from 1; its processes are visible upward under each
// ancestor's own pid, never sideways or downward; its death takes every
// nested hurd with it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { CHILD_NAMES, Process, SIG, WNOHANG } from "@hurdmesh/libhurd";
import { Errno, HurdError, client, portAt } from "@hurdmesh/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds, until } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";

async function procs(p: Process): Promise<ProcInfo[]> {
  return (await p.proc.getallprocinfo({ startPid: 1, max: 4096 })).procs;
}

for (const kind of busKinds) {
  describe(`subhurds (${kind} bus)`, () => {
    let b: BootedHurd;
    let root: Process;
    let A: Subhurd;
    let AA: Subhurd;
    let B: Subhurd;
    let a: Process;
    let aa: Process;
    let bb: Process;
    const attach = (id: number, token: string) => b.h.attach(id, token, { window: 1024, timeoutMs: 20000 });
    const as = (s: Subhurd) => Process.attach(s.task, s.init.booted!.proc, s.init.booted!.auth, { msgport: false });
    async function fork(parent: Process, name: string): Promise<Process> {
      const f = await parent.fork(name);
      const p = await Process.attach(await attach(f.taskId, f.token), CHILD_NAMES.proc, CHILD_NAMES.auth);
      await p.setArgs([name]);
      return p;
    }

    before(async () => {
      b = await bootHurd(kind);
      root = await Process.attach(b.initTask, b.init.booted!.proc, b.init.booted!.auth, { msgport: false });
      const log = () => {};
      A = await bootSubhurd(b.initTask, "a", attach, new InProcessLauncher(attach), { log });
      AA = await bootSubhurd(A.task, "aa", attach, new InProcessLauncher(attach), { log });
      B = await bootSubhurd(b.initTask, "b", attach, new InProcessLauncher(attach), { log });
      [a, aa, bb] = await Promise.all([as(A), as(AA), as(B)]);
    });
    after(async () => b.close());

    it("each subhurd numbers its own processes from 1: runsystem, startup, kernel, proc", async () => {
      for (const p of [a, aa, bb]) {
        const by = new Map((await procs(p)).map((x) => [x.pid, x.command]));
        assert.equal(by.get(1), "/libexec/runsystem");
        assert.equal(by.get(2), "/hurd/startup");
        assert.equal(by.get(4), "/hurd/proc");
        assert.equal(p.pid, 2, "a subhurd's startup is its pid 2");
      }
    });

    it("a process has one pid per level and each proc reports its own", async () => {
      const c = await fork(aa, "deep");
      const tid = c.task.id;
      const inAA = (await procs(aa)).find((x) => x.taskId === tid);
      const inA = (await procs(a)).find((x) => x.taskId === tid);
      const inRoot = (await procs(root)).find((x) => x.taskId === tid);
      assert.equal(inAA?.pid, c.pid);
      assert.equal(inAA?.namespaceId, 0, "its own hurd's process");
      assert.ok(inA && inRoot, "visible in every ancestor");
      assert.equal(inA.namespaceId, AA.namespaceId);
      assert.equal(inRoot.namespaceId, AA.namespaceId);
      assert.equal((await procs(bb)).some((x) => x.taskId === tid), false, "never in a sibling");
      await c.exit(0);
      await aa.wait(c.pid);
    });

    it("an ancestor's proc acts on a nested process it heard of by id only: pid2task, task info, SIGKILL", async () => {
      const c = await fork(aa, "victim");
      const tid = c.task.id;
      const inRoot = (await procs(root)).find((x) => x.taskId === tid);
      assert.ok(inRoot, "visible in the root hurd");
      const rep = await root.proc.pid2task({ pid: inRoot.pid });
      const task = portAt(rep, rep.task);
      assert.equal((await root.task.taskInfo(task)).taskId, tid, "the root proc fetched the task's port");
      await root.task.deallocate(task);
      const pi = await root.proc.getprocinfo({ which: inRoot.pid, flags: 1 });
      assert.equal(pi.flags & 1, 1, "task info is there too");
      await root.kill(inRoot.pid, SIG.KILL);
      const w = await aa.wait(c.pid);
      assert.ok(w, "its own hurd's proc reports it");
      await until(async () => !(await procs(root)).some((x) => x.taskId === tid), 3000, "the root proc to reap it");
      await until(async () => !(await procs(a)).some((x) => x.taskId === tid), 3000, "A's proc to reap it");
    });

    it("a subhurd's proc sees nothing of its parent hurd, and a parent adopts nothing of a subhurd", async () => {
      const rootTasks = new Set((await procs(root)).filter((x) => x.namespaceId === 0).map((x) => x.taskId).filter(Boolean));
      for (const p of [a, aa, bb]) for (const x of await procs(p)) assert.equal(rootTasks.has(x.taskId) && x.taskId !== 0, false, `${x.command} of the root hurd leaked into a subhurd`);
      // The root proc names a subhurd's processes by their kernel task names.
      const inA = (await procs(root)).find((x) => x.namespaceId === A.namespaceId && x.command === "proc");
      assert.ok(inA, "A's proc is visible in the root hurd");
      const err = await root.proc.child({ child: 0 }).catch((e: HurdError) => e);
      assert.ok(err instanceof HurdError);
    });

    it("isolation: a sibling's pids and guessed port names reach nothing", async () => {
      const c = await fork(a, "target");
      const mine = new Set((await procs(bb)).map((x) => x.pid));
      const aPids = (await procs(a)).map((x) => x.pid).filter((p) => !mine.has(p));
      assert.ok(aPids.length > 0);
      for (const pid of aPids) {
        await assert.rejects(bb.proc.getprocinfo({ which: pid, flags: 0 }), (e: HurdError) => e.code === Errno.ESRCH);
        await assert.rejects(bb.kill(pid, SIG.TERM), (e: HurdError) => e.code === Errno.ESRCH);
      }
      for (const guess of [0x101, 0x102, 0x7777, 12345]) {
        await assert.rejects(client(bb.task, PingDefinition, guess + 0x10000).ping({}), (e: HurdError) => e.code === Errno.MACH_SEND_INVALID_DEST);
      }
      await c.exit(0);
      await a.wait(c.pid);
    });

    it("orphans in a subhurd go to the subhurd's pid 1, which reaps them", async () => {
      const mid = await fork(a, "mid");
      const orphan = await fork(mid, "orphan");
      await mid.exit(0);
      await a.wait(mid.pid);
      await until(async () => (await procs(a)).find((x) => x.pid === orphan.pid)?.ppid === 1, 3000, "reparenting to the subhurd's pid 1");
      await orphan.exit(0);
      await until(async () => !(await procs(a)).some((x) => x.pid === orphan.pid), 3000, "the subhurd's runsystem to reap it");
    });

    it("two subhurds under load at once keep their processes apart", async () => {
      const run = async (p: Process, n: number) => {
        const kids: Process[] = [];
        for (let i = 0; i < n; i++) kids.push(await fork(p, `load${i}`));
        assert.equal((await procs(p)).filter((x) => x.command.startsWith("load")).length, n, "the load is there");
        await Promise.all(kids.map((k) => k.exit(0)));
        let reaped = 0;
        while (reaped < n) if (await p.wait(-1)) reaped++;
        return reaped;
      };
      const [ra, rb] = await Promise.all([run(a, 20), run(bb, 20)]);
      assert.equal(ra, 20);
      assert.equal(rb, 20);
      assert.equal(await a.wait(-1, WNOHANG), null, "nothing left to reap");
      for (const p of [a, bb]) assert.equal((await procs(p)).filter((x) => x.command.startsWith("load")).length, 0);
    });

    it("when a subhurd's pid 1 dies, every task of it and of the hurds nested in it is terminated", async () => {
      const k = b.h.kernel;
      const inNs = (id: number) => [...k.tasks.values()].filter((t) => t.ns.id === id).length;
      assert.ok(inNs(A.namespaceId) > 0 && inNs(AA.namespaceId) > 0);
      await a.kill(1, SIG.KILL);
      assert.equal(await A.init.halted, 1);
      await until(() => inNs(A.namespaceId) === 0 && inNs(AA.namespaceId) === 0, 5000, "A and AA to be gone");
      await until(async () => !(await procs(root)).some((x) => x.namespaceId === A.namespaceId || x.namespaceId === AA.namespaceId), 5000, "the root proc to reap them");
      assert.ok(inNs(B.namespaceId) > 0, "the sibling lives on");
      assert.ok((await procs(bb)).length >= 4);
    });
  });
}

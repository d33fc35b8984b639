// libhurd programs on a booted hurd: fork, wait, signal each other with
// glibc's refport rules, form process groups and sessions, change ids.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CHILD_NAMES, Process, SIG, W, WNOHANG } from "@hurdmesh/libhurd";
import { client, Errno, HurdError, MsgType, portAt } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { busKinds, until } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";

for (const kind of busKinds) {
  describe(`libhurd (${kind} bus)`, () => {
    let b: BootedHurd;
    let init: Process;
    before(async () => {
      b = await bootHurd(kind);
      // init's task acting through libhurd, without taking over init's message port.
      init = await Process.attach(b.initTask, b.init.booted!.proc, b.init.booted!.auth, { msgport: false });
    });
    after(async () => b.close());

    async function fork(parent: Process, name: string): Promise<Process> {
      const f = await parent.fork(name);
      const t = await b.h.attach(f.taskId, f.token);
      const p = await Process.attach(t, CHILD_NAMES.proc, parent.authPort ? CHILD_NAMES.auth : 0);
      assert.equal(p.pid, f.pid);
      return p;
    }

    it("fork gives the child a pid whose parent is the forker; wait reports exit(5)", async () => {
      const c = await fork(init, "five");
      assert.equal(await c.getppid(), 2);
      assert.equal(await init.wait(c.pid, WNOHANG), null, "still running: WNOHANG answers nothing");
      await c.exit(5);
      const w = await init.wait(c.pid);
      assert.equal(w?.pid, c.pid);
      assert.ok(W.ifexited(w!.status));
      assert.equal(W.exitstatus(w!.status), 5);
    });

    it("a handler catches SIGUSR1; SIGTERM's default action ends the process, as killed by SIGTERM", async () => {
      const c = await fork(init, "catcher");
      const got: number[] = [];
      c.signal(SIG.USR1, (i) => void got.push(i.signal));
      await init.kill(c.pid, SIG.USR1);
      assert.deepEqual(got, [SIG.USR1], "kill returns once the signal was handled");
      await init.kill(c.pid, SIG.TERM);
      const w = await init.wait(c.pid);
      assert.ok(W.ifsignaled(w!.status));
      assert.equal(W.termsig(w!.status), SIG.TERM);
    });

    it("setsid, setpgid and kill(-pgrp) reach exactly the group", async () => {
      const leader = await fork(init, "leader");
      assert.equal(await leader.setsid(), leader.pid);
      assert.equal(await leader.getsid(), leader.pid);
      const a = await fork(leader, "a");
      const bb = await fork(leader, "b");
      assert.equal(await a.getpgrp(), leader.pid, "children start in the parent's group");
      await leader.setpgid(bb.pid, bb.pid);
      assert.equal(await bb.getpgrp(), bb.pid);
      const hits: string[] = [];
      a.signal(SIG.USR2, () => void hits.push("a"));
      bb.signal(SIG.USR2, () => void hits.push("b"));
      leader.signal(SIG.USR2, () => void hits.push("leader"));
      await leader.kill(-bb.pid, SIG.USR2);
      assert.deepEqual(hits, ["b"]);
      await leader.kill(0, SIG.USR2);
      assert.deepEqual(hits.sort(), ["a", "b", "leader"].sort());
      for (const p of [a, bb]) await p.exit(0);
      await until(async () => (await leader.wait(-1, WNOHANG)) === null, 3000, "reaping").catch(() => {});
    });

    it("refport rules: an unprivileged process may not signal another's process, except SIGCONT in its session", async () => {
      const victim = await fork(init, "victim");
      const got: number[] = [];
      victim.signal(SIG.USR1, () => void got.push(SIG.USR1));
      victim.signal(SIG.CONT, () => void got.push(SIG.CONT));
      const user = await fork(init, "user");
      // auth_makeauth from the root handle: a uid-1000 handle for `user`.
      const mk = await client(init.task, AuthDefinition, init.authPort).makeAuth({ otherHandles: [], euids: [1000], auids: [1000, 1000], egids: [1000], agids: [1000] });
      const h = portAt(mk, mk.newhandle);
      const NAME = 0x300;
      await init.task.insertRight(await taskPortOf(init, user.pid), NAME, h, MsgType.MSG_TYPE_MOVE_SEND);
      await user.reauthenticate(NAME);
      await assert.rejects(user.kill(victim.pid, SIG.USR1), (e: HurdError) => e.code === Errno.EPERM);
      await user.kill(victim.pid, SIG.CONT);
      assert.deepEqual(got, [SIG.CONT]);
      await assert.rejects(user.open(victim.pid), (e: HurdError) => e.code === Errno.EPERM, "handles check ownership too");
    });

    it("a process handle signals and waits on its incarnation", async () => {
      const c = await fork(init, "handled");
      const h = await init.open(c.pid);
      assert.equal(await h.alive(), true);
      await h.signal(SIG.TERM);
      const w = await h.wait();
      assert.equal(W.termsig(w.status), SIG.TERM);
      await h.close();
    });
  });
}

async function taskPortOf(p: Process, pid: number): Promise<number> {
  const r = await p.proc.pid2task({ pid });
  return portAt(r, r.task);
}

describe("libhurd attachFromEnv", () => {
  it("refuses an environment that names no task or no kernel, and a wrong token", async () => {
    const { attachFromEnv } = await import("@hurdmesh/libhurd");
    await assert.rejects(attachFromEnv({}), /HURD_TASK_ID and HURD_TOKEN/);
    await assert.rejects(attachFromEnv({ HURD_TASK_ID: "5", HURD_TOKEN: "x" }), /NATS_URL .* or HURD_EDGE/);
    const { Kernel, Edge } = await import("@hurdmesh/kernel");
    const k = new Kernel({ system: `env${process.pid}` }, { log: () => {} });
    const edge = new Edge(k);
    const port = await edge.listen("127.0.0.1:0");
    try {
      const b = k.bootTask({ name: "env" });
      await assert.rejects(attachFromEnv({ HURD_TASK_ID: String(b.task.id), HURD_TOKEN: "wrong", HURD_EDGE: `127.0.0.1:${port}`, HURD_SYSTEM: k.config.system }), (e: HurdError) => e.code === Errno.KERN_INVALID_TASK);
      const env: NodeJS.ProcessEnv = { HURD_TASK_ID: String(b.task.id), HURD_TOKEN: b.token, HURD_EDGE: `127.0.0.1:${port}`, HURD_SYSTEM: k.config.system };
      const { task, bus } = await attachFromEnv(env);
      assert.equal(task.id, b.task.id);
      assert.equal(env.HURD_TOKEN, undefined, "the token is not passed on to children");
      assert.ok((await task.allocate()) > 0, "kernel calls work over the edge");
      task.abandon();
      await bus.close();
    } finally {
      await edge.close();
      k.close();
    }
  });
});

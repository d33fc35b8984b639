// proc's per-uid process limit (RLIMIT_NPROC: fork past it is EAGAIN, as
// on Linux; root is exempt) and process handles: a process with no ids
// counts its handles against a quota of its own, not one every id-less
// process shares.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, MsgType, portAt, Rights } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds, until } from "../harness.js";
import { bootProcHurd, Errno, exitProcess, rejectsWith, userProcess, W } from "../proc/kit.js";

for (const kind of busKinds) {
  describe(`proc limits (${kind} bus)`, () => {
    it("RLIMIT_NPROC: proc_child past maxProcsPerUid is EAGAIN (zombies count until reaped); root is exempt", async () => {
      const q = await bootProcHurd(kind, { maxProcsPerUid: 3 });
      try {
        const u = await userProcess(q, q.startup, [1600]);
        const c1 = await q.spawn(u, "c1");
        await q.spawn(u, "c2");
        assert.equal(q.proc.procsOf(1600), 3);
        await rejectsWith(q.spawn(u, "c3"), Errno.EAGAIN);
        assert.equal(q.proc.procsOf(1600), 3, "the refused child is not counted");
        // A zombie still counts; reaped, it makes room.
        await exitProcess(c1, 0);
        await rejectsWith(q.spawn(u, "c3"), Errno.EAGAIN);
        await u.proc.waitid({ pid: c1.pid, options: W.EXITED });
        await until(() => q.proc.procsOf(1600) === 2, 3000, "the reaped child to be uncounted");
        await q.spawn(u, "c3");
        // Another uid has its own count, and root has none.
        const v = await userProcess(q, q.startup, [1601]);
        await q.spawn(v, "v1");
        for (let i = 0; i < 5; i++) await q.spawn(q.startup, `root${i}`);
      } finally {
        await q.close();
      }
    });

    it("a process with no ids has a handle quota of its own: one id-less process cannot use up another's", async () => {
      const q = await bootProcHurd(kind, { handleQuota: 2 });
      try {
        const idless = async (name: string) => {
          // A task nobody proc_child'ed: a process with no ids, that acts through its own process port.
          const c = await q.startup.task.taskCreate(name);
          const t = await q.h.attach(c.taskId, c.token);
          const r = new Rights();
          const rep = await q.startup.proc.task2proc({ task: r.copySend(c.task) }, { rights: r });
          const NAME = 0x7100 + (c.taskId % 0x100);
          await q.startup.task.insertRight(c.task, NAME, portAt(rep, rep.proc), MsgType.MSG_TYPE_MOVE_SEND);
          const proc = client(t, ProcessDefinition, NAME);
          return { proc, pid: (await proc.getpids({})).pid };
        };
        const x = await idless("idless-x");
        const y = await idless("idless-y");
        await x.proc.pidOpen({ pid: x.pid, serial: 0 });
        await x.proc.pidOpen({ pid: x.pid, serial: 0 });
        await rejectsWith(x.proc.pidOpen({ pid: x.pid, serial: 0 }), Errno.EDQUOT);
        await y.proc.pidOpen({ pid: y.pid, serial: 0 });
      } finally {
        await q.close();
      }
    });
  });
}


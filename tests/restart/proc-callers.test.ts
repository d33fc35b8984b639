// A process being set up while proc restarts in place (pid 1 at boot, when
// an orchestrator replaces a stalled proc): the calls libhurd makes to become
// a process are asked again when the process that took them died with them
// in hand, and the restarted proc answers them. CI once saw pid 1 die of
// that MIG_SERVER_DIED, and the whole hurd with it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, portAt, Rights, type Task } from "@hurdmesh/mach";
import { Process } from "@hurdmesh/libhurd";
import { MemoryProcStore, startProc, type ProcBatch, type ProcImage, type ProcStore } from "@hurdmesh/proc";
import { busKinds, until } from "../harness.js";
import { bootProcHurd, type ProcHurd } from "../proc/kit.js";

const LEASE = 400;
const GRACE = 5000;

/**
 * proc's memory store, whose writes can be held: a write held when proc's
 * process dies is one that process never made (its RPC was never answered).
 */
class HeldStore implements ProcStore {
  readonly inner = new MemoryProcStore();
  holding = false;
  held = 0;
  open(taskId: number): Promise<ProcImage | null> {
    return this.inner.open(taskId);
  }
  write(b: ProcBatch): Promise<void> | void {
    if (!this.holding) return this.inner.write(b);
    this.held++;
    return new Promise<void>(() => {});
  }
}

for (const kind of busKinds) {
  describe(`setting up a process while proc restarts (${kind} bus)`, () => {
    let ph: ProcHurd;
    const store = new HeldStore();
    before(async () => {
      ph = await bootProcHurd(kind, {}, { leaseMs: LEASE, restartGraceMs: GRACE }, { store });
      await ph.procTask.task.call("taskSetEssential", { task: 0, essential: true });
    });
    after(async () => {
      await ph.close();
    });

    it("Process.attach's setmsgport, taken by a proc process that died before answering, is asked again and answered by the next one", async () => {
      // fork's half in the parent (task_create, proc_task2proc, proc_child), done before the kill.
      const parent = ph.startup;
      const c = await parent.task.taskCreate("pid1-like");
      const r = new Rights();
      const t2p = await parent.proc.task2proc({ task: r.copySend(c.task) }, { rights: r });
      const r2 = new Rights();
      await parent.proc.child({ child: r2.copySend(c.task) }, { rights: r2 });
      const child: Task = await ph.h.attach(c.taskId, c.token);
      const NAME = 0x7000 + (c.taskId % 0x1000);
      await parent.task.insertRight(c.task, NAME, portAt(t2p, t2p.proc), MsgType.MSG_TYPE_MOVE_SEND);
      const r3 = new Rights();
      const { pid } = await parent.proc.task2pid({ task: r3.copySend(c.task) }, { rights: r3 });

      store.holding = true;
      const attached = Process.attach(child, NAME);
      let outcome: unknown = null;
      attached.then(
        (p) => (outcome = p),
        (e) => (outcome = e),
      );
      await until(() => store.held > 0, 5000, "proc to take setmsgport");
      // proc's process goes as SIGKILL leaves it; the call in its hands is answered MIG_SERVER_DIED at the lapse.
      ph.procTask.task.abandon();
      await until(() => ph.h.kernel.lapsed.size === 1, LEASE * 10, "the lapse");
      // Asked again meanwhile, the call waits on proc's port for the next process.
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(outcome, null, `Process.attach ended before proc came back: ${String(outcome)}`);
      store.holding = false;
      const next = await ph.h.attach(ph.procTask.taskId, ph.procTask.token, { hold: true, window: 1024, timeoutMs: 10_000 });
      const proc = await startProc(next, { store });
      assert.equal(proc.restarted, true);
      const p = await attached;
      assert.equal(p.pid, pid);
      // The restarted proc has its message port: a getmsgport by pid answers, not waits.
      const got = await parent.proc.getmsgport({ pid });
      assert.ok(portAt(got, got.msgport) > 0, "pid's message port");
      await p.setArgs(["/libexec/runsystem"]);
      const args = await parent.proc.getprocargs({ pid });
      assert.match(new TextDecoder().decode(args.data), /runsystem/);
    });
  });
}

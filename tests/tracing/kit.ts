// A booted hurd with libhurd processes, for the tracing suites: the
// fork–signal–wait–exit sequence they all trace.
import { CHILD_NAMES, Process, SIG, W } from "@hurdmesh/libhurd";
import type { BusKind } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";

export interface World {
  b: BootedHurd;
  init: Process;
  fork(parent: Process, name: string): Promise<Process>;
  close(): Promise<void>;
}

export async function world(kind: BusKind): Promise<World> {
  const b = await bootHurd(kind);
  const init = await Process.attach(b.initTask, b.init.booted!.proc, b.init.booted!.auth, { msgport: false });
  return {
    b,
    init,
    async fork(parent, name) {
      const f = await parent.fork(name);
      const t = await b.h.attach(f.taskId, f.token);
      return Process.attach(t, CHILD_NAMES.proc, parent.authPort ? CHILD_NAMES.auth : 0);
    },
    close: () => b.close(),
  };
}

/** fork, catch SIGUSR1, kill with it, exit(7), wait: what the tests compare and trace. */
export async function sequence(w: World): Promise<{ pid: number; ppid: number; got: number[]; exited: boolean; status: number; childTask: number }> {
  const c = await w.fork(w.init, "traced");
  const got: number[] = [];
  c.signal(SIG.USR1, (i) => void got.push(i.signal));
  const ppid = await c.getppid();
  await w.init.kill(c.pid, SIG.USR1);
  await c.exit(7);
  const st = await w.init.wait(c.pid);
  return { pid: c.pid, ppid, got, exited: W.ifexited(st!.status), status: W.exitstatus(st!.status), childTask: c.task.id };
}

// A booted hurd for the bench: kernel, then init booting auth, proc and pid 1
// exactly as `hurd up` does, on the in-process hub or with every task on its
// own NATS connection. `parent` is init's task acting through libhurd.
import { Init, InProcessLauncher } from "@hurdmesh/init";
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { Process } from "@hurdmesh/libhurd";
import { LocalHub, NatsBus, Task, type Bus } from "@hurdmesh/mach";
import type { ProcServer } from "@hurdmesh/proc";

export interface Rig {
  kernel: Kernel;
  init: Init;
  parent: Process;
  proc: ProcServer;
  attach(taskId: number, token: string): Promise<Task>;
  close(): Promise<void>;
}

let n = 0;

export async function bootRig(kind: "local" | "nats", natsUrl: string, log: (l: string) => void = () => {}): Promise<Rig> {
  const system = `bench${process.pid}x${++n}`;
  const kernel = new Kernel({ system }, { log });
  const hub = new LocalHub();
  const buses: Bus[] = [];
  const connect = async (): Promise<Bus> => {
    const b = kind === "local" ? hub.connect() : await NatsBus.connect(natsUrl, `bench-${system}`);
    buses.push(b);
    return b;
  };
  const kb = await connect();
  const traps = new TrapServer(kernel, kb);
  traps.start();
  await kb.flush();
  const attach = async (taskId: number, token: string) => Task.attach({ bus: await connect(), system, taskId, token, window: 1024, timeoutMs: 30_000 });
  const b = kernel.bootTask({ name: "init", hostPriv: true });
  const initTask = await attach(b.task.id, b.token);
  const launcher = new InProcessLauncher(attach);
  const init = new Init({ task: initTask, hostPriv: b.hostPriv, launcher, log });
  const booted = await init.boot();
  const parent = await Process.attach(initTask, booted.proc, booted.auth, { msgport: false });
  return {
    kernel,
    init,
    parent,
    proc: launcher.started.proc as ProcServer,
    attach,
    async close() {
      traps.stop();
      kernel.close();
      for (const x of buses) await x.close();
    },
  };
}

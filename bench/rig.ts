// A booted hurd for the bench: kernel, then init booting auth, proc and pid 1
// exactly as `hurd up` does, on the in-process hub or with every task on its
// own NATS connection. `parent` is init's task acting through libhurd.
import { InProcessLauncher } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { Process } from "@hurdmesh/libhurd";
import { LocalHub, Task, type Bus } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import type { ProcServer } from "@hurdmesh/proc";

/** A kernel on a bus of its own, for the bench: every task on its own connection (as separate processes would be). */
export interface KernelRig {
  kernel: Kernel;
  system: string;
  connect(): Promise<Bus>;
  attach(taskId: number, token: string, o?: { window?: number; timeoutMs?: number }): Promise<Task>;
  close(): Promise<void>;
}

export async function kernelRig(kind: "local" | "nats", natsUrl: string, log: (l: string) => void = () => {}): Promise<KernelRig> {
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
  const tasks: Task[] = [];
  return {
    kernel,
    system,
    connect,
    async attach(taskId, token, o = {}) {
      const t = await Task.attach({ bus: await connect(), system, taskId, token, window: o.window, timeoutMs: o.timeoutMs });
      tasks.push(t);
      return t;
    },
    async close() {
      for (const t of tasks) t.abandon();
      traps.stop();
      kernel.close();
      for (const x of buses) await x.close();
    },
  };
}

export interface Rig {
  kernel: Kernel;
  init: Init;
  parent: Process;
  proc: ProcServer;
  attach(taskId: number, token: string, o?: { window?: number }): Promise<Task>;
  close(): Promise<void>;
}

let n = 0;

export async function bootRig(kind: "local" | "nats", natsUrl: string, log: (l: string) => void = () => {}): Promise<Rig> {
  const k = await kernelRig(kind, natsUrl, log);
  const attach = (taskId: number, token: string, o: { window?: number } = {}) => k.attach(taskId, token, { window: 1024, timeoutMs: 30_000, ...o });
  const b = k.kernel.bootTask({ name: "init", hostPriv: true });
  const initTask = await attach(b.task.id, b.token);
  const launcher = new InProcessLauncher(attach);
  const init = new Init({ task: initTask, hostPriv: b.hostPriv, launcher, log });
  const booted = await init.boot();
  const parent = await Process.attach(initTask, booted.proc, booted.auth, { msgport: false });
  return { kernel: k.kernel, init, parent, proc: launcher.started.proc as ProcServer, attach, close: () => k.close() };
}

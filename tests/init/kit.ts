// Boots a whole hurd the way `hurd up` does: kernel, init (pid 2), which
// creates and launches auth and proc and then pid 1. In-process or with
// every boot server as its own OS process on a real nats-server.
import { InProcessLauncher, ProcessLauncher } from "@hurdmesh/boot";
import { Init, type InitConfig } from "@hurdmesh/init";
import { Task, type Bus } from "@hurdmesh/mach";
import { startHurd, natsUrl, type BusKind, type Hurd } from "../harness.js";

export interface BootedHurd {
  h: Hurd;
  init: Init;
  initTask: Task & { hostPriv: number };
  launcher: InProcessLauncher | ProcessLauncher;
  close(): Promise<void>;
}

export async function bootHurd(kind: BusKind, o: { separate?: boolean; config?: Partial<InitConfig>; command?: string[]; log?: string[] } = {}): Promise<BootedHurd> {
  const h = await startHurd(kind);
  const initTask = await h.task("init", { hostPriv: true, timeoutMs: 20000 });
  const launcher = o.separate
    ? new ProcessLauncher({ NATS_URL: natsUrl(), HURD_SYSTEM: h.kernel.config.system, command: o.command })
    : new InProcessLauncher((id, token) => h.attach(id, token, { window: 1024, timeoutMs: 20000 }), { command: o.command });
  const logs = o.log ?? [];
  const init = new Init({ task: initTask, hostPriv: initTask.hostPriv, launcher, config: o.config, log: (l) => logs.push(l) });
  await init.boot();
  return {
    h,
    init,
    initTask,
    launcher,
    async close() {
      if (launcher instanceof ProcessLauncher) for (const c of launcher.children) c.kill("SIGTERM");
      await h.close();
    },
  };
}

export type { Bus };

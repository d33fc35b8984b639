// Starts a kernel on a bus of the requested kind and attaches tasks to it.
// The NATS flavour talks to the real nats-server that `npm test` started
// (NATS_URL); the local flavour uses the in-process hub.
import { LocalHub, Task, type Bus } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import { Kernel, TrapServer, type KernelConfig } from "@hurdmesh/kernel";
import { globalTelemetry, installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { telemetryFromEnv } from "@hurdmesh/telemetry-sdk";

export type BusKind = "local" | "nats";

export const busKinds: BusKind[] = process.env.HURD_TEST_BUSES ? (process.env.HURD_TEST_BUSES.split(",") as BusKind[]) : ["local", "nats"];

let systems = 0;

export interface Hurd {
  kind: BusKind;
  kernel: Kernel;
  /** Creates a boot task and attaches to it over its own bus connection. */
  task(name: string, o?: { hostPriv?: boolean; window?: number; timeoutMs?: number }): Promise<Task & { hostPriv: number }>;
  /** Attaches to an existing task id with a token (e.g. from taskCreate). */
  attach(taskId: number, token: string, o?: { window?: number; timeoutMs?: number; hold?: boolean }): Promise<Task>;
  /** A new connection to the kernel's bus (closed with the hurd). */
  connect(): Promise<Bus>;
  close(): Promise<void>;
}

export function natsUrl(): string {
  const u = process.env.NATS_URL;
  if (!u) throw new Error("NATS_URL is not set: run the suites with `npm test`, which starts a nats-server");
  return u;
}

export async function startHurd(kind: BusKind, config: Partial<KernelConfig> = {}): Promise<Hurd> {
  const system = `t${process.pid}x${++systems}`;
  const logs: string[] = [];
  // As hurd-kernel does: spans when the environment asks (tests/tracing runs
  // suites so), and the servers in this process trace their handlers too.
  const telemetry = telemetryFromEnv("hurd-kernel", process.env, { bus: config.bus ?? "local" });
  if (telemetry && !globalTelemetry()) {
    setGlobalTelemetry(telemetry);
    installTracingHooks(telemetry);
  }
  const kernel = new Kernel({ system, ...config }, { log: (l) => logs.push(l), telemetry });
  const hub = new LocalHub();
  const buses: Bus[] = [];
  const connect = async (): Promise<Bus> => {
    const b = kind === "local" ? hub.connect() : await NatsBus.connect(natsUrl());
    buses.push(b);
    return b;
  };
  const kbus = await connect();
  const trap = new TrapServer(kernel, kbus);
  trap.start();
  await kbus.flush();
  let tasks: Task[] = [];
  /** Each attached task's own connection, closed once the task is gone (long fuzz runs attach tens of thousands). */
  const connections = new Map<Task, Bus>();
  const attach = async (taskId: number, token: string, o: { window?: number; timeoutMs?: number; hold?: boolean } = {}) => {
    const bus = await connect();
    const t = await Task.attach({ bus, system, taskId, token, window: o.window, timeoutMs: o.timeoutMs ?? 5000, hold: o.hold });
    tasks.push(t);
    connections.set(t, bus);
    if (tasks.length % 256 === 0) {
      tasks = tasks.filter((x) => !x.detached);
      for (const [x, b] of connections)
        if (x.detached) {
          connections.delete(x);
          buses.splice(buses.indexOf(b), 1);
          await b.close();
        }
    }
    return t;
  };
  return {
    kind,
    kernel,
    attach,
    connect,
    async task(name, o = {}) {
      const b = kernel.bootTask({ name, hostPriv: o.hostPriv });
      const t = (await attach(b.task.id, b.token, o)) as Task & { hostPriv: number };
      t.hostPriv = b.hostPriv;
      return t;
    },
    async close() {
      for (const t of tasks) t.abandon();
      trap.stop();
      kernel.close();
      for (const b of buses) await b.close();
    },
  };
}

/** Resolves when `cond` holds, polling; rejects after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

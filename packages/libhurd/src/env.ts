// Attaching a program to its hurd from the environment, as a spawned server
// or program finds itself:
//   HURD_SYSTEM     the kernel's system name (default "hurd")
//   HURD_TASK_ID    the task to attach as
//   HURD_TOKEN      its secret
//   NATS_URL        the bus (nats://host:port), for trusted servers; or
//   HURD_EDGE       the kernel's gRPC edge (host:port), for everything else
// HURD_TOKEN is removed from process.env once read, so children do not inherit it.
import { Errno, HurdError, Task, type Bus } from "@hurdmesh/mach";

export interface EnvAttach {
  task: Task;
  bus: Bus;
}

export interface EnvAttachOptions {
  window?: number;
  timeoutMs?: number;
  /** Hold deliveries until task.resume() (a server re-attaching after a restart sets itself up first). */
  hold?: boolean;
  /**
   * A restarted server: the kernel refuses its attach (EBUSY) until the
   * dead holder's lease lapses; retry for up to this long, ms (0: no retry).
   */
  retryBusyMs?: number;
}

export async function attachFromEnv(env: NodeJS.ProcessEnv = process.env, o: EnvAttachOptions = {}): Promise<EnvAttach> {
  const taskId = Number(env.HURD_TASK_ID);
  const token = env.HURD_TOKEN;
  if (!Number.isSafeInteger(taskId) || taskId <= 0 || !token) throw new Error("HURD_TASK_ID and HURD_TOKEN must name the task to attach as");
  if (!env.NATS_URL && !env.HURD_EDGE) throw new Error("NATS_URL (the bus) or HURD_EDGE (the kernel's gRPC edge) must say where the kernel is");
  delete env.HURD_TOKEN;
  // Only the transport picked is loaded: a workload on the edge never loads NATS, a server on NATS never grpc-js.
  const bus: Bus = env.NATS_URL
    ? await (await import("@hurdmesh/mach/nats")).NatsBus.connect(env.NATS_URL, `hurd-task-${taskId}`)
    : new (await import("@hurdmesh/mach/edge")).EdgeBus(env.HURD_EDGE!, taskId, token);
  const until = Date.now() + (o.retryBusyMs ?? 0);
  for (;;) {
    try {
      const task = await Task.attach({ bus, system: env.HURD_SYSTEM ?? "hurd", taskId, token, window: o.window, timeoutMs: o.timeoutMs, hold: o.hold });
      return { task, bus };
    } catch (e) {
      if (HurdError.from(e).code !== Errno.EBUSY || Date.now() > until) {
        await bus.close().catch(() => {});
        throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

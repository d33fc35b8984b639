// Attaching a program to its hurd from the environment, as a spawned server
// or program finds itself:
//   HURD_SYSTEM     the kernel's system name (default "hurd")
//   HURD_TASK_ID    the task to attach as
//   HURD_TOKEN      its secret
//   NATS_URL        the bus (nats://host:port), for trusted servers; or
//   HURD_EDGE       the kernel's gRPC edge (host:port), for everything else
// HURD_TOKEN is removed from process.env once read, so children do not inherit it.
import { Task, type Bus } from "@hurdmesh/mach";

export interface EnvAttach {
  task: Task;
  bus: Bus;
}

export async function attachFromEnv(env: NodeJS.ProcessEnv = process.env, o: { window?: number; timeoutMs?: number } = {}): Promise<EnvAttach> {
  const taskId = Number(env.HURD_TASK_ID);
  const token = env.HURD_TOKEN;
  if (!Number.isSafeInteger(taskId) || taskId <= 0 || !token) throw new Error("HURD_TASK_ID and HURD_TOKEN must name the task to attach as");
  if (!env.NATS_URL && !env.HURD_EDGE) throw new Error("NATS_URL (the bus) or HURD_EDGE (the kernel's gRPC edge) must say where the kernel is");
  delete env.HURD_TOKEN;
  // Only the transport picked is loaded: a workload on the edge never loads NATS, a server on NATS never grpc-js.
  const bus: Bus = env.NATS_URL
    ? await (await import("@hurdmesh/mach/nats")).NatsBus.connect(env.NATS_URL, `hurd-task-${taskId}`)
    : new (await import("@hurdmesh/mach/edge")).EdgeBus(env.HURD_EDGE!, taskId, token);
  const task = await Task.attach({ bus, system: env.HURD_SYSTEM ?? "hurd", taskId, token, window: o.window, timeoutMs: o.timeoutMs });
  return { task, bus };
}

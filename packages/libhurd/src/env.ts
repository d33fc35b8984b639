// Attaching a program to its hurd from the environment, as a spawned server
// or program finds itself:
//   HURD_SYSTEM     the kernel's system name (default "hurd")
//   HURD_TASK_ID    the task to attach as
//   HURD_TOKEN      its secret
//   NATS_URL        the bus (nats://host:port)
// HURD_TOKEN is removed from process.env once read, so children do not inherit it.
import { NatsBus, Task, type Bus } from "@hurdmesh/mach";

export interface EnvAttach {
  task: Task;
  bus: Bus;
}

export async function attachFromEnv(env: NodeJS.ProcessEnv = process.env, o: { window?: number; timeoutMs?: number } = {}): Promise<EnvAttach> {
  const taskId = Number(env.HURD_TASK_ID);
  const token = env.HURD_TOKEN;
  const url = env.NATS_URL;
  if (!Number.isSafeInteger(taskId) || taskId <= 0 || !token) throw new Error("HURD_TASK_ID and HURD_TOKEN must name the task to attach as");
  if (!url) throw new Error("NATS_URL must name the bus");
  delete env.HURD_TOKEN;
  const bus = await NatsBus.connect(url, `hurd-task-${taskId}`);
  const task = await Task.attach({ bus, system: env.HURD_SYSTEM ?? "hurd", taskId, token, window: o.window, timeoutMs: o.timeoutMs });
  return { task, bus };
}

// Attaching a program to its hurd from the environment, as a spawned server
// or program finds itself:
//   HURD_SYSTEM     the kernel's system name (default "hurd")
//   HURD_TASK_ID    the task to attach as
//   HURD_TOKEN      its secret
//   NATS_URL        the bus (nats://host:port), for trusted servers, with
//   HURD_NATS_CREDS the task's own NATS user (a .creds file's text) when
//                   NATS authorization is on; or
//   HURD_EDGE       the kernel's gRPC edge (host:port), for everything else
//   HURD_EDGE_CA    the CA (PEM) of the edge's certificate, when it speaks TLS
// HURD_TOKEN and HURD_NATS_CREDS are removed from process.env once read, so
// children do not inherit them; workloadEnv is what a server hands the
// programs it runs.
import { Task, type Bus } from "@hurdmesh/mach";

export interface EnvAttach {
  task: Task;
  bus: Bus;
}

export interface EnvAttachOptions {
  window?: number;
  timeoutMs?: number;
  /** Hold deliveries until task.resume() (a server re-attaching after a restart sets itself up first). */
  hold?: boolean;
  /** AttachOptions.retryBusyMs: a restarted server waits out its dead holder's lease. */
  retryBusyMs?: number;
}

export async function attachFromEnv(env: NodeJS.ProcessEnv = process.env, o: EnvAttachOptions = {}): Promise<EnvAttach> {
  const taskId = Number(env.HURD_TASK_ID);
  const token = env.HURD_TOKEN;
  if (!Number.isSafeInteger(taskId) || taskId <= 0 || !token) throw new Error("HURD_TASK_ID and HURD_TOKEN must name the task to attach as");
  if (!env.NATS_URL && !env.HURD_EDGE) throw new Error("NATS_URL (the bus) or HURD_EDGE (the kernel's gRPC edge) must say where the kernel is");
  const credsText = env.HURD_NATS_CREDS;
  delete env.HURD_TOKEN;
  delete env.HURD_NATS_CREDS;
  const system = env.HURD_SYSTEM ?? "hurd";
  // Only the transport picked is loaded: a workload on the edge never loads NATS, a server on NATS never grpc-js.
  const a = { system, taskId, token, window: o.window, timeoutMs: o.timeoutMs, hold: o.hold, retryBusyMs: o.retryBusyMs };
  if (env.NATS_URL) {
    const credentials = credsText ? (await import("@hurdmesh/mach/nats-auth")).parseCreds(credsText) : null;
    // attachOverNats's connection is the task's own: a failed attach closes it.
    const task = await (await import("@hurdmesh/mach/nats")).attachOverNats(env.NATS_URL, { ...a, credentials });
    return { task, bus: task.bus };
  }
  const bus: Bus = new (await import("@hurdmesh/mach/edge")).EdgeBus(env.HURD_EDGE!, taskId, token, env.HURD_EDGE_CA);
  const task = await Task.attach({ ...a, bus }).catch(async (e: unknown) => {
    await bus.close().catch(() => {});
    throw e;
  });
  return { task, bus };
}

/**
 * What reaches the fabric or another task, which a workload must never be
 * handed (a program run by pid 1 or `hurd spawn` talks to its hurd through
 * the edge, HURD_EDGE, if at all).
 */
const FABRIC = /^(NATS_.*|HURD_NATS_.*|HURD_TOKEN|HURD_TASK_ID|HURD_HOST_PRIV|HURD_COMMAND|HURD_BOOT_SECRET.*|HURD_BOOT_FILE)$/;

/** `env` without the fabric: no NATS address or credentials, no task's token, no boot secret. */
export function workloadEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!FABRIC.test(k)) out[k] = v;
  return out;
}

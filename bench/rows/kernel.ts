// A brokered RPC: hurd.bench.v1.Ping from a client task to a server task,
// both attached to a kernel, every message routed by the kernel (send right
// and send-once reply right translated, credit flow control on). Measured on
// NATS (kernel and each task on their own connection, as separate processes
// would be) and on the in-process hub.
import { client, MsgType, serve } from "@hurdmesh/mach";
import { kernelRig, NATS_AUTH_OFF, type RigKernelOptions, type RigKind } from "../rig.js";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import type { BenchContext, RowGroup } from "./types.js";

/** The name the client's send right to the server's port gets (any free name). */
const PING_NAME = 0x1000;

export interface Rig {
  /** The kernel, for groups that look inside (tracing). */
  kernel: import("@hurdmesh/kernel").Kernel;
  ping(): Promise<unknown>;
  /** One task made, its NATS user asked for (minted with authorization on), the task ended. */
  createTask(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Kernel, server and client wired only through Mach calls: the server creates
 * the client task, inserts a send right to its port into the client's space,
 * and the client attaches with the token it was given.
 */
export async function rig(kind: RigKind, ctx: BenchContext, ko: RigKernelOptions = {}): Promise<Rig> {
  const k = await kernelRig(kind, ctx, (l) => ctx.log(`kernel: ${l}`), ko);
  const kernel = k.kernel;
  const boot = kernel.bootTask({ name: "bench-server" });
  const srv = await k.attach(boot.task.id, boot.token);
  const port = await srv.allocate();
  serve(srv, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(port, {});
  const child = await srv.taskCreate("bench-client");
  await srv.insertRight(child.task, PING_NAME, port, MsgType.MSG_TYPE_MAKE_SEND);
  const cli = await k.attach(child.taskId, child.token);
  const ping = client(cli, PingDefinition, PING_NAME);
  const payload = new Uint8Array(16);
  // One call end to end before measuring: the wiring is right or we stop here.
  await ping.ping({ payload });
  return {
    kernel,
    ping: () => ping.ping({ payload }),
    async createTask() {
      const c = await srv.taskCreate("bench-task");
      await srv.natsCredentials(c.taskId, c.token);
      await srv.taskTerminate(c.task);
      await srv.deallocate(c.task).catch(() => {});
    },
    close: () => k.close(),
  };
}

export const PING = "brokered Ping RPC";
/**
 * What a creator does to start a task in a process of its own over NATS:
 * task_create, the task's NATS user (minted with authorization on, empty
 * without), and, for the row to be repeatable, task_terminate (revoking it).
 */
export const TASK_CREATE = "task_create + its NATS user + task_terminate";

function group(kind: RigKind, name: string): RowGroup {
  return {
    name,
    needsNats: kind !== "local",
    async open(ctx) {
      const r = await rig(kind, ctx);
      const subjects = [{ name: PING, bus: kind, call: r.ping }];
      if (kind !== "local") subjects.push({ name: TASK_CREATE, bus: kind, call: r.createTask });
      return { subjects, close: () => r.close() };
    },
  };
}

export const kernelNats = group("nats", "kernel-nats");
/** The brokered Ping on a nats-server without authorization: what authorization costs. */
export const kernelNatsAuthOff = group(NATS_AUTH_OFF, "kernel-nats-auth-off");
export const kernelLocal = group("local", "kernel-local");

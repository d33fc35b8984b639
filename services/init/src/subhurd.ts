// Booting a subhurd: a task of the parent hurd creates the new hurd's
// startup task in a new kernel namespace nested in its own, hands it the new
// namespace's host port, and that startup boots its own auth, proc and pid 1
// exactly as the root hurd's does. The parent keeps the host port, so it can
// always tear the subhurd down (as the Hurd's `boot` holds its subhurd's).
// Where its servers run is the caller's choice (its launcher), as for the
// root hurd.
import { MsgType, type LogSink, type Task } from "@hurdmesh/mach";
import type { HurdLimits, HurdPolicy } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { BOOT_NAMES, Init, type Console, type Launcher } from "./boot.js";

export interface Subhurd {
  name: string;
  namespaceId: number;
  init: Init;
  task: Task;
  console: Console;
  /** The subhurd's host port in the creator's space. */
  hostPriv: number;
}

export async function bootSubhurd(
  creator: Task,
  name: string,
  attach: (taskId: number, token: string) => Promise<Task>,
  launcher: Launcher,
  o: { log?: LogSink; limits?: HurdLimits; policy?: HurdPolicy } = {},
): Promise<Subhurd> {
  // The kernel checks the limits (within the parent's) and the parent's policy.
  const t = await creator.taskCreate(`${name}:startup`, { newNamespace: true, limits: o.limits, policy: o.policy });
  await creator.insertRight(t.task, BOOT_NAMES.hostPriv, t.hostPriv, MsgType.MSG_TYPE_COPY_SEND);
  const task = await attach(t.taskId, t.token);
  const init = new Init({ task, hostPriv: BOOT_NAMES.hostPriv, launcher, log: o.log });
  await init.boot();
  const console_ = await init.makeConsole();
  return { name, namespaceId: t.namespaceId, init, task, console: console_, hostPriv: t.hostPriv };
}

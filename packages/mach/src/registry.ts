// Message ids to names: every service definition of the project (its MIG ids,
// read by the runtime's methods()), the kernel's notifications, and replies
// (MIG answers request id N with N + 100). The kernel's tracer names the
// messages it routes with it, `hurd rpctrace` the lines it prints.
//
// Its own export path (@hurdmesh/mach/registry), not in mod.ts: it loads the
// generated code of every service, which a program that serves or calls one
// of them has no need to load.
import { methods, type MethodInfo, type ServiceDef } from "./msgid.js";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition, StartupNotifyDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";

/** Kernel notifications (notify.defs, task_notify.defs, hurdmesh's 4401). */
export const NOTIFICATIONS: ReadonlyMap<number, string> = new Map([
  [65, "mach_notify_port_deleted"],
  [69, "mach_notify_port_destroyed"],
  [70, "mach_notify_no_senders"],
  [71, "mach_notify_send_once"],
  [72, "mach_notify_dead_name"],
  [4400, "mach_notify_new_task"],
  [4401, "hurd_notify_task_terminated"],
]);

/**
 * The interfaces of the Hurd's servers (and of hurdmesh's subhurd
 * manager): what the kernel's gRPC edge serves as gRPC services, each call
 * a message to a port (services/kernel/src/gateway.ts), and what `hurd
 * call` calls. A new server interface joins by being listed here; its
 * routines need no code of their own.
 */
export const INTERFACES: readonly ServiceDef[] = [ProcessDefinition, AuthDefinition, MsgDefinition, StartupDefinition, StartupNotifyDefinition, SubhurdDefinition];

const DEFS: ServiceDef[] = [...INTERFACES, PingDefinition, MachDefinition];

export class Registry {
  private readonly byId = new Map<number, MethodInfo>();
  constructor(defs: readonly ServiceDef[] = DEFS) {
    for (const d of defs) for (const [id, info] of methods(d).byId) if (!this.byId.has(id)) this.byId.set(id, info);
  }
  /** Adds a service (a program's own interface) so its ids get names. */
  add(def: ServiceDef): void {
    for (const [id, info] of methods(def).byId) this.byId.set(id, info);
  }
  /** The method a request id stands for. */
  method(id: number): MethodInfo | undefined {
    return this.byId.get(id);
  }
  /** "hurd.process.v1.Process/GetPids" for a request id, or undefined. */
  name(id: number, kernel = false): string | undefined {
    if (kernel) return NOTIFICATIONS.get(id);
    return this.byId.get(id)?.path;
  }
}

let shared: Registry | null = null;
/** The registry of the project's own services. */
export function registry(): Registry {
  return (shared ??= new Registry());
}

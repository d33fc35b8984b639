// The boot script (the Hurd's servers.boot): which program runs which boot
// server. init asks its Launcher to start "auth", "proc" or "runsystem" on
// a task it made and knows no more; this table is the one place that says
// auth is bootAuth, proc is startProc and pid 1 is the built-in runsystem,
// whichever launcher, process or container runs it.
import type { AuthStore } from "@hurdmesh/auth";
import { bootAuth } from "@hurdmesh/auth/boot";
import type { Task } from "@hurdmesh/mach";
import { startProc, type ProcStore } from "@hurdmesh/proc";
import { Runsystem } from "./runsystem.js";

export interface BootServerOptions {
  /** The host_priv send right's name in the server's space. */
  hostPriv: number;
  /** For runsystem: the program pid 1 runs once the hurd is up. */
  command?: string[];
  /** Attaches another task (runsystem attaches the children it starts). */
  attach: (taskId: number, token: string) => Promise<Task>;
  /** For auth: where it writes its handles through (a restarted process reads them back); default in memory. */
  authStore?: AuthStore;
  /** For proc: where it writes its table through (a restarted process rebuilds from it); default none. */
  procStore?: ProcStore;
}

/** Starts one boot server on its task; resolves with the server (for tests and the bench). */
export type BootServer = (task: Task, o: BootServerOptions) => Promise<unknown>;

export const BOOT_SERVERS: Readonly<Record<string, BootServer>> = Object.freeze({
  auth: (task, o) => bootAuth(task, { hostPriv: o.hostPriv, store: o.authStore }),
  proc: (task, o) => startProc(task, { store: o.procStore }),
  runsystem: (task, o) => Runsystem.start(task, { command: o.command, attach: o.attach }),
});

/** Starts boot server `name` on `task`. */
export function startBootServer(name: string, task: Task, o: BootServerOptions): Promise<unknown> {
  const start = Object.hasOwn(BOOT_SERVERS, name) ? BOOT_SERVERS[name] : undefined;
  if (!start) throw new Error(`no boot server called ${name}`);
  return start(task, o);
}

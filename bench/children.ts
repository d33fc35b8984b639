// The programs the bench starts (hurd up, with --nats its kernel, init and
// servers): each in a process group of its own, so that a failed or
// interrupted run can end every process under it, grandchildren included,
// at exit, whatever went wrong.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { registerChild, unregisterChild } from "./cpu.js";

const groups = new Set<ChildProcess>();

/** spawn, in a new process group the bench ends at exit if it is still there. */
export function spawnGroup(cmd: string, args: string[], o: SpawnOptions): ChildProcess {
  const p = spawn(cmd, args, { ...o, detached: true });
  // Kept after the leader exits: what it started may not have.
  groups.add(p);
  registerChild(p.pid);
  return p;
}

/** Ends a group now: SIGKILL to every process in it. */
export function killGroup(p: ChildProcess): void {
  if (!p.pid) return;
  unregisterChild(p.pid);
  try {
    process.kill(-p.pid, "SIGKILL");
  } catch {
    // Nothing left in it.
  }
  groups.delete(p);
}

function killAll(): void {
  for (const p of [...groups]) killGroup(p);
}

process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });

// CPU time of the processes the bench starts (nats-servers, `hurd web`, a
// kernel in a process of its own), so that a row's CPU per call counts what
// it costs them too, not only this process. Read from /proc: the sum over a
// process's threads of schedstat's first field (ns on a CPU; finer than
// stat's 10 ms ticks), for every registered process and its descendants.
// Linux only: elsewhere it reads 0 and the rows say children_cpu_us_per_call 0.
import { readdirSync, readFileSync } from "node:fs";

const roots = new Set<number>();

/** Counts `pid` (and what it starts) in childrenCpuUs() until it is unregistered or gone. */
export function registerChild(pid: number | undefined): void {
  if (pid) roots.add(pid);
}
export function unregisterChild(pid: number | undefined): void {
  if (pid) roots.delete(pid);
}

function threadsNs(pid: number): number {
  let ns = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const t of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").split(" ")) if (c.trim()) out.push(Number(c));
    } catch {
      // Gone.
    }
  }
  return out;
}

/**
 * CPU µs used so far by the registered processes and their descendants (a
 * process that ended takes its time with it: measure deltas over windows
 * in which the set does not change).
 */
export function childrenCpuUs(): number {
  let ns = 0;
  const seen = new Set<number>();
  const todo = [...roots];
  while (todo.length) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    ns += threadsNs(p);
    todo.push(...childrenOf(p));
  }
  return ns / 1000;
}

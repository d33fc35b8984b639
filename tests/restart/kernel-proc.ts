// A hurd-kernel OS process of the failover suites, and waiting on its output.
import type { ChildProcess } from "node:child_process";

export interface KernelProc {
  p: ChildProcess;
  out: string;
}

/** When the kernel printed `text` (ms since the epoch); fails past `ms` or if it exits first, with its output. */
export async function waitFor(k: KernelProc, text: RegExp, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!text.test(k.out)) {
    if (Date.now() - t0 > ms) throw new Error(`no ${text} within ${ms} ms; output:\n${k.out}`);
    if (k.p.exitCode !== null) throw new Error(`kernel exited (${k.p.exitCode}) before ${text}; output:\n${k.out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now();
}

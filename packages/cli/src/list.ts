// Reading the process table: one proc_getallprocinfo stream of pages.
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import type { Process } from "@hurdmesh/libhurd";

export async function allProcs(me: Process): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  let start = 1;
  for (;;) {
    const page = await me.proc.getallprocinfo({ startPid: start, max: 4096, flags: 0 });
    out.push(...page.procs);
    if (!page.nextPid) return out;
    start = page.nextPid;
  }
}

const PI_STOPPED = 0x1;
const PI_SESSLD = 0x20;
const PI_ZOMBIE = 0x100;
const PI_TRACED = 0x200;

/** procps's STAT letters: S, T (stopped), Z (zombie), t (traced); s marks a session leader. */
export function stat(p: ProcInfo): string {
  let s = p.state & PI_ZOMBIE ? "Z" : p.state & PI_STOPPED ? "T" : p.state & PI_TRACED ? "t" : "S";
  if (p.state & PI_SESSLD) s += "s";
  return s;
}

/** Elapsed time since the process started, as ps's ELAPSED column: [[dd-]hh:]mm:ss. */
export function elapsed(p: ProcInfo, now = Date.now()): string {
  let s = Math.max(0, Math.floor((now - p.startMs) / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return d ? `${d}-${String(h).padStart(2, "0")}:${mmss}` : h ? `${String(h).padStart(2, "0")}:${mmss}` : mmss;
}

// hurd ps: procps-like columns. proc (pid 4) and init (pids 1 and 2) show
// like any process: the seed's first complaint, answered.
import { createRequire } from "node:module";
import type TableType from "cli-table3";
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { CliError, connect } from "./session.js";
import { allProcs, elapsed, stat } from "./list.js";

const COLUMNS: Record<string, (p: ProcInfo) => string | number> = {
  pid: (p) => p.pid,
  ppid: (p) => p.ppid,
  pgid: (p) => p.pgrp,
  sid: (p) => p.session,
  uid: (p) => (p.owned ? p.owner : "-"),
  stat: stat,
  time: elapsed,
  serial: (p) => p.serial,
  task: (p) => p.taskId || "-",
  ns: (p) => p.namespaceId || "-",
  command: (p) => p.command || p.exe || "?",
};
export const DEFAULT_COLUMNS = "pid,ppid,pgid,sid,uid,stat,time,command";

export interface PsOptions {
  o?: string;
  json?: boolean;
  hurd?: string;
  /** Also the processes of subhurds nested in this hurd (with their namespace). */
  allHurds?: boolean;
}

// cli-table3 (CommonJS) only when a table is printed: --json needs none.
const require = createRequire(import.meta.url);

export function render(procs: ProcInfo[], cols: string[]): string {
  const Table = require("cli-table3") as typeof TableType;
  const t = new Table({
    head: cols.map((c) => c.toUpperCase()),
    chars: { top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: " " },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 1 },
  });
  for (const p of procs) t.push(cols.map((c) => String(COLUMNS[c]!(p))));
  return t.toString().split("\n").map((l) => l.trimEnd()).join("\n");
}

export function columns(o?: string): string[] {
  const cols = (o ?? DEFAULT_COLUMNS).split(",").map((c) => c.trim().toLowerCase()).filter(Boolean);
  for (const c of cols) if (!COLUMNS[c]) throw new CliError(`unknown column ${c} (known: ${Object.keys(COLUMNS).join(", ")})`);
  return cols;
}

export async function ps(o: PsOptions): Promise<void> {
  const cols = columns(o.o ?? (o.allHurds ? `${DEFAULT_COLUMNS.replace(",command", "")},ns,command` : undefined));
  const c = await connect(o.hurd, "ps");
  try {
    const procs = (await allProcs(c.me)).filter((p) => o.allHurds || !p.namespaceId);
    if (o.json) for (const p of procs) console.log(JSON.stringify(p));
    else console.log(render(procs, cols));
  } finally {
    await c.close();
  }
}

export async function pstree(o: { hurd?: string; json?: boolean }): Promise<void> {
  const c = await connect(o.hurd, "pstree");
  try {
    const procs = (await allProcs(c.me)).filter((p) => !p.namespaceId);
    if (o.json) {
      for (const p of procs) console.log(JSON.stringify({ pid: p.pid, ppid: p.ppid, command: p.command }));
      return;
    }
    const kids = new Map<number, ProcInfo[]>();
    for (const p of procs) if (p.ppid !== p.pid) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p]);
    const lines: string[] = [];
    const walk = (p: ProcInfo, prefix: string, last: boolean, root: boolean) => {
      lines.push(`${root ? "" : prefix + (last ? "└─ " : "├─ ")}${p.command || "?"}(${p.pid})`);
      const cs = (kids.get(p.pid) ?? []).sort((a, b) => a.pid - b.pid);
      cs.forEach((k, i) => walk(k, root ? "" : prefix + (last ? "   " : "│  "), i === cs.length - 1, false));
    };
    for (const r of procs.filter((p) => p.ppid === p.pid || !procs.some((q) => q.pid === p.ppid))) walk(r, "", true, true);
    console.log(lines.join("\n"));
  } finally {
    await c.close();
  }
}

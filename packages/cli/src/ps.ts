// hurd ps: procps's ps over proc_getallprocinfo. proc (pid 4) and init
// (pids 1 and 2) show like any process: the seed's first complaint, answered.
// The forms Linux users type: UNIX (`-ef`, `-eo pid,comm`, `-p 1,2`,
// `-u root`, `--sort -pid`), BSD (`aux`), and procps's format keywords.
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { UsageError } from "./errors.js";
import { connect } from "./session.js";
import { allProcs, numberList, parseFormat, PI_FETCH_TASKINFO, processJson, render, sorter, uidOf, type Row } from "./list.js";

export const DEFAULT_FORMAT = ["pid,ppid,pgid,sid,uid,stat,etime,args"];
// As procps, a header runs to the end of its list ("user=UID,pid" is one
// column headed "UID,pid"): a renamed column ends its list.
/** -f, as procps's full format less what hurdmesh has not (C): UID is the user's name there. */
const FULL_FORMAT = ["user=UID", "pid,ppid,stime,tty,time", "args=CMD"];
/** BSD u, as procps's user format less %CPU, %MEM, VSZ and RSS. */
const USER_FORMAT = ["user,pid,tty,stat", "stime=START", "time,args"];

export interface PsOptions {
  /** Format lists (-o, several allowed). */
  o?: string[];
  /** -f: full format. */
  f?: boolean;
  /** -p: only these pids. */
  p?: string[];
  /** -u: only these users (effective uid, number or name). */
  u?: string[];
  sort?: string;
  headers?: boolean;
  json?: boolean;
  hurd?: string;
  /** Also the processes of subhurds nested in this hurd (with their namespace). */
  allHurds?: boolean;
}

/** BSD options given as a word ("aux", "ax", "u"): what they change, or a usage error. */
export function bsdOptions(words: string[]): { user: boolean } {
  let user = false;
  for (const w of words) {
    if (!/^[auxw]+$/.test(w)) throw new UsageError(`unknown argument ${w} (BSD options here: a, u, x, w)`);
    // a and x select every process, which ps does anyway (a hurd has no terminals); w (wide) is the default.
    if (w.includes("u")) user = true;
  }
  return { user };
}

/** Exit status 1 when pids were selected and none is there (procps). */
export async function ps(words: string[], o: PsOptions): Promise<number> {
  const bsd = bsdOptions(words);
  let lists = o.o?.length ? o.o : o.f ? FULL_FORMAT : bsd.user ? USER_FORMAT : DEFAULT_FORMAT;
  // The namespace before the command, when subhurds' processes are in the list.
  if (o.allHurds && !o.o?.length) lists = [...lists.slice(0, -1), lists[lists.length - 1]!.replace(/(^|,)args(=\w+)?$/, "$1ns,args$2")];
  const cols = parseFormat(lists);
  const pids = numberList(o.p, "pid");
  const users = o.u?.flatMap((s) => s.split(",")).filter(Boolean);
  const uids = users?.length ? users.map(uidOf) : undefined;
  const order = o.sort ? sorter(o.sort) : null;
  const c = await connect(o.hurd, "ps");
  try {
    const now = Date.now();
    const procs = (await allProcs(c.me, cols.some((x) => x.col.taskinfo) ? PI_FETCH_TASKINFO : 0)).filter(
      (p) => (o.allHurds || !p.namespaceId) && (!pids || pids.includes(p.pid)) && (!uids || (p.owned && uids.includes(p.owner))),
    );
    const rows: Row[] = procs.map((p) => ({ p, now }));
    if (order) rows.sort(order);
    if (o.json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(processJson(r.p, now))}\n`);
      return pids && !rows.length ? 1 : 0;
    }
    // procps: selected pids that are not there make the exit status 1.
    if (rows.length) process.stdout.write(`${render(cols, rows, o.headers !== false)}\n`);
    else if (o.headers !== false) process.stdout.write(`${render(cols, [])}\n`);
    return pids && !rows.length ? 1 : 0;
  } finally {
    await c.close();
  }
}

/** pstree --json (schema/pstree.json): a process and its children, nested. */
export interface TreeJson {
  pid: number;
  command: string;
  children: TreeJson[];
}

export async function pstree(o: { hurd?: string; json?: boolean }): Promise<void> {
  const c = await connect(o.hurd, "pstree");
  try {
    const procs = (await allProcs(c.me)).filter((p) => !p.namespaceId);
    const kids = new Map<number, ProcInfo[]>();
    for (const p of procs) if (p.ppid !== p.pid) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p]);
    const byPid = new Set(procs.map((p) => p.pid));
    const roots = procs.filter((p) => p.ppid === p.pid || !byPid.has(p.ppid));
    const childrenOf = (p: ProcInfo) => (kids.get(p.pid) ?? []).sort((a, b) => a.pid - b.pid);
    if (o.json) {
      const tree = (p: ProcInfo): TreeJson => ({ pid: p.pid, command: p.command || "?", children: childrenOf(p).map(tree) });
      for (const r of roots) process.stdout.write(`${JSON.stringify(tree(r))}\n`);
      return;
    }
    const lines: string[] = [];
    const walk = (p: ProcInfo, prefix: string, last: boolean, root: boolean) => {
      lines.push(`${root ? "" : prefix + (last ? "└─ " : "├─ ")}${p.command || "?"}(${p.pid})`);
      const cs = childrenOf(p);
      cs.forEach((k, i) => walk(k, root ? "" : prefix + (last ? "   " : "│  "), i === cs.length - 1, false));
    };
    for (const r of roots) walk(r, "", true, true);
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await c.close();
  }
}

// hurd pgrep and hurd pidof, with procps's flags; pkill (kill.ts) selects
// with the same matcher. One listing, then filters: a hurd's process table
// is one proc_getallprocinfo stream.
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { getopt, type OptDef } from "./args.js";
import { UsageError } from "./errors.js";
import { connect } from "./session.js";
import { allProcs, args, comm, isZombie, numberList, processJson, uidOf } from "./list.js";

/** What pgrep and pkill select by (procps's options). */
export const MATCH_OPTIONS: Record<string, OptDef> = {
  full: { short: "f", long: "full" },
  exact: { short: "x", long: "exact" },
  ignoreCase: { short: "i", long: "ignore-case" },
  inverse: { short: "v", long: "inverse" },
  euid: { short: "u", long: "euid", value: true, many: true },
  uid: { short: "U", long: "uid", value: true, many: true },
  parent: { short: "P", long: "parent", value: true, many: true },
  pgroup: { short: "g", long: "pgroup", value: true, many: true },
  session: { short: "s", long: "session", value: true, many: true },
  newest: { short: "n", long: "newest" },
  oldest: { short: "o", long: "oldest" },
  count: { short: "c", long: "count" },
  json: { long: "json" },
  hurd: { long: "hurd", value: true },
  help: { short: "h", long: "help" },
};

export interface Match {
  /** Keeps a process (our own command's process is never kept: procps leaves itself out too). */
  test(p: ProcInfo, self: number): boolean;
  /** -n / -o: keeps only the newest or oldest of those kept. */
  pick(ps: ProcInfo[]): ProcInfo[];
}

const list = (v: unknown) => (v as string[] | undefined)?.flatMap((s) => s.split(",")).filter(Boolean);

/** The matcher for pgrep's and pkill's options and pattern (an extended regular expression, as procps's). */
export function matcher(opts: Record<string, unknown>, patterns: string[]): Match {
  if (patterns.length > 1) throw new UsageError(`only one pattern can be provided (got ${patterns.join(" ")})`);
  const uids = [...(list(opts.euid) ?? []), ...(list(opts.uid) ?? [])].map(uidOf);
  const parents = numberList(opts.parent as string[] | undefined, "pid");
  const pgroups = numberList(opts.pgroup as string[] | undefined, "process group");
  const sessions = numberList(opts.session as string[] | undefined, "session");
  if (!patterns.length && !uids.length && !parents && !pgroups && !sessions) throw new UsageError("no matching criteria specified");
  if (opts.newest && opts.oldest) throw new UsageError("-n and -o cannot go together");
  let re: RegExp | null = null;
  if (patterns.length) {
    const src = opts.exact ? `^(?:${patterns[0]})$` : patterns[0]!;
    try {
      re = new RegExp(src, opts.ignoreCase ? "i" : "");
    } catch (e) {
      throw new UsageError(`bad pattern ${patterns[0]}: ${(e as Error).message}`);
    }
  }
  return {
    test(p, self) {
      if (p.pid === self) return false;
      const hit =
        (!re || re.test(opts.full ? args(p) : comm(p))) &&
        (!uids.length || (p.owned && uids.includes(p.owner))) &&
        (!parents || parents.includes(p.ppid)) &&
        (!pgroups || pgroups.includes(p.pgrp)) &&
        (!sessions || sessions.includes(p.session));
      return opts.inverse ? !hit : hit;
    },
    pick(ps) {
      if (!ps.length || (!opts.newest && !opts.oldest)) return ps;
      const by = (a: ProcInfo, b: ProcInfo) => a.startMs - b.startMs || a.pid - b.pid;
      const sorted = [...ps].sort(by);
      return [opts.newest ? sorted[sorted.length - 1]! : sorted[0]!];
    },
  };
}

export const PGREP_OPTIONS: Record<string, OptDef> = {
  ...MATCH_OPTIONS,
  listName: { short: "l", long: "list-name" },
  listFull: { short: "a", long: "list-full" },
  delimiter: { short: "d", long: "delimiter", value: true },
};

/** hurd pgrep: exit 0 when something matched, 1 when nothing did, 2 for a usage error (procps's). */
export async function pgrep(argv: string[]): Promise<number> {
  const { opts, operands } = getopt(argv, PGREP_OPTIONS);
  const m = matcher(opts, operands);
  const c = await connect(opts.hurd as string | undefined, "pgrep");
  try {
    const now = Date.now();
    const found = m.pick((await allProcs(c.me)).filter((p) => !p.namespaceId && m.test(p, c.me.pid)));
    if (opts.count) process.stdout.write(`${found.length}\n`);
    else if (opts.json) for (const p of found) process.stdout.write(`${JSON.stringify(processJson(p, now))}\n`);
    else {
      const line = (p: ProcInfo) => (opts.listFull ? `${p.pid} ${args(p)}` : opts.listName ? `${p.pid} ${opts.full ? args(p) : comm(p)}` : String(p.pid));
      const sep = (opts.delimiter as string | undefined) ?? "\n";
      if (found.length) process.stdout.write(`${found.map(line).join(sep)}\n`);
    }
    return found.length ? 0 : 1;
  } finally {
    await c.close();
  }
}

export const PIDOF_OPTIONS: Record<string, OptDef> = {
  single: { short: "s", long: "single-shot" },
  quiet: { short: "q", long: "quiet" },
  omit: { short: "o", long: "omit-pid", value: true, many: true },
  separator: { short: "d", long: "separator", value: true },
  hurd: { long: "hurd", value: true },
  help: { short: "h", long: "help" },
};

/** hurd pidof NAME...: the pids of processes called NAME (argv[0]'s or the executable's last component), newest first. */
export async function pidof(argv: string[]): Promise<number> {
  const { opts, operands } = getopt(argv, PIDOF_OPTIONS);
  if (!operands.length) throw new UsageError("which program? (hurd pidof NAME...)");
  const c = await connect(opts.hurd as string | undefined, "pidof");
  try {
    const omit = new Set<number>([c.me.pid]);
    for (const o of (opts.omit as string[] | undefined) ?? [])
      for (const x of o.split(",")) {
        // sysvinit's %PPID: the caller's parent, here this command's parent process.
        if (x === "%PPID") omit.add((await c.me.getpids()).ppid);
        else if (/^\d+$/.test(x)) omit.add(Number(x));
        else throw new UsageError(`not a pid: ${x}`);
      }
    const names = new Set(operands);
    const exeName = (p: ProcInfo) => p.exe.split("/").pop() ?? "";
    let found = (await allProcs(c.me))
      .filter((p) => !p.namespaceId && !isZombie(p) && !omit.has(p.pid) && (names.has(comm(p)) || names.has(exeName(p))))
      .map((p) => p.pid)
      .sort((a, b) => b - a);
    if (opts.single) found = found.slice(0, 1);
    if (found.length && !opts.quiet) process.stdout.write(`${found.join((opts.separator as string | undefined) ?? " ")}\n`);
    return found.length ? 0 : 1;
  } finally {
    await c.close();
  }
}

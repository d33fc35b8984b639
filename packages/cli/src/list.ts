// The process table as ps, top, pgrep and killall read it: one
// proc_getallprocinfo stream of pages, procps's format keywords over it, and
// the one JSON shape of a process (packages/cli/schema/process.json).
import { readFileSync } from "node:fs";
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import type { Process } from "@hurdmesh/libhurd";
import { UsageError } from "./errors.js";

/** proc's PI_FETCH_TASKINFO: the kernel's task_info with each entry (port names, message counts). */
export const PI_FETCH_TASKINFO = 0x1;

export async function allProcs(me: Process, flags = 0): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  let start = 1;
  for (;;) {
    const page = await me.proc.getallprocinfo({ startPid: start, max: 4096, flags });
    out.push(...page.procs);
    if (!page.nextPid) return out;
    start = page.nextPid;
  }
}

const PI_STOPPED = 0x1;
const PI_SESSLD = 0x20;
const PI_ZOMBIE = 0x100;
const PI_TRACED = 0x200;

export const isZombie = (p: ProcInfo) => (p.state & PI_ZOMBIE) !== 0;
export const isStopped = (p: ProcInfo) => (p.state & PI_STOPPED) !== 0;

/** procps's STAT letters: S, T (stopped), Z (zombie), t (traced); s marks a session leader. */
export function stat(p: ProcInfo): string {
  let s = p.state & PI_ZOMBIE ? "Z" : p.state & PI_STOPPED ? "T" : p.state & PI_TRACED ? "t" : "S";
  if (p.state & PI_SESSLD) s += "s";
  return s;
}

/** Whole seconds since the process started (procps's etimes). */
export function etimes(p: ProcInfo, now = Date.now()): number {
  return Math.max(0, Math.floor((now - p.startMs) / 1000));
}

/** Elapsed time as procps's ETIME: [[dd-]hh:]mm:ss. */
export function elapsed(p: ProcInfo, now = Date.now()): string {
  let s = etimes(p, now);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return d ? `${d}-${String(h).padStart(2, "0")}:${mmss}` : h ? `${String(h).padStart(2, "0")}:${mmss}` : mmss;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Start time as procps's STIME/START: HH:MM today, MonDD this year, the year before. */
export function startTime(p: ProcInfo, now = Date.now()): string {
  const t = new Date(p.startMs);
  const n = new Date(now);
  const two = (x: number) => String(x).padStart(2, "0");
  if (t.toDateString() === n.toDateString()) return `${two(t.getHours())}:${two(t.getMinutes())}`;
  if (t.getFullYear() === n.getFullYear()) return `${MONTHS[t.getMonth()]}${two(t.getDate())}`;
  return String(t.getFullYear());
}

/** argv[0]'s last path component, as procps's comm (what pgrep, pidof and killall match). */
export function comm(p: ProcInfo): string {
  const argv0 = (p.command || p.exe || "?").split(" ")[0]!;
  return argv0.split("/").pop() || argv0;
}

export function args(p: ProcInfo): string {
  return p.command || p.exe || "?";
}

let passwd: Map<number, string> | null = null;

/** A uid's name as procps prints it: from this machine's passwd file (a hurd has no user database of its own), else the number. */
export function userName(uid: number): string {
  if (!passwd) {
    passwd = new Map([[0, "root"]]);
    try {
      for (const l of readFileSync("/etc/passwd", "utf8").split("\n")) {
        const [name, , id] = l.split(":");
        if (name && id && /^\d+$/.test(id) && !passwd.has(Number(id))) passwd.set(Number(id), name);
      }
    } catch {
      // No passwd file: numbers it is.
    }
  }
  return passwd.get(uid) ?? String(uid);
}

/** A user given on the command line (-u): a number, or a name of this machine's passwd file. */
export function uidOf(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  userName(0);
  for (const [uid, name] of passwd!) if (name === s) return uid;
  throw new UsageError(`user name does not exist: ${s}`);
}

/** What a row shows besides the procinfo: top's message rate. */
export interface Row {
  p: ProcInfo;
  now: number;
  /** Messages sent and received per second since the previous screen (top). */
  rate?: number;
}

export interface Column {
  header: string;
  /** Numbers and times right-aligned, as procps aligns them. */
  right: boolean;
  /** What sorting compares (a number where there is one) and JSON carries; null when hurdmesh has none. */
  value(r: Row): number | string | null;
  /** What the table shows, when it is not String(value) ("-" for null). */
  text?(r: Row): string;
  /** Needs PI_FETCH_TASKINFO. */
  taskinfo?: boolean;
}

const uidOrNull = (p: ProcInfo) => (p.owned ? p.owner : null);
const orNull = (n: number) => n || null;

/** procps's format keywords that mean something here, and hurdmesh's own (serial, task, ns, msgs). */
export const COLUMNS: Record<string, Column> = {
  pid: { header: "PID", right: true, value: (r) => r.p.pid },
  ppid: { header: "PPID", right: true, value: (r) => r.p.ppid },
  pgid: { header: "PGID", right: true, value: (r) => r.p.pgrp },
  sid: { header: "SID", right: true, value: (r) => r.p.session },
  uid: { header: "UID", right: true, value: (r) => uidOrNull(r.p) },
  user: { header: "USER", right: false, value: (r) => (r.p.owned ? userName(r.p.owner) : null) },
  // No terminals in a hurd here: "?" as procps shows for a process without one.
  tty: { header: "TT", right: false, value: () => null, text: () => "?" },
  stat: { header: "STAT", right: false, value: (r) => stat(r.p) },
  s: { header: "S", right: false, value: (r) => stat(r.p)[0]! },
  etime: { header: "ELAPSED", right: true, value: (r) => etimes(r.p, r.now), text: (r) => elapsed(r.p, r.now) },
  etimes: { header: "ELAPSED", right: true, value: (r) => etimes(r.p, r.now) },
  stime: { header: "STIME", right: false, value: (r) => r.p.startMs, text: (r) => startTime(r.p, r.now) },
  // hurdmesh tasks have no CPU accounting: "-", never elapsed time under this name.
  time: { header: "TIME", right: true, value: () => null },
  nlwp: { header: "NLWP", right: true, value: (r) => orNull(r.p.nthreads) },
  comm: { header: "COMMAND", right: false, value: (r) => comm(r.p) },
  args: { header: "COMMAND", right: false, value: (r) => args(r.p) },
  serial: { header: "SERIAL", right: true, value: (r) => r.p.serial },
  task: { header: "TASK", right: true, value: (r) => orNull(r.p.taskId) },
  ns: { header: "NS", right: true, value: (r) => orNull(r.p.namespaceId) },
  ports: { header: "PORTS", right: true, value: (r) => r.p.portNames, taskinfo: true },
  msgs: { header: "MSGS", right: true, value: (r) => r.p.messagesSent + r.p.messagesReceived, taskinfo: true },
  sent: { header: "SENT", right: true, value: (r) => r.p.messagesSent, taskinfo: true },
  rcvd: { header: "RCVD", right: true, value: (r) => r.p.messagesReceived, taskinfo: true },
  // top's activity: messages through the kernel per second, the nearest thing to %CPU a task here has.
  "msg/s": { header: "MSG/S", right: true, value: (r) => (r.rate === undefined ? null : r.rate), text: (r) => (r.rate === undefined ? "-" : r.rate.toFixed(r.rate < 10 ? 1 : 0)), taskinfo: true },
};

/** procps's other names for the same keywords. */
const ALIASES: Record<string, string> = {
  pgrp: "pgid",
  sess: "sid",
  session: "sid",
  euid: "uid",
  euser: "user",
  uname: "user",
  tt: "tty",
  tname: "tty",
  state: "s",
  elapsed: "etime",
  start: "stime",
  start_time: "stime",
  cputime: "time",
  thcount: "nlwp",
  ucomm: "comm",
  ucmd: "comm",
  cmd: "args",
  command: "args",
};

export interface FormatColumn {
  key: string;
  header: string;
  col: Column;
}

/**
 * procps format lists: "pid,comm", "user=UID" (a header of one's own, to
 * the end of the list), "pid=" (an empty one; when every header is empty no
 * header line is printed). Several lists (-o given twice) are joined.
 */
export function parseFormat(lists: string[]): FormatColumn[] {
  const out: FormatColumn[] = [];
  for (const list of lists) {
    // procps's rule: a header runs to the end of its list ("pid=PID,X" heads one column "PID,X").
    const eqAt = list.indexOf("=");
    const cut = eqAt < 0 ? list.length : list.lastIndexOf(",", eqAt) + 1;
    const items = list.slice(0, cut).split(/[,\s]+/).filter(Boolean);
    if (eqAt >= 0) items.push(list.slice(cut));
    for (const item of items) {
      const eq = item.indexOf("=");
      const name = (eq < 0 ? item : item.slice(0, eq)).toLowerCase();
      const key = COLUMNS[name] ? name : ALIASES[name];
      if (!key) throw new UsageError(`unknown format keyword ${name} (known: ${[...Object.keys(COLUMNS), ...Object.keys(ALIASES)].sort().join(" ")})`);
      const col = COLUMNS[key]!;
      out.push({ key, header: eq < 0 ? (name === "cmd" ? "CMD" : col.header) : item.slice(eq + 1), col });
    }
  }
  return out;
}

/** procps's --sort keys: "pid", "-etime", "+user,pid": leftmost first, "-" descending. */
export function sorter(spec: string): (a: Row, b: Row) => number {
  const keys = spec.split(",").filter(Boolean).map((k) => {
    const desc = k.startsWith("-");
    const name = k.replace(/^[-+]/, "").toLowerCase();
    const key = COLUMNS[name] ? name : ALIASES[name];
    if (!key) throw new UsageError(`unknown sort key ${name}`);
    return { col: COLUMNS[key]!, desc };
  });
  return (a, b) => {
    for (const { col, desc } of keys) {
      const x = col.value(a);
      const y = col.value(b);
      const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      if (c) return desc ? -c : c;
    }
    return 0;
  };
}

/** The cell a column shows for a row. */
export function cell(c: Column, r: Row): string {
  if (c.text) return c.text(r);
  const v = c.value(r);
  return v === null ? "-" : String(v);
}

/**
 * Columns aligned as procps aligns them: numbers to the right, text to the
 * left, the last column unpadded (a command line may be long), a space between.
 */
export function render(cols: FormatColumn[], rows: Row[], header = true): string {
  const cells = rows.map((r) => cols.map((c) => cell(c.col, r)));
  const showHeader = header && cols.some((c) => c.header !== "");
  const widths = cols.map((c, i) => Math.max(showHeader ? c.header.length : 0, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (i === vals.length - 1 && !cols[i]!.col.right ? v : cols[i]!.col.right ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join(" ")
      .trimEnd();
  const lines = cells.map(line);
  if (showHeader) lines.unshift(line(cols.map((c) => c.header)));
  return lines.join("\n");
}

/**
 * A process as every --json of the CLI gives it (schema/process.json): the
 * columns' names as keys, numbers as numbers, state as ps's letters, null
 * where hurdmesh has no value (a process with no uid, no CPU time, no tty).
 */
export interface ProcessJson {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  uid: number | null;
  user: string | null;
  tty: null;
  stat: string;
  etimes: number;
  time: null;
  nlwp: number | null;
  serial: number;
  task: number | null;
  ns: number | null;
  comm: string;
  command: string;
}

export function processJson(p: ProcInfo, now = Date.now()): ProcessJson {
  return {
    pid: p.pid,
    ppid: p.ppid,
    pgid: p.pgrp,
    sid: p.session,
    uid: uidOrNull(p),
    user: p.owned ? userName(p.owner) : null,
    tty: null,
    stat: stat(p),
    etimes: etimes(p, now),
    time: null,
    nlwp: orNull(p.nthreads),
    serial: p.serial,
    task: orNull(p.taskId),
    ns: orNull(p.namespaceId),
    comm: comm(p),
    command: args(p),
  };
}

/** A comma- or space-separated list of numbers (-p 1,2 -p 3), as procps takes them. */
export function numberList(values: string[] | undefined, what: string): number[] | undefined {
  if (!values?.length) return undefined;
  const out: number[] = [];
  for (const v of values.flatMap((s) => s.split(/[,\s]+/)).filter(Boolean)) {
    if (!/^\d+$/.test(v)) throw new UsageError(`not a ${what}: ${v}`);
    out.push(Number(v));
  }
  return out;
}

// hurd kill (procps's kill), hurd killall (psmisc's) and hurd pkill
// (procps's). killall and pkill are race-free: they list once, take a
// handle on each matching process incarnation (pid and serial from that
// listing) and signal through the handle, so a pid recycled meanwhile is
// never hit. kill takes pids the user names, as kill(2) does.
import { NSIG, signalName } from "@hurdmesh/mach";
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { getopt, parseSignal, type OptDef } from "./args.js";
import { UsageError } from "./errors.js";
import { connect, type Connected } from "./session.js";
import { allProcs, comm, isZombie, uidOf } from "./list.js";
import { MATCH_OPTIONS, matcher } from "./pgrep.js";
import { isErrnoLike } from "./util.js";

export const KILL_OPTIONS: Record<string, OptDef> = {
  signal: { short: "s", long: "signal", value: true },
  number: { short: "n", value: true },
  list: { short: "l", long: "list" },
  table: { short: "L", long: "table" },
  hurd: { long: "hurd", value: true },
  help: { long: "help" },
};

/** Signal names without SIG, by number, in the Hurd's (BSD) numbering. */
function names(): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let n = 1; n < NSIG; n++) out.push([n, signalName(n).replace(/^SIG/, "")]);
  return out;
}

/** kill -l [SIG...]: every name, or a number's name and a name's number. */
function listSignals(args: string[]): void {
  if (!args.length) {
    process.stdout.write(`${names().map(([, s]) => s).join(" ")}\n`);
    return;
  }
  for (const a of args) {
    // procps: a number (or an exit status 128+N) gives its name, a name its number.
    if (/^\d+$/.test(a)) process.stdout.write(`${signalName(parseSignal(String(Number(a) > 128 ? Number(a) - 128 : Number(a)))).replace(/^SIG/, "")}\n`);
    else process.stdout.write(`${parseSignal(a)}\n`);
  }
}

/** kill -L: a table of numbers and names, seven to a line. */
function tableSignals(): void {
  const cells = names().map(([n, s]) => `${String(n).padStart(2)} ${s.padEnd(8)}`);
  const lines: string[] = [];
  for (let i = 0; i < cells.length; i += 7) lines.push(cells.slice(i, i + 7).join(" ").trimEnd());
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** hurd kill [-s SIG | -SIG | -n NUM] PID|-PGID...; -l [SIG]; -L. Exit 1 if any target failed. */
export async function kill(argv: string[]): Promise<number> {
  const { opts, operands, signal } = getopt(argv, KILL_OPTIONS, { signalOption: "first", negativeOperands: true });
  if (opts.list) {
    listSignals(operands);
    return 0;
  }
  if (opts.table) {
    tableSignals();
    return 0;
  }
  const given = [signal, opts.signal, opts.number].filter((x) => x !== undefined) as string[];
  if (given.length > 1) throw new UsageError("give the signal once (-SIG, -s SIG or -n NUM)");
  const sig = parseSignal(given[0] ?? "TERM");
  if (!operands.length) throw new UsageError("no process given (hurd kill [-s SIG] PID|-PGID...)");
  const targets = operands.map((t) => {
    if (!/^-?\d+$/.test(t) || Number(t) === 0) throw new UsageError(`not a pid or -pgid: ${t}`);
    return Number(t);
  });
  const c = await connect(opts.hurd as string | undefined, "kill");
  let failed = 0;
  try {
    for (const t of targets) {
      try {
        await c.me.kill(t, sig);
      } catch (e) {
        failed++;
        process.stderr.write(`hurd: kill ${t}: ${describe(e)}\n`);
      }
    }
  } finally {
    await c.close();
  }
  return failed ? 1 : 0;
}

/** "ESRCH (no such process)": the errno and its meaning, as procps says "No such process". */
function describe(e: unknown): string {
  return ((e as Error).message ?? String(e)).split(": ")[0]!;
}

/** What killall --json and pkill --json print per process (schema/signal-result.json). */
export interface SignalResult {
  pid: number;
  serial: number;
  comm: string;
  /** "signalled", or the errno that stopped it (ESRCH: gone since the listing; EPERM: not ours). */
  result: string;
}

/**
 * Signals each process through a handle on the incarnation listed; with
 * `wait`, waits on those handles until every signalled process has ended.
 */
async function signalThroughHandles(c: Connected, procs: ProcInfo[], sig: number, o: { wait?: boolean } = {}): Promise<SignalResult[]> {
  const results: SignalResult[] = [];
  const waits: Promise<unknown>[] = [];
  for (const p of procs) {
    try {
      const h = await c.me.open(p.pid, p.serial);
      let keep = false;
      try {
        await h.signal(sig);
        results.push({ pid: p.pid, serial: p.serial, comm: comm(p), result: "signalled" });
        if (o.wait) {
          keep = true;
          waits.push(h.wait().finally(() => h.close()));
        }
      } finally {
        if (!keep) await h.close();
      }
    } catch (e) {
      // Gone since the listing (ESRCH), or not ours (EPERM): skipped, never another process.
      results.push({ pid: p.pid, serial: p.serial, comm: comm(p), result: isErrnoLike(e) });
    }
  }
  await Promise.allSettled(waits);
  return results;
}

export const KILLALL_OPTIONS: Record<string, OptDef> = {
  exact: { short: "e", long: "exact" },
  ignoreCase: { short: "I", long: "ignore-case" },
  quiet: { short: "q", long: "quiet" },
  regexp: { short: "r", long: "regexp" },
  signal: { short: "s", long: "signal", value: true },
  user: { short: "u", long: "user", value: true },
  wait: { short: "w", long: "wait" },
  verbose: { short: "v", long: "verbose" },
  list: { short: "l", long: "list" },
  json: { long: "json" },
  hurd: { long: "hurd", value: true },
  help: { short: "h", long: "help" },
};

/**
 * hurd killall [-SIG | -s SIG] [-eIqrvw] [-u USER] NAME...: psmisc's, silent
 * on success. Exit 0 when each NAME (or, with -u alone, the user) matched a
 * process that was signalled; 1 otherwise, with "NAME: no process found".
 */
export async function killall(argv: string[]): Promise<number> {
  const { opts, operands, signal } = getopt(argv, KILLALL_OPTIONS, { signalOption: "any" });
  if (opts.list) {
    listSignals([]);
    return 0;
  }
  if (signal !== undefined && opts.signal !== undefined) throw new UsageError("give the signal once (-SIG or -s SIG)");
  const sig = parseSignal((signal ?? opts.signal ?? "TERM") as string);
  const uid = opts.user !== undefined ? uidOf(opts.user as string) : undefined;
  if (!operands.length && uid === undefined) throw new UsageError("which processes? (hurd killall [-s SIG] NAME...)");
  const tests = operands.map((name) => {
    if (!opts.regexp) return (p: ProcInfo) => (opts.ignoreCase ? comm(p).toLowerCase() === name.toLowerCase() || base(p.exe).toLowerCase() === name.toLowerCase() : comm(p) === name || base(p.exe) === name);
    let re: RegExp;
    try {
      re = new RegExp(name, opts.ignoreCase ? "i" : "");
    } catch (e) {
      throw new UsageError(`bad regular expression ${name}: ${(e as Error).message}`);
    }
    return (p: ProcInfo) => re.test(comm(p));
  });
  const c = await connect(opts.hurd as string | undefined, "killall");
  try {
    const procs = (await allProcs(c.me)).filter((p) => !p.namespaceId && p.pid !== c.me.pid && !isZombie(p) && (uid === undefined || (p.owned && p.owner === uid)));
    const byName = operands.length ? tests.map((t) => procs.filter(t)) : [procs];
    const targets = [...new Map(byName.flat().map((p) => [p.pid, p])).values()];
    const results = await signalThroughHandles(c, targets, sig, { wait: Boolean(opts.wait) });
    const ok = new Set(results.filter((r) => r.result === "signalled").map((r) => r.pid));
    if (opts.json) for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
    if (opts.verbose) for (const r of results) if (r.result === "signalled") process.stderr.write(`Killed ${r.comm}(${r.pid}) with signal ${sig}\n`);
    let status = 0;
    byName.forEach((ps, i) => {
      if (ps.some((p) => ok.has(p.pid))) return;
      status = 1;
      if (!opts.quiet) process.stderr.write(`${operands[i] ?? `user ${opts.user}`}: no process found\n`);
    });
    return status;
  } finally {
    await c.close();
  }
}

const base = (s: string) => s.split("/").pop() ?? "";

export const PKILL_OPTIONS: Record<string, OptDef> = {
  ...MATCH_OPTIONS,
  signal: { long: "signal", value: true },
  echo: { short: "e", long: "echo" },
};

/** hurd pkill [-SIG | --signal SIG] [pgrep's options] PATTERN: procps's, race-free through handles. */
export async function pkill(argv: string[]): Promise<number> {
  const { opts, operands, signal } = getopt(argv, PKILL_OPTIONS, { signalOption: "first" });
  if (signal !== undefined && opts.signal !== undefined) throw new UsageError("give the signal once (-SIG or --signal SIG)");
  const sig = parseSignal((signal ?? opts.signal ?? "TERM") as string);
  const m = matcher(opts, operands);
  const c = await connect(opts.hurd as string | undefined, "pkill");
  try {
    const found = m.pick((await allProcs(c.me)).filter((p) => !p.namespaceId && !isZombie(p) && m.test(p, c.me.pid)));
    const results = await signalThroughHandles(c, found, sig);
    if (opts.json) for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
    if (opts.echo) for (const r of results) if (r.result === "signalled") process.stdout.write(`${r.comm} killed (pid ${r.pid})\n`);
    if (opts.count) process.stdout.write(`${results.filter((r) => r.result === "signalled").length}\n`);
    return results.some((r) => r.result === "signalled") ? 0 : 1;
  } finally {
    await c.close();
  }
}

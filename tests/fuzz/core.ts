// The fuzz harness's core: one loop for every target (kernel traps, proc,
// auth, startup, the gRPC edge), built on fast-check so that a failing
// batch is shrunk to a minimal case and replayable from its seed and path.
// A target says how to build its world, how to generate one batch of
// messages, how to send a batch, and what must hold afterwards; the core
// counts messages, entry points reached and errors by errno, turns crashes
// (an exception inside a server, not a Hurd error) and invariant violations
// into property failures, and samples memory.
import fc from "fast-check";
import { Errno, HurdError, errnoName } from "@hurdmesh/mach";
import type { BusKind } from "../harness.js";

/** What a target sends and checks; `W` is its world (servers and fuzzing tasks), `C` one generated message. */
export interface FuzzTarget<W, C> {
  readonly name: string;
  /** Messages per generated batch at most: one batch is one fast-check run, checked as a whole. */
  readonly batchSize: number;
  /** The world the batches run in: servers booted on a bus of `kind`. */
  start(kind: BusKind): Promise<W>;
  /** Every entry point (RPC, trap, method) the target must reach, by name. */
  entries(w: W): string[];
  /** One message. */
  message(w: W): fc.Arbitrary<C>;
  /** A whole batch, when it is more than an array of messages (model-based runs: a command sequence, replayed by `replayPath`). */
  batchOf?(w: W, o: { replayPath?: string }): fc.Arbitrary<unknown>;
  /** Sends one batch; counts what it sent and reached in `stats`. */
  run(w: W, batch: C[], stats: FuzzStats): Promise<void>;
  /** Checked after every batch, once the batch's fuzzing tasks are gone; throws Violation. */
  check(w: W, stats: FuzzStats): Promise<void>;
  close(w: W): Promise<void>;
}

/** An invariant that did not hold after a batch. */
export class Violation extends Error {
  override name = "Violation";
}

/** A server threw something that is no Hurd error (a bug, whatever it was answered as). */
export class Crash extends Error {
  override name = "Crash";
}

/** Counters of one target's run. */
export class FuzzStats {
  messages = 0;
  readonly reached = new Set<string>();
  readonly errors = new Map<string, number>();
  crashes = 0;
  violations = 0;
  /** Crashes seen since the last batch began (turned into a failure at the batch's end). */
  readonly pendingCrashes: string[] = [];
  /** After the first failure fast-check is shrinking: nothing more is counted. */
  shrinking = false;

  sent(n = 1): void {
    if (!this.shrinking) this.messages += n;
  }
  reach(entry: string): void {
    this.reached.add(entry);
  }
  /** A reply's code: 0, a Hurd errno, or another failure by name. */
  answered(code: number | string): void {
    if (this.shrinking) return;
    const k = typeof code === "string" ? code : code === 0 ? "0" : errnoName(code);
    this.errors.set(k, (this.errors.get(k) ?? 0) + 1);
  }
  /** A promise's outcome, counted by errno. */
  async outcome(p: Promise<unknown>): Promise<number> {
    try {
      await p;
      this.answered(0);
      return 0;
    } catch (e) {
      const c = e instanceof HurdError ? e.code : Errno.EIO;
      this.answered(c);
      return c;
    }
  }
}

// ------------------------------------------------------------------ crashes

/**
 * Every failure a server or the kernel turns into an answer passes
 * HurdError.from: an Error that is not a HurdError there is an exception
 * in the code (a TypeError, an encoding failure), answered as EIO. The
 * fuzz runs every server in its own process, so wrapping that one function
 * sees them all, as do uncaught exceptions and unhandled rejections.
 */
let current: FuzzStats | null = null;
let installed = false;
const original = HurdError.from;

export function watchCrashes(stats: FuzzStats | null): void {
  current = stats;
  if (installed) return;
  installed = true;
  HurdError.from = function (e: unknown): HurdError {
    if (!(e instanceof HurdError) && e instanceof Error && !benign(e)) current?.pendingCrashes.push(`${e.name}: ${e.message}\n${(e.stack ?? "").split("\n").slice(1, 6).join("\n")}`);
    return original.call(HurdError, e);
  };
  process.on("uncaughtException", (e) => {
    if (current) current.pendingCrashes.push(`uncaught ${e.name}: ${e.message}\n${e.stack ?? ""}`);
    else throw e;
  });
  process.on("unhandledRejection", (e) => {
    const err = e instanceof Error ? e : new Error(String(e));
    if (current) current.pendingCrashes.push(`unhandled rejection ${err.name}: ${err.message}\n${err.stack ?? ""}`);
    else throw err;
  });
}

/** Failures of the transport the fuzzer itself closes under its tasks: not a server's bug. */
function benign(e: Error): boolean {
  return /closed|CONNECTION_CLOSED|detached/i.test(e.message) && !(e instanceof TypeError) && !(e instanceof RangeError);
}

// ------------------------------------------------------------------ the run

export interface RunOptions {
  messages: number;
  seed: number;
  /** Replays one counterexample: fast-check's path from a failure report. */
  path?: string;
  /** With `path`, for model-based runs: fc.commands' replayPath, from the counterexample's comment. */
  replayPath?: string;
  /** Stops early after this long (the short runs of the test suite). */
  timeLimitMs?: number;
  /** How long shrinking may go on (default 2 minutes). */
  shrinkMs?: number;
  /** Called with progress lines (the script prints them). */
  progress?: (line: string) => void;
}

export interface Failure {
  seed: number;
  path: string;
  error: string;
  counterexample: string;
}

export interface FuzzReport {
  target: string;
  bus: BusKind;
  messages: number;
  entries: string[];
  reached: string[];
  unreached: string[];
  errors: Record<string, number>;
  crashes: number;
  violations: number;
  rssStartMb: number;
  /** RSS once 100,000 messages (or a tenth of the run, if less) were sent. */
  rssWarmMb: number;
  rssEndMb: number;
  ms: number;
  rate: number;
  failure: Failure | null;
}

const TRACE = process.env.HURD_FUZZ_TRACE === "1";
const gc = (globalThis as { gc?: () => void }).gc;
function rssMb(): number {
  gc?.();
  return Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
}

/**
 * Runs `target` until `o.messages` messages were sent (or the time limit),
 * as a series of fast-check checks: check i uses seed `o.seed + i`, so a
 * failure names the seed and path that replay it alone.
 */
export async function fuzz<W, C>(target: FuzzTarget<W, C>, kind: BusKind, o: RunOptions): Promise<FuzzReport> {
  const stats = new FuzzStats();
  watchCrashes(stats);
  const t0 = Date.now();
  const rssStart = rssMb();
  let rssWarm = 0;
  const warmAt = Math.min(100_000, Math.ceil(o.messages / 10));
  const w = await target.start(kind);
  const entries = target.entries(w);
  const batch = (target.batchOf?.(w, { replayPath: o.replayPath }) ?? fc.array(target.message(w), { minLength: 1, maxLength: target.batchSize, size: "max" })) as fc.Arbitrary<C[]>;
  let failure: Failure | null = null;
  // Shrinking re-sends batches to live servers: after this long the
  // smallest failing case so far is the one reported.
  let shrinkUntil = 0;
  const deadline = o.timeLimitMs ? t0 + o.timeLimitMs : Infinity;
  let replayed = false;
  const property = fc.asyncProperty(batch, async (cases) => {
    if (stats.shrinking && Date.now() > shrinkUntil) return;
    // Past the time limit the remaining runs pass at once: a batch is never
    // cut off mid-flight (fast-check's own interrupt would leave its calls
    // running while the world closes under them).
    if (!stats.shrinking && Date.now() > deadline) return;
    // A replay runs the one case its path leads to (and shrinks it further if it fails).
    if (o.path && replayed && !stats.shrinking) return;
    replayed = true;
    stats.pendingCrashes.length = 0;
    const t0 = Date.now();
    try {
      await target.run(w, cases, stats);
      const t1 = Date.now();
      await target.check(w, stats);
      if (TRACE) console.error(`BATCH ${cases.length ?? "?"} cases (${stats.messages} sent, shrinking ${stats.shrinking}): run ${t1 - t0} ms, check ${Date.now() - t1} ms`);
      if (stats.pendingCrashes.length) throw new Crash(stats.pendingCrashes.join("\n---\n"));
    } catch (e) {
      if (TRACE) console.error(`FAILED ${cases.length ?? "?"} cases: ${(e as Error).stack ?? e}`);
      if (!stats.shrinking) {
        stats.shrinking = true;
        shrinkUntil = Date.now() + (o.shrinkMs ?? 120_000);
      }
      throw e;
    }
    if (!rssWarm && stats.messages >= warmAt) rssWarm = rssMb();
  });
  let lastReport = Date.now();
  try {
    for (let i = 0; stats.messages < o.messages && Date.now() < deadline; i++) {
      const seed = (o.seed + i) | 0;
      const before = stats.messages;
      const left = o.messages - stats.messages;
      // A batch holds about half its maximum on average; the last check is cut to what is left.
      // A replay's path starts with the run's index, and fast-check walks it only within numRuns.
      const runs = o.path ? Number(o.path.split(":")[0]) + 1 : Math.max(1, Math.min(200, Math.ceil(left / (target.batchSize / 2))));
      const res = await fc.check(property, {
        seed,
        path: o.path,
        numRuns: runs,
        endOnFailure: false,
      });
      if (res.failed) {
        const error = res.errorInstance instanceof Error ? `${res.errorInstance.name}: ${res.errorInstance.message}` : String(res.errorInstance);
        if (res.errorInstance instanceof Crash) stats.crashes++;
        else stats.violations++;
        failure = { seed, path: res.counterexamplePath ?? "", error, counterexample: fc.stringify(res.counterexample) };
        break;
      }
      if (o.path) break;
      if (o.progress && Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        o.progress(`${target.name}: ${stats.messages} messages, ${Math.round(stats.messages / ((Date.now() - t0) / 1000))}/s, rss ${rssMb()} MB`);
      }
      if (stats.messages === before) break;
    }
  } finally {
    watchCrashes(null);
    await target.close(w);
  }
  const ms = Date.now() - t0;
  const reached = entries.filter((e) => stats.reached.has(e));
  return {
    target: target.name,
    bus: kind,
    messages: stats.messages,
    entries,
    reached,
    unreached: entries.filter((e) => !stats.reached.has(e)),
    errors: Object.fromEntries([...stats.errors].sort((a, b) => b[1] - a[1])),
    crashes: stats.crashes,
    violations: stats.violations,
    rssStartMb: rssStart,
    rssWarmMb: rssWarm || rssStart,
    rssEndMb: rssMb(),
    ms,
    rate: Math.round(stats.messages / (ms / 1000)),
    failure,
  };
}

/** The report as the script prints it. */
export function formatReport(r: FuzzReport): string {
  const growth = r.rssWarmMb ? ((r.rssEndMb - r.rssWarmMb) / r.rssWarmMb) * 100 : 0;
  const lines = [
    `== ${r.target} (${r.bus} bus)`,
    `messages sent:        ${r.messages} in ${(r.ms / 1000).toFixed(1)} s (${r.rate} messages/s)`,
    `entry points reached: ${r.reached.length}/${r.entries.length}${r.unreached.length ? ` — not reached: ${r.unreached.join(", ")}` : " (all)"}`,
    `answers by errno:     ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `crashes:              ${r.crashes}`,
    `invariant violations: ${r.violations}`,
    `RSS:                  ${r.rssStartMb} MB at start, ${r.rssWarmMb} MB after warm-up, ${r.rssEndMb} MB at end (${growth >= 0 ? "+" : ""}${growth.toFixed(1)} % after warm-up)`,
  ];
  if (r.failure) {
    lines.push(`FAILED: ${r.failure.error}`);
    lines.push(`shrunk case: ${r.failure.counterexample}`);
    // fc.commands shrinks by the commands that ran: a model-based case replays with their replayPath too.
    const rp = /replayPath="([^"]*)"/.exec(r.failure.counterexample)?.[1];
    lines.push(`replay: npm run fuzz -- --target ${r.target} --bus ${r.bus} --seed ${r.failure.seed} --path ${JSON.stringify(r.failure.path)}${rp ? ` --replay-path ${JSON.stringify(rp)}` : ""}`);
  }
  return lines.join("\n");
}

/** Polls `cond` until it holds; a Violation naming `what` (with `detail()`) after `ms`. */
export async function settles(cond: () => boolean | Promise<boolean>, what: string, detail: () => string | Promise<string> = () => "", ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Violation(`${what}: ${await detail()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

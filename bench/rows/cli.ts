// The `hurd` command as a user waits for it: wall time from spawn to exit of
// the built CLI (plain `node`, compiled JavaScript, what `npx hurd` runs),
// beside `ps -ef` and `node -e 0` in the same rounds, so the ratios hold on
// a noisy machine. `hurd ps` asks an embedded hurd this group boots with the
// built `hurd up` (a free port, a scratch HURD_STATE_DIR) and stops after;
// `hurd up` is timed from spawn to "is up" (embedded), then shut down with
// Ctrl-C. The commands run one at a time, in turns (the order rotating each
// round); a row's p50/p99 are over its runs.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killGroup, spawnGroup } from "../children.js";
import type { Row } from "../harness.js";
import type { BenchContext, RowGroup } from "./types.js";

const root = new URL("../../", import.meta.url).pathname;
/** The built `hurd` command (what `npx hurd` runs). */
export const hurdBin = join(root, "packages/cli/bin/hurd.mjs");
export const CLI = {
  ps: "ps -ef",
  node: "node -e 0",
  help: "hurd --help",
  hurdPs: "hurd ps (embedded hurd)",
  up: "hurd up: start to ready (embedded)",
} as const;

/**
 * The environment of a compiled program: without the @hurdmesh/source
 * condition (which `npm test` puts in NODE_OPTIONS), so workspace packages
 * resolve to dist/ as they do for a user.
 */
export function compiledEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  const opts = (env.NODE_OPTIONS ?? "").split(/\s+/).filter((o) => o && !o.startsWith("--conditions=@hurdmesh/source"));
  if (opts.length) env.NODE_OPTIONS = opts.join(" ");
  else delete env.NODE_OPTIONS;
  return env;
}

/** Wall ms from spawn to exit; throws on a non-zero exit. */
function timeRun(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr!.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err.trim()}`))));
  });
}

interface Up {
  /** Spawn to "is up", ms. */
  readyMs: number;
  stop(): Promise<void>;
}

/** `hurd up` (built, embedded) in a scratch state folder, until it says it is up. */
async function up(name: string, dir: string): Promise<Up> {
  const t0 = performance.now();
  const p = spawnGroup(process.execPath, [hurdBin, "up", "--grpc", "127.0.0.1:0", "--hurd", name], { env: compiledEnv({ HURD_STATE_DIR: dir }), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<number>((r) => p.on("exit", (c) => r(c ?? 1)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`hurd up did not come up: ${out}`)), 60_000);
    const seen = (d: Buffer) => {
      out += d;
      if (/ is up in /.test(out)) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout!.on("data", seen);
    p.stderr!.on("data", (d) => (out += d));
    void exited.then((c) => reject(new Error(`hurd up exited ${c}: ${out}`)));
  }).catch((e) => {
    killGroup(p);
    throw e;
  });
  const readyMs = performance.now() - t0;
  return {
    readyMs,
    async stop() {
      p.kill("SIGINT");
      const code = await exited;
      killGroup(p);
      if (code !== 0) throw new Error(`hurd up exited ${code}: ${out}`);
    },
  };
}

/** The rows time the build: brings dist/ up to date first. */
export function buildIfStale(): void {
  const b = spawnSync(process.execPath, [join(root, "scripts/build.mjs"), "--if-stale"], { stdio: ["ignore", "ignore", "inherit"] });
  if (b.status !== 0) throw new Error("the build failed");
}

function row(name: string, ms: number[]): Row {
  const s = [...ms].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
  return { name, bus: "-", in_flight: 1, calls: s.length, p50_us: Math.round(q(0.5) * 1000), p99_us: Math.round(q(0.99) * 1000), calls_per_s: 0, errors: 0, cpu_us_per_call: 0, p50_ms: Math.round(q(0.5)) };
}

export const cli: RowGroup = {
  name: "cli",
  needsNats: false,
  async run(ctx: BenchContext): Promise<Row[]> {
    buildIfStale();
    const rounds = Math.max(5, Math.round(ctx.durationMs / 250));
    const dir = mkdtempSync(join(tmpdir(), "bench-cli-"));
    const name = `cli${process.pid}`;
    const env = compiledEnv({ HURD_STATE_DIR: dir });
    const host = await up(name, dir);
    const times: Record<string, number[]> = Object.fromEntries(Object.values(CLI).map((n) => [n, []]));
    try {
      const subjects: Array<[string, () => Promise<number>]> = [
        [CLI.ps, () => timeRun("ps", ["-ef"], env)],
        [CLI.node, () => timeRun(process.execPath, ["-e", "0"], env)],
        [CLI.help, () => timeRun(process.execPath, [hurdBin, "--help"], env)],
        [CLI.hurdPs, () => timeRun(process.execPath, [hurdBin, "ps", "--hurd", name], env)],
      ];
      // A first run of each fills the compile cache, as any earlier use would have.
      for (const [, fn] of subjects) await fn();
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < subjects.length; k++) {
          const [n, fn] = subjects[(r + k) % subjects.length]!;
          times[n]!.push(await fn());
        }
      }
      // Boots are slower and heavier: a few, each in its own state folder.
      for (let r = 0; r < Math.max(3, Math.round(rounds / 2)); r++) {
        const d = mkdtempSync(join(tmpdir(), "bench-up-"));
        try {
          const u = await up(`up${process.pid}x${r}`, d);
          times[CLI.up]!.push(u.readyMs);
          await u.stop();
        } finally {
          rmSync(d, { recursive: true, force: true });
        }
      }
    } finally {
      await host.stop().catch((e) => ctx.log(`hurd up (ps's hurd): ${(e as Error).message}`));
      rmSync(dir, { recursive: true, force: true });
    }
    const rows = Object.values(CLI).map((n) => row(n, times[n]!));
    for (const r of rows) ctx.log(`${r.name}: p50 ${r.p50_ms} ms over ${r.calls} runs`);
    return rows;
  },
};

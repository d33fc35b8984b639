// Driving the `hurd` command from a test as a person would: `hurd up` in
// the background, commands one after another, their output parsed; and the
// JSON Schemas of packages/cli/schema checked against what they print.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Ajv, type ValidateFunction } from "ajv";
import { compiledEnv } from "../build.js";
import { until } from "../harness.js";

export const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;
/**
 * The compiled `hurd`, what `npx hurd` runs (`npm test` brings dist/ up to
 * date first). It starts in half the time of main.ts under tsx (0.3 s
 * against 0.65 s for `hurd ps` here), and these suites start it hundreds
 * of times; its environment must not carry the source condition.
 */
export const hurdBin = new URL("../../packages/cli/bin/hurd.mjs", import.meta.url).pathname;
const schemaDir = new URL("../../packages/cli/schema/", import.meta.url).pathname;

export interface Up {
  proc: ChildProcess;
  out: () => string;
  env: NodeJS.ProcessEnv;
  exited: Promise<number>;
  name: string;
}

export async function up(name: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<Up> {
  const env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-cli-")), ...extraEnv };
  const proc = spawn(process.execPath, [hurdBin, "up", "--grpc", "127.0.0.1:0", "--hurd", name, ...args], { env: compiledEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number>((r) => proc.on("exit", (c) => r(c ?? 1)));
  await until(() => / is up in /.test(out) || proc.exitCode !== null, 60000, "hurd up");
  assert.match(out, / is up in /, out);
  return { proc, out: () => out, env, exited, name };
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** `hurd ARGS --hurd NAME` (the option last: procps's commands take it anywhere before `--`). */
export function hurd(u: Up | null, ...args: string[]): Ran {
  const end = args.indexOf("--");
  const withHurd = u ? (end < 0 ? [...args, "--hurd", u.name] : [...args.slice(0, end), "--hurd", u.name, ...args.slice(end)]) : args;
  const r = spawnSync(process.execPath, [hurdBin, ...withHurd], { env: compiledEnv(u?.env ?? process.env), encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

export function hurdBg(u: Up, ...args: string[]): { proc: ChildProcess; out: () => string; done: Promise<number> } {
  const end = args.indexOf("--");
  const withHurd = end < 0 ? [...args, "--hurd", u.name] : [...args.slice(0, end), "--hurd", u.name, ...args.slice(end)];
  const proc = spawn(process.execPath, [hurdBin, ...withHurd], { env: compiledEnv(u.env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stderr!.on("data", (d) => (out += d));
  proc.stdout!.on("data", (d) => (out += d));
  return { proc, out: () => out, done: new Promise((r) => proc.on("exit", (c, s) => r(c ?? (s ? 128 : 1)))) };
}

/** `hurd spawn -- ARGV` in the background, once it has said its pid. */
export async function spawned(u: Up, ...argv: string[]): Promise<{ pid: number; done: Promise<number>; proc: ChildProcess }> {
  const s = hurdBg(u, "spawn", "--", ...argv);
  await until(() => /is pid \d+/.test(s.out()), 30000, `spawn ${argv.join(" ")}`);
  return { pid: Number(/is pid (\d+)/.exec(s.out())![1]), done: s.done, proc: s.proc };
}

/** A table's rows keyed by header; the last column takes the rest of the line (a command line). */
export function table(s: string): Array<Record<string, string>> {
  const [head, ...rows] = s.trimEnd().split("\n");
  const cols = head!.trim().split(/\s+/);
  return rows.map((l) => {
    const parts = l.trim().split(/\s+/);
    const r: Record<string, string> = {};
    cols.forEach((c, i) => (r[c] = i === cols.length - 1 ? parts.slice(i).join(" ") : parts[i]!));
    return r;
  });
}

/** JSON lines, each parsed. */
export function jsonLines(s: string): unknown[] {
  return s
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
}

let ajv: Ajv | null = null;
/** The validator of packages/cli/schema/NAME.json (the schemas may refer to one another). */
export function schema(name: string): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, strict: true });
    for (const f of readdirSync(schemaDir).filter((x) => x.endsWith(".json"))) ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, f), "utf8")) as object);
  }
  return ajv.getSchema(`https://hurdmesh.dev/schema/cli/${name}.json`)!;
}

/** Every value conforms to schema NAME; answers them. */
export function conforms<T>(name: string, values: unknown[]): T[] {
  const v = schema(name);
  for (const x of values) assert.ok(v(x), `${name}.json: ${JSON.stringify(v.errors)} in ${JSON.stringify(x)}`);
  return values as T[];
}

/** Processes whose environment holds `marker` (a test's state directory or hurd name): what a hurd up of that test started. */
export function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, "utf8").includes(marker)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * A Secret's volume as the kubelet writes it (pkg/volume/util/atomic_writer.go):
 * the files in a timestamped hidden directory, `..data` a symlink to it,
 * and each key a symlink through `..data`.
 */
export class SecretVolume {
  private n = 0;
  private current = "";
  constructor(readonly dir: string) {}
  get certFile() {
    return join(this.dir, "tls.crt");
  }
  get keyFile() {
    return join(this.dir, "tls.key");
  }
  /**
   * The kubelet's update: a new `..2026_12_07_02_50_00.000000001`
   * directory, `..data_tmp` pointed at it and renamed over `..data` (both
   * files change at once), then the old directory removed.
   */
  write(certPem: string, keyPem: string): void {
    const stamp = new Date().toISOString().replace(/[-T:]/g, "_").replace(/\.\d+Z$/, "");
    const v = `..${stamp}.${String(++this.n).padStart(9, "0")}`;
    mkdirSync(join(this.dir, v));
    writeFileSync(join(this.dir, v, "tls.crt"), certPem, { mode: 0o440 });
    writeFileSync(join(this.dir, v, "tls.key"), keyPem, { mode: 0o440 });
    symlinkSync(v, join(this.dir, "..data_tmp"));
    renameSync(join(this.dir, "..data_tmp"), join(this.dir, "..data"));
    if (this.n === 1) {
      symlinkSync("..data/tls.crt", this.certFile);
      symlinkSync("..data/tls.key", this.keyFile);
    } else rmSync(join(this.dir, this.current), { recursive: true, force: true });
    this.current = v;
  }
}

// Nothing left behind: `hurd spawn`'s Linux program, and the `hurd spawn`
// process itself, end when the program's task ends for any reason — its
// hurd shut down (`hurd shutdown`), removed (`hurd subhurd rm`), or
// crashed (the process running the kernel killed, so the edge is gone past
// the lease). Checked by pid. Every process the suite starts runs in a
// process group of its own, killed at the end whatever happened.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;
const started: ChildProcess[] = [];

/** Starts a program in a process group of its own, remembered for the cleanup. */
function start(args: string[], env: NodeJS.ProcessEnv): { p: ChildProcess; out: () => string } {
  const p = spawn(process.execPath, ["--import", "tsx", main, ...args], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  started.push(p);
  let out = "";
  p.stdout!.on("data", (d) => (out += d));
  p.stderr!.on("data", (d) => (out += d));
  return { p, out: () => out };
}

/** Processes started, outside the suite's groups, by what the suite started. */
const grandchildren: number[] = [];

function killGroups(): void {
  for (const pid of grandchildren) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  for (const p of started) {
    try {
      if (p.pid) process.kill(-p.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}
// Whatever happens, nothing this suite started outlives it.
process.on("exit", killGroups);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead, only not yet reaped.
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  return !/^\d+ \(.*\) Z/.test(stat);
}

/** The Linux children of `pid`. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function up(hurd: string) {
  const env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-leftovers-")) };
  const u = start(["up", "--grpc", "127.0.0.1:0", "--hurd", hurd], env);
  await until(() => / is up in /.test(u.out()) || u.p.exitCode !== null, 60_000, "hurd up");
  assert.match(u.out(), / is up in /);
  return { ...u, env };
}

function hurdCmd(env: NodeJS.ProcessEnv, ...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], { env, encoding: "utf8", timeout: 60_000 });
  return { code: r.status ?? 1, out: r.stdout + r.stderr };
}

/** `hurd spawn -- sleep 300` in the background: its pid and its Linux program's. */
async function spawnSleep(env: NodeJS.ProcessEnv, hurd: string): Promise<{ spawner: ChildProcess; program: number }> {
  const s = start(["spawn", "--hurd", hurd, "--", "sleep", "300"], env);
  await until(() => / is pid \d+/.test(s.out()) || s.p.exitCode !== null, 60_000, "hurd spawn");
  assert.match(s.out(), /sleep is pid \d+/);
  let program = 0;
  // Forked but not yet exec'd, the child's command line is still node's: wait for the exec too.
  const cmdline = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      return "";
    }
  };
  await until(() => (program = childrenOf(s.p.pid!)[0] ?? 0) > 0 && cmdline(program).startsWith("sleep\x00300"), 5000, "the Linux program, sleep 300");
  return { spawner: s.p, program };
}

async function gone(x: { spawner: ChildProcess; program: number }, ms: number, what: string): Promise<void> {
  await until(() => !alive(x.program), ms, `${what}: the Linux program (pid ${x.program}) to die`);
  await until(() => x.spawner.exitCode !== null || x.spawner.signalCode !== null, ms, `${what}: hurd spawn (pid ${x.spawner.pid}) to exit`);
}

describe("nothing left behind (hurd spawn's Linux program)", () => {
  after(killGroups);

  it("hurd shutdown: the spawned program and hurd spawn end", async () => {
    const u = await up("lo-shutdown");
    const x = await spawnSleep(u.env, "lo-shutdown");
    assert.equal(hurdCmd(u.env, "shutdown", "--hurd", "lo-shutdown").code, 0);
    await gone(x, 15_000, "after hurd shutdown");
    await until(() => u.p.exitCode !== null, 15_000, "hurd up to exit");
  });

  it("hurd subhurd rm: the program spawned in the subhurd and its hurd spawn end; the parent hurd lives", async () => {
    const u = await up("lo-rm");
    assert.equal(hurdCmd(u.env, "subhurd", "create", "--hurd", "lo-rm", "lo-alpha").code, 0);
    const x = await spawnSleep(u.env, "lo-alpha");
    const r = hurdCmd(u.env, "subhurd", "rm", "--hurd", "lo-rm", "lo-alpha");
    assert.equal(r.code, 0, r.out);
    await gone(x, 15_000, "after hurd subhurd rm");
    assert.equal(u.p.exitCode, null, "the parent hurd still runs");
    hurdCmd(u.env, "shutdown", "--hurd", "lo-rm");
  });

  it("a crashed hurd (the process running its kernel killed): the program ends once the edge has been gone for the lease", async () => {
    const u = await up("lo-crash");
    const x = await spawnSleep(u.env, "lo-crash");
    process.kill(-u.p.pid!, "SIGKILL");
    const t0 = Date.now();
    await gone(x, 20_000, "after the crash");
    assert.ok(Date.now() - t0 >= 1000, "not before the edge was gone for a while");
  });
});

describe("nothing left behind (a failed bench)", () => {
  // What bench/ starts goes through spawnGroup: a bench that throws, or is
  // ended by a signal, still ends every process under what it started
  // (here a shell's background sleep, a grandchild, as hurd up's servers are).
  const children = new URL("../../bench/children.ts", import.meta.url).href;
  // The bench's ending is set up before it prints the grandchild's pid: the
  // test signals it as soon as it reads that line, and a SIGUSR2 that came
  // before its handler killed the bench outright (Node's default), with no
  // exit handler, leaving the grandchild to hold the test's pipe for an hour.
  const script = (ending: string) =>
    `import { spawnGroup } from ${JSON.stringify(children)};
     ${ending}
     const p = spawnGroup("sh", ["-c", "sleep 3600 & echo $!; wait"], { stdio: ["ignore", "pipe", "inherit"] });
     p.stdout.once("data", (d) => console.log("grandchild " + String(d).trim()));`;

  for (const [how, ending, signal] of [
    // It throws when told (SIGUSR2), so that the test sees the grandchild alive first.
    ["a bench that throws", `process.on("SIGUSR2", () => { throw new Error("bench row failed"); }); setInterval(() => {}, 1000);`, "SIGUSR2"],
    ["a bench ended by SIGTERM", `setInterval(() => {}, 1000);`, "SIGTERM"],
  ] as const) {
    it(`${how}: the grandchild it started is gone by the time it has exited`, async () => {
      const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(ending)], { stdio: ["ignore", "pipe", "pipe"], detached: true });
      started.push(p);
      let out = "";
      p.stdout!.on("data", (d) => (out += d));
      p.stderr!.on("data", (d) => (out += d));
      // Its output is all read only at "close": "exit" may come first (on a
      // loaded machine the thrown error's lines were not in yet).
      let closed = false;
      p.once("close", () => (closed = true));
      await until(() => /grandchild \d+/.test(out), 60_000, "the bench's grandchild to start");
      const pid = Number(/grandchild (\d+)/.exec(out)![1]);
      // Its group is not the bench's: if the bench failed to end it, the
      // suite still must (it holds the pipe this process reads).
      grandchildren.push(pid);
      assert.ok(alive(pid), "the grandchild runs while the bench does");
      p.kill(signal);
      await until(() => closed, 60_000, "the bench to exit and its output to end");
      assert.notEqual(p.exitCode, 0, out);
      if (signal === "SIGUSR2") assert.match(out, /bench row failed/);
      await until(() => !alive(pid), 5_000, `the grandchild (pid ${pid}) to be gone`);
    });
  }
});

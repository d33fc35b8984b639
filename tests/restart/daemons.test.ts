// Restart in place with real OS processes: `hurd up --nats` runs each server
// as its own process; SIGKILL auth's, and init's launcher starts it again on
// the same task (packages/boot/src/launchers.ts), which re-attaches once the
// killed one's lease lapses and reads its handles back from JetStream. The
// hurd stays up, a process made with an auth handle before the kill keeps
// its uid, and a makeauth asked while auth was down is answered, late.
// SIGKILL proc's, and the new process rebuilds its table from its JetStream
// bucket: a spawned program keeps its pid, parent, group and session, and
// `hurd wait` reports how it ended.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds, natsUrl, until } from "../harness.js";

// Every task of the hurd has it, init's and pid 1's among them: 3 s, not
// 2, so that a Node process starved of CPU on a loaded 2-core machine does
// not lose its task to the lease (a silent end of the hurd, seen once).
const LEASE = 3000;
// Long enough for the test's own `hurd ps` calls while the new auth is held stopped.
const GRACE = 20000;
// A login (task JWT) lifetime far below the default 5 min, so a restart after it expires fits in a test.
const LOGIN_TTL_S = 6;
const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;

interface Up {
  proc: ChildProcess;
  out: () => string;
  env: NodeJS.ProcessEnv;
  exited: Promise<number>;
}

async function up(hurd: string, extra: NodeJS.ProcessEnv = {}): Promise<Up> {
  // hurd-kernel reads its lease and grace from the environment it inherits:
  // a shorter lease than the default 5 s so that a restart (lease lapse, then
  // the new process's start-up) fits in a CLI call's 10 s deadline.
  const env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-restart-")), HURD_LEASE_MS: String(LEASE), HURD_RESTART_GRACE_MS: String(GRACE), ...extra };
  const proc = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", hurd, "--nats", natsUrl()], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number>((r) => proc.on("exit", (c) => r(c ?? 1)));
  await until(() => / is up in /.test(out) || proc.exitCode !== null, 60000, "hurd up");
  assert.match(out, / is up in /, out);
  return { proc, out: () => out, env, exited };
}

function hurd(u: Up, hurdName: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const [cmd, ...rest] = args;
  const r = spawnSync(process.execPath, ["--import", "tsx", main, cmd!, "--hurd", hurdName, ...rest], { env: u.env, encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function hurdBg(u: Up, hurdName: string, ...args: string[]): { proc: ChildProcess; err: () => string; done: Promise<number> } {
  const [cmd, ...rest] = args;
  const proc = spawn(process.execPath, ["--import", "tsx", main, cmd!, "--hurd", hurdName, ...rest], { env: u.env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  proc.stdout!.on("data", (d) => (err += d));
  return { proc, err: () => err, done: new Promise((r) => proc.on("exit", (c) => r(c ?? 1))) };
}

/** The OS process of boot server `server` of hurd `system` (titled `hurd-<server> <system>` by daemon.ts), or 0; its spare (`… (spare)`) with `spare`. */
function serverProcess(system: string, server: string, spare = false): number {
  const title = `hurd-${server} ${system}${spare ? " (spare)" : ""}`;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0+$/, "");
      if (cmd === title && !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${d}/stat`, "utf8"))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

function alive(pid: number): boolean {
  try {
    // A zombie is gone for this test: its launcher reaps it.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Every OS process of hurd `system` (its environment or command line names it). */
function processesOf(system: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, "utf8");
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (env.includes(`HURD_SYSTEM=${system}\0`) || cmd.includes(`--system\0${system}\0`)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * `hurd ps`'s output. A call that fails (its deadline passed on a loaded
 * machine while a server catches up) is asked again, up to three times, and
 * the last failure thrown: a process missing from a listing that succeeded
 * is a lost process, a listing that failed is not one.
 */
async function psOf(u: Up, name: string): Promise<string> {
  let r = hurd(u, name, "ps");
  for (let i = 0; i < 2 && r.code !== 0; i++) r = hurd(u, name, "ps");
  if (r.code !== 0) {
    // The hurd's own output goes with the failure: a hurd that went down
    // says why there. What it wrote while this process sat in spawnSync is
    // read only once the event loop runs: given a moment first.
    await new Promise((res) => setTimeout(res, 3000));
    throw new Error(`hurd ps failed (${r.code}): ${r.stderr}\n--- hurd up's output ---\n${u.out().slice(-8000)}`);
  }
  return r.stdout;
}

/** `hurd ps`'s PID, PPID, PGID and SID of `pid`, or undefined. */
async function idsOf(u: Up, name: string, pid: string): Promise<string[] | undefined> {
  const [head, ...rows] = (await psOf(u, name)).trim().split("\n");
  const cols = head!.trim().split(/\s+/);
  const row = rows.map((l) => l.trim().split(/\s+/)).find((r) => r[cols.indexOf("PID")] === pid);
  return row && ["PID", "PPID", "PGID", "SID"].map((c) => row[cols.indexOf(c)]!);
}

async function uidOf(u: Up, name: string, pid: string): Promise<string | undefined> {
  const [head, ...rows] = (await psOf(u, name)).trim().split("\n");
  const cols = head!.trim().split(/\s+/);
  const row = rows.map((l) => l.trim().split(/\s+/)).find((r) => r[cols.indexOf("PID")] === pid);
  return row?.[cols.indexOf("UID")];
}

const skip = !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats";
describe("restart in place: server OS processes killed under `hurd up --nats`", { skip }, () => {
  it("SIGKILLed auth comes back on its task: handles kept, a call made meanwhile answered late, the hurd stays up", async () => {
    const name = `ra${process.pid}`;
    // The kernel hears auth's connection close and its grace starts at the
    // kill, not a lease later: the grace must cover the test's own CLI calls
    // while the new auth is held stopped, on a loaded machine.
    const grace = 2 * GRACE;
    const u = await up(name, { HURD_RESTART_GRACE_MS: String(grace) });
    const running: ChildProcess[] = [];
    try {
      // A process holding an auth handle made before the kill.
      // Longer than the test takes on a loaded machine: it is killed at the end.
      const s = hurdBg(u, name, "spawn", "--uid", "1000", "--", "sleep", "3600");
      running.push(s.proc);
      await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
      const pid = /is pid (\d+)/.exec(s.err())![1]!;
      assert.equal(await uidOf(u, name, pid), "1000");

      const first = serverProcess(name, "auth");
      assert.ok(first > 0, "auth's OS process");
      process.kill(first, "SIGKILL");
      // Asked as auth dies: the kernel may have pushed it to the dead
      // process (its lease not yet run out), and then it is answered
      // MIG_SERVER_DIED once the task lapses or a new process takes it;
      // else it queues and the new process answers it. Never a hang.
      const early = hurdBg(u, name, "spawn", "--uid", "1003", "--", "sh", "-c", "exit 5");
      running.push(early.proc);
      // The new process is held stopped until a call is surely queued for
      // it: launched at once by init, it would otherwise race the calls.
      let second = 0;
      await until(() => { second = serverProcess(name, "auth"); return second > 0 && second !== first; }, 30000, "a new auth process");
      process.kill(second, "SIGSTOP");
      // When the grace began, or a little after: seen no earlier than the kernel said it.
      let lapsedAt = Date.now();
      try {
        await until(() => /task \d+ \(auth\) lost its process/.test(u.out()), 30000, "the kernel's lapse of auth's task");
        lapsedAt = Date.now();
        // Asked while auth is down: queued in the kernel, answered by the new process.
        const late = hurdBg(u, name, "spawn", "--uid", "1001", "--", "sh", "-c", "exit 3");
        running.push(late.proc);
        // Its process's args are set just before its makeauth goes out; a
        // `hurd ps` that shows them took far longer than that.
        await until(() => /--uid 1001/.test(hurd(u, name, "ps", "-f").stdout) || late.proc.exitCode !== null, 60000, "the late spawn's process");
        process.kill(second, "SIGCONT");
        second = 0;
        assert.equal(await late.done, 3, late.err() + u.out());
      } finally {
        if (second) process.kill(second, "SIGCONT");
      }
      const e = await early.done;
      assert.ok(e === 5 || (e !== 0 && /MIG_SERVER_DIED/.test(early.err())), `early spawn: ${e} ${early.err()}`);
      assert.match(u.out(), /restarted in place on task/);
      // Past the lease and the grace (counted from the lapse) the hurd is still up.
      await new Promise((r) => setTimeout(r, Math.max(0, lapsedAt + LEASE + grace + 1000 - Date.now())));
      assert.equal(u.proc.exitCode, null, u.out());
      assert.doesNotMatch(u.out(), /essential server \w+ .* died/);
      assert.equal(await uidOf(u, name, pid), "1000");
      // The restarted auth still serves makeauth from the root handle init holds.
      const again = hurd(u, name, "spawn", "--uid", "1002", "--", "sh", "-c", "exit 4");
      assert.equal(again.code, 4, again.stderr);
      assert.equal(hurd(u, name, "kill", "-s", "KILL", pid).code, 0);
      assert.equal(await s.done, 128 + 9);
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      await until(() => processesOf(name).length === 0, 10000, "every server process to exit");
    } finally {
      for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
      if (u.proc.exitCode === null) u.proc.kill("SIGTERM");
      await until(() => processesOf(name).length === 0, 15000, "leftovers").catch(() => {
        for (const p of processesOf(name)) process.kill(p, "SIGKILL");
      });
    }
  });

  it("SIGKILLed proc comes back on its task: a spawned program keeps its pid, parent, group and session, and hurd wait reports its end", async () => {
    const name = `rp${process.pid}`;
    const u = await up(name);
    const running: ChildProcess[] = [];
    try {
      const s = hurdBg(u, name, "spawn", "--", "sleep", "3600");
      running.push(s.proc);
      await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
      const pid = /is pid (\d+)/.exec(s.err())![1]!;
      const before = await idsOf(u, name, pid);
      assert.ok(before, `pid ${pid} in hurd ps`);

      const first = serverProcess(name, "proc");
      assert.ok(first > 0, "proc's OS process");
      // Its spare, started a few seconds after it, waits with its modules loaded.
      let spare = 0;
      await until(() => (spare = serverProcess(name, "proc", true)) > 0, 30000, "proc's spare");
      const killedAt = Date.now();
      process.kill(first, "SIGKILL");
      await until(() => { const p = serverProcess(name, "proc"); return p > 0 && p !== first; }, 30000, "a new proc process");
      assert.equal(serverProcess(name, "proc"), spare, "the spare took over: no new Node process had to start");
      await until(() => /restarted in place on task/.test(u.out()), 30000, "proc's restart in place");
      await until(() => { const s2 = serverProcess(name, "proc", true); return s2 > 0 && s2 !== spare; }, 30000, "a new spare behind the new proc");
      assert.deepEqual(await idsOf(u, name, pid), before, "pid, parent, group and session after the restart");

      const w = hurdBg(u, name, "wait", pid);
      running.push(w.proc);
      await until(() => /waiting for pid/.test(w.err()), 30000, "hurd wait's handle");
      assert.equal(hurd(u, name, "kill", "-s", "KILL", pid).code, 0);
      assert.equal(await w.done, 128 + 9, w.err());
      assert.match(w.err(), new RegExp(`^${pid} `, "m"));
      assert.equal(await s.done, 128 + 9);
      // Past the lease and the grace the hurd is still up: proc's task was
      // never lost. (A lapse comes at the latest a lease and a sweep after
      // the kill, and the grace is counted from it.)
      await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 2 * LEASE + GRACE + 1000 - Date.now())));
      assert.equal(u.proc.exitCode, null, u.out());
      assert.doesNotMatch(u.out(), /essential server \w+ .* died/);
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      await until(() => processesOf(name).length === 0, 10000, "every server process to exit");
    } finally {
      for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
      if (u.proc.exitCode === null) u.proc.kill("SIGTERM");
      await until(() => processesOf(name).length === 0, 15000, "leftovers").catch(() => {
        for (const p of processesOf(name)) process.kill(p, "SIGKILL");
      });
    }
  });

  it("a SIGKILLed proc is known dead when its NATS connection closes: the new process attaches well before the lease would have lapsed", async () => {
    // A lease far longer than a restart: only nats-server's DISCONNECT event (services/kernel/src/holders.ts) can explain an early attach.
    const lease = 10000;
    const name = `rk${process.pid}`;
    const u = await up(name, { HURD_LEASE_MS: String(lease) });
    try {
      const first = serverProcess(name, "proc");
      assert.ok(first > 0, "proc's OS process");
      const before = hurd(u, name, "ps");
      assert.equal(before.code, 0, before.stderr);
      const killed = Date.now();
      process.kill(first, "SIGKILL");
      await until(() => /task \d+ \(proc\) re-attached by a new process/.test(u.out()) || u.proc.exitCode !== null, lease * 2, "proc's new process to attach");
      const attached = Date.now() - killed;
      assert.match(u.out(), /task \d+ \(proc\): its process's NATS connection closed/);
      assert.ok(attached < lease / 2, `the new proc attached ${attached} ms after the kill (lease ${lease} ms)`);
      await until(() => /restarted in place on task/.test(u.out()), 30000, "proc's restart in place");
      const after = hurd(u, name, "ps");
      assert.equal(after.code, 0, after.stderr);
      assert.equal(u.proc.exitCode, null, u.out());
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
    } finally {
      if (u.proc.exitCode === null) u.proc.kill("SIGTERM");
      await until(() => processesOf(name).length === 0, 15000, "leftovers").catch(() => {
        for (const p of processesOf(name)) process.kill(p, "SIGKILL");
      });
    }
  });

  it("a SIGSTOPped proc continued within the grace, with no new process: it takes its task back and the hurd carries on", async () => {
    const name = `rc${process.pid}`;
    const u = await up(name);
    const running: ChildProcess[] = [];
    let stopped = 0;
    try {
      const s = hurdBg(u, name, "spawn", "--", "sleep", "3600");
      running.push(s.proc);
      await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
      const pid = /is pid (\d+)/.exec(s.err())![1]!;
      const before = await idsOf(u, name, pid);
      assert.ok(before, `pid ${pid} in hurd ps`);
      stopped = serverProcess(name, "proc");
      assert.ok(stopped > 0, "proc's OS process");
      process.kill(stopped, "SIGSTOP");
      // Stalled past its lease: the kernel keeps the task for a restart, and no launcher starts one (the process lives).
      await until(() => /task \d+ \(proc\) lost its process/.test(u.out()), 30000, "the kernel's lapse of proc's task");
      const lapsedAt = Date.now();
      await new Promise((r) => setTimeout(r, LEASE));
      process.kill(stopped, "SIGCONT");
      stopped = 0;
      await until(() => /took task \d+ back/.test(u.out()) || u.proc.exitCode !== null, 30000, "proc to take its task back");
      assert.equal(u.proc.exitCode, null, u.out());
      assert.deepEqual(await idsOf(u, name, pid), before, "pid, parent, group and session after the stall");
      assert.equal(serverProcess(name, "proc") > 0, true, "proc's process still runs");
      // Past the grace (counted from the lapse) the hurd is still up: the task is held again.
      await new Promise((r) => setTimeout(r, Math.max(0, lapsedAt + GRACE + 1000 - Date.now())));
      assert.equal(u.proc.exitCode, null, u.out());
      assert.doesNotMatch(u.out(), /essential server \w+ .* died/);
      assert.equal(hurd(u, name, "kill", "-s", "KILL", pid).code, 0);
      assert.equal(await s.done, 128 + 9);
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
    } finally {
      if (stopped) process.kill(stopped, "SIGCONT");
      for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
      if (u.proc.exitCode === null) u.proc.kill("SIGTERM");
      await until(() => processesOf(name).length === 0, 15000, "leftovers").catch(() => {
        for (const p of processesOf(name)) process.kill(p, "SIGKILL");
      });
    }
  });

  it("a SIGSTOPped proc replaced by a new process of its task: the new one holds the log, the old one, continued, exits 0 and writes nothing", async () => {
    const name = `rs${process.pid}`;
    const u = await up(name);
    const running: ChildProcess[] = [];
    let old = 0;
    try {
      const s = hurdBg(u, name, "spawn", "--", "sleep", "3600");
      running.push(s.proc);
      await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
      const pid = /is pid (\d+)/.exec(s.err())![1]!;
      const before = await idsOf(u, name, pid);
      assert.ok(before, `pid ${pid} in hurd ps`);
      old = serverProcess(name, "proc");
      assert.ok(old > 0, "proc's OS process");
      // What an orchestrator does with a paused container it gave up on: starts another with the same credentials.
      const env = Object.fromEntries(readFileSync(`/proc/${old}/environ`, "utf8").split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      // Its command line as ProcessLauncher started it (daemon.ts retitles itself), from sources as the suite runs.
      const argv = [process.execPath, "--conditions=@hurdmesh/source", "--import", "tsx", new URL("../../packages/boot/src/daemon.ts", import.meta.url).pathname, "proc"];
      process.kill(old, "SIGSTOP");
      // A call the kernel hands to the stopped process before its lease lapses: answered MIG_SERVER_DIED, or by the new process.
      const during = hurdBg(u, name, "spawn", "--", "sh", "-c", "exit 6");
      running.push(during.proc);
      await until(() => /task \d+ \(proc\) lost its process/.test(u.out()), 30000, "the kernel's lapse of proc's task");
      const next = spawn(argv[0]!, argv.slice(1), { env: { ...env, HURD_RESTART: "1" }, stdio: ["ignore", "pipe", "pipe"] });
      running.push(next);
      let nextOut = "";
      next.stdout!.on("data", (d) => (nextOut += d));
      next.stderr!.on("data", (d) => (nextOut += d));
      await until(() => /restarted in place on task/.test(nextOut) || next.exitCode !== null, 30000, "the new proc process");
      assert.match(nextOut, /restarted in place on task/, nextOut);
      const d = await during.done;
      assert.ok(d === 6 || (d !== 0 && /MIG_SERVER_DIED/.test(during.err())), `the call made as proc stopped: ${d} ${during.err()}`);
      // The old one goes on: its task is gone from it, and the log is not its to write.
      process.kill(old, "SIGCONT");
      const stopped = old;
      await until(() => !alive(stopped), 30000, "the old proc process to exit");
      old = 0;
      // Its launcher logs a nonzero exit only.
      await new Promise((r) => setTimeout(r, 500));
      assert.doesNotMatch(u.out(), new RegExp(`proc \\(pid ${stopped}\\) exited`), u.out());
      assert.doesNotMatch(u.out(), /restarting proc in place/, "the old one exited 0: its launcher does not start a third");
      assert.deepEqual(await idsOf(u, name, pid), before, "pid, parent, group and session under the new process");
      const again = hurd(u, name, "spawn", "--", "sh", "-c", "exit 4");
      assert.equal(again.code, 4, again.stderr + nextOut);
      assert.equal(hurd(u, name, "kill", "-s", "KILL", pid).code, 0);
      assert.equal(await s.done, 128 + 9);
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      await until(() => next.exitCode !== null, 15000, "the new proc process to exit with its hurd");
    } finally {
      if (old) process.kill(old, "SIGCONT");
      for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
      if (u.proc.exitCode === null) u.proc.kill("SIGTERM");
      await until(() => processesOf(name).length === 0, 15000, "leftovers").catch(() => {
        for (const p of processesOf(name)) process.kill(p, "SIGKILL");
      });
    }
  });

  it("a server restarted after its first login expired gets a fresh one (the launcher mints a login per start)", async () => {
    const name = `rl${process.pid}`;
    // Every task's NATS JWT lives 6 s: the login the first proc process was started with has expired long before the kill.
    const u = await up(name, { HURD_NATS_USER_TTL: String(LOGIN_TTL_S) });
    const running: ChildProcess[] = [];
    try {
      const s = hurdBg(u, name, "spawn", "--", "sleep", "3600");
      running.push(s.proc);
      await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
      const pid = /is pid (\d+)/.exec(s.err())![1]!;
      const before = await idsOf(u, name, pid);
      assert.ok(before, `pid ${pid} in hurd ps`);
      await new Promise((r) => setTimeout(r, (LOGIN_TTL_S + 2) * 1000));
      for (const server of ["proc", "auth"]) {
        const first = serverProcess(name, server);
        assert.ok(first > 0, `${server}'s OS process`);
        const restarts = u.out().match(/restarted in place on task/g)?.length ?? 0;
        process.kill(first, "SIGKILL");
        await until(() => (u.out().match(/restarted in place on task/g)?.length ?? 0) > restarts || u.proc.exitCode !== null, 30000, `${server}'s restart in place`);
        assert.doesNotMatch(u.out(), /Authorization Violation|Authentication Expired|cannot start/i, u.out());
      }
      assert.deepEqual(await idsOf(u, name, pid), before, "pid, parent, group and session after the restarts");
      const again = hurd(u, name, "spawn", "--uid", "1002", "--", "sh", "-c", "exit 4");
      assert.equal(again.code, 4, again.stderr + u.out());
      assert.equal(hurd(u, name, "kill", "-s", "KILL", pid).code, 0);
      assert.equal(await s.done, 128 + 9);
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      await until(() => processesOf(name).length === 0, 10000, "every server process to exit");
    } finally {
      for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
      if (u.proc.exitCode === null) u.proc.kill("SIGTERM");
      await until(() => processesOf(name).length === 0, 15000, "leftovers").catch(() => {
        for (const p of processesOf(name)) process.kill(p, "SIGKILL");
      });
    }
  });
});

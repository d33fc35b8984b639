// The `hurd` command driven as a person would, from another process: boot,
// look, spawn, signal, wait, killall, bad input, shutdown, crash. Embedded
// and with every server its own OS process on a real nats-server.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createConnection as connectTcp, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { compiledEnv } from "../build.js";
import { busKinds, natsUrl, until } from "../harness.js";
import { hurdBin } from "./kit.js";


interface Up {
  proc: ChildProcess;
  out: () => string;
  env: NodeJS.ProcessEnv;
  exited: Promise<number>;
}

async function up(args: string[], hurd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Up> {
  const env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-cli-")), ...extraEnv };
  const proc = spawn(process.execPath, [hurdBin, "up", "--grpc", "127.0.0.1:0", "--hurd", hurd, ...args], { env: compiledEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number>((r) => proc.on("exit", (c) => r(c ?? 1)));
  await until(() => / is up in /.test(out) || proc.exitCode !== null, 60000, "hurd up");
  assert.match(out, / is up in /, out);
  return { proc, out: () => out, env, exited };
}

/** The command words, then --hurd, then the rest (options must precede a `--`). */
function argv(hurdName: string, args: string[]): string[] {
  const words = args[0] === "subhurd" ? 2 : 1;
  return [...args.slice(0, words), "--hurd", hurdName, ...args.slice(words)];
}

function hurd(u: Up, hurdName: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [hurdBin, ...argv(hurdName, args)], { env: compiledEnv(u.env), encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function hurdBg(u: Up, hurdName: string, ...args: string[]): { proc: ChildProcess; err: () => string; done: Promise<number> } {
  const proc = spawn(process.execPath, [hurdBin, ...argv(hurdName, args)], { env: compiledEnv(u.env), stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  proc.stdout!.on("data", (d) => (err += d));
  return { proc, err: () => err, done: new Promise((r) => proc.on("exit", (c) => r(c ?? 1))) };
}

/** Parses `hurd ps` output into rows keyed by column name. */
function table(s: string): Array<Record<string, string>> {
  const [head, ...rows] = s.trim().split("\n");
  const cols = head!.trim().split(/\s+/);
  return rows.map((l) => {
    const parts = l.trim().split(/\s+/);
    const r: Record<string, string> = {};
    cols.forEach((c, i) => (r[c] = i === cols.length - 1 ? parts.slice(i).join(" ") : parts[i]!));
    return r;
  });
}

/** OS processes whose environment names this hurd (what `hurd up --nats` started). */
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

describe("hurd command, embedded hurd", () => {
  let u: Up;
  const name = `e${process.pid}`;
  before(async () => {
    u = await up([], name);
  });
  after(() => {
    u.proc.kill("SIGKILL");
  });

  it("hurd ps shows pids 1, 2, 3 and 4, proc included, with the servers under startup", () => {
    const r = hurd(u, name, "ps");
    assert.equal(r.code, 0, r.stderr);
    const rows = table(r.stdout);
    const by = new Map(rows.map((x) => [x.PID, x]));
    assert.equal(by.get("1")?.COMMAND, "/libexec/runsystem");
    assert.equal(by.get("2")?.COMMAND, "/hurd/startup");
    assert.equal(by.get("2")?.PPID, "1");
    assert.equal(by.get("3")?.COMMAND, "kernel");
    assert.equal(by.get("4")?.COMMAND, "/hurd/proc");
    assert.equal(by.get("4")?.PPID, "2");
    const auth = rows.find((x) => x.COMMAND === "/hurd/auth");
    assert.equal(auth?.PPID, "2");
    assert.deepEqual(Object.keys(rows[0]!), ["PID", "PPID", "PGID", "SID", "UID", "STAT", "ELAPSED", "COMMAND"]);
  });

  it("hurd ps -o and --json give the chosen columns and one object per process", () => {
    const r = hurd(u, name, "ps", "-o", "pid,command");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(table(r.stdout)[0]!), ["PID", "COMMAND"]);
    const j = hurd(u, name, "ps", "--json");
    const objs = j.stdout.trim().split("\n").map((l) => JSON.parse(l) as { pid: number });
    assert.ok(objs.some((o) => o.pid === 4));
  });

  it("spawns a real program, shows its argv, kills it through proc, and wait reports the signal", async () => {
    const s = hurdBg(u, name, "spawn", "--", "sleep", "3630");
    await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
    const pid = /is pid (\d+)/.exec(s.err())![1]!;
    const row = table(hurd(u, name, "ps").stdout).find((x) => x.PID === pid);
    assert.equal(row?.COMMAND, "sleep 3630");
    const w = hurdBg(u, name, "wait", pid);
    await until(() => /waiting for pid/.test(w.err()), 30000, "wait holds a handle");
    const k = hurd(u, name, "kill", "-s", "TERM", pid);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(await w.done, 128 + 15);
    assert.match(w.err(), new RegExp(`${pid} killed by SIGTERM`));
    assert.equal(await s.done, 128 + 15);
  });

  it("spawn --uid runs the program as a process of that uid (reauthenticated through auth)", async () => {
    const s = hurdBg(u, name, "spawn", "--uid", "1000", "--", "sleep", "3630");
    await until(() => /is pid \d+/.test(s.err()), 30000, "spawn");
    const pid = /is pid (\d+)/.exec(s.err())![1]!;
    const row = table(hurd(u, name, "ps").stdout).find((x) => x.PID === pid);
    assert.equal(row?.UID, "1000");
    assert.equal(hurd(u, name, "kill", "-s", "KILL", pid).code, 0);
    assert.equal(await s.done, 128 + 9);
  });

  it("a program's exit status becomes its Hurd exit status", async () => {
    const s = hurdBg(u, name, "spawn", "--", "sh", "-c", "exit 7");
    assert.equal(await s.done, 7);
    assert.match(s.err(), /exited with status 7/);
  });

  it("killall signals every process of that name through handles, and nothing else", async () => {
    const a = hurdBg(u, name, "spawn", "--", "sleep", "3641");
    const b = hurdBg(u, name, "spawn", "--", "sleep", "3642");
    const other = hurdBg(u, name, "spawn", "--", "tail", "-f", "/dev/null");
    await until(() => /is pid/.test(a.err()) && /is pid/.test(b.err()) && /is pid/.test(other.err()), 30000, "spawns");
    const r = hurd(u, name, "killall", "sleep");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, "", "silent on success, as psmisc's killall");
    assert.equal(await a.done, 143);
    assert.equal(await b.done, 143);
    assert.equal(other.proc.exitCode, null, "tail was not touched");
    const pid = /is pid (\d+)/.exec(other.err())![1]!;
    hurd(u, name, "kill", "-s", "KILL", pid);
    assert.equal(await other.done, 128 + 9);
  });

  it("bad input gets one clear line and a non-zero status: 2 and 'Try --help' for a command line, 1 for a failure", () => {
    for (const [args, code] of [[["kill", "abc"], 2], [["kill", "-s", "NOPE", "5"], 2], [["ps", "-o", "pid,nope"], 2], [["wait", "999999"], 1], [["kill", "999999"], 1]] as const) {
      const r = hurd(u, name, ...args);
      assert.equal(r.code, code, args.join(" "));
      const [first, ...rest] = r.stderr.trimEnd().split("\n");
      assert.match(first!, /^hurd: .+$/, `${args.join(" ")}: ${r.stderr}`);
      assert.deepEqual(rest, code === 2 ? [`Try 'hurd ${args[0]} --help' for more information.`] : [], r.stderr);
    }
  });

  it("pstree and top show proc and init", () => {
    const t = hurd(u, name, "pstree");
    assert.match(t.stdout, /\/libexec\/runsystem\(1\)/);
    assert.match(t.stdout, /\/hurd\/proc\(4\)/);
    const top = hurd(u, name, "top", "-n", "1");
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /processes: \d+ total/);
    assert.match(top.stdout, /\/hurd\/proc/);
  });

  it("hurd shutdown halts the hurd cleanly and removes its session", async () => {
    const r = hurd(u, name, "shutdown");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await u.exited, 0, u.out());
    assert.match(u.out(), /shutting down: reboot requested/);
    assert.equal(existsSync(join(u.env.HURD_STATE_DIR!, `${name}.json`)), false);
    assert.notEqual(hurd(u, name, "ps").code, 0, "nothing answers after shutdown");
  });
});

describe("hurd command: an essential server's death crashes the hurd", () => {
  it("killing proc (pid 4) ends the hurd with a report and a non-zero status", async () => {
    const name = `c${process.pid}`;
    const u = await up([], name);
    try {
      hurd(u, name, "kill", "-s", "KILL", "4");
      assert.equal(await u.exited, 1, u.out());
      assert.match(u.out(), /CRASH: essential server proc/);
    } finally {
      u.proc.kill("SIGKILL");
    }
  });
});

describe("hurd subhurd and Ctrl-C", () => {
  it("creates nested subhurds, lists them, shows their processes, removes them, and Ctrl-C halts cleanly", async () => {
    const name = `s${process.pid}`;
    const u = await up([], name);
    try {
      const a = hurd(u, name, "subhurd", "create", "alpha");
      assert.equal(a.code, 0, a.stderr);
      const c = hurd(u, name, "subhurd", "create", "beta", "--parent", "alpha");
      assert.equal(c.code, 0, c.stderr);
      const ls = hurd(u, name, "subhurd", "ls", "--json").stdout.trim().split("\n").map((l) => JSON.parse(l) as { name: string; parent: string; depth: number });
      assert.deepEqual(ls.map((x) => [x.name, x.parent, x.depth]), [["alpha", name, 1], ["beta", "alpha", 2]]);
      // beta is a hurd of its own: its pids start at 1.
      const inBeta = table(hurd(u, "beta", "ps").stdout);
      for (const p of ["1", "2", "3", "4"]) assert.ok(inBeta.some((x) => x.PID === p), `pid ${p} in beta`);
      // The root hurd shows subhurd processes only when asked, with their namespace.
      const plain = table(hurd(u, name, "ps").stdout);
      assert.ok(plain.every((x) => !/startup$/.test(x.COMMAND) || x.PID === "2"), "no subhurd process by default");
      const all = table(hurd(u, name, "ps", "--all-hurds").stdout);
      assert.ok(Object.keys(all[0]!).includes("NS"));
      assert.equal(new Set(all.filter((x) => x.NS !== "-").map((x) => x.NS)).size, 2, "alpha's and beta's namespaces");
      const rm = hurd(u, name, "subhurd", "rm", "alpha");
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stdout, /removed beta, alpha/);
      assert.equal(hurd(u, name, "subhurd", "ls", "--json").stdout.trim(), "");
      assert.notEqual(hurd(u, "beta", "ps").code, 0, "beta is gone with its parent");
      assert.equal(table(hurd(u, name, "ps", "--all-hurds").stdout).filter((x) => x.NS !== "-").length, 0);
      u.proc.kill("SIGINT");
      assert.equal(await u.exited, 0, u.out());
      assert.match(u.out(), /shutting down: reboot requested/);
    } finally {
      u.proc.kill("SIGKILL");
    }
  });
});

describe("hurd up --reboot-on-crash", () => {
  it("boots the hurd again after proc dies, and shuts down cleanly after", async () => {
    const name = `r${process.pid}`;
    const u = await up(["--reboot-on-crash"], name);
    try {
      hurd(u, name, "kill", "-s", "KILL", "4");
      await until(() => (u.out().match(/ is up in /g) ?? []).length === 2, 30000, "the second boot");
      assert.match(u.out(), /CRASH: essential server proc/);
      assert.match(u.out(), /rebooting after the crash/);
      const rows = table(hurd(u, name, "ps").stdout);
      assert.ok(rows.some((x) => x.PID === "4" && x.COMMAND === "/hurd/proc"), "a new proc is pid 4");
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
    } finally {
      u.proc.kill("SIGKILL");
    }
  });
});

describe("hurd up --nats: every server its own OS process", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  it("boots, lists pids 1 to 4, and on shutdown leaves no process behind", async () => {
    const name = `n${process.pid}`;
    const u = await up(["--nats", natsUrl()], name);
    try {
      assert.ok(processesOf(name).length >= 4, `kernel, init, proc, auth, runsystem: ${processesOf(name)}`);
      const rows = table(hurd(u, name, "ps").stdout);
      for (const p of ["1", "2", "3", "4"]) assert.ok(rows.some((x) => x.PID === p), `pid ${p}`);
      // proc's and auth's spares (started a few seconds after them) are processes of the hurd too, counted once they wait.
      const titled = (p: number) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8");
        } catch {
          return ""; // gone meanwhile
        }
      };
      const spares = () => processesOf(name).filter((p) => /^hurd-(proc|auth) \S+ \(spare\)\0*$/.test(titled(p))).length;
      await until(() => spares() === 2, 30000, "proc's and auth's spares");
      // A subhurd: its auth, proc and pid 1 are OS processes of their own (no spares: they keep no store).
      const before = processesOf(name).length;
      const sub = `${name}sub`;
      const c = hurd(u, name, "subhurd", "create", sub);
      assert.equal(c.code, 0, c.stderr);
      assert.ok(processesOf(name).length >= before + 3, "three more server processes");
      const inSub = table(hurd(u, sub, "ps").stdout);
      for (const p of ["1", "2", "4"]) assert.ok(inSub.some((x) => x.PID === p), `pid ${p} in the subhurd`);
      assert.equal(hurd(u, name, "subhurd", "rm", sub).code, 0);
      await until(() => processesOf(name).length === before, 10000, "the subhurd's processes to exit");
      assert.equal(hurd(u, name, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      await until(() => processesOf(name).length === 0, 10000, "every server process to exit");
    } finally {
      u.proc.kill("SIGKILL");
      for (const p of processesOf(name)) process.kill(p, "SIGKILL");
    }
  });
});

/** `pid` and every process under it, from /proc (each line of stat: pid (comm) state ppid ...). */
function treeOf(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

function alive(pid: number): boolean {
  try {
    // A zombie is over: only its parent's wait is left.
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("hurd up --nats: NATS goes away", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  it("every process it started ends, and a hurd spawn's Linux program with them", async () => {
    // A nats-server of this test's own, on a free port, to kill.
    const free = await new Promise<number>((r) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => r(p));
      });
    });
    const nats = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(free)], { stdio: "ignore" });
    const name = `l${process.pid}`;
    let u: Up | null = null;
    let pids: number[] = [];
    try {
      await until(async () => new Promise<boolean>((r) => connectTcp(free, "127.0.0.1").on("connect", function (this: Socket) { this.destroy(); r(true); }).on("error", () => r(false))), 10000, "nats-server");
      // An anonymous server of its own to kill, so no authorization (--nats-insecure).
      // Its processes give up on a bus gone for 8 s (HURD_BUS_LOST_MS; 120 s by default, to ride out a NATS restart).
      u = await up(["--nats", `nats://127.0.0.1:${free}`, "--nats-insecure"], name, { HURD_BUS_LOST_MS: "8000" });
      const s = hurdBg(u, name, "spawn", "--", "sleep", "300");
      await until(() => /is pid \d+/.test(s.err()), 30000, "hurd spawn");
      // hurd up's kernel, init, proc, auth and runsystem; hurd spawn and its sleep.
      pids = [...treeOf(u.proc.pid!), ...treeOf(s.proc.pid!)];
      assert.ok(pids.length >= 8, `hurd up and its 5 servers, hurd spawn and sleep: ${pids.length}`);
      assert.ok(pids.every(alive), "all running before NATS goes");
      nats.kill("SIGKILL");
      // The tasks end when their bus has been down for HURD_BUS_LOST_MS,
      // then init ends the hurd, hurd up its kernel, the edge's end hurd
      // spawn's task and its program.
      await until(() => pids.every((p) => !alive(p)), 60000, "every process to end");
      assert.notEqual(await u.exited, 0, "hurd up says the hurd did not halt cleanly");
      assert.notEqual(await s.done, 0);
    } finally {
      nats.kill("SIGKILL");
      u?.proc.kill("SIGKILL");
      for (const p of pids.filter(alive)) process.kill(p, "SIGKILL");
    }
  });
});

describe("hurd up --nats: no NATS there", () => {
  it("fails with one line saying NATS cannot be reached, status 1, nothing left running", async () => {
    // A port nothing listens on.
    const free = await new Promise<number>((r) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => r(p));
      });
    });
    const env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-cli-")) };
    const proc = spawn(process.execPath, [hurdBin, "up", "--grpc", "127.0.0.1:0", "--hurd", `x${process.pid}`, "--nats", `nats://127.0.0.1:${free}`], { env: compiledEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    proc.stderr!.on("data", (d) => (err += d));
    proc.stdout!.on("data", () => {});
    const seen = new Set<number>();
    const watch = setInterval(() => treeOf(proc.pid!).forEach((p) => seen.add(p)), 100);
    try {
      const code = await new Promise<number>((r) => proc.on("exit", (c) => r(c ?? 1)));
      assert.equal(code, 1, err);
      // hurd up asks the server whether it lets anonymous clients in before it starts anything.
      assert.match(err, /^hurd: EIO: cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: connection refused$/m, err);
      assert.doesNotMatch(err, / is up in /);
      await until(() => [...seen].every((p) => !alive(p)), 10000, "the kernel to be gone");
    } finally {
      clearInterval(watch);
      proc.kill("SIGKILL");
    }
  });
});

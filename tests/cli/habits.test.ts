// A Linux user's reflexes, tried on the `hurd` command against an embedded
// hurd: procps's kill, ps, pgrep, pkill, pidof and top, psmisc's killall,
// --version, shell completion, exit statuses, closed pipes, and every
// --json checked against its JSON Schema (packages/cli/schema).
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";
import { compiledEnv } from "../build.js";
import { conforms, hurd, hurdBg, hurdBin, jsonLines, spawned, table, up, type Up } from "./kit.js";

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  uid: number | null;
  stat: string;
  comm: string;
  command: string;
}

describe("hurd as procps and psmisc users expect", () => {
  let u: Up;
  before(async () => {
    u = await up(`h${process.pid}`);
  });
  after(() => {
    hurd(u, "shutdown");
    u.proc.kill("SIGKILL");
  });

  describe("ps", () => {
    it("lists PID PPID PGID SID UID STAT ELAPSED COMMAND with numbers right-aligned", () => {
      const r = hurd(u, "ps");
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.deepEqual(lines[0]!.trim().split(/\s+/), ["PID", "PPID", "PGID", "SID", "UID", "STAT", "ELAPSED", "COMMAND"]);
      // Right-aligned: every pid ends where the PID header ends.
      const end = lines[0]!.indexOf("PID") + 3;
      for (const l of lines.slice(1)) assert.match(l.slice(0, end), /^ *\d+$/, `right-aligned pid in ${JSON.stringify(l)}`);
      const rows = table(r.stdout);
      assert.equal(rows.find((x) => x.PID === "4")?.COMMAND, "/hurd/proc");
      for (const x of rows) assert.match(x.ELAPSED!, /^(\d+-)?(\d\d:)?\d\d:\d\d$/);
    });

    it("takes procps format keywords; pid= and comm= drop the header; TIME is '-', never elapsed time", () => {
      const r = hurd(u, "ps", "-o", "pid,ppid,pgid,sid,uid,user,comm,args,etime,stat,tty,nlwp,time");
      assert.equal(r.code, 0, r.stderr);
      const head = r.stdout.split("\n")[0]!.trim().split(/\s+/);
      assert.deepEqual(head, ["PID", "PPID", "PGID", "SID", "UID", "USER", "COMMAND", "COMMAND", "ELAPSED", "STAT", "TT", "NLWP", "TIME"]);
      const proc = r.stdout.split("\n").find((l) => /^\s*4 /.test(l))!;
      assert.match(proc, /^\s*4\s+2\s+1\s+1\s+0 root\s+proc\s+\/hurd\/proc\s+\d\d:\d\d S\s+\?\s+-\s+-$/, proc);
      const bare = hurd(u, "ps", "-o", "pid=", "-o", "comm=");
      assert.equal(bare.code, 0, bare.stderr);
      const lines = bare.stdout.trimEnd().split("\n");
      assert.ok(lines.every((l) => /^\s*\d+ \S+$/.test(l)), bare.stdout);
      assert.ok(lines.some((l) => /^\s*4 proc$/.test(l)));
      assert.match(hurd(u, "ps", "-o", "pid,cmd").stdout.split("\n")[0]!, /^PID CMD$/);
      assert.match(hurd(u, "ps", "-o", "pid,user=WHO").stdout.split("\n")[0]!, /^PID WHO$/);
    });

    it("UNIX forms: -ef, -eo, -p, -u and --sort", () => {
      const ef = hurd(u, "ps", "-ef");
      assert.equal(ef.code, 0, ef.stderr);
      assert.deepEqual(Object.keys(table(ef.stdout)[0]!), ["UID", "PID", "PPID", "STIME", "TT", "TIME", "CMD"]);
      assert.equal(table(ef.stdout).find((x) => x.PID === "4")?.UID, "root");
      const eo = hurd(u, "ps", "-eo", "pid,comm");
      assert.deepEqual(Object.keys(table(eo.stdout)[0]!), ["PID", "COMMAND"]);
      const p = table(hurd(u, "ps", "-p", "1,4").stdout);
      assert.deepEqual(p.map((x) => x.PID), ["1", "4"]);
      const missing = hurd(u, "ps", "-p", "999999");
      assert.equal(missing.code, 1, "procps: a selected pid not there is status 1");
      const root = table(hurd(u, "ps", "-u", "root").stdout);
      assert.ok(root.length >= 4 && root.every((x) => x.UID === "0"));
      const desc = table(hurd(u, "ps", "--sort=-pid").stdout).map((x) => Number(x.PID));
      assert.deepEqual(desc, [...desc].sort((a, b) => b - a));
      const byComm = table(hurd(u, "ps", "-o", "comm,pid", "--sort", "comm").stdout).map((x) => x.COMMAND!);
      assert.deepEqual(byComm, [...byComm].sort((a, b) => a.localeCompare(b)));
    });

    it("the BSD form: aux", () => {
      const r = hurd(u, "ps", "aux");
      assert.equal(r.code, 0, r.stderr);
      const rows = table(r.stdout);
      assert.deepEqual(Object.keys(rows[0]!), ["USER", "PID", "TT", "STAT", "START", "TIME", "COMMAND"]);
      assert.equal(rows.find((x) => x.PID === "4")?.USER, "root");
      assert.equal(hurd(u, "ps", "axz").code, 2);
    });

    it("--json: one object per process, the schema's shape (columns' names, STAT letters, no bitmask)", () => {
      const r = hurd(u, "ps", "--json");
      assert.equal(r.code, 0, r.stderr);
      const ps = conforms<Proc>("process", jsonLines(r.stdout));
      const proc = ps.find((p) => p.pid === 4)!;
      assert.equal(proc.comm, "proc");
      assert.equal(proc.command, "/hurd/proc");
      assert.equal(proc.stat, "S");
      assert.equal(ps.find((p) => p.pid === 1)!.stat, "Ss");
    });

    it("pstree --json nests children under their parent (schema pstree.json)", () => {
      const r = hurd(u, "pstree", "--json");
      assert.equal(r.code, 0, r.stderr);
      const [root] = conforms<{ pid: number; children: Array<{ pid: number; children: Array<{ pid: number }> }> }>("pstree", jsonLines(r.stdout));
      assert.equal(root!.pid, 1);
      const startup = root!.children.find((c) => c.pid === 2)!;
      assert.ok(startup.children.some((c) => c.pid === 4), "proc under startup");
    });
  });

  describe("kill", () => {
    it("hurd kill -9 PID kills it; -s KILL, -n 9 and -KILL are the same signal", async () => {
      for (const form of [["-9"], ["-s", "KILL"], ["-n", "9"], ["-SIGKILL"]]) {
        const s = await spawned(u, "sleep", "3660");
        const r = hurd(u, "kill", ...form, String(s.pid));
        assert.equal(r.code, 0, `${form.join(" ")}: ${r.stderr}`);
        assert.equal(r.stdout + r.stderr, "", "kill is silent");
        assert.equal(await s.done, 128 + 9, form.join(" "));
      }
    });

    it("hurd kill -TERM -PGID signals a process group, and -- -PGID too", async () => {
      // A process of the hurd in a group of its own (fixtures/group-leader.ts) says what reaches it.
      const leader = spawn(process.execPath, ["--import", "tsx", new URL("./fixtures/group-leader.ts", import.meta.url).pathname, u.name], { env: u.env, stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      leader.stdout!.on("data", (d) => (out += d));
      const done = new Promise((r) => leader.on("exit", r));
      try {
        await until(() => /leader \d+/.test(out), 30000, "the group leader");
        const pgid = /leader (\d+)/.exec(out)![1]!;
        const r = hurd(u, "kill", "-TERM", `-${pgid}`);
        assert.equal(r.code, 0, r.stderr);
        await until(() => out.includes("signal 15\n"), 10000, "SIGTERM through the group");
        const r2 = hurd(u, "kill", "-s", "USR1", "--", `-${pgid}`);
        assert.equal(r2.code, 0, r2.stderr);
        await until(() => out.includes("signal 30\n"), 10000, "SIGUSR1 through the group");
        assert.equal(hurd(u, "kill", "-0", pgid).code, 0, "signal 0: it exists");
        assert.equal(hurd(u, "kill", "-USR2", pgid).code, 0);
        await done;
      } finally {
        leader.kill("SIGKILL");
      }
    });

    it("several targets: each is signalled; one that fails makes the status 1 and says which", async () => {
      const a = await spawned(u, "sleep", "3661");
      const b = await spawned(u, "sleep", "3662");
      const r = hurd(u, "kill", "-KILL", String(a.pid), "999999", String(b.pid));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^hurd: kill 999999: ESRCH/m);
      assert.equal(await a.done, 137);
      assert.equal(await b.done, 137);
    });

    it("-l lists the Hurd's signal names and translates; -L is a table", () => {
      const l = hurd(null, "kill", "-l");
      assert.equal(l.code, 0);
      const names = l.stdout.trim().split(" ");
      assert.equal(names[0], "HUP");
      assert.equal(names[8], "KILL");
      assert.equal(names[14], "TERM");
      assert.equal(names[29], "USR1", "the Hurd's (BSD) numbering: SIGUSR1 is 30");
      assert.equal(hurd(null, "kill", "-l", "9").stdout, "KILL\n");
      assert.equal(hurd(null, "kill", "-l", "SIGTERM").stdout, "15\n");
      assert.equal(hurd(null, "kill", "-l", "137").stdout, "KILL\n", "an exit status 128+N names N");
      const t = hurd(null, "kill", "-L").stdout.split("\n");
      assert.match(t[0]!, /^ 1 HUP\s+2 INT\s+3 QUIT/);
      assert.match(t[1]!, /^ 8 FPE\s+9 KILL/);
    });

    it("usage errors: one line, 'Try --help', status 2", () => {
      for (const args of [["kill"], ["kill", "-9"], ["kill", "abc"], ["kill", "-NOPE", "5"], ["kill", "-s", "TERM", "-n", "9", "5"], ["kill", "0"]]) {
        const r = hurd(null, ...args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        const lines = r.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 2, r.stderr);
        assert.match(lines[0]!, /^hurd: \S/);
        assert.equal(lines[1], "Try 'hurd kill --help' for more information.");
      }
    });
  });

  describe("pgrep, pkill, pidof", () => {
    it("pgrep selects by name, full command line, exactness, parent, newest and oldest; status 1 for none", async () => {
      // An hour each: ended by the test, never by their own clock (a slow
      // machine takes minutes over the test's twenty commands).
      const a = await spawned(u, "sleep", "3671");
      const b = await spawned(u, "sleep", "3672");
      const t = await spawned(u, "tail", "-f", "/dev/null");
      try {
        const pids = (s: string) => s.trim().split("\n").filter(Boolean).map(Number).sort((x, y) => x - y);
        assert.deepEqual(pids(hurd(u, "pgrep", "sleep").stdout), [a.pid, b.pid].sort((x, y) => x - y));
        assert.deepEqual(pids(hurd(u, "pgrep", "-f", "^sleep 3672").stdout), [b.pid], "the spawn command line has it too: anchored");
        assert.deepEqual(pids(hurd(u, "pgrep", "-x", "slee").stdout), []);
        assert.equal(hurd(u, "pgrep", "-x", "slee").code, 1);
        assert.deepEqual(pids(hurd(u, "pgrep", "-x", "sleep").stdout), [a.pid, b.pid].sort((x, y) => x - y));
        assert.deepEqual(pids(hurd(u, "pgrep", "-n", "sleep").stdout), [b.pid]);
        assert.deepEqual(pids(hurd(u, "pgrep", "-o", "sleep").stdout), [a.pid]);
        assert.equal(hurd(u, "pgrep", "-c", "sleep").stdout, "2\n");
        assert.match(hurd(u, "pgrep", "-l", "tail").stdout, new RegExp(`^${t.pid} tail$`, "m"));
        assert.match(hurd(u, "pgrep", "-a", "tail").stdout, new RegExp(`^${t.pid} tail -f /dev/null$`, "m"));
        const ppid = conforms<Proc>("process", jsonLines(hurd(u, "ps", "--json", "-p", String(a.pid)).stdout))[0]!.ppid;
        assert.deepEqual(pids(hurd(u, "pgrep", "-P", String(ppid)).stdout), [a.pid]);
        assert.deepEqual(pids(hurd(u, "pgrep", "-u", "root", "-x", "tail").stdout), [t.pid]);
        const j = conforms<Proc>("process", jsonLines(hurd(u, "pgrep", "--json", "-x", "tail").stdout));
        assert.deepEqual(j.map((p) => [p.pid, p.comm]), [[t.pid, "tail"]]);
        assert.equal(hurd(u, "pgrep").code, 2, "no criteria: a usage error");

        const pidof = hurd(u, "pidof", "sleep");
        assert.equal(pidof.code, 0, pidof.stderr);
        assert.deepEqual(pidof.stdout, `${[a.pid, b.pid].sort((x, y) => y - x).join(" ")}\n`, "newest first, one line");
        assert.equal(hurd(u, "pidof", "-s", "sleep").stdout, `${Math.max(a.pid, b.pid)}\n`);
        assert.equal(hurd(u, "pidof", "nosuchprogram").code, 1);

        // pkill: race-free through handles; silent, or -e says what it did.
        const k = hurd(u, "pkill", "-f", "^sleep 3671");
        assert.equal(k.code, 0, k.stderr);
        assert.equal(k.stdout, "");
        assert.equal(await a.done, 143);
        const e = hurd(u, "pkill", "-KILL", "-e", "-x", "sleep");
        assert.equal(e.stdout, `sleep killed (pid ${b.pid})\n`);
        assert.equal(await b.done, 137);
        assert.equal(hurd(u, "pkill", "sleep").code, 1, "nothing left to match");
        const j2 = conforms<{ pid: number; result: string }>("signal-result", jsonLines(hurd(u, "pkill", "--signal", "TERM", "--json", "tail").stdout));
        assert.deepEqual(j2.map((r) => [r.pid, r.result]), [[t.pid, "signalled"]]);
        assert.equal(await t.done, 143);
      } finally {
        for (const s of [a, b, t]) s.proc.kill("SIGKILL");
      }
    });
  });

  describe("killall", () => {
    it("is silent on success; -w waits for the end; -s, -SIG, -r, -I select the signal and names", async () => {
      const a = await spawned(u, "sleep", "3681");
      const b = await spawned(u, "sleep", "3682");
      const r = hurd(u, "killall", "-w", "sleep");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout + r.stderr, "", "silent, as psmisc");
      // -w: both had ended when killall returned (their spawns end right after).
      assert.equal(await a.done, 143);
      assert.equal(await b.done, 143);

      const c = await spawned(u, "sleep", "3683");
      assert.equal(hurd(u, "killall", "-KILL", "-I", "SLEEP").code, 0);
      assert.equal(await c.done, 137);
      const d = await spawned(u, "tail", "-f", "/dev/null");
      assert.equal(hurd(u, "killall", "-s", "INT", "-r", "^ta.l$").code, 0);
      assert.equal(await d.done, 128 + 2);

      const none = hurd(u, "killall", "sleep");
      assert.equal(none.code, 1);
      assert.equal(none.stderr, "sleep: no process found\n");
      const quiet = hurd(u, "killall", "-q", "sleep");
      assert.equal(quiet.code, 1);
      assert.equal(quiet.stderr, "");
    });

    it("--json: one line per process, schema signal-result.json", async () => {
      const s = await spawned(u, "sleep", "3684");
      const r = hurd(u, "killall", "--json", "sleep");
      assert.equal(r.code, 0, r.stderr);
      const [x] = conforms<{ pid: number; serial: number; comm: string; result: string }>("signal-result", jsonLines(r.stdout));
      assert.deepEqual([x!.pid, x!.comm, x!.result], [s.pid, "sleep", "signalled"]);
      assert.equal(await s.done, 143);
    });
  });

  describe("top and wait", () => {
    it("top -b -n 2 -d 0.3: two screens, -d in seconds, an activity column from the kernel's message counts", () => {
      const t0 = Date.now();
      const r = hurd(u, "top", "-b", "-n", "2", "-d", "0.3");
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - t0 >= 300, "at least one delay of 0.3 s");
      const screens = r.stdout.trim().split(/\n\n(?=hurd top)/);
      assert.equal(screens.length, 2, r.stdout);
      const rows = table(screens[0]!.split("\n").slice(3).join("\n"));
      assert.deepEqual(Object.keys(rows[0]!), ["PID", "USER", "STAT", "MSG/S", "MSGS", "PORTS", "ELAPSED", "COMMAND"]);
      const proc = rows.find((x) => x.PID === "4")!;
      assert.ok(Number(proc.MSGS) > 0, "proc has exchanged messages (PI_FETCH_TASKINFO)");
      assert.ok(Number(proc.PORTS) > 0);
      const only = table(hurd(u, "top", "-b", "-n", "1", "-p", "4").stdout.split("\n").slice(3).join("\n"));
      assert.deepEqual(only.map((x) => x.PID), ["4"]);
    });

    it("top -b --json: one screen a line, schema top.json", () => {
      const r = hurd(u, "top", "-b", "-n", "1", "--json");
      assert.equal(r.code, 0, r.stderr);
      const [s] = conforms<{ total: number; processes: Array<{ pid: number; msgs: number }> }>("top", jsonLines(r.stdout));
      assert.equal(s!.total, s!.processes.length);
      assert.ok(s!.processes.find((p) => p.pid === 4)!.msgs > 0);
      assert.equal(hurd(u, "top", "--json").code, 2, "--json needs -b");
    });

    it("wait --json: schema wait.json", async () => {
      // The program ends when told (a file appears), once hurd wait holds its
      // handle: a fixed lifetime would race the command's start on a loaded machine.
      const go = join(mkdtempSync(join(tmpdir(), "hurd-wait-")), "go");
      const s = await spawned(u, "sh", "-c", `while [ ! -e ${go} ]; do sleep 0.1; done; exit 3`);
      const w8 = hurdBg(u, "wait", "--json", String(s.pid));
      await until(() => /waiting for pid/.test(w8.out()), 60000, "hurd wait to hold the process");
      writeFileSync(go, "");
      assert.equal(await w8.done, 3, w8.out());
      const [w] = conforms<{ pid: number; description: string }>("wait", jsonLines(w8.out().split("\n").filter((l) => l.startsWith("{")).join("\n")));
      assert.deepEqual([w!.pid, w!.description], [s.pid, "exited with status 3"]);
    });
  });

  describe("subhurd and web (main's commands, the same conventions)", () => {
    it("subhurd ls: usage against limits in columns, --json as schema subhurd.json; set changes them", () => {
      const c = hurd(u, "subhurd", "create", "qa", "--max-tasks", "50", "--max-queued-bytes", "1M", "--policy", "closed");
      assert.equal(c.code, 0, c.stderr);
      try {
        const rows = table(hurd(u, "subhurd", "ls").stdout);
        assert.deepEqual(Object.keys(rows[0]!), ["NAME", "PARENT", "NS", "DEPTH", "TASKS", "PORTS", "QUEUED", "HURDS", "POLICY"]);
        const qa = rows.find((x) => x.NAME === "qa")!;
        assert.match(qa.TASKS!, /^[1-9]\d*\/50$/, "its startup, auth, proc and pid 1 count against 50");
        assert.match(qa.QUEUED!, /^\d+\/1048576$/);
        assert.equal(qa.POLICY, "closed");
        const [j] = conforms<{ name: string; maxTasks: number; tasks: number; policy: string[]; depth: number }>("subhurd", jsonLines(hurd(u, "subhurd", "ls", "--json").stdout));
        assert.deepEqual([j!.name, j!.maxTasks, j!.policy, j!.depth], ["qa", 50, ["closed"], 1]);
        assert.ok(j!.tasks >= 4, `tasks ${j!.tasks}`);
        const set = hurd(u, "subhurd", "set", "qa", "--max-tasks", "60", "--policy", "none");
        assert.equal(set.code, 0, set.stderr);
        const [k] = conforms<{ maxTasks: number; policy: string[] }>("subhurd", jsonLines(hurd(u, "subhurd", "ls", "--json").stdout));
        assert.deepEqual([k!.maxTasks, k!.policy], [60, []]);
      } finally {
        assert.equal(hurd(u, "subhurd", "rm", "qa").code, 0);
      }
    });

    it("bad limits, an empty set and a bad --listen are usage errors: one line, 'Try --help', status 2, nothing booted", () => {
      for (const [args, msg, help] of [
        [["subhurd", "create", "bad", "--max-tasks", "many"], /--max-tasks: not a count: many/, "hurd subhurd"],
        [["subhurd", "create", "bad", "--max-queued-bytes", "3X"], /--max-queued-bytes: not a size: 3X/, "hurd subhurd"],
        [["subhurd", "create", "bad", "--policy", "open"], /--policy: open is not one of/, "hurd subhurd"],
        [["subhurd", "set", "bad"], /nothing to set/, "hurd subhurd"],
        [["web", "--listen", "7410"], /not HOST:PORT: 7410/, "hurd web"],
      ] as const) {
        const r = hurd(u, ...args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        const lines = r.stderr.trimEnd().split("\n");
        assert.equal(lines.length, 2, r.stderr);
        assert.match(lines[0]!, msg);
        assert.equal(lines[1], `Try '${help} --help' for more information.`);
      }
      assert.equal(hurd(u, "subhurd", "ls", "--json").stdout, "", "no subhurd was booted");
    });
  });

  describe("the command itself", () => {
    it("a closed pipe ends the command quietly (hurd ps --json | true)", () => {
      const r = spawnSync("sh", ["-c", `"${process.execPath}" "${hurdBin}" ps --json --hurd ${u.name} | true; echo "status $?"`], { env: compiledEnv(u.env), encoding: "utf8", timeout: 60000 });
      assert.equal(r.stderr, "", "no EPIPE stack trace");
      assert.equal(r.stdout, "status 0\n");
    });
  });
});

describe("hurd without a hurd: version, completion, usage and failures", () => {
  it("--version and -V print the package's version", () => {
    const v = (JSON.parse(readFileSync(new URL("../../packages/cli/package.json", import.meta.url), "utf8")) as { version: string }).version;
    assert.equal(hurd(null, "--version").stdout, `${v}\n`);
    assert.equal(hurd(null, "-V").stdout, `${v}\n`);
  });

  it("completion bash: sourced by bash, it completes subcommands, options and hurd names", () => {
    const r = hurd(null, "completion", "bash");
    assert.equal(r.code, 0, r.stderr);
    const state = mkdtempSync(join(tmpdir(), "hurd-compl-"));
    cpSync(new URL("../../packages/cli/package.json", import.meta.url).pathname, join(state, "alpha.json"));
    const script = `${r.stdout}
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _hurd; echo "\${COMPREPLY[*]}"; }
complete_words hurd p
complete_words hurd ps --so
complete_words hurd kill -s KI
complete_words hurd ps --hurd al
complete_words hurd subhurd c
complete_words hurd completion z
`;
    const b = spawnSync("bash", ["--norc", "--noprofile"], { input: script, encoding: "utf8", env: { ...process.env, HURD_STATE_DIR: state } });
    assert.equal(b.status, 0, b.stderr);
    const [cmds, sort, sig, names, subhurd, shell] = b.stdout.split("\n");
    assert.deepEqual(cmds!.split(" ").sort(), ["pgrep", "pidof", "pkill", "ps", "pstree"]);
    assert.equal(sort, "--sort");
    assert.equal(sig, "KILL");
    assert.equal(names, "alpha");
    assert.equal(subhurd, "create");
    assert.equal(shell, "zsh");
  });

  it("completion zsh and fish: scripts for those shells; anything else is a usage error", () => {
    assert.match(hurd(null, "completion", "zsh").stdout, /^#compdef hurd\n[\s\S]*compdef _hurd hurd/);
    const fish = hurd(null, "completion", "fish").stdout;
    assert.match(fish, /complete -c hurd -n __fish_use_subcommand -a pgrep /);
    assert.match(fish, /complete -c hurd -n '__fish_seen_subcommand_from ps' -l sort/);
    assert.equal(hurd(null, "completion", "tcsh").code, 2);
  });

  it("usage errors print one line and 'Try --help' and exit 2; failures one line and exit 1", () => {
    for (const [args, help] of [[["nosuch"], "hurd"], [["ps", "--bogus"], "hurd ps"], [["ps", "-o", "pid,nope"], "hurd ps"], [["wait"], "hurd wait"], [["wait", "abc"], "hurd wait"], [["pgrep", "-Z"], "hurd pgrep"], [["killall"], "hurd killall"], [["top", "-d", "x"], "hurd top"]] as const) {
      const r = hurd(null, ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.deepEqual(r.stderr.trimEnd().split("\n").length, 2, r.stderr);
      assert.match(r.stderr, /^hurd: \S.*\n/);
      assert.ok(r.stderr.endsWith(`Try '${help} --help' for more information.\n`), r.stderr);
    }
    const env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-none-")) };
    const r = spawnSync(process.execPath, [hurdBin, "ps"], { env: compiledEnv(env), encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^hurd: no hurd called hurd is up .*\n$/);
  });

  it("k8s new-subhurd prints an overlay for the subhurd", () => {
    const r = hurd(null, "k8s", "new-subhurd", "gamma", "--parent", "subhurd-a");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^namespace: hurd-gamma$/m);
    assert.match(r.stdout, /hurdmesh\.dev\/hurd: gamma/);
    assert.match(r.stdout, /app\.kubernetes\.io\/instance: gamma/);
    assert.match(r.stdout, /value: \{name: HURD_PARENT, value: subhurd-a\}/);
    assert.equal(hurd(null, "k8s", "new-subhurd", "Not_A_Name").code, 2);
    // The kernel takes a hurd's name of at most 32, a letter first: what hurd keys k8s can key.
    for (const bad of ["a".repeat(33), "9lives", "gamma-"]) {
      const r = hurd(null, "k8s", "new-subhurd", bad);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /at most 32/);
    }
    assert.equal(hurd(null, "k8s", "new-subhurd", "a".repeat(32)).code, 0);
  });
});

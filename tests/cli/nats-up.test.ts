// `hurd up --nats` with NATS authorization (issue 15): with no URL it runs a
// nats-server of its own, configured with keys it makes, and nothing of it
// outlives `hurd up`, SIGKILL included; given a server that lets anonymous
// clients in it refuses to boot and prints the configuration that server
// needs; `hurd keys nats-config` prints it and keeps the keys (0600). The
// programs pid 1 runs get the edge, never the bus; session files too.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";
import { processesWith } from "./kit.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;
const haveNats = spawnSync("sh", ["-c", "command -v nats-server"]).status === 0;


function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function run(state: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], { env: { ...process.env, HURD_STATE_DIR: state, HURD_NATS_KEYS: "" }, encoding: "utf8", timeout: 60_000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

describe("hurd up --nats with NATS authorization", { skip: !haveNats && "nats-server is not installed" }, () => {
  const started: ChildProcess[] = [];
  after(() => {
    for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
  });

  it("runs a nats-server of its own; pid 1's program and the session get the edge, never the bus; SIGKILL leaves nothing behind", async () => {
    const state = mkdtempSync(join(tmpdir(), "hurd-natsup-"));
    const envFile = join(state, "workload.env");
    const name = `own${process.pid}`;
    // HURD_NATS_KEYS empty: this hurd makes its own keys, whatever npm test's are.
    const env = { ...process.env, HURD_STATE_DIR: state, HURD_NATS_KEYS: "" };
    const u = spawn(process.execPath, ["--import", "tsx", main, "up", "--nats", "--grpc", "127.0.0.1:0", "--hurd", name, "--", "sh", "-c", `env > ${envFile}; exec sleep 300`], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.push(u);
    let out = "";
    u.stdout!.on("data", (d) => (out += d));
    u.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || u.exitCode !== null, 120_000, "hurd up --nats");
    assert.match(out, /a nats-server of its own, NATS authorization on/, out);
    await until(() => existsSync(envFile) && readFileSync(envFile, "utf8").includes("HURD_EDGE="), 30_000, "pid 1's program");
    const workload = readFileSync(envFile, "utf8");
    assert.doesNotMatch(workload, /NATS|nats:\/\/|_INBOX|HURD_TOKEN|BEGIN NATS USER JWT|SU[A-Z2-7]{50,}/, "no NATS address, user or token in the workload's environment");
    const session = readFileSync(join(state, `${name}.json`), "utf8");
    assert.doesNotMatch(session, /nats|NATS|SU[A-Z2-7]{50,}/, "the session file names the edge, not the bus");
    assert.match(session, /"edge"/);
    // The program's sh wrote the file and then execs sleep (through setpriv): wait for that, not just the file.
    await until(() => processesWith(state).map(cmdline).some((c) => /^sleep 300/.test(c)), 30_000, "pid 1's program to exec sleep");
    const mine = processesWith(state);
    const cmds = mine.map(cmdline);
    assert.ok(cmds.some((c) => /^nats-server -c /.test(c)), `a nats-server: ${cmds.join("\n")}`);
    assert.ok(cmds.some((c) => c.includes("kernel/src/main.ts")), "the kernel");
    assert.ok(cmds.some((c) => /^sleep 300/.test(c)), "pid 1's program");
    // The private directory (keys, server configuration, boot file) is gone once the hurd is up.
    const dir = /--nats-keys (\S+)\/nats-keys\.json/.exec(cmds.find((c) => c.includes("--nats-keys")) ?? "")?.[1];
    assert.ok(dir, "the kernel was given its keys");
    await until(() => !existsSync(dir), 10_000, `${dir} removed`);
    u.kill("SIGKILL");
    await until(() => processesWith(state).length === 0, 20_000, `every process of the hurd to end (left: ${processesWith(state).map(cmdline).join(" | ")})`);
  });

  it("refuses a nats-server that lets anonymous clients in, and prints the configuration it needs; hurd keys nats-config keeps the keys", async () => {
    const state = mkdtempSync(join(tmpdir(), "hurd-natsup-"));
    const anon = spawn("nats-server", ["-a", "127.0.0.1", "-p", "-1"], { stdio: ["ignore", "ignore", "pipe"] });
    started.push(anon);
    let log = "";
    anon.stderr!.on("data", (d) => (log += d));
    await until(() => /Listening for client connections on [^\s]*:(\d+)/.test(log), 10_000, "an anonymous nats-server");
    const port = /Listening for client connections on [^\s]*:(\d+)/.exec(log)![1];
    const name = `anon${process.pid}`;
    const r = run(state, "up", "--nats", `nats://127.0.0.1:${port}`, "--grpc", "127.0.0.1:0", "--hurd", name);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /lets anonymous clients in/);
    assert.match(r.stdout, /^operator: "eyJ/m);
    assert.match(r.stdout, /resolver: MEMORY/);
    assert.match(r.stdout, new RegExp(`port: ${port}`));
    const keysFile = join(state, `${name}.nats-keys.json`);
    assert.equal(statSync(keysFile).mode & 0o777, 0o600);
    // The same keys, so the same configuration, until --new.
    const c1 = run(state, "keys", "nats-config", "--hurd", name, "--port", port!);
    assert.equal(c1.code, 0, c1.stderr);
    assert.equal(c1.stdout, r.stdout);
    assert.match(c1.stderr, /NATS keys kept in/);
    const c2 = run(state, "keys", "nats-config", "--hurd", name, "--port", port!, "--new");
    assert.notEqual(c2.stdout, c1.stdout);
    assert.doesNotMatch(c2.stdout, /"S[OAU][A-Z2-7]{50,}"/, "the configuration holds JWTs, never a seed");
    // Nothing was started against the anonymous server.
    assert.deepEqual(processesWith(state), []);
    anon.kill();
  });

  it("says the hurd is up once pid 1 is set up, on a machine where pid 1's process takes seconds to load: hurd ps shows it with its args, and its program", async () => {
    const state = mkdtempSync(join(tmpdir(), "hurd-natsup-"));
    const name = `slow${process.pid}`;
    // A loaded machine, for pid 1's process alone: its Node takes 3 s more to start.
    const slow = join(state, "slow-runsystem.mjs");
    writeFileSync(slow, `if (process.argv.at(-1) === "runsystem" && process.argv.some((a) => /daemon\.[jt]s$/.test(a))) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);\n`);
    const env = { ...process.env, HURD_STATE_DIR: state, HURD_NATS_KEYS: "", NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${slow}` };
    const u = spawn(process.execPath, ["--import", "tsx", main, "up", "--nats", "--grpc", "127.0.0.1:0", "--hurd", name, "--", "sleep", "300"], { env, stdio: ["ignore", "pipe", "pipe"] });
    started.push(u);
    let out = "";
    u.stdout!.on("data", (d) => (out += d));
    u.stderr!.on("data", (d) => (out += d));
    try {
      await until(() => / is up in /.test(out) || u.exitCode !== null, 120_000, "hurd up --nats");
      assert.match(out, / is up in /, out);
      const ps = run(state, "ps", "-f", "--hurd", name);
      assert.equal(ps.code, 0, ps.stderr);
      assert.match(ps.stdout, /^\S+\s+1\s.*\/libexec\/runsystem/m, `pid 1 with its args:\n${ps.stdout}\n${out}`);
      assert.match(ps.stdout, /\ssleep 300$/m, `pid 1's program:\n${ps.stdout}`);
    } finally {
      u.kill("SIGTERM");
      await until(() => processesWith(state).length === 0, 20_000, "every process of the hurd to end").catch(() => {
        for (const p of processesWith(state)) process.kill(p, "SIGKILL");
      });
    }
  });
});

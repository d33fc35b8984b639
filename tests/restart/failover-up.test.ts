// `hurd up --nats --standby` (issue 18): the kernel with its log on
// JetStream and a second kernel replaying it, both given one edge address.
// SIGKILL of the leading kernel: the standby takes over, `hurd ps` answers
// through the same session file (the edge moved to the new leader on the
// same address), hurd up starts a new standby, and SIGTERM of hurd up ends
// every process it started.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds, natsUrl, until } from "../harness.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;

/** The kernels of hurd `name` (their command lines name it), with whether each was started leading (--journal) or as a standby. */
function kernelsOf(name: string): { pid: number; standby: boolean }[] {
  const out: { pid: number; standby: boolean }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (!argv.some((a) => /kernel\/(src|dist)\/main\.(ts|js)$/.test(a))) continue;
      const i = argv.indexOf("--system");
      if (i < 0 || argv[i + 1] !== name) continue;
      if (/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${d}/stat`, "utf8"))) continue;
      out.push({ pid: Number(d), standby: argv.includes("--standby") });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every process whose environment or command line names hurd `name` (what hurd up started). */
function processesOf(name: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${d}/stat`, "utf8"))) continue;
      const env = readFileSync(`/proc/${d}/environ`, "utf8").split("\0");
      const argv = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (env.includes(`HURD_SYSTEM=${name}`) || argv.includes(name)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe("hurd up --nats --standby: the kernel survives SIGKILL", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  const state = mkdtempSync(join(tmpdir(), "hurd-failover-up-"));
  const env = { ...process.env, HURD_STATE_DIR: state, HURD_LEAD_LEASE_MS: "800" };
  let up: ChildProcess | null = null;
  const name = `fu${process.pid}`;
  after(() => {
    up?.kill("SIGKILL");
    for (const p of processesOf(name)) process.kill(p, "SIGKILL");
    rmSync(state, { recursive: true, force: true });
  });

  const hurd = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", main, args[0]!, "--hurd", name, ...args.slice(1)], { env, encoding: "utf8", timeout: 60_000 });

  it("SIGKILL of the leading kernel: hurd ps answers through the standby on the same edge, a new standby starts, SIGTERM ends everything", async () => {
    up = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", name, "--nats", natsUrl(), "--standby"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    up.stdout!.on("data", (d) => (out += d));
    up.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => up!.on("exit", (c) => r(c)));
    await until(() => / is up in /.test(out) || up!.exitCode !== null, 120_000, "hurd up");
    assert.match(out, /is up in .*with a standby/, out);
    const ks = kernelsOf(name);
    assert.equal(ks.length, 2, `a leading kernel and a standby: ${JSON.stringify(ks)}`);
    const before = hurd("ps");
    assert.equal(before.status, 0, before.stderr);
    const session = readFileSync(join(state, `${name}.json`), "utf8");

    const leader = ks.find((k) => !k.standby)!;
    const killedAt = Date.now();
    process.kill(leader.pid, "SIGKILL");
    // The CLI's calls fail clearly while no kernel leads; then they answer through the new leader.
    let ps = hurd("ps");
    while (ps.status !== 0 && Date.now() - killedAt < 30_000) {
      assert.match(ps.stderr, /hurd:|cannot reach|UNAVAILABLE|error/i, `a failure is said, not hung: ${ps.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
      ps = hurd("ps");
    }
    assert.equal(ps.status, 0, `hurd ps after the takeover: ${ps.stderr}\nhurd up:\n${out}`);
    console.log(`# hurd ps answered again ${Date.now() - killedAt} ms after SIGKILL of the leading kernel (lead lease 800 ms)`);
    for (const pid of ["1", "2", "3", "4"]) assert.match(ps.stdout, new RegExp(`^\\s*${pid}\\s`, "m"), `pid ${pid} after the takeover:\n${ps.stdout}`);
    assert.equal(readFileSync(join(state, `${name}.json`), "utf8"), session, "the session file is unchanged: the edge is where it was");
    // A spawn works through the new leader: its state is the old one's, and it makes new processes.
    const spawned = hurd("spawn", "--", "true");
    assert.equal(spawned.status, 0, spawned.stderr);
    // hurd up replaced the dead kernel with a new standby.
    await until(() => /starting a new standby/.test(out) && kernelsOf(name).length === 2, 60_000, "a new standby");

    up.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running 20 s after SIGTERM"), 20_000))]);
    assert.equal(code, 0, `hurd up after SIGTERM: ${code}\n${out}`);
    await until(() => processesOf(name).length === 0, 10_000, "every process hurd up started to end");
    up = null;
  });
});

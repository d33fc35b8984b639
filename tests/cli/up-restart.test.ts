// `hurd up --nats` and its NATS going away (issue 18, item 4), on a
// nats-server of this suite's own at a fixed port: the hurd rides out a
// restart of it longer than the kernel's lease (every process stays, `hurd
// ps` answers again), and SIGTERM ends `hurd up` and everything it started
// within a bounded time even while NATS is down (init and each kernel get
// 5 s, then SIGKILL: 15 s at most).
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds, until } from "../harness.js";
import { freePort, OwnNats, sleep } from "../nats/kit.js";
import { hurd, table, up, type Up } from "./kit.js";

/** `pid` and its descendants. */
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

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").replace(/^.*?--import tsx /, "").slice(0, 120);
  } catch {
    return `pid ${pid}`;
  }
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** SIGTERM to hurd up; how long until it and every process it started are gone. */
async function terminate(u: Up, pids: number[]): Promise<number> {
  const t0 = Date.now();
  const names = new Map(pids.map((p) => [p, cmdline(p)]));
  const gone = new Map<number, number>();
  u.proc.kill("SIGTERM");
  await until(
    () => {
      for (const p of pids) if (!gone.has(p) && !alive(p)) gone.set(p, Date.now() - t0);
      return gone.size === pids.length;
    },
    30_000,
    `every process of hurd up to end (left: ${pids.filter(alive).join(", ")})`,
  );
  if (Date.now() - t0 > 10_000) console.log([...gone].map(([p, ms]) => `${names.get(p)}: ${ms} ms`).join("\n") + "\n" + u.out());
  await u.exited;
  return Date.now() - t0;
}

describe("hurd up --nats: NATS restarts, SIGTERM while it is down", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  it("rides out a NATS restart longer than the lease: every process stays, hurd ps answers again", async () => {
    const nats = new OwnNats(await freePort());
    await nats.start();
    let u: Up | null = null;
    let pids: number[] = [];
    try {
      u = await up(`nr${process.pid}`, ["--nats", nats.url, "--nats-insecure", "--", "sleep", "300"]);
      await until(() => hurd(u, "ps").code === 0, 30_000, "hurd ps");
      pids = treeOf(u.proc.pid!);
      assert.ok(pids.length >= 6, `hurd up, its kernel, init, proc, auth, runsystem: ${pids.length}`);
      // Every task but the `hurd ps` runs themselves (each asks as a task of its own).
      const tasks = (out: string) => table(out).filter((r) => !/^hurd ps/.test(r.COMMAND!)).map((r) => `${r.PID} ${r.COMMAND}`);
      const before = tasks(hurd(u, "ps").stdout);
      await nats.stop();
      // Longer than the kernel's lease (5 s): without the pause every task would be ended.
      await sleep(6_500);
      await nats.start();
      let ps = hurd(u, "ps");
      const back = Date.now();
      while (ps.code !== 0 && Date.now() - back < 20_000) {
        await sleep(500);
        ps = hurd(u, "ps");
      }
      assert.equal(ps.code, 0, ps.stderr);
      assert.deepEqual(tasks(ps.stdout), before, "the same tasks");
      assert.deepEqual(pids.filter((p) => !alive(p)), [], "no process ended");
      assert.equal(u.proc.exitCode, null, u.out());
      const took = await terminate(u, treeOf(u.proc.pid!));
      console.log(`after the restart, SIGTERM ended hurd up and its processes in ${took} ms`);
      assert.ok(took < 15_000, `${took} ms`);
    } finally {
      u?.proc.kill("SIGKILL");
      for (const p of pids.filter(alive)) process.kill(p, "SIGKILL");
      await nats.dispose();
    }
  });

  it("SIGTERM while NATS is down ends hurd up and everything it started within 15 s", async () => {
    const nats = new OwnNats(await freePort());
    await nats.start();
    let u: Up | null = null;
    let pids: number[] = [];
    try {
      u = await up(`nd${process.pid}`, ["--nats", nats.url, "--nats-insecure", "--", "sleep", "300"]);
      await until(() => hurd(u, "ps").code === 0, 30_000, "hurd ps");
      pids = treeOf(u.proc.pid!);
      await nats.stop();
      await sleep(1_000);
      const took = await terminate(u, pids);
      console.log(`NATS down: SIGTERM ended hurd up and its ${pids.length} processes in ${took} ms`);
      assert.ok(took < 15_000, `${took} ms`);
    } finally {
      u?.proc.kill("SIGKILL");
      for (const p of pids.filter(alive)) process.kill(p, "SIGKILL");
      await nats.dispose();
    }
  });
});

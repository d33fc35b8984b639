// End to end, docker-compose.ha.yml: the kernel with its log on JetStream
// and a hot standby, as compose runs them (kernel and kernel-standby in
// one network namespace, kernel-net's, behind the one published edge).
// The leading kernel's container process is SIGKILLed from the host, as a
// crash: kernel-standby takes over, and the hurd's processes, a program a
// `hurd spawn` runs and its ids are all there, through the same edge
// address; Docker restarts the killed one, which stands by.
//
// Needs what compose.test.ts needs (`sudo scripts/docker/ci.sh npm run
// test:e2e`, which CI runs).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";
import { notWanted as why, Stack } from "./kit.js";

if (why) {
  describe("docker compose end to end: a logged kernel and its standby", () => {
    it(`did NOT run: ${why}`, { skip: why ?? undefined }, () => {});
  });
} else {
  describe("docker compose end to end: a logged kernel and its standby", { timeout: 15 * 60_000 }, () => {
    const s = new Stack("e2e-ha", ["docker-compose.yml", "docker-compose.ci.yml", "docker-compose.ha.yml"], [], [["init", "hurd"]]);
    const logs = async (svc: string) => {
      const r = await s.compose("logs", "--no-color", svc);
      return r.stdout + r.stderr;
    };

    // The lead's lease shorter than compose's 5 s: the takeover below is about this plus a second.
    s.hooks({ HURD_LEAD_LEASE_MS: "2000" });
    const test = s.test.bind(s);

    test("boots with kernel leading a fresh log and kernel-standby standing by", async () => {
      const byPid = new Map(s.ps().map((p) => [p.pid, p.command]));
      assert.equal(byPid.get(1), "/libexec/runsystem");
      assert.equal(byPid.get(4), "/hurd/proc");
      assert.match(await logs("kernel"), /leading \(fresh log\)/);
      await until(async () => /log standby/.test(await logs("kernel-standby")), 60_000, "kernel-standby to stand by");
    });

    test("SIGKILL of the leading kernel's container: kernel-standby takes over behind the same edge, a spawned program keeps its pid, parent, group and session, and Docker's restart of the killed one stands by", async () => {
      const p = s.spawnProgram("--", "sleep", "600");
      const pid = await p.pid;
      const before = s.ps().find((x) => x.pid === pid);
      assert.ok(before, "the program is listed");
      const restarts = await s.crash("kernel");
      const t0 = Date.now();
      await until(async () => /leading \(took over/.test(await logs("kernel-standby")), 60_000, "kernel-standby to take over");
      await until(async () => s.hurd("ps", "--json").code === 0, 60_000, "hurd ps to answer through the new leader");
      console.log(`# hurd ps answered again ${((Date.now() - t0) / 1000).toFixed(1)} s after the SIGKILL`);
      const after = s.ps();
      assert.equal(after.find((x) => x.pid === 4)?.command, "/hurd/proc");
      const same = after.find((x) => x.pid === pid);
      assert.deepEqual(same && { ppid: same.ppid, pgid: same.pgid, sid: same.sid, command: same.command }, { ppid: before.ppid, pgid: before.pgid, sid: before.sid, command: before.command });
      assert.equal(p.child.exitCode, null, "hurd spawn still runs its program");
      assert.doesNotMatch(await logs("init"), /CRASH/);
      // Docker's restart policy brings the killed container back; its kernel finds the lead taken and stands by.
      await until(async () => Number(await s.inspect("kernel", "{{.RestartCount}}")) > restarts, 60_000, "Docker to restart the kernel's container");
      // (Both run --journal in compose's kernel service: a second start that does not lead is one standing by.)
      await until(async () => ((await logs("kernel")).match(/log journal \(lead lease/g) ?? []).length >= 2, 60_000, "the restarted kernel to start");
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(((await logs("kernel")).match(/leading \(/g) ?? []).length, 1, "the restarted kernel took the lead from a live leader");
      // The program's end is heard through the new leader.
      assert.equal(s.hurd("kill", "-s", "KILL", String(pid)).code, 0);
      assert.equal(await p.exited, 128 + 9);
    });
  });
}

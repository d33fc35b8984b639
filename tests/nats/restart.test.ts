// Every process rides out a NATS restart (issue 18, "NATS going away"): a
// nats-server of this suite's own is stopped under load and started again
// at the same address after an outage longer than the kernel's lease. The
// kernel pauses its leases while its bus is down and restarts them once it
// is back, so no task is ended for the outage; each call in flight
// completes or fails with ETIMEDOUT by its deadline, never hangs; the
// calls go on once NATS is back. Publishes while the bus is down are
// bounded (MACH_SEND_NO_BUFFER past MAX_OFFLINE_BYTES), a task attaching
// during the outage gets in once NATS is back, and a task whose bus stays
// down past its busLostMs ends itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, errnoName, HurdError } from "@hurdmesh/mach";
import { attachOverNats, MAX_OFFLINE_BYTES, NatsBus } from "@hurdmesh/mach/nats";
import { busKinds } from "../harness.js";
import { freePort, load, OwnNats, PING, sleep, startRig, type Rig } from "./kit.js";

const LEASE_MS = 1500;
const OUTAGE_MS = 2500;
const RPC_TIMEOUT_MS = 2000;

if (busKinds.includes("nats")) {
  describe("a NATS restart under load", () => {
    let nats: OwnNats;
    let rig: Rig;
    /** Closed however the test ends: an open connection would keep this process alive. */
    const extra: { close(): Promise<unknown> }[] = [];
    before(async () => {
      nats = new OwnNats(await freePort());
      await nats.start();
      rig = await startRig(nats.url, 8, { leaseMs: LEASE_MS, restartGraceMs: LEASE_MS }, RPC_TIMEOUT_MS);
    });
    after(async () => {
      for (const b of extra) await b.close().catch(() => {});
      await rig?.close();
      await nats?.dispose();
    });

    it("ends no task, fails calls only with ETIMEDOUT, and work resumes", async () => {
      const tasksBefore = rig.kernel.tasks.size;
      const short = await rig.task("short-lived", { busLostMs: 1000 });
      let shortEnded = false;
      short.onTerminated = () => (shortEnded = true);
      const late = rig.kernel.bootTask({ name: "attaches-during-the-outage" });
      // A task that never made an RPC: its first needs a reply port, a kernel call, first.
      const fresh = await rig.task("fresh", { timeoutMs: 5000 });
      const probe = await NatsBus.connect(nats.url, { name: "offline probe" });
      extra.push(probe);
      const l = load(rig);
      extra.unshift({ close: () => l.stop() });
      await sleep(1000);
      const before = l.stats.ok;
      assert.ok(before > 0, "calls complete before the outage");

      await nats.stop();
      const down = Date.now();
      await sleep(200);
      // Publishes while the bus is down are bounded.
      const chunk = new Uint8Array(64 * 1024);
      let sent = 0;
      const refused = (() => {
        try {
          for (;;) {
            probe.publish("probe.offline", chunk);
            sent += chunk.length;
            if (sent > 2 * MAX_OFFLINE_BYTES) return null;
          }
        } catch (e) {
          return HurdError.from(e);
        }
      })();
      assert.ok(refused, "a publish past the bound is refused");
      assert.equal(refused.code, Errno.MACH_SEND_NO_BUFFER, refused.message);
      assert.ok(sent <= MAX_OFFLINE_BYTES && sent > MAX_OFFLINE_BYTES - 2 * chunk.length, `refused after ${sent} bytes`);
      // A program starting now, attaching while NATS is away.
      const attaching = attachOverNats(nats.url, { system: rig.kernel.config.system, taskId: late.task.id, token: late.token, timeoutMs: 15_000 });
      extra.push({ close: () => attaching.then((t) => t.bus.close(), () => {}) });
      // The reply port's allocation counts against the RPC's deadline (1 s), not the task's default (5 s) before it.
      const t0 = Date.now();
      await assert.rejects(fresh.rpc(PING, 33000, new Uint8Array(0), { timeoutMs: 1000 }), (e: unknown) => HurdError.from(e).code === Errno.ETIMEDOUT);
      const took = Date.now() - t0;
      assert.ok(took >= 990 && took < 1600, `an RPC needing a reply port failed in ${took} ms`);
      await sleep(OUTAGE_MS - (Date.now() - down));
      assert.ok(rig.logs.some((x) => /leases paused/.test(x)), `the kernel paused its leases: ${rig.logs.join("\n")}`);
      await nats.start();
      l.mark();
      const lateTask = await attaching;
      assert.equal(lateTask.id, late.task.id);
      await sleep(3 * LEASE_MS);
      const s = await l.stop();

      const failed = [...s.failed].map(([c, n]) => `${errnoName(c)} x${n}`).join(", ");
      console.log(`outage ${OUTAGE_MS} ms: ${s.started} calls, ${s.ok} completed (${s.okAfter} after NATS was back), failed: ${failed || "none"}`);
      assert.equal(s.ok + [...s.failed.values()].reduce((a, b) => a + b, 0), s.started, "every call settled");
      assert.deepEqual([...s.failed.keys()].filter((c) => c !== Errno.ETIMEDOUT), [], `only ETIMEDOUT: ${[...s.messages].join("; ")}`);
      assert.ok(s.okAfter > 100, `calls go on after the restart (${s.okAfter})`);
      assert.ok(rig.logs.some((x) => /the bus is back/.test(x)), "the kernel restarted its leases");
      assert.deepEqual(
        rig.logs.filter((x) => /lease expired|not re-attached/.test(x) && !/short-lived/.test(x)),
        [],
        "no task but the short-lived one was ended",
      );
      for (const c of [rig.server, ...rig.clients.map((c) => c.task)]) assert.equal(c.detached, false, `task ${c.id} still attached`);
      assert.ok(rig.kernel.tasks.size >= tasksBefore, `${rig.kernel.tasks.size} tasks of ${tasksBefore}`);
      assert.equal(shortEnded, true, "a task whose bus was down past its busLostMs ended itself");
      assert.ok((rig.server.bus as NatsBus).reconnects >= 1, "the reconnect was counted");
      // The probe's held bytes went out at reconnect; it publishes again.
      probe.publish("probe.offline", chunk);
    });
  });
}

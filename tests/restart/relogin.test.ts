// A new NATS login for a task a process holds (services/kernel/src/
// nats-users.ts, taskNatsCredentials): the login that process connected
// with is revoked, so an essential task goes into its restart grace at once
// and a new process of it attaches straight away, instead of being refused
// EBUSY until the old holder's lease runs out. What a launcher restarting a
// killed server does (packages/boot/src/launchers.ts): it hears its child
// die and mints before nats-server's DISCONNECT event reaches the kernel.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { attachOverNats } from "@hurdmesh/mach/nats";
import { startTarget, type Target } from "../security/kit.js";

const haveNats = !process.env.HURD_TEST_BUSES || process.env.HURD_TEST_BUSES.split(",").includes("nats");

describe("a new login for a task a process holds (NATS authorization on)", { skip: !haveNats && "HURD_TEST_BUSES excludes nats" }, () => {
  let t: Target;
  before(async () => {
    t = await startTarget();
  });
  after(() => t?.stop());

  it("an essential task goes into its grace when its holder's login is replaced, and a new process attaches at once; a task with no holder loses nothing", async () => {
    // A task not yet held: its first login lapses nothing.
    const c = await t.initTask.taskCreate("not yet held");
    await t.initTask.natsCredentials(c.taskId, c.token);
    const fresh = t.kernel.tasks.get(c.taskId)!;
    assert.equal(fresh.attached, false);
    assert.equal(t.kernel.lapsed.has(fresh), false);

    const proc = t.kernel.tasks.get(t.procTaskId)!;
    assert.equal(proc.attached, true);
    const token = t.tokenOf(t.procTaskId)!;
    const creds = (await t.initTask.natsCredentials(t.procTaskId, token))!;
    assert.equal(proc.attached, false, "proc's task lapsed with the login its process held");
    assert.ok(t.kernel.lapsed.has(proc), "kept for its restart grace, not ended");
    // No retry on EBUSY (retryBusyMs 0): without the lapse the kernel refuses it, its holder's lease still running.
    const again = await attachOverNats(t.url, { system: t.system, taskId: t.procTaskId, token, credentials: creds, timeoutMs: 5_000 });
    try {
      assert.equal(proc.attached, true);
    } finally {
      again.abandon();
      await again.bus.close();
    }
  });
});

// Launch orders on an in-process bus: junk is answered EINVAL and the server
// keeps waiting; init asks again until a server listens; a server's failure
// to start reaches init as its errno; one order only.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, HurdError, LocalHub } from "@hurdmesh/mach";
import type { Launcher } from "@hurdmesh/init";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { LaunchReply } from "@hurdmesh/proto/hurd/boot/v1/boot";
import { awaitLaunch, BusLauncher, LaunchOrder } from "./launch.js";

const order = (o: Partial<LaunchOrder>) => LaunchOrder.encode(LaunchOrder.fromPartial(o)).finish();
const noLocal: Launcher = { launch: async () => assert.fail("no local launch expected") };

describe("launch orders (in-process bus)", () => {
  it("names the root hurd _ and a subhurd by its name", () => {
    assert.equal(subjectsOf("hurd").launch("", "proc"), "hurd.hurd.launch._.proc");
    assert.equal(subjectsOf("hurd").launch("alpha", "auth"), "hurd.hurd.launch.alpha.auth");
  });

  it("answers junk with EINVAL and keeps waiting for a real order", async () => {
    const hub = new LocalHub();
    const server = hub.connect();
    const initBus = hub.connect();
    const got: LaunchOrder[] = [];
    const waiting = awaitLaunch(server, "s.launch._.proc", async (o) => void got.push(o));
    const junks: Array<[string, Uint8Array]> = [
      // A length-delimited field whose length runs past the end; then JSON, as orders were once sent.
      ["not a LaunchOrder", new Uint8Array([0x12, 0x7f, 0x74])],
      ["JSON", new TextEncoder().encode(JSON.stringify({ taskId: 7, token: "t", hostPriv: 1 }))],
      ["empty", new Uint8Array(0)],
      ["no task", order({ token: "t", hostPriv: 1 })],
      ["no token", order({ taskId: 5, hostPriv: 1 })],
    ];
    for (const [what, junk] of junks) {
      const a = LaunchReply.decode(await initBus.request("s.launch._.proc", junk, 1000));
      assert.equal(a.errno, Errno.EINVAL, what);
    }
    const ok = LaunchReply.decode(await initBus.request("s.launch._.proc", order({ taskId: 7, token: "tok", hostPriv: 256 }), 1000));
    assert.equal(ok.errno, 0, ok.error);
    assert.deepEqual(await waiting, LaunchOrder.fromPartial({ taskId: 7, token: "tok", hostPriv: 256 }));
    assert.equal(got.length, 1);
    // One order only: nobody listens any more.
    await assert.rejects(initBus.request("s.launch._.proc", order({}), 300), (e) => HurdError.from(e).code === Errno.MACH_SEND_INVALID_DEST);
  });

  it("init asks again until the server's container listens, and runs the rest locally", async () => {
    const hub = new LocalHub();
    const local: string[] = [];
    const l = new BusLauncher(hub.connect(), { system: "s", hurd: "alpha", remote: ["proc"], local: { launch: async (n) => void local.push(n) } });
    const launched = l.launch("proc", 9, "tok", { hostPriv: 256 });
    await new Promise((r) => setTimeout(r, 600));
    const order = awaitLaunch(hub.connect(), subjectsOf("s").launch("alpha", "proc"), async () => {});
    await launched;
    assert.equal((await order).taskId, 9);
    await l.launch("runsystem", 10, "tok2", { hostPriv: 256 });
    assert.deepEqual(local, ["runsystem"]);
  });

  it("a server that fails to start answers with its errno, and init's launch fails with it", async () => {
    const hub = new LocalHub();
    const failed = awaitLaunch(hub.connect(), subjectsOf("s").launch("", "auth"), async () => {
      throw new HurdError(Errno.KERN_INVALID_TASK, "no such task");
    });
    const l = new BusLauncher(hub.connect(), { system: "s", hurd: "", remote: ["auth"], local: noLocal });
    await assert.rejects(l.launch("auth", 3, "bad", { hostPriv: 256 }), (e) => HurdError.from(e).code === Errno.KERN_INVALID_TASK);
    await assert.rejects(failed, (e) => HurdError.from(e).code === Errno.KERN_INVALID_TASK);
  });

  it("re-issues the order with a fresh login and restart when the server's container waits again; probes mint nothing; none once stopped", async () => {
    const hub = new LocalHub();
    let mints = 0;
    const store = { jwt: "store-jwt", seed: "SU", expires: 0 };
    const l = new BusLauncher(hub.connect(), {
      system: "s",
      hurd: "",
      remote: ["proc"],
      local: noLocal,
      relaunchMs: 50,
      stores: { proc: store },
      credentials: async () => ({ jwt: `login${++mints}`, seed: "SU" }),
    });
    const subject = subjectsOf("s").launch("", "proc");
    const first = awaitLaunch(hub.connect(), subject, async () => {});
    await l.launch("proc", 9, "tok", { hostPriv: 256 });
    const o1 = await first;
    assert.deepEqual([o1.restart, o1.nats?.jwt, o1.store?.jwt], [false, "login1", "store-jwt"]);
    // While the server runs, init only probes: no order, no login minted (a login revokes the task's previous one).
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(mints, 1);
    // Its process died; the container waits again.
    const second = awaitLaunch(hub.connect(), subject, async () => {});
    const o2 = await second;
    assert.deepEqual([o2.taskId, o2.token, o2.restart, o2.nats?.jwt, o2.store?.jwt], [9, "tok", true, "login2", "store-jwt"]);
    l.stop();
    const third = awaitLaunch(hub.connect(), subject, async () => {});
    const none = await Promise.race([third.then(() => "ordered"), new Promise((r) => setTimeout(() => r("none"), 300))]);
    assert.equal(none, "none", "a stopped launcher re-issues nothing (the hurd is going down)");
  });

  it("gives up after its deadline when no server ever listens", async () => {
    const l = new BusLauncher(new LocalHub().connect(), { system: "s", hurd: "", remote: ["proc"], local: noLocal, timeoutMs: 400 });
    await assert.rejects(l.launch("proc", 3, "t", { hostPriv: 256 }), (e) => HurdError.from(e).code === Errno.MACH_SEND_INVALID_DEST);
  });
});

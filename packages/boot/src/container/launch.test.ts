// Launch orders on an in-process bus: junk is answered EINVAL and the server
// keeps waiting; init asks again until a server listens; a server's failure
// to start reaches init as its errno; one order only.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, HurdError, LocalHub } from "@hurdmesh/mach";
import type { Launcher } from "@hurdmesh/init";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { awaitLaunch, BusLauncher, type LaunchOrder } from "./launch.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
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
    for (const junk of ["{nope", "null", JSON.stringify({ taskId: -1, token: "t", hostPriv: 1 }), JSON.stringify({ taskId: 5, hostPriv: 1 })]) {
      const a = JSON.parse(dec.decode(await initBus.request("s.launch._.proc", enc.encode(junk), 1000))) as { errno?: number };
      assert.equal(a.errno, Errno.EINVAL, junk);
    }
    const ok = JSON.parse(dec.decode(await initBus.request("s.launch._.proc", enc.encode(JSON.stringify({ taskId: 7, token: "tok", hostPriv: 256 })), 1000)));
    assert.deepEqual(ok, { ok: true });
    assert.deepEqual(await waiting, { taskId: 7, token: "tok", hostPriv: 256 });
    assert.equal(got.length, 1);
    // One order only: nobody listens any more.
    await assert.rejects(initBus.request("s.launch._.proc", enc.encode("{}"), 300), (e) => HurdError.from(e).code === Errno.MACH_SEND_INVALID_DEST);
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

  it("gives up after its deadline when no server ever listens", async () => {
    const l = new BusLauncher(new LocalHub().connect(), { system: "s", hurd: "", remote: ["proc"], local: noLocal, timeoutMs: 400 });
    await assert.rejects(l.launch("proc", 3, "t", { hostPriv: 256 }), (e) => HurdError.from(e).code === Errno.MACH_SEND_INVALID_DEST);
  });
});

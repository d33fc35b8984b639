// A task whose own connection is down past its lease while the kernel's
// stays up (its NATS node lost, the kernel on another) has been ended by
// the kernel meanwhile: once its bus is back, the runtime asks the kernel
// and ends itself (onTerminated), instead of living on as a task nobody
// knows. A task the kernel still knows carries on. Two nats-servers with a
// route; the one the task is on advertises no other node to its clients,
// so its connection can only come back there.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "@hurdmesh/mach";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { busKinds, until } from "../harness.js";
import { freePort, OwnNats, sleep } from "./kit.js";

if (busKinds.includes("nats")) {
  describe("a task's own NATS node lost past its lease, the kernel's not", () => {
    let a: OwnNats;
    let b: OwnNats;
    const closers: { close(): Promise<unknown> }[] = [];
    let kernel: Kernel;
    let traps: TrapServer;
    const logs: string[] = [];
    before(async () => {
      const [ca, cb, ra, rb] = [await freePort(), await freePort(), await freePort(), await freePort()];
      a = new OwnNats(ca, `cluster {\n  name: hurdended\n  host: 127.0.0.1\n  port: ${ra}\n  routes: [nats-route://127.0.0.1:${rb}]\n}`, "node-a");
      b = new OwnNats(cb, `cluster {\n  name: hurdended\n  host: 127.0.0.1\n  port: ${rb}\n  no_advertise: true\n  routes: [nats-route://127.0.0.1:${ra}]\n}`, "node-b");
      await a.start();
      await b.start();
      const pa = await NatsBus.connect(a.url, "route probe a");
      const pb = await NatsBus.connect(b.url, "route probe b");
      closers.push(pa, pb);
      pb.subscribe("probe.route", (_s, d, reply) => reply && pb.publish(reply, d));
      await pb.flush();
      await until(() => pa.request("probe.route", new Uint8Array(1), 200).then(() => true, () => false), 10_000, "the route");
      kernel = new Kernel({ system: `ne${process.pid}`, leaseMs: 1000, restartGraceMs: 1000 }, { log: (l) => logs.push(l) });
      const kbus = await NatsBus.connect(a.url, "kernel");
      closers.push(kbus);
      traps = new TrapServer(kernel, kbus);
      traps.start();
      await kbus.flush();
    });
    after(async () => {
      traps?.stop();
      kernel?.close();
      for (const c of closers) await c.close().catch(() => {});
      await a?.dispose();
      await b?.dispose();
    });

    const attach = async (url: string, name: string): Promise<Task> => {
      const bt = kernel.bootTask({ name });
      const t = await attachOverNats(url, { system: kernel.config.system, taskId: bt.task.id, token: bt.token, timeoutMs: 2000 });
      closers.push(t.bus);
      return t;
    };

    it("ends itself once back, told by the kernel; a task on the kernel's node carries on", async () => {
      const lost = await attach(b.url, "on the lost node");
      const kept = await attach(a.url, "on the kernel's node");
      let ended = false;
      lost.onTerminated = () => (ended = true);
      await lost.allocate();
      await b.stop();
      // The kernel hears nothing from it for longer than its lease, and ends it.
      await until(() => logs.some((l) => l.includes(`task ${lost.id} `) && /lease expired/.test(l)), 10_000, "the kernel to end the silent task");
      assert.equal(ended, false, "not ended before it can know (its bus is down, its busLostMs is 120 s)");
      assert.equal(lost.detached, false);
      await b.start();
      await until(() => ended, 10_000, "the task to end itself once its bus is back");
      assert.equal(lost.detached, true);
      await sleep(1500);
      assert.equal(kept.detached, false, "the task on the kernel's node is untouched");
      await kept.allocate();
    });
  });
}

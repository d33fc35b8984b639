// The loss of one node of a NATS cluster is invisible to a hurd (issue 18,
// "NATS going away"; the Kubernetes cluster overlay runs 3 nodes): a local
// cluster of three nats-servers with routes, every connection given the
// three URLs (comma-separated, as NATS_URL or --nats takes them); the node
// the kernel is connected to is stopped under load. Its connections move to
// the other nodes; a few calls in flight time out (ETIMEDOUT by their
// deadline), none hangs, no task is ended, and the calls go on.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, errnoName } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import { acceptsAnonymous } from "@hurdmesh/mach/nats-auth";
import { busKinds, until } from "../harness.js";
import { freePort, load, OwnNats, sleep, startRig, type Rig } from "./kit.js";

const RPC_TIMEOUT_MS = 2000;

if (busKinds.includes("nats")) {
  describe("a NATS cluster loses a node under load", () => {
    const nodes: OwnNats[] = [];
    let rig: Rig;
    let urls = "";
    const extra: { close(): Promise<unknown> }[] = [];
    before(async () => {
      const client = [await freePort(), await freePort(), await freePort()];
      const route = [await freePort(), await freePort(), await freePort()];
      for (let i = 0; i < 3; i++) {
        const routes = route.filter((_r, j) => j !== i).map((r) => `nats-route://127.0.0.1:${r}`);
        nodes.push(new OwnNats(client[i]!, `cluster {\n  name: hurdtest\n  host: 127.0.0.1\n  port: ${route[i]}\n  routes: [${routes.join(", ")}]\n}`, `node${i}`));
      }
      await Promise.all(nodes.map((n) => n.start()));
      urls = nodes.map((n) => n.url).join(",");
      // The routes are up once a message crosses from one node to another.
      const a = await NatsBus.connect(nodes[0]!.url, "route probe a");
      const b = await NatsBus.connect(nodes[2]!.url, "route probe b");
      extra.push(a, b);
      b.subscribe("probe.route", (_s, d, reply) => reply && b.publish(reply, d));
      await b.flush();
      await until(() => a.request("probe.route", new Uint8Array(1), 200).then(() => true, () => false), 10_000, "the cluster's routes");
      // The fabric probe takes the list as the connections do (these nodes are anonymous).
      assert.equal(await acceptsAnonymous(urls), true);
      rig = await startRig(urls, 8, { leaseMs: 2000, restartGraceMs: 2000 }, RPC_TIMEOUT_MS);
    });
    after(async () => {
      for (const b of extra) await b.close().catch(() => {});
      await rig?.close();
      for (const n of nodes) await n.dispose();
    });

    it("moves the connections to the other nodes: a few ETIMEDOUT, no task ended, work goes on", async () => {
      const l = load(rig);
      extra.unshift({ close: () => l.stop() });
      await sleep(1000);
      assert.ok(l.stats.ok > 0, "calls complete on the cluster");
      // The node the kernel is on: its loss is the one that matters most.
      const server = rig.kbus.nc.getServer();
      const victim = nodes.find((n) => server.endsWith(`:${n.port}`));
      assert.ok(victim, `the kernel's server ${server} is one of the nodes`);
      const spread = new Set([rig.server, ...rig.clients.map((c) => c.task)].map((t) => (t.bus as NatsBus).nc.getServer()));
      await victim.stop();
      const down = Date.now();
      await until(() => rig.kbus.disconnectedSince === 0 && rig.kbus.nc.getServer() !== server, 10_000, "the kernel on another node");
      const moved = Date.now() - down;
      l.mark();
      await sleep(3000);
      const s = await l.stop();
      const failed = [...s.failed.values()].reduce((a, b) => a + b, 0);
      console.log(
        `node ${victim.name} stopped (the kernel's; clients on ${spread.size} nodes): kernel reconnected in ${moved} ms; ${s.started} calls, ${s.ok} completed (${s.okAfter} after), failed: ${[...s.failed].map(([c, n]) => `${errnoName(c)} x${n}`).join(", ") || "none"}`,
      );
      assert.equal(s.ok + failed, s.started, "every call settled");
      assert.deepEqual([...s.failed.keys()].filter((c) => c !== Errno.ETIMEDOUT), [], `only ETIMEDOUT: ${[...s.messages].join("; ")}`);
      assert.ok(failed <= 0.05 * s.started, `a few failed: ${failed} of ${s.started}`);
      assert.ok(s.okAfter > 100, `calls go on (${s.okAfter})`);
      assert.deepEqual(rig.logs.filter((x) => /lease expired|not re-attached|never attached/.test(x)), [], "no task ended");
      for (const t of [rig.server, ...rig.clients.map((c) => c.task)]) assert.equal(t.detached, false, `task ${t.id} attached`);
    });
  });
}

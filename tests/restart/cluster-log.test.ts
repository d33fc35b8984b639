// The kernel's log on a NATS cluster (issue 18: "R3 in the cluster
// overlay"; "the loss of one NATS node is invisible to the hurds"): three
// nats-servers with routes and JetStream, a leading kernel and a standby
// with --log-replicas 3, a client and an echo server on the bus. One node
// is stopped under load, then started again and another stopped, then the
// leading kernel is SIGKILLed while a node is down: the log (replicated on
// three nodes, acknowledged by two) keeps every entry, the standby takes
// over on the two nodes left, and the same tasks, names and rights serve
// the same RPCs.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MsgType, type Received, type Task } from "@hurdmesh/mach";
import { attachOverNats, JetStreamLog, NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, until } from "../harness.js";
import { freePort, OwnNats, sleep } from "../nats/kit.js";
import { waitFor, type KernelProc } from "./kernel-proc.js";

const MAIN = new URL("../../services/kernel/src/main.ts", import.meta.url).pathname;

// Three nats-servers and the kernels on a 2-core machine: a load run of its own (`npm run test:cluster`), not in the default suite.
const skip = !busKinds.includes("nats") ? "HURD_TEST_BUSES excludes nats" : process.env.HURD_TEST_CLUSTER !== "1" ? "a load run: npm run test:cluster" : false;
describe("the kernel's log on a 3-node NATS cluster (R3)", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "cluster-log-"));
  const nodes: OwnNats[] = [];
  const procs: (KernelProc & { exited: Promise<number | null> })[] = [];
  const tasks: Task[] = [];
  let urls = "";
  before(async () => {
    const client = [await freePort(), await freePort(), await freePort()];
    const route = [await freePort(), await freePort(), await freePort()];
    for (let i = 0; i < 3; i++) {
      const routes = route.filter((_r, j) => j !== i).map((r) => `nats-route://127.0.0.1:${r}`);
      nodes.push(new OwnNats(client[i]!, `jetstream {\n  store_dir: "${join(dir, `js${i}`)}"\n}\ncluster {\n  name: hurdlog\n  host: 127.0.0.1\n  port: ${route[i]}\n  routes: [${routes.join(", ")}]\n}`, `log${i}`));
    }
    await Promise.all(nodes.map((n) => n.start()));
    urls = nodes.map((n) => n.url).join(",");
    // JetStream is up on the cluster once an R3 stream can be made (its meta leader elected, every peer known).
    const probe = await NatsBus.connect(urls, "cluster probe");
    try {
      await until(() => JetStreamLog.open(probe.nc, `probe${process.pid}`, { replicas: 3, timeoutMs: 2000 }).then(() => true, () => false), 30_000, "an R3 stream on the cluster");
    } finally {
      await probe.close();
    }
  });
  after(async () => {
    stopping = true;
    for (const k of procs) if (k.p.exitCode === null && k.p.signalCode === null) k.p.kill("SIGKILL");
    for (const t of tasks) t.abandon();
    for (const t of tasks) await t.bus.close().catch(() => {});
    for (const n of nodes) await n.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  let stopping = false;
  /** A kernel; one that exits on its own (deposed, or gave up) is replaced by a new standby, as hurd up and Kubernetes do. */
  function kernel(system: string, args: string[]) {
    const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--nats", urls, "--nats-insecure", "--system", system, "--grpc", "127.0.0.1:0", "--lease-ms", "6000", "--lead-lease-ms", "1500", "--log-replicas", "3", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const k = { p, out: "", exited: new Promise<number | null>((r) => p.on("exit", (c) => r(c))) };
    p.stdout!.on("data", (d) => (k.out += d));
    p.stderr!.on("data", (d) => (k.out += d));
    p.on("exit", (_c, sig) => {
      if (!stopping && sig !== "SIGKILL") kernel(system, ["--standby"]);
    });
    procs.push(k);
    return k;
  }
  const alive = () => procs.filter((k) => k.p.exitCode === null && k.p.signalCode === null);
  const outs = () => procs.map((k) => `kernel ${k.p.pid} (${k.p.exitCode ?? k.p.signalCode ?? "running"}):\n${k.out.slice(-1500)}`).join("\n");

  it("one node down at a time, and the leading kernel killed while one is: nothing acknowledged is lost, the hurd serves on", { timeout: 180_000 }, async () => {
    const system = `cl${process.pid}`;
    const bootFile = join(dir, "boot.json");
    const leader = kernel(system, ["--journal", "--boot", "client", "--boot-file", bootFile]);
    await waitFor(leader, /leading \(fresh log\)/, 30_000);
    const standby = kernel(system, ["--standby"]);
    await waitFor(standby, /log standby/, 30_000);
    const boot = JSON.parse(readFileSync(bootFile, "utf8")) as { tasks: { client: { taskId: number; token: string } } };
    const attach = async (taskId: number, token: string) => {
      const t = await attachOverNats(urls, { name: `cluster task ${taskId}`, system, taskId, token, credentials: null, timeoutMs: 3000 });
      tasks.push(t);
      return t;
    };
    const client = await attach(boot.tasks.client.taskId, boot.tasks.client.token);
    const r = await client.taskCreate("echo");
    const server = await attach(r.taskId, r.token);
    const svc = await server.allocate();
    server.receive(svc, (m: Received) => server.send({ destination: m.reply, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: m.id + 100, body: m.body }));
    const send = (await client.extractRight(r.task, svc, MsgType.MSG_TYPE_MAKE_SEND)).name;
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const s = `n${ok}`;
        try {
          const m = await client.rpc(send, 4000, enc.encode(s), { timeoutMs: 3000 });
          assert.equal(dec.decode(m.body), s);
          ok++;
        } catch (e) {
          failures.push((e as Error).message);
          await sleep(50);
        }
      }
    })();
    const more = async (n: number, what: string) => {
      const from = ok;
      const t0 = Date.now();
      while (ok < from + n && Date.now() - t0 < 30_000) await sleep(20);
      assert.ok(ok >= from + n, `${what}: ${ok - from} echoes in 30 s (failures: ${failures.slice(-5).join("; ")})\n${outs()}`);
    };
    try {
      await more(20, "before any node stops");
      for (const i of [0, 1]) {
        await nodes[i]!.stop();
        await more(30, `with node ${i} down`);
        await nodes[i]!.start();
        await more(10, `with node ${i} back`);
      }
      // The leading kernel killed while node 2 is down: the standby takes over on the two nodes left.
      await nodes[2]!.stop();
      await more(10, "with node 2 down");
      // A standby ready to take over first (one that replaced a kernel which exited may still be starting).
      await until(() => alive().some((k) => /log standby/.test(k.out) && !/"leading \(/.test(k.out)), 60_000, `a standby ready:\n${outs()}`);
      // The kernel leading now (the last to say so among those alive), killed; another takes over.
      const lead = alive().filter((k) => /"leading \(/.test(k.out)).at(-1)!;
      assert.ok(lead, `a kernel leads:\n${outs()}`);
      const standbys = alive().filter((k) => k !== lead);
      assert.ok(standbys.length > 0, `a standby is there:\n${outs()}`);
      lead.p.kill("SIGKILL");
      await until(() => standbys.some((k) => /leading \(took over/.test(k.out)), 30_000, `a standby taking over:\n${outs()}`);
      await more(20, "after the takeover, node 2 still down");
      await nodes[2]!.start();
      await more(10, "with every node back");
    } finally {
      running = false;
      await load;
      stopping = true;
    }
    // The echo server's task, through the name the client got for it from the first leader.
    assert.equal((await client.call("taskInfo", { task: r.task })).taskId, r.taskId);
    await server.allocate();
    const lapses = procs.map((k) => k.out).join("").match(/could not be renewed within its lease/g)?.length ?? 0;
    console.log(`# ${ok} echoes across three node stops and a kernel kill; ${failures.length} failed (${[...new Set(failures.map((f) => f.replace(/\d+/g, "N")))].join("; ")}); ${lapses} leases lapsed and renewed; ${procs.length - 2} kernels started in place of one that exited or was killed`);
    await server.detach();
    await client.detach();
  });
});

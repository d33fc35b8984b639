// The kernel survives kill -9 (services/kernel/src/failover.ts, first
// slice): two hurd-kernel processes on the nats-server `npm test` starts
// with -js, one leading with its log (--journal), one replaying it
// (--standby). Killing the leader hands its tasks, names and rights to the
// standby; a leader paused past its lease is fenced out when it wakes.
// This slice does not log the NATS users the kernel mints, so the kernels
// run with authorization off, on an anonymous nats-server of this file's own.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MsgType, Task, type Received } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import { startNatsServer, type NatsServerProcess } from "@hurdmesh/mach/nats-auth";
import { busKinds } from "../harness.js";

const MAIN = new URL("../../services/kernel/src/main.ts", import.meta.url).pathname;
const LEAD_LEASE = 800;

interface Proc {
  p: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

let server: NatsServerProcess;
const natsUrl = () => server.url;

function kernel(system: string, args: string[]): Proc {
  const env: NodeJS.ProcessEnv = { ...process.env, HURD_NATS_AUTH: "off" };
  delete env.HURD_NATS_KEYS;
  const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--nats", natsUrl(), "--system", system, "--lease-ms", "4000", "--lead-lease-ms", String(LEAD_LEASE), ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  const k: Proc = { p, out: "", exited: new Promise((r) => p.on("exit", (c) => r(c))) };
  p.stdout!.on("data", (d) => (k.out += d));
  p.stderr!.on("data", (d) => (k.out += d));
  return k;
}

async function waitFor(k: Proc, text: RegExp, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!text.test(k.out)) {
    if (Date.now() - t0 > ms) throw new Error(`no ${text} within ${ms} ms; output:\n${k.out}`);
    if (k.p.exitCode !== null) throw new Error(`kernel exited (${k.p.exitCode}) before ${text}; output:\n${k.out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now();
}

describe("kernel failover (JetStream log, standby)", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  const procs: Proc[] = [];
  const buses: NatsBus[] = [];
  const dir = mkdtempSync(join(tmpdir(), "failover-"));
  before(async () => {
    const conf = join(dir, "nats.conf");
    writeFileSync(conf, `host: "127.0.0.1"\nport: -1\njetstream: { store_dir: ${JSON.stringify(join(dir, "js"))} }\n`);
    server = await startNatsServer(conf);
  });
  after(async () => {
    for (const k of procs) if (k.p.exitCode === null && k.p.signalCode === null) k.p.kill("SIGKILL");
    for (const b of buses) await b.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A leader with a boot task "client", a standby, and the client attached over NATS. */
  async function pair(system: string) {
    const bootFile = join(dir, `${system}.json`);
    const leader = kernel(system, ["--journal", "--boot", "client", "--boot-file", bootFile]);
    procs.push(leader);
    await waitFor(leader, /leading \(fresh log\)/, 20_000);
    const standby = kernel(system, ["--standby"]);
    procs.push(standby);
    await waitFor(standby, /log standby/, 20_000);
    const boot = JSON.parse(readFileSync(bootFile, "utf8")) as { tasks: { client: { taskId: number; token: string } } };
    const bus = await NatsBus.connect(natsUrl());
    buses.push(bus);
    const client = await Task.attach({ bus, system, taskId: boot.tasks.client.taskId, token: boot.tasks.client.token, timeoutMs: 3000 });
    return { leader, standby, client, bus };
  }

  it("SIGKILL of the leader: the standby takes over with the same tasks, names and rights, within a bounded time", async () => {
    const system = `fo${process.pid}a`;
    const { leader, standby, client, bus } = await pair(system);
    // A server task with a port the client holds a send right to, answering RPCs by echo.
    const r = await client.taskCreate("echo");
    const server = await Task.attach({ bus, system, taskId: r.taskId, token: r.token, timeoutMs: 3000 });
    const svc = await server.allocate();
    server.receive(svc, (m: Received) => server.send({ destination: m.reply, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: m.id + 100, body: m.body }));
    const send = (await client.extractRight(r.task, svc, MsgType.MSG_TYPE_MAKE_SEND)).name;
    const others = [];
    for (let i = 0; i < 20; i++) others.push(await client.taskCreate(`worker${i}`));
    const enc = new TextEncoder();
    // A workload in flight while the leader dies: echoes, one after another.
    let ok = 0;
    let failed = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        try {
          const m = await client.rpc(send, 4000, enc.encode(`n${ok}`), { timeoutMs: 1500 });
          assert.equal(new TextDecoder().decode(m.body), `n${ok}`);
          ok++;
        } catch {
          failed++;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
    })();
    while (ok < 20) await new Promise((res) => setTimeout(res, 20));
    const killedAt = Date.now();
    leader.p.kill("SIGKILL");
    const servedAt = await waitFor(standby, /leading \(took over after/, 10_000);
    const takeoverMs = servedAt - killedAt;
    console.log(`# takeover: ${takeoverMs} ms from SIGKILL to the standby serving (lead lease ${LEAD_LEASE} ms)`);
    assert.ok(takeoverMs < LEAD_LEASE + 3000, `takeover took ${takeoverMs} ms`);
    const before = ok;
    const t0 = Date.now();
    while (ok < before + 20 && Date.now() - t0 < 8000) await new Promise((res) => setTimeout(res, 20));
    running = false;
    await load;
    assert.ok(ok >= before + 20, `echoes through the new leader: ${ok - before} (failed ${failed})`);
    // The tasks made through the old leader are there, under the same ids, through the same names.
    for (const o of others) {
      const info = await client.call("taskInfo", { task: o.task });
      assert.equal(info.taskId, o.taskId);
    }
    // The server's token still proves it: a call of its own works.
    await server.allocate();
    await server.detach();
    await client.detach();
  });

  it("a leader paused past its lease (SIGSTOP) is fenced when it wakes (SIGCONT): it writes nothing and exits", async () => {
    const system = `fo${process.pid}b`;
    const { leader, standby, client } = await pair(system);
    await client.taskCreate("before");
    leader.p.kill("SIGSTOP");
    await waitFor(standby, /leading \(took over after/, 10_000);
    const after1 = await client.taskCreate("through the new leader");
    leader.p.kill("SIGCONT");
    const code = await Promise.race([leader.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 5000))]);
    assert.equal(code, 3, `the old leader: ${code}; output:\n${leader.out}`);
    assert.match(leader.out, /deposed|lease ran out|refused/);
    // The new leader goes on serving, its state intact.
    const info = await client.call("taskInfo", { task: after1.task });
    assert.equal(info.taskId, after1.taskId);
    await client.detach();
  });
});

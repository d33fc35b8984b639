// The kernel survives kill -9 (services/kernel/src/failover.ts, first
// slice): two hurd-kernel processes on the nats-server `npm test` starts
// with -js, one leading with its log (--journal), one replaying it
// (--standby). Killing the leader hands its tasks, names and rights to the
// standby; a leader paused past its lease is fenced out when it wakes.
// On the nats-server `npm test` starts (operator mode, authorization on,
// JetStream): the kernels mint every task's NATS user from the log's random
// bytes (nats-users.ts), so tasks keep their credentials across a takeover
// and the new leader revokes a dead task's user (its live connections are
// cut; that test runs on a server and account of its own, see ownFabric);
// no task's user reaches the log or the leadership key.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MsgType, type Received, type Task } from "@hurdmesh/mach";
import { inboxOf, kernelLogSubjectsOf, storeSubjectsOf } from "@hurdmesh/mach/internal";
import { attachOverNats, JetStreamLog, NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsBus, natsKeys, natsUrl } from "../harness.js";
import { waitFor, type KernelProc } from "./kernel-proc.js";

const MAIN = new URL("../../services/kernel/src/main.ts", import.meta.url).pathname;
const LEAD_LEASE = 800;

interface Proc extends KernelProc {
  exited: Promise<number | null>;
}

type Creds = { jwt: string; seed: string; expires: number } | undefined;

/** Where the kernels run: the suite's server and keys (npm test's), or a fabric of a test's own. */
interface Fabric {
  url: string;
  /** HURD_NATS_KEYS for the kernels (undefined: the environment's). */
  keysFile?: string;
}

/**
 * A nats-server with keys of its own (operator mode, JetStream). Every
 * kernel pushes its account's JWT with its own revocations only, so kernels
 * of other suites sharing npm test's account overwrite each other's: a test
 * of revocations needs an account no other kernel pushes.
 */
async function ownFabric(dir: string): Promise<Fabric & { stop(): Promise<void> }> {
  const { fabricServerConfig, makeFabricKeys, startNatsServer, writeFabricKeys } = await import("@hurdmesh/mach/nats-auth");
  const keys = makeFabricKeys("failover", { jetstream: true });
  const keysFile = join(dir, "own-keys.json");
  writeFabricKeys(keysFile, keys);
  const conf = join(dir, "own-nats.conf");
  writeFileSync(conf, fabricServerConfig(keys, { port: -1, jetstreamDir: join(dir, "own-js") }), { mode: 0o600 });
  const server = await startNatsServer(conf);
  return { url: server.url, keysFile, stop: () => server.stop() };
}

/** A kernel process on `fabric` (default the suite's server), with its keys (HURD_NATS_KEYS) or, under HURD_NATS_AUTH=off, none. */
function kernel(system: string, args: string[], fabric: Fabric = { url: natsUrl() }, extra: NodeJS.ProcessEnv = {}): Proc {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(fabric.keysFile ? { HURD_NATS_KEYS: fabric.keysFile } : {}), ...extra };
  const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--nats", fabric.url, "--system", system, "--grpc", "127.0.0.1:0", "--lease-ms", "4000", "--lead-lease-ms", String(LEAD_LEASE), ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  const k: Proc = { p, out: "", exited: new Promise((r) => p.on("exit", (c) => r(c))) };
  p.stdout!.on("data", (d) => (k.out += d));
  p.stderr!.on("data", (d) => (k.out += d));
  return k;
}

describe("kernel failover (JetStream log, standby)", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  const procs: Proc[] = [];
  const tasks: Task[] = [];
  const buses: NatsBus[] = [];
  const dir = mkdtempSync(join(tmpdir(), "failover-"));
  const servers: { stop(): Promise<void> }[] = [];
  after(async () => {
    for (const k of procs) if (k.p.exitCode === null && k.p.signalCode === null) k.p.kill("SIGKILL");
    for (const t of tasks) t.abandon();
    for (const t of tasks) await t.bus.close().catch(() => {});
    for (const b of buses) await b.close();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Attaches as task `taskId` over its own connection, as its own NATS user (anonymous with authorization off). */
  async function attach(system: string, taskId: number, token: string, creds: Creds, url = natsUrl()): Promise<Task> {
    const t = await attachOverNats(url, { name: `failover task ${taskId}`, system, taskId, token, credentials: creds?.jwt ? creds : null, timeoutMs: 3000 });
    tasks.push(t);
    return t;
  }

  /** A leader with a boot task "client", a standby, and the client attached over NATS; `leaderEnv`: the leader's alone. */
  async function pair(system: string, fabric: Fabric = { url: natsUrl() }, leaderEnv: NodeJS.ProcessEnv = {}, args: string[] = []) {
    const bootFile = join(dir, `${system}.json`);
    const leader = kernel(system, ["--journal", "--boot", "client", "--boot-file", bootFile, ...args], fabric, leaderEnv);
    procs.push(leader);
    await waitFor(leader, /leading \(fresh log\)/, 20_000);
    const standby = kernel(system, ["--standby", ...args], fabric);
    procs.push(standby);
    await waitFor(standby, /log standby/, 20_000);
    const boot = JSON.parse(readFileSync(bootFile, "utf8")) as { tasks: { client: { taskId: number; token: string; nats?: Creds } } };
    assert.equal(!!boot.tasks.client.nats, !!natsKeys(), "the boot file carries the boot task's NATS user when authorization is on");
    const client = await attach(system, boot.tasks.client.taskId, boot.tasks.client.token, boot.tasks.client.nats, fabric.url);
    return { leader, standby, client };
  }

  /** A task made through `client`, attached as its own NATS user (minted by the leading kernel). */
  async function child(system: string, client: Task, name: string, url = natsUrl()) {
    const r = await client.taskCreate(name);
    const creds = await client.natsCredentials(r.taskId, r.token);
    return { r, creds: creds ?? undefined, task: await attach(system, r.taskId, r.token, creds ?? undefined, url) };
  }

  it("SIGKILL of the leader: the standby takes over with the same tasks, names and rights, within a bounded time", async () => {
    const system = `fo${process.pid}a`;
    const { leader, standby, client } = await pair(system);
    // A server task with a port the client holds a send right to, answering RPCs by echo.
    const { r, task: server } = await child(system, client, "echo");
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
    // The server's token still proves it, and its NATS user (minted by the
    // dead leader) still gets it onto the bus: a call of its own works.
    await server.allocate();
    assert.ok(!server.bus.closed, "the server's connection outlived the takeover");
    await server.detach();
    await client.detach();
  });

  it("traps across a failover: numbered one-way messages arrive exactly once and in order, every call completes once or fails clearly", async () => {
    const system = `fo${process.pid}d`;
    const { leader, standby, client } = await pair(system);
    const { r, task: receiver } = await child(system, client, "receiver");
    const port = await receiver.allocate();
    const got: number[] = [];
    receiver.receive(port, (m: Received) => void got.push(Number(new TextDecoder().decode(m.body))));
    const dest = (await client.extractRight(r.task, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
    let sendFailed = 0;
    client.onSendFailed = () => void sendFailed++;
    const enc = new TextEncoder();
    const before = (await client.names()).names.length;
    // A stream of numbered one-way messages (5 every 5 ms) and calls that
    // change the client's space (portAllocate), while the leader dies.
    let sent = 0;
    let running = true;
    const stream = (async () => {
      while (running) {
        // With a send timeout, as a stream must: the resent backlog after
        // the takeover fills the port's queue, and a send without one would
        // fail MACH_SEND_TIMED_OUT there (Mach's rule, not a loss).
        for (let i = 0; i < 5; i++) client.send({ destination: dest, id: 5000, body: enc.encode(String(sent++)), timeoutMs: 20_000 });
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    let ok = 0;
    const failures: string[] = [];
    const calls = (async () => {
      while (running) {
        try {
          await client.call("portAllocate", { right: 1 });
          ok++;
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    })();
    while (got.length < 200) await new Promise((res) => setTimeout(res, 10));
    const killedAt = Date.now();
    leader.p.kill("SIGKILL");
    await waitFor(standby, /leading \(took over after/, 10_000);
    console.log(`# takeover under a stream of one-way sends: ${Date.now() - killedAt} ms`);
    const atTakeover = sent;
    while (sent < atTakeover + 500) await new Promise((res) => setTimeout(res, 10));
    running = false;
    await Promise.all([stream, calls]);
    const until = Date.now() + 10_000;
    while (got.length < sent && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    const gaps = [];
    for (let i = 0; i < got.length && gaps.length < 5; i++) if (got[i] !== i) gaps.push(`at ${i}: ${got[i]}`);
    assert.equal(got.length, sent, `the receiver got ${got.length} of ${sent} messages (first misplaced: ${gaps.join(", ")}; ${sendFailed} sends failed)`);
    assert.deepEqual(gaps, [], "each message once, in order");
    assert.equal(sendFailed, 0, "no send failed");
    // A call either completed (its port is there, once) or failed saying so; none was applied twice.
    for (const f of failures) assert.match(f, /MACH_SEND_INVALID_DEST.*not applied|ETIMEDOUT/, f);
    const names = (await client.names()).names.length;
    const timedOut = failures.filter((f) => /ETIMEDOUT/.test(f)).length;
    assert.ok(names - before >= ok && names - before <= ok + timedOut, `${names - before} ports allocated by ${ok} calls that completed (${timedOut} timed out)`);
    console.log(`# ${sent} one-way messages, each once in order; ${ok} calls completed, ${failures.length} failed (${timedOut} timed out)`);
    await receiver.detach();
    await client.detach();
  });

  it("deliveries the leader logged and died before sending (SIGKILL between the PubAck and the publishes) are sent by the new leader, each taken once", async () => {
    const system = `fo${process.pid}e`;
    // The leader kills itself in place of its 41st delivery: deliveries 41 on are in the log and never left it.
    const { leader, standby, client } = await pair(system, { url: natsUrl() }, { HURD_KERNEL_FAULT: "kill-at-delivery:40" });
    const { r, task: receiver } = await child(system, client, "receiver");
    const port = await receiver.allocate();
    const got: number[] = [];
    // The handler finishes only at the end, so no credit is paid back
    // (the runtime pays for a message once its handler is done): all N are
    // unpaid at the kill, and the ones the receiver already had come again.
    let done!: () => void;
    const handled = new Promise<void>((res) => (done = res));
    receiver.receive(port, (m: Received) => {
      got.push(Number(new TextDecoder().decode(m.body)));
      return handled;
    });
    const dest = (await client.extractRight(r.task, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
    const enc = new TextEncoder();
    const N = 100;
    const sendFrom = (a: number, b: number) => {
      for (let i = a; i < b; i++) client.send({ destination: dest, id: 5000, body: enc.encode(String(i)), timeoutMs: 20_000 });
    };
    // 30 delivered and taken before the fault...
    sendFrom(0, 30);
    const until0 = Date.now() + 10_000;
    while (got.length < 30 && Date.now() < until0) await new Promise((res) => setTimeout(res, 10));
    assert.equal(got.length, 30);
    // ...then the leader dies in place of delivery 41.
    sendFrom(30, N);
    assert.equal(await leader.exited, null, "the leader died by its fault (SIGKILL)");
    assert.equal(leader.p.signalCode, "SIGKILL");
    await waitFor(standby, /unpaid deliveries sent again/, 10_000);
    const again = Number(/(\d+) unpaid deliveries sent again/.exec(standby.out)![1]);
    assert.equal(again, N, "every delivery not paid for is sent again, the 30 the receiver had among them");
    const until = Date.now() + 10_000;
    while (got.length < N && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    await new Promise((res) => setTimeout(res, 300)); // a duplicate would come now
    const misplaced = got.map((v, i) => [v, i]).filter(([v, i]) => v !== i).slice(0, 5);
    assert.deepEqual({ n: got.length, misplaced }, { n: N, misplaced: [] }, `the receiver got ${got.length} of ${N}, each once and in order`);
    done();
    await receiver.detach();
    await client.detach();
  });

  /** A task serving echoes on a port `client` holds a send right to; `echo(s)` asks it and checks the answer. */
  async function echoServer(system: string, client: Task) {
    const { r, task: server } = await child(system, client, "echo");
    const svc = await server.allocate();
    server.receive(svc, (m: Received) => server.send({ destination: m.reply, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: m.id + 100, body: m.body }));
    const send = (await client.extractRight(r.task, svc, MsgType.MSG_TYPE_MAKE_SEND)).name;
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const echo = async (s: string) => assert.equal(dec.decode((await client.rpc(send, 4000, enc.encode(s), { timeoutMs: 5000 })).body), s);
    return { server, echo };
  }

  it("snapshots: the standby writes them and the log is cut behind them; a kernel started later restores the newest, replays the rest and leads with every task, name and right", async () => {
    const system = `fo${process.pid}s`;
    const snapArgs = ["--snapshot-bytes", "4096"];
    const { leader, standby, client } = await pair(system, undefined, {}, snapArgs);
    const { server, echo } = await echoServer(system, client);
    // Enough traps for several snapshots: tasks made, ports allocated, echoes.
    const others = [];
    for (let i = 0; i < 30; i++) {
      others.push(await client.taskCreate(`worker${i}`));
      await client.call("portAllocate", { right: 1 });
      await echo(`before ${i}`);
    }
    const t0 = Date.now();
    while ((standby.out.match(/log entries before \d+ dropped/g) ?? []).length < 1 && Date.now() - t0 < 20_000) {
      await echo("more");
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.match(standby.out, /snapshot after log entry \d+: \d+ bytes, \d+ tasks/);
    assert.match(standby.out, /log entries before \d+ dropped/, "the log is cut behind a snapshot");
    // The log itself no longer begins at entry 1.
    const kbus = await natsBus(system, { kind: "kernel" });
    buses.push(kbus);
    const { first } = await (await JetStreamLog.open(kbus.nc, system, { inboxPrefix: natsKeys() ? inboxOf(system, { kind: "kernel" }) : undefined })).state();
    assert.ok(first > 1, `the log begins at entry ${first}`);
    // A third kernel, started now: from the newest snapshot, not from entry 1 (which is gone).
    const late = kernel(system, ["--standby", ...snapArgs]);
    procs.push(late);
    await waitFor(late, /log standby/, 20_000);
    const restored = /restored the snapshot after log entry (\d+) \(\d+ bytes, (\d+) tasks\)/.exec(late.out);
    assert.ok(restored, `the late kernel restored a snapshot:\n${late.out}`);
    assert.ok(Number(restored[1]) >= first - 1, "it starts where the log still reaches");
    console.log(`# the log begins at entry ${first}; a kernel started late ${restored[0]}`);
    // Make the late kernel lead: kill the leader, then whichever standby took over, until it does.
    leader.p.kill("SIGKILL");
    let next = await Promise.race([waitFor(standby, /leading \(took over/, 15_000).then(() => standby), waitFor(late, /leading \(took over/, 15_000).then(() => late)]);
    if (next === standby) {
      await echo("through the warm standby");
      standby.p.kill("SIGKILL");
      await waitFor(late, /leading \(took over/, 15_000);
      next = late;
    }
    // Through the kernel that began from a snapshot: the same tasks, names and rights, and RPCs.
    for (let i = 0; i < 5; i++) await echo(`after ${i}`);
    for (const o of others) assert.equal((await client.call("taskInfo", { task: o.task })).taskId, o.taskId);
    await server.allocate();
    const w = await client.taskCreate("made after");
    assert.ok(w.taskId > others.at(-1)!.taskId, "new ids carry on past the snapshot's");
    await server.detach();
    await client.detach();
  });

  it("a lone --journal kernel, with no standby to write them, writes snapshots of its own and cuts its log; killed and started again, it restores the newest and leads with every task, name and right", async () => {
    const system = `fo${process.pid}l`;
    const bootFile = join(dir, `${system}.json`);
    // A leader snapshots at 4 × --snapshot-bytes of log with none from anyone (LEADER_SNAPSHOT_FACTOR).
    const snapArgs = ["--snapshot-bytes", "1024"];
    const leader = kernel(system, ["--journal", "--boot", "client", "--boot-file", bootFile, ...snapArgs]);
    procs.push(leader);
    await waitFor(leader, /leading \(fresh log\)/, 20_000);
    const boot = JSON.parse(readFileSync(bootFile, "utf8")) as { tasks: { client: { taskId: number; token: string; nats?: Creds } } };
    const client = await attach(system, boot.tasks.client.taskId, boot.tasks.client.token, boot.tasks.client.nats);
    const { server, echo } = await echoServer(system, client);
    const others = [];
    const t0 = Date.now();
    // Until it has written two (the log is cut behind the one before the newest).
    for (let i = 0; !/log entries before \d+ dropped/.test(leader.out) && Date.now() - t0 < 30_000; i++) {
      if (i < 30) others.push(await client.taskCreate(`worker${i}`));
      await echo(`before ${i}`);
    }
    assert.match(leader.out, /snapshot of its own \(leading\) after log entry \d+: \d+ bytes/);
    assert.match(leader.out, /log entries before \d+ dropped/, "the log is cut behind a snapshot");
    const kbus = await natsBus(system, { kind: "kernel" });
    buses.push(kbus);
    const { first } = await (await JetStreamLog.open(kbus.nc, system, { inboxPrefix: natsKeys() ? inboxOf(system, { kind: "kernel" }) : undefined })).state();
    assert.ok(first > 1, `the log begins at entry ${first}`);
    leader.p.kill("SIGKILL");
    const again = kernel(system, ["--journal", ...snapArgs]);
    procs.push(again);
    await waitFor(again, /leading \(took over/, 20_000);
    const restored = /restored the snapshot after log entry (\d+)/.exec(again.out);
    assert.ok(restored && Number(restored[1]) >= first - 1, `it began from the newest snapshot:\n${again.out}`);
    // The client and the server rode it out: the same names, rights and tasks.
    for (let i = 0; i < 5; i++) await echo(`after ${i}`);
    for (const o of others) assert.equal((await client.call("taskInfo", { task: o.task })).taskId, o.taskId);
    await server.detach();
    await client.detach();
  });

  it("a HURD_KERNEL_FAULT it does not know stops the kernel before it leads, naming the one there is", async () => {
    const k = kernel(`fo${process.pid}f`, ["--journal"], { url: natsUrl() }, { HURD_KERNEL_FAULT: "kill-at-delivery:soon" });
    procs.push(k);
    assert.equal(await k.exited, 2, k.out);
    assert.match(k.out, /HURD_KERNEL_FAULT=kill-at-delivery:soon: the one fault there is, for tests, is kill-at-delivery:N/);
    assert.doesNotMatch(k.out, /leading/);
  });

  it("a --snapshot-bytes or --log-replicas that is not one stops the kernel before it leads, saying what it takes", async () => {
    for (const [args, said] of [
      [["--snapshot-bytes", "lots"], /--snapshot-bytes \(HURD_KERNEL_SNAPSHOT_BYTES\) is a number of bytes \(0: no snapshots\)/],
      [["--snapshot-bytes", "-1"], /hurd-kernel: .*--snapshot-bytes/],
      [["--log-replicas", "9"], /--log-replicas \(HURD_KERNEL_LOG_REPLICAS\) is 1 to 5/],
      [["--log-replicas", "two"], /--log-replicas/],
    ] as [string[], RegExp][]) {
      const k = kernel(`fo${process.pid}v`, ["--journal", ...args]);
      procs.push(k);
      assert.equal(await k.exited, 2, k.out);
      assert.match(k.out, said);
      assert.doesNotMatch(k.out, /leading/);
    }
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
  it("with authorization on: users the dead leader minted keep working, are renewed and revoked by the new one, and no task's user reaches the log or the leadership key", { skip: !natsKeys() && "HURD_NATS_AUTH=off: no users to keep" }, async () => {
    const system = `fo${process.pid}c`;
    // Its own server and account: revocations nobody else overwrites.
    const fabric = await ownFabric(dir);
    servers.push(fabric);
    const url = fabric.url;
    const { leader, standby, client } = await pair(system, fabric);
    const kept = await child(system, client, "kept", url);
    const early = await child(system, client, "revoked before the takeover", url);
    const doomed = await child(system, client, "revoked after the takeover", url);
    const enc = new TextEncoder();

    // A task's own user against the kernel's JetStream: its log, its tail's inbox, its leadership key.
    const raw = await NatsBus.connect(url, { name: "failover attacker", credentials: { jwt: kept.creds!.jwt, seed: kept.creds!.seed }, inboxPrefix: inboxOf(system, { kind: "task", taskId: kept.r.taskId }) });
    buses.push(raw);
    const log = kernelLogSubjectsOf(system);
    const lead = storeSubjectsOf(system, "", "kernel");
    const asks: [string, string][] = [
      ["read the log's state", log.streamInfo],
      ["append to the log", log.subject],
      ["tail the log", log.consumerCreate],
      ["read the leadership key", lead.msgGet],
      ["write the leadership key", lead.key("leader")],
      ["make the log's stream", log.streamCreate],
      ["cut the log", log.streamPurge],
      ["read a snapshot (its tokens and NATS user seeds)", log.snapMsgGet],
      ["write a snapshot", log.snapDone],
      ["write a snapshot's part", log.snapPart],
      ["drop the snapshots", log.snapPurge],
    ];
    for (const [what, subject] of asks) {
      const body = subject === log.consumerCreate ? JSON.stringify({ stream_name: log.stream, config: { deliver_subject: `${inboxOf(system, { kind: "task", taskId: kept.r.taskId })}.tap`, ack_policy: "none" } }) : subject === lead.msgGet ? JSON.stringify({ last_by_subj: lead.key("leader") }) : subject === log.snapMsgGet ? JSON.stringify({ last_by_subj: log.snapDone }) : "{}";
      await assert.rejects(raw.nc.request(subject, enc.encode(body), { timeout: 1000 }), (e: Error) => /permission|timeout/i.test(`${e.name} ${e.message} ${String(e.cause ?? "")}`), `a task's user could ${what} (${subject})`);
    }
    // Nor listen in: on the log's subject, its snapshots' or the kernel's inbox (where its tail and its API answers arrive).
    let overheard = 0;
    const refused: string[] = [];
    const listen = (err: Error | null) => void (err ? refused.push(err.message) : overheard++);
    raw.nc.subscribe(log.subject, { callback: listen });
    raw.nc.subscribe(log.snapPart, { callback: listen });
    raw.nc.subscribe(`${inboxOf(system, { kind: "kernel" })}.>`, { callback: listen });
    await raw.nc.flush().catch(() => {});
    for (let i = 0; i < 5; i++) await client.taskCreate(`appended ${i}`);
    assert.equal(overheard, 0, "a task's user read the kernel's log traffic");
    assert.equal(refused.length, 3, `all three subscriptions refused by nats-server: ${refused.join("; ")}`);
    assert.ok(refused.every((m) => /permission/i.test(m)), refused.join("; "));

    // A second connection of each doomed task's user, which no Task of
    // ours closes: only nats-server cutting the user off ends it ("User
    // Authentication Revoked", or "Authorization Violation" when nats.js's
    // reconnect is refused first).
    const asUser = async (c: typeof early) => {
      const b = await NatsBus.connect(url, { name: `user of task ${c.r.taskId}`, credentials: { jwt: c.creds!.jwt, seed: c.creds!.seed }, inboxPrefix: inboxOf(system, { kind: "task", taskId: c.r.taskId }) });
      buses.push(b);
      return { closed: b.nc.closed() };
    };
    // The revocation reaches nats-server as a coalesced account update: on a loaded machine that took over 3 s once; never cut still fails.
    const cut = (closed: Promise<void | Error>) => Promise.race([closed.then(String), new Promise<string>((r) => setTimeout(() => r("not cut within 10 s"), 10_000))]);
    // A revocation pushed by the old leader...
    const earlyClosed = (await asUser(early)).closed;
    await client.taskTerminate(early.r.task);
    // (It missed 10 s in loaded full runs on npm test's server, where every
    // test kernel pushes the shared account with its own revocations only,
    // overwriting this one's: hence the server of this test's own.)
    assert.match(await cut(earlyClosed), /revoked|authorization violation/i, `the leader revokes a dead task's user; leader:\n${leader.out}`);
    leader.p.kill("SIGKILL");
    await waitFor(standby, /leading \(took over after/, 10_000);
    // ...and one made by the new leader, of a user the old one minted.
    const doomedClosed = (await asUser(doomed)).closed;
    await client.taskTerminate(doomed.r.task);
    assert.match(await cut(doomedClosed), /revoked|authorization violation/i, `the new leader revokes a user the old one minted; new leader:\n${standby.out}`);
    // The account the new leader pushed still revokes the old leader's (it replayed the list): both stay out.
    // (Polled for up to 10 s: the revocation is a coalesced account update.)
    for (const c of [early, doomed]) {
      const until = Date.now() + 10_000;
      let refused = "";
      while (!refused && Date.now() < until) {
        await NatsBus.connect(url, { name: "revoked", credentials: { jwt: c.creds!.jwt, seed: c.creds!.seed }, inboxPrefix: inboxOf(system, { kind: "task", taskId: c.r.taskId }) }).then(
          async (b) => (await b.close(), await new Promise((r) => setTimeout(r, 200))),
          (e: Error) => (refused = String(e)),
        );
      }
      assert.match(refused, /authoriz/i, `task ${c.r.taskId}'s revoked user let back in after the takeover; new leader:\n${standby.out}`);
    }
    // The kept task's user goes on: the new leader renews the JWT the old one minted (same key, its seed never re-sent).
    const renewed = await kept.task.call("taskNatsRenew", {});
    assert.equal(renewed.seed, "");
    assert.ok(renewed.expires >= kept.creds!.expires, "renewed no earlier than minted");
    assert.ok(!kept.task.bus.closed);
    await kept.task.allocate();
  });
});

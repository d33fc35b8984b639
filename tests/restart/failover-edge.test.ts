// Kernel failover with a hurd booted by a boot claim and a client at the
// gRPC edge (issue 18): boot claims, the edge's Mach calls, its SendTrap
// and its Receive streams are logged inputs (journal.ts, EDGE and CLAIM
// records) that a standby replays. Both kernels are given the same --grpc
// address; only the leader listens on it, so an edge client that lost its
// stream at the SIGKILL finds the new leader where it found the old one.
// The gateway and the trace stream are not logged: a logged kernel refuses
// them with EOPNOTSUPP.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { Errno, MsgType, Task, type Received } from "@hurdmesh/mach";
import { EdgeBus, grpcClientOf } from "@hurdmesh/mach/edge";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { attachOverNats, type NatsBus } from "@hurdmesh/mach/nats";
import { BootClaimReply, BootClaimRequest } from "@hurdmesh/proto/hurd/boot/v1/boot";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { TraceDefinition, WatchRequest } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { busKinds, natsBus, natsUrl } from "../harness.js";
import { waitFor, type KernelProc } from "./kernel-proc.js";

const MAIN = new URL("../../services/kernel/src/main.ts", import.meta.url).pathname;
const LEAD_LEASE = 800;
const SECRET = "failover-edge-secret";

type Proc = KernelProc;

function kernel(system: string, grpcAt: string, args: string[]): Proc {
  const env: NodeJS.ProcessEnv = { ...process.env, HURD_BOOT_SECRET: SECRET };
  const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--nats", natsUrl(), "--system", system, "--grpc", grpcAt, "--lease-ms", "4000", "--lead-lease-ms", String(LEAD_LEASE), ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  const k: Proc = { p, out: "" };
  p.stdout!.on("data", (d) => (k.out += d));
  p.stderr!.on("data", (d) => (k.out += d));
  return k;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const MachClient = grpcClientOf(MachDefinition);

/** A unary Mach call at the edge as task `id`: its answer, or the hurd-errno of its failure. */
function edgeCall<T>(c: grpc.Client, method: string, req: object, id: number, token: string): Promise<T> {
  const md = new grpc.Metadata();
  md.set("hurd-task", String(id));
  md.set("hurd-token", token);
  return new Promise((resolve, reject) =>
    (c as unknown as Record<string, Function>)[method]!.call(c, req, md, { deadline: Date.now() + 5000 }, (e: grpc.ServiceError | null, r: T) =>
      e ? reject(Object.assign(new Error(`${e.metadata?.get("hurd-errno")?.[0] ?? grpc.status[e.code]}: ${e.details}`), { errno: Number(e.metadata?.get("hurd-code")?.[0] ?? 0) })) : resolve(r),
    ),
  );
}

describe("kernel failover with boot claims and the gRPC edge", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  const procs: Proc[] = [];
  const tasks: Task[] = [];
  const closers: { close(): unknown }[] = [];
  after(async () => {
    for (const k of procs) if (k.p.exitCode === null && k.p.signalCode === null) k.p.kill("SIGKILL");
    for (const t of tasks) t.abandon();
    for (const t of tasks) await t.bus.close().catch(() => {});
    for (const c of closers) await c.close();
  });

  it("a hurd booted by a boot claim and called through the edge: after SIGKILL of the leader the edge client's task, names and stream come back on the same address, and the claim is still held", async () => {
    const system = `foe${process.pid}`;
    const at = `127.0.0.1:${await freePort()}`;
    const leader = kernel(system, at, ["--journal"]);
    procs.push(leader);
    await waitFor(leader, /gRPC edge on .* \(leading\)/, 20_000);
    const standby = kernel(system, at, ["--standby"]);
    procs.push(standby);
    await waitFor(standby, /log standby/, 20_000);

    // init's way in: a boot claim over the bus, as the claimant of the root hurd.
    const claimBus: NatsBus = await natsBus(system, { kind: "boot-claim", hurd: "" });
    closers.push(claimBus);
    const claim = async (secret = SECRET) => BootClaimReply.decode(await claimBus.request(subjectsOf(system).bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret, name: "startup" })).finish(), 5000));
    const booted = await claim();
    assert.equal(booted.errno, 0, booted.error);
    const init = await attachOverNats(natsUrl(), { name: "init", system, taskId: booted.taskId, token: booted.token, credentials: booted.nats?.jwt ? booted.nats : null, timeoutMs: 3000 });
    tasks.push(init);

    // An edge client (as `hurd` is): a task init made, attached over the edge, serving echoes on a port of its own.
    const r = await init.taskCreate("edge client");
    const client = await Task.attach({ bus: new EdgeBus(at, r.taskId, r.token), system, taskId: r.taskId, token: r.token, timeoutMs: 5000 });
    tasks.push(client);
    const svc = await client.allocate();
    client.receive(svc, (m: Received) => client.send({ destination: m.reply, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: m.id + 100, body: m.body }));
    const send = (await init.extractRight(r.task, svc, MsgType.MSG_TYPE_MAKE_SEND)).name;
    // A task made by a unary Mach call at the edge, as the CLI's taskCreate is.
    const mc = new MachClient(at, grpc.credentials.createInsecure());
    closers.push(mc);
    const made = await edgeCall<{ task: number; taskId: number; token: string }>(mc, "taskCreate", { parent: 0, name: "made at the edge", newNamespace: false }, r.taskId, r.token);
    assert.ok(made.taskId > 0);

    const enc = new TextEncoder();
    const echo = async (n: number) => new TextDecoder().decode((await init.rpc(send, 4000, enc.encode(`n${n}`), { timeoutMs: 1500 })).body);
    for (let i = 0; i < 10; i++) assert.equal(await echo(i), `n${i}`);

    // Not logged, so not served by a logged kernel: the gateway and the trace stream, refused clearly.
    const pc = new (grpcClientOf(ProcessDefinition))(at, grpc.credentials.createInsecure());
    closers.push(pc);
    await assert.rejects(edgeCall(pc, "task2proc", { task: 0 }, r.taskId, r.token), (e: Error & { errno: number }) => e.errno === Errno.EOPNOTSUPP && /log on/.test(e.message));
    const tc = new (grpcClientOf(TraceDefinition))(at, grpc.credentials.createInsecure());
    closers.push(tc);
    const md = new grpc.Metadata();
    md.set("hurd-task", String(r.taskId));
    md.set("hurd-token", r.token);
    const watchErr = await new Promise<grpc.ServiceError>((res) => tc.watch(WatchRequest.fromPartial({ hostPriv: 1 }), md).on("error", res));
    assert.equal(Number(watchErr.metadata.get("hurd-code")[0]), Errno.EOPNOTSUPP, watchErr.details);

    const killedAt = Date.now();
    leader.p.kill("SIGKILL");
    await waitFor(standby, /gRPC edge on .* \(leading\)/, 10_000);
    console.log(`# takeover with the edge: ${Date.now() - killedAt} ms from SIGKILL to the new leader's edge listening (lead lease ${LEAD_LEASE} ms)`);

    // The edge client's task and names survive: its own calls (SendTrap) work and its stream comes back,
    // so echoes to its port are delivered again (the runtime reopens the stream every 500 ms).
    const t0 = Date.now();
    let back = false;
    for (let i = 0; !back && Date.now() - t0 < 8000; i++) back = await echo(100 + i).then((s) => s === `n${100 + i}`, () => false);
    assert.ok(back, `echoes through the edge client after the takeover; new leader:\n${standby.out}`);
    await client.allocate();
    // The task made by the edge's unary call is there, under the same id, through the same name.
    const info = await edgeCall<{ taskId: number }>(mc, "taskInfo", { task: made.task }, r.taskId, r.token);
    assert.equal(info.taskId, made.taskId);
    // The new leader knows the root hurd is booted (the claim replayed), and a wrong secret is still refused.
    const again = await claim();
    assert.equal(again.errno, Errno.EBUSY, again.error);
    const wrong = await claim("not the secret at all");
    assert.equal(wrong.errno, Errno.EPERM);
  });

  it("a leader paused (SIGSTOP) past its lease still holds the edge's address: the new leader listens once the old one wakes, finds itself deposed and exits", async () => {
    const system = `foe${process.pid}b`;
    const at = `127.0.0.1:${await freePort()}`;
    const leader = kernel(system, at, ["--journal"]);
    procs.push(leader);
    await waitFor(leader, /gRPC edge on .* \(leading\)/, 20_000);
    const standby = kernel(system, at, ["--standby"]);
    procs.push(standby);
    await waitFor(standby, /log standby/, 20_000);
    const claimBus: NatsBus = await natsBus(system, { kind: "boot-claim", hurd: "" });
    closers.push(claimBus);
    const booted = BootClaimReply.decode(await claimBus.request(subjectsOf(system).bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret: SECRET, name: "startup" })).finish(), 5000));
    assert.equal(booted.errno, 0, booted.error);
    const mc = new MachClient(at, grpc.credentials.createInsecure());
    closers.push(mc);
    const made = await edgeCall<{ task: number; taskId: number }>(mc, "taskCreate", { parent: 0, name: "before", newNamespace: false }, booted.taskId, booted.token);

    leader.p.kill("SIGSTOP");
    await waitFor(standby, /leading \(took over after/, 10_000);
    await waitFor(standby, /is still bound/, 5_000);
    assert.doesNotMatch(standby.out, /gRPC edge on .* \(leading\)/, "the address was still the paused leader's");
    leader.p.kill("SIGCONT");
    const code = await new Promise<number | null>((r) => (leader.p.exitCode !== null ? r(leader.p.exitCode) : leader.p.once("exit", (c) => r(c))));
    assert.equal(code, 3, leader.out);
    await waitFor(standby, /gRPC edge on .* \(leading\)/, 10_000);
    // The edge on the same address is the new leader's: the task made through the old one is there.
    let info: { taskId: number } | null = null;
    for (let i = 0; !info && i < 50; i++) {
      info = await edgeCall<{ taskId: number }>(mc, "taskInfo", { task: made.task }, booted.taskId, booted.token).catch(() => null);
      if (!info) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(info?.taskId, made.taskId);
  });
});

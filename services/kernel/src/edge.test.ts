// The gRPC edge, driven by a real grpc-js client as the CLI or another
// language would, next to tasks on the bus; and the kernel as its own OS
// process on a real nats-server.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { service as HealthService } from "grpc-health-check";
import { client, serve, Rights, Errno, MsgType, PortRight } from "@hurdmesh/mach";
import { grpcClientOf, type GrpcClient } from "@hurdmesh/mach/edge";
import { attachOverNats } from "@hurdmesh/mach/nats";
import { Delivery, MachDefinition, type Received } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { TraceDefinition, WatchRequest, type TraceBatch, type TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { watchTraceOnBus } from "@hurdmesh/mach/internal";
import { busKinds, natsUrl, startHurd, until, type Hurd } from "../../../tests/harness.js";
import { Edge, TASK_HEADER, TOKEN_HEADER } from "./edge.js";

const MachClient = grpcClientOf(MachDefinition);
type MachClient = GrpcClient<typeof MachDefinition>;
const TraceClient = grpcClientOf(TraceDefinition);

function md(taskId: number, token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set(TASK_HEADER, String(taskId));
  m.set(TOKEN_HEADER, token);
  return m;
}

function unary<Req, Rep>(c: MachClient, method: string, req: Req, meta: grpc.Metadata): Promise<Rep> {
  return new Promise((resolve, reject) =>
    (c as unknown as Record<string, Function>)[method]!.call(c, req, meta, (e: grpc.ServiceError | null, r: Rep) => (e ? reject(e) : resolve(r))),
  );
}

for (const kind of busKinds) {
  describe(`gRPC edge (${kind} bus)`, () => {
    let h: Hurd;
    let edge: Edge;
    let mc: MachClient;
    before(async () => {
      h = await startHurd(kind);
      edge = new Edge(h.kernel);
      const port = await edge.listen("127.0.0.1:0");
      mc = new MachClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    });
    after(async () => {
      mc.close();
      await edge.close();
      await h.close();
    });

    it("answers grpc.health.v1 with SERVING for the Mach service", async () => {
      const Ctor = grpc.makeGenericClientConstructor(HealthService, "Health");
      const hc = new Ctor(`127.0.0.1:${edge.port}`, grpc.credentials.createInsecure()) as unknown as {
        check(r: { service: string }, cb: (e: Error | null, r: { status: string }) => void): void;
        close(): void;
      };
      const r = await new Promise<{ status: string }>((res, rej) => hc.check({ service: "hurd.mach.v1.Mach" }, (e, x) => (e ? rej(e) : res(x))));
      hc.close();
      assert.equal(r.status, "SERVING");
    });

    it("rejects a call with a wrong token as UNAUTHENTICATED naming KERN_INVALID_TASK", async () => {
      const b = h.kernel.bootTask({ name: "edge-bad" });
      const before = h.kernel.stats.rejectedTraps;
      await assert.rejects(unary(mc, "portAllocate", { right: PortRight.PORT_RIGHT_RECEIVE }, md(b.task.id, "not-the-token")), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.UNAUTHENTICATED);
        assert.equal(e.metadata.get("hurd-errno")[0], "KERN_INVALID_TASK");
        return true;
      });
      assert.equal(h.kernel.stats.rejectedTraps, before + 1);
      assert.equal(b.task.space.entries.size, 1, "nothing was allocated");
    });

    it("shows the trace stream only to a holder of host_priv", async () => {
      const tc = new TraceClient(`127.0.0.1:${edge.port}`, grpc.credentials.createInsecure());
      const first = (req: Partial<WatchRequest>, meta: grpc.Metadata) =>
        new Promise<TraceBatch | grpc.ServiceError>((resolve) => {
          const st = tc.watch(WatchRequest.fromPartial({ includeSelf: true, ...req }), meta);
          st.on("data", (b: TraceBatch) => {
            resolve(b);
            st.cancel();
          });
          st.on("error", (e: grpc.ServiceError) => resolve(e));
        });
      const plain = h.kernel.bootTask({ name: "edge-nopriv" });
      const refused = await first({}, md(plain.task.id, plain.token));
      assert.equal((refused as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED);
      assert.equal((refused as grpc.ServiceError).metadata.get("hurd-errno")[0], "KERN_NO_ACCESS");
      // A name that is not a host port is no better.
      const notHost = await first({ hostPriv: 0x7777 }, md(plain.task.id, plain.token));
      assert.equal((notHost as grpc.ServiceError).metadata.get("hurd-errno")[0], "KERN_INVALID_HOST");
      assert.equal(h.kernel.trace.watching, 0, "a refused watcher costs routing nothing");
      const priv = h.kernel.bootTask({ name: "edge-priv", hostPriv: true });
      const t = await h.attach(priv.task.id, priv.token);
      const got = first({ hostPriv: priv.hostPriv }, md(priv.task.id, priv.token));
      await until(() => h.kernel.trace.watching === 1, 5000, "watch registered");
      await t.allocate().then((n) => t.send({ destination: n, destinationDisposition: MsgType.MSG_TYPE_MAKE_SEND, id: 7 }));
      const b = (await got) as TraceBatch;
      assert.ok(b.records.length >= 1);
      tc.close();
    });

    it("maps a kernel error to a gRPC status with the errno in a trailer", async () => {
      const b = h.kernel.bootTask({ name: "edge-err" });
      await assert.rejects(unary(mc, "portDeallocate", { name: 4242 }, md(b.task.id, b.token)), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.NOT_FOUND);
        assert.equal(e.metadata.get("hurd-errno")[0], "KERN_INVALID_NAME");
        return true;
      });
    });

    it("streams messages sent by a bus task to an edge task's port, rights translated", async () => {
      // The sender creates the edge task, so it holds its task port; the edge
      // client attaches with the token task_create handed out.
      const sender = await h.task("edge-sender");
      const c = await sender.taskCreate("edge-rcv");
      const meta = md(c.taskId, c.token);
      const { name: port } = await unary<object, { name: number }>(mc, "portAllocate", { right: PortRight.PORT_RIGHT_RECEIVE }, meta);
      const got: Received[] = [];
      const stream = mc.receive({}, meta);
      stream.on("data", (d: Delivery) => d.message && got.push(d.message));
      stream.on("error", () => {});
      const taskName = c.task;
      const { name: dest } = await sender.extractRight(taskName, port, MsgType.MSG_TYPE_MAKE_SEND);
      const extra = await sender.allocate();
      const r = new Rights();
      r.makeSend(extra);
      sender.send({ destination: dest, id: 1234, body: new Uint8Array([7]), ports: r.ports });
      await until(() => got.length === 1, 3000, "delivery on the stream");
      assert.equal(got[0]!.local, port);
      assert.equal(got[0]!.id, 1234);
      assert.equal(got[0]!.sender, sender.id);
      assert.equal(got[0]!.kernel, false);
      assert.equal(got[0]!.ports[0]!.type, MsgType.MSG_TYPE_MOVE_SEND);
      const { type } = await unary<object, { type: number }>(mc, "portType", { name: got[0]!.ports[0]!.name }, meta);
      assert.equal(type & (1 << 16), 1 << 16, "the edge task now holds a send right");
      stream.cancel();
    });
  });
}

describe("hurd-kernel as its own process on a real nats-server", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  let proc: ChildProcess;
  let boot: { system: string; tasks: Record<string, { taskId: number; token: string; hostPriv: number; nats?: { jwt: string; seed: string } }> };
  let out = "";
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "hurd-kernel-"));
    const file = join(dir, "boot.json");
    const main = new URL("./main.ts", import.meta.url).pathname;
    proc = spawn(process.execPath, ["--import", "tsx", main, "--nats", natsUrl(), "--grpc", "127.0.0.1:0", "--system", `proc${process.pid}`, "--boot", "alpha,beta", "--boot-file", file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    await until(() => out.includes("gRPC edge on") && existsSync(file), 20000, `kernel start (${out})`);
    boot = JSON.parse(readFileSync(file, "utf8"));
  });
  after(() => {
    proc.kill("SIGTERM");
  });

  it("brokers an RPC between a task and the child it created and handed a right, each as its own NATS user", async () => {
    const alpha = boot.tasks.alpha!;
    // With NATS authorization on, the boot file carries each boot task's NATS user.
    assert.equal(!!alpha.nats?.jwt, !!process.env.HURD_NATS_KEYS && process.env.HURD_NATS_AUTH !== "off");
    const a = await attachOverNats(natsUrl(), { system: boot.system, taskId: alpha.taskId, token: alpha.token, credentials: alpha.nats });
    const p = await a.allocate();
    serve(a, PingDefinition, { ping: (req, ctx) => ({ payload: req.payload, sender: ctx.msg.sender }) }).add(p, {});
    // task_create gives the parent the child's task port and the token the child attaches with.
    const child = await a.taskCreate("child");
    const b = await attachOverNats(natsUrl(), { system: boot.system, taskId: child.taskId, token: child.token, credentials: await a.natsCredentials(child.taskId, child.token) });
    const NAME = 0x1234;
    await a.insertRight(child.task, NAME, p, MsgType.MSG_TYPE_MAKE_SEND);
    const ping = client(b, PingDefinition, NAME);
    const res = await ping.ping({ payload: new Uint8Array([1, 2, 3]) });
    assert.deepEqual([...res.payload], [1, 2, 3]);
    assert.equal(res.sender, b.id);
    // A name b was never given denotes nothing: capabilities cannot be guessed.
    await assert.rejects(client(b, PingDefinition, NAME + 1).ping({}), (e: Error & { code?: number }) => e.code === Errno.MACH_SEND_INVALID_DEST);
    await b.detach();
    await a.detach();
  });

  it("serves the trace stream on the bus (hurd.<system>.trace.>) to a holder of host_priv", async () => {
    // alpha detached above; beta holds host_priv and watches a child it makes.
    const beta = boot.tasks.beta!;
    const parent = await attachOverNats(natsUrl(), { system: boot.system, taskId: beta.taskId, token: beta.token, credentials: beta.nats });
    const child = await parent.taskCreate("traced");
    const a = await attachOverNats(natsUrl(), { system: boot.system, taskId: child.taskId, token: child.token, credentials: await parent.natsCredentials(child.taskId, child.token) });
    const records: TraceRecord[] = [];
    // Asked on the task's own connection; the batches come to the watch's own user.
    const watch = await watchTraceOnBus(parent.bus, boot.system, beta, { hostPriv: beta.hostPriv, tasks: [a.id] }, (b) => records.push(...b.records));
    const p = await a.allocate();
    a.send({ destination: p, destinationDisposition: MsgType.MSG_TYPE_MAKE_SEND, id: 777 });
    await until(() => records.some((r) => r.msgid === 777), 5000, "the record on the bus");
    const r = records.find((x) => x.msgid === 777)!;
    assert.equal(r.fromTask, a.id);
    assert.equal(r.toTask, a.id);
    assert.equal(r.receiverName, p);
    await watch.stop();
    assert.equal(await watch.ended, Errno.KERN_ABORTED);
    await a.detach();
    await parent.detach();
  });
});

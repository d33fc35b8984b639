// The Hurd's servers as gRPC services at the kernel's edge (the gateway,
// services/kernel/src/gateway.ts), called as a client outside the bus
// calls them, on both buses: a call per interface and RPC family, rights in
// requests and replies as names in the caller's space, errors with their
// status and hurd-errno trailer, deadlines, callers without the right,
// dead servers and garbage bodies.
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Edge, INIT_PORT_NAMES } from "@hurdmesh/kernel";
import { BOOT_NAMES } from "@hurdmesh/init";
import { CHILD_NAMES } from "@hurdmesh/libhurd";
import { NAMES } from "@hurdmesh/cli";
import { PortRight, serve, SIG, type Task } from "@hurdmesh/mach";
import { DefaultPort } from "@hurdmesh/proto/hurd/mig/v1/mig";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition, StartupNotifyDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { busKinds, until } from "../harness.js";
import { call, clientOf, errnoOf, gatewayWorld, md, type GatewayWorld } from "./kit.js";

const TYPE_SEND = 1 << 16;

/** A unary call with raw bytes for a body, to any path. */
function raw(address: string, path: string, body: Buffer, meta: grpc.Metadata, deadlineMs = 5000): Promise<Buffer> {
  const c = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) =>
    c.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, meta, { deadline: Date.now() + deadlineMs }, (e, r) => (e ? reject(e) : resolve(r!))),
  ).finally(() => c.close());
}

/** Asserts a call failed with this gRPC status and errno trailer. */
async function fails(p: Promise<unknown>, status: grpc.status, errno: string): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (e) {
    const se = e as grpc.ServiceError;
    assert.equal(se.code, status, `status ${grpc.status[se.code]} (${se.details}), expected ${grpc.status[status]}`);
    assert.equal(errnoOf(se), errno, se.details);
    return se;
  }
  assert.fail(`expected ${errno}`);
}

it("the default ports are the names every process of the hurd holds its servers under (init's BOOT_NAMES, libhurd's CHILD_NAMES, hurd's NAMES)", () => {
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_PROC], BOOT_NAMES.proc);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_PROC], CHILD_NAMES.proc);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_PROC], NAMES.pid1);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_AUTH], BOOT_NAMES.auth);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_AUTH], CHILD_NAMES.auth);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_AUTH], NAMES.auth);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_STARTUP], BOOT_NAMES.startup);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_STARTUP], NAMES.startup);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_SUBHURDS], BOOT_NAMES.subhurds);
  assert.equal(INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_SUBHURDS], NAMES.subhurds);
});

for (const kind of busKinds) {
  describe(`the gateway at the edge (${kind} bus)`, () => {
    let w: GatewayWorld;
    let victim: { task: Task; me: import("@hurdmesh/libhurd").Process; taskName: number };
    const signals: number[] = [];
    const con = () => md(w.console);

    before(async () => {
      w = await gatewayWorld(kind);
      victim = await w.spawn("victim");
      victim.me.signal(SIG.USR1, (i) => void signals.push(i.signal));
    });
    after(async () => {
      await w.close();
    });

    /** A server double on a port of a spawned process, and the console's send right to it. */
    async function double(handlers: { dosync?: () => unknown; requestNotification?: (req: { notify: number }, ctx: import("@hurdmesh/mach").Context<unknown>) => unknown }) {
      const d = await w.spawn("double");
      const port = await d.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
      const notify = serve(d.task, StartupNotifyDefinition, {});
      if (handlers.dosync) notify.implement({ dosync: handlers.dosync as never });
      notify.add(port, {});
      const startupPort = await d.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
      serve(d.task, StartupDefinition, handlers.requestNotification ? { requestNotification: handlers.requestNotification as never } : {}).add(startupPort, {});
      const x = await call<{ name: number }>(w.mach, "portExtractRight", { task: d.taskName, name: port, disposition: 20 /* MAKE_SEND */ }, con());
      const y = await call<{ name: number }>(w.mach, "portExtractRight", { task: d.taskName, name: startupPort, disposition: 20 }, con());
      return { d, notifyName: x.name, startupName: y.name };
    }

    it("Process/Getpids goes to the caller's process port (the console holds pid 1's)", async () => {
      const r = await call<{ pid: number; ppid: number }>(w.process, "getpids", {}, con());
      assert.equal(r.pid, 1);
    });

    it("many calls in flight each get their own reply (reply ports are reused, a finished call's late events touch no other)", async () => {
      const pids = [1, victim.me.pid];
      const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => call<{ pgrp: number; pid?: number }>(w.process, i % 2 ? "getpgrp" : "getpids", i % 2 ? { pid: pids[i % 4 === 1 ? 0 : 1] } : {}, con())));
      replies.forEach((r, i) => (i % 2 ? assert.equal(r.pgrp, 1) : assert.equal(r.pid, 1)));
      await until(() => w.edge.gateway.inFlight === 0, 2000, "every call to end");
    });

    it("Process/Getpgrp answers for a pid; an unknown pid is ESRCH: NOT_FOUND with the hurd-errno trailer", async () => {
      const r = await call<{ pgrp: number }>(w.process, "getpgrp", { pid: victim.me.pid }, con());
      assert.equal(r.pgrp, 1);
      const e = await fails(call(w.process, "getpgrp", { pid: 99_999 }, con()), grpc.status.NOT_FOUND, "ESRCH");
      assert.match(e.details, /^ESRCH \(no such process\): /);
      assert.doesNotMatch(e.details, /ESRCH.*ESRCH/, "the errno is named once");
      assert.equal(e.metadata.get("hurd-code")[0], String(0x40000003));
    });

    it("Auth/GetIds goes to the caller's auth handle; Auth/MakeAuth answers a handle as a name in the caller's space, which a call names with hurd-port", async () => {
      const root = await call<{ euids: number[] }>(w.auth, "getIds", {}, con());
      assert.deepEqual(root.euids, [0]);
      const made = await call<{ newhandle: number }>(w.auth, "makeAuth", { euids: [1000], auids: [1000, 1000], egids: [100], agids: [100, 100] }, con());
      const type = await call<{ type: number }>(w.mach, "portType", { name: made.newhandle }, con());
      assert.ok(type.type & TYPE_SEND, `name ${made.newhandle} is a send right`);
      const ids = await call<{ euids: number[]; agids: number[] }>(w.auth, "getIds", {}, md(w.console, { "hurd-port": `0x${made.newhandle.toString(16)}` }));
      assert.deepEqual(ids.euids, [1000]);
      assert.deepEqual(ids.agids, [100, 100]);
      await call(w.mach, "portDeallocate", { name: made.newhandle }, con());
    });

    it("rights in requests travel as the field declares: Process/Task2pid copies a task port, and the caller keeps its reference", async () => {
      const t = await call<{ task: number }>(w.process, "pid2task", { pid: victim.me.pid }, con());
      assert.ok(t.task > 0 && t.task !== 0xffffffff, "a task port name");
      const before = await call<{ refs: number }>(w.mach, "portGetRefs", { name: t.task, right: PortRight.PORT_RIGHT_SEND }, con());
      const p = await call<{ pid: number }>(w.process, "task2pid", { task: t.task }, con());
      assert.equal(p.pid, victim.me.pid);
      const after = await call<{ refs: number }>(w.mach, "portGetRefs", { name: t.task, right: PortRight.PORT_RIGHT_SEND }, con());
      assert.equal(after.refs, before.refs);
    });

    it("a MOVE_SEND field moves the caller's right to the server (Startup/RequestNotification, mach_port_send_t)", async () => {
      let got = 0;
      const { startupName } = await double({
        requestNotification: (req, ctx) => {
          got = ctx.right(req.notify).name;
          ctx.keepRights = true;
          return {};
        },
      });
      const proc = await call<{ proc: number }>(w.process, "pid2proc", { pid: victim.me.pid }, con());
      const refs = await call<{ refs: number }>(w.mach, "portGetRefs", { name: proc.proc, right: PortRight.PORT_RIGHT_SEND }, con());
      await call(w.startup, "requestNotification", { notify: proc.proc, name: "gateway test" }, md(w.console, { "hurd-port": String(startupName) }));
      assert.ok(got > 0, "the double received a send right");
      if (refs.refs === 1) await fails(call(w.mach, "portType", { name: proc.proc }, con()), grpc.status.NOT_FOUND, "KERN_INVALID_NAME");
      else assert.equal((await call<{ refs: number }>(w.mach, "portGetRefs", { name: proc.proc, right: PortRight.PORT_RIGHT_SEND }, con())).refs, refs.refs - 1);
    });

    it("Msg/SigPost with hurd-pid reaches the process's message port with its task port as refport (glibc's kill), and leaves nothing behind", async () => {
      const names = await call<{ names: number[] }>(w.mach, "portNames", {}, con());
      await call(w.msg, "sigPost", { signal: SIG.USR1 }, md(w.console, { "hurd-pid": String(victim.me.pid) }));
      assert.deepEqual(signals, [SIG.USR1]);
      const after = await call<{ names: number[] }>(w.mach, "portNames", {}, con());
      assert.deepEqual(after.names.sort(), names.names.sort());
    });

    it("Msg needs hurd-pid or hurd-port (EINVAL); a pid that names no process is ESRCH", async () => {
      await fails(call(w.msg, "sigPost", { signal: SIG.USR1 }, con()), grpc.status.INVALID_ARGUMENT, "EINVAL");
      await fails(call(w.msg, "sigPost", { signal: SIG.USR1 }, md(w.console, { "hurd-pid": "99999" })), grpc.status.NOT_FOUND, "ESRCH");
      await fails(call(w.msg, "sigPost", { signal: SIG.USR1 }, md(w.console, { "hurd-pid": "-3" })), grpc.status.INVALID_ARGUMENT, "EINVAL");
    });

    it("StartupNotify, which has no default port, goes where hurd-port says; without one it is EINVAL", async () => {
      let n = 0;
      const { notifyName } = await double({ dosync: () => (n++, {}) });
      await call(w.startupNotify, "dosync", { timeoutMs: 5 }, md(w.console, { "hurd-port": String(notifyName) }));
      assert.equal(n, 1);
      await fails(call(w.startupNotify, "dosync", {}, con()), grpc.status.INVALID_ARGUMENT, "EINVAL");
    });

    it("Startup goes to the startup port; startup_reboot without host_priv as refport is EPERM (PERMISSION_DENIED)", async () => {
      await fails(call(w.startup, "reboot", { refport: 0, code: 0 }, con()), grpc.status.PERMISSION_DENIED, "EPERM");
    });

    it("a caller holding no right under the default name gets KERN_INVALID_NAME (Subhurd: this console has no subhurd manager)", async () => {
      await fails(call(w.subhurd, "list", {}, con()), grpc.status.NOT_FOUND, "KERN_INVALID_NAME");
    });

    it("a hurd-port the caller does not hold is KERN_INVALID_NAME; one that is no name is EINVAL", async () => {
      await fails(call(w.process, "getpids", {}, md(w.console, { "hurd-port": "0x7777777" })), grpc.status.NOT_FOUND, "KERN_INVALID_NAME");
      await fails(call(w.process, "getpids", {}, md(w.console, { "hurd-port": "proc" })), grpc.status.INVALID_ARGUMENT, "EINVAL");
      await fails(call(w.process, "getpids", {}, md(w.console, { "hurd-port": "0" })), grpc.status.INVALID_ARGUMENT, "EINVAL");
    });

    it("a caller with a wrong token is UNAUTHENTICATED (KERN_INVALID_TASK)", async () => {
      await fails(call(w.process, "getpids", {}, md({ taskId: w.console.taskId, token: "x".repeat(w.console.token.length) })), grpc.status.UNAUTHENTICATED, "KERN_INVALID_TASK");
      await fails(call(w.process, "getpids", {}, md({ taskId: 999_999, token: w.console.token })), grpc.status.UNAUTHENTICATED, "KERN_INVALID_TASK");
    });

    it("a simpleroutine is answered once sent (Process/ReauthenticateComplete)", async () => {
      assert.deepEqual(await call(w.process, "reauthenticateComplete", {}, con()), {});
    });

    it("deadlines pass through: a Process/Wait that would block ends at the client's deadline, and the gateway lets the call go", async () => {
      const t0 = Date.now();
      const e = await call(w.process, "wait", { pid: victim.me.pid, options: 0 }, con(), 400).then(
        () => assert.fail("wait answered"),
        (x: grpc.ServiceError) => x,
      );
      assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - t0 < 3000, `ended after ${Date.now() - t0} ms`);
      await until(() => w.edge.gateway.inFlight === 0, 3000, "the gateway's call to end");
    });

    it("with no deadline, the gateway's bound ends a call: DEADLINE_EXCEEDED with hurd-errno ETIMEDOUT", async () => {
      const config = w.b.h.kernel.config as { gatewayTimeoutMs: number };
      const was = config.gatewayTimeoutMs;
      config.gatewayTimeoutMs = 300;
      try {
        await fails(call(w.process, "wait", { pid: victim.me.pid, options: 0 }, con(), Infinity), grpc.status.DEADLINE_EXCEEDED, "ETIMEDOUT");
      } finally {
        config.gatewayTimeoutMs = was;
      }
      assert.equal(w.edge.gateway.inFlight, 0);
    });

    it("a server that dies with the call in hand ends it with MIG_SERVER_DIED (UNAVAILABLE), without waiting for the deadline; its port is then a dead name (MACH_SEND_INVALID_DEST)", async () => {
      let arrived!: () => void;
      const inHand = new Promise<void>((r) => (arrived = r));
      const { d, notifyName } = await double({ dosync: () => (arrived(), new Promise(() => {})) });
      const t0 = Date.now();
      const pending = fails(call(w.startupNotify, "dosync", {}, md(w.console, { "hurd-port": String(notifyName) }), 20_000), grpc.status.UNAVAILABLE, "MIG_SERVER_DIED");
      await inHand;
      await call(w.mach, "taskTerminate", { task: d.taskName }, con());
      await pending;
      assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
      await fails(call(w.startupNotify, "dosync", {}, md(w.console, { "hurd-port": String(notifyName) })), grpc.status.FAILED_PRECONDITION, "MACH_SEND_INVALID_DEST");
      assert.equal(w.edge.gateway.inFlight, 0);
    });

    it("garbage bodies: a server refuses what it cannot decode (MIG_BAD_ARGUMENTS), the gateway what has port fields, and proc answers on", async () => {
      const truncated = Buffer.from([0x0a, 0xff]);
      await fails(raw(w.address, "/hurd.process.v1.Process/Getpgrp", truncated, con()), grpc.status.INVALID_ARGUMENT, "MIG_BAD_ARGUMENTS");
      await fails(raw(w.address, "/hurd.process.v1.Process/Task2pid", truncated, con()), grpc.status.INVALID_ARGUMENT, "MIG_BAD_ARGUMENTS");
      const paths = ["/hurd.process.v1.Process/Getpgrp", "/hurd.process.v1.Process/Getprocinfo", "/hurd.process.v1.Process/Task2pid", "/hurd.auth.v1.Auth/GetIds", "/hurd.process.v1.Process/Getpids"];
      for (let i = 0; i < 40; i++) {
        const path = paths[i % paths.length]!;
        await raw(w.address, path, randomBytes(1 + (i % 24)), con()).catch((e: grpc.ServiceError) => {
          assert.ok(e.code !== grpc.status.DEADLINE_EXCEEDED && e.code !== grpc.status.INTERNAL, `${path}: ${grpc.status[e.code]} ${e.details}`);
        });
      }
      const r = await call<{ pid: number }>(w.process, "getpids", {}, con());
      assert.equal(r.pid, 1);
      assert.equal(w.edge.gateway.inFlight, 0);
    });

    it("an edge that closes ends the calls still waiting (UNAVAILABLE), without holding them to their deadline", async () => {
      const edge = new Edge(w.b.h.kernel);
      await edge.listen("127.0.0.1:0");
      const c = new (clientOf(ProcessDefinition))(`127.0.0.1:${edge.port}`, grpc.credentials.createInsecure());
      try {
        const t0 = Date.now();
        const waiting = call(c, "wait", { pid: victim.me.pid, options: 0 }, con(), 30_000).then(
          () => assert.fail("wait answered"),
          (e: grpc.ServiceError) => e,
        );
        await until(() => edge.gateway.inFlight === 1, 3000, "the call to wait");
        await edge.close();
        const e = await waiting;
        assert.equal(e.code, grpc.status.UNAVAILABLE, e.details);
        assert.ok(Date.now() - t0 < 5000);
        assert.equal(edge.gateway.inFlight, 0);
      } finally {
        c.close();
      }
    });

    it("each interface is SERVING on the edge's health service", async () => {
      for (const s of ["hurd.process.v1.Process", "hurd.auth.v1.Auth", "hurd.msg.v1.Msg", "hurd.startup.v1.Startup", "hurd.startup.v1.StartupNotify", "hurd.subhurd.v1.Subhurd"]) {
        const name = Buffer.from(s);
        // grpc.health.v1 HealthCheckRequest { service = 1 } → HealthCheckResponse { status = 1 } (SERVING = 1).
        const rep = await raw(w.address, "/grpc.health.v1.Health/Check", Buffer.concat([Buffer.from([0x0a, name.length]), name]), new grpc.Metadata());
        assert.deepEqual([...rep], [0x08, 1], s);
      }
    });
  });
}

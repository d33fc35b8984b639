// Every failure the fuzzer found, as the case it shrank to, named after it.
// Each was fixed in the server code in its own commit; these keep it fixed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, NotifyId, PortRight, Rights, client } from "@hurdmesh/mach";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { World } from "../auth/world.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { SIG, bootProcHurd, exitProcess, settle, type ProcHurd } from "../proc/kit.js";
import { portAt } from "@hurdmesh/mach";

for (const kind of busKinds) {
  describe(`fuzz regressions: auth (${kind} bus)`, () => {
    let w: World;
    before(async () => {
      w = await World.start(kind);
    });
    after(async () => w.close());

    // Shrunk: [getIds carrying {name: the caller's first name, COPY_SEND}], then the caller dies.
    it("auth_getids with a right attached keeps no right of it: auth's space is as before once the caller is gone", async () => {
      const before = await w.authRefs();
      const p = await w.party("getids-with-a-right");
      const handle = await w.handle(p, { euids: [1000], auids: [1000] });
      const r = new Rights();
      r.add(p.task.self, MsgType.MSG_TYPE_COPY_SEND);
      const ids = await w.authc(p.task, handle).getIds({}, { rights: r });
      assert.deepEqual(ids.euids, [1000]);
      await w.boot.task.taskTerminate(p.port);
      await w.boot.task.deallocate(p.port);
      await w.authSpaceIs(before, "no send right or dead name of the caller's task port stays in auth's space");
    });
  });
}

for (const kind of busKinds) {
  describe(`fuzz regressions: startup (${kind} bus)`, () => {
    let b: BootedHurd;
    before(async () => {
      b = await bootHurd(kind);
    });
    after(async () => b.close());
    const initNames = () => b.h.kernel.tasks.get(b.initTask.id)!.space.entries.size;

    // Shrunk (by hand from a non-deterministic batch): [requestNotification {notify: MAKE_SEND of a receive right of the caller's}], then the caller dies.
    it("startup_request_notification from a party that then dies leaves no dead name in init's space and frees its slot", async () => {
      const it0 = b.initTask;
      const settled = () =>
        until(async () => {
          const n = initNames();
          await new Promise((r) => setTimeout(r, 50));
          return n === initNames();
        });
      await settled();
      const before = initNames();
      for (let i = 0; i < 3; i++) {
        const c = await it0.taskCreate(`notifiee-${i}`);
        const t = await b.h.attach(c.taskId, c.token);
        await it0.insertRight(c.task, 0x100, await b.init.startupPort, MsgType.MSG_TYPE_MAKE_SEND);
        const port = await t.allocate(PortRight.PORT_RIGHT_RECEIVE);
        const r = new Rights();
        await client(t, StartupDefinition, 0x100).requestNotification({ notify: r.makeSend(port), name: "short-lived" }, { rights: r });
        await it0.taskTerminate(c.task);
        await it0.deallocate(c.task);
      }
      await until(() => initNames() === before, 3000, `init's names back to ${before} (now ${initNames()})`);
    });

    // Shrunk: [essentialTask {ports: [17 PORT_NAME, the caller's reply port MOVE_RECEIVE]}] (seed 5, path 8:1:5:4:6:6:6:6:6).
    it("a request that carries its own reply port's receive right leaves no dead name in the server's space: the failed reply's dead name is deallocated", async () => {
      const it0 = b.initTask;
      await until(async () => {
        const n = initNames();
        await new Promise((r) => setTimeout(r, 50));
        return n === initNames();
      });
      const before = initNames();
      const c = await it0.taskCreate("gives-its-reply-port");
      const t = await b.h.attach(c.taskId, c.token);
      await it0.insertRight(c.task, 0x100, await b.init.startupPort, MsgType.MSG_TYPE_MAKE_SEND);
      const reply = await t.allocate(PortRight.PORT_RIGHT_RECEIVE);
      t.send({
        destination: 0x100,
        id: 29000,
        reply,
        replyDisposition: MsgType.MSG_TYPE_MAKE_SEND_ONCE,
        ports: [
          { name: 17, disposition: MsgType.MSG_TYPE_PORT_NAME },
          { name: reply, disposition: MsgType.MSG_TYPE_MOVE_RECEIVE },
        ],
      });
      await t.names(); // the request is in
      await new Promise((r) => setTimeout(r, 50));
      await it0.taskTerminate(c.task);
      await it0.deallocate(c.task);
      await until(() => initNames() === before, 3000, `init's names back to ${before} (now ${initNames()})`);
    });

    // Shrunk: [reboot {refport: a bare name (MSG_TYPE_PORT_NAME) whose number is host_priv's in init's space}] (seed 11: init halted).
    it("startup_reboot, startup_essential_task and init's msg_sig_post believe no bare name (MSG_TYPE_PORT_NAME) for host_priv or init's task port", async () => {
      const it0 = b.initTask;
      const c = await it0.taskCreate("bare-namer");
      const t = await b.h.attach(c.taskId, c.token);
      await it0.insertRight(c.task, 0x100, await b.init.startupPort, MsgType.MSG_TYPE_MAKE_SEND);
      const startup = client(t, StartupDefinition, 0x100);
      const bare = (n: number) => {
        const r = new Rights();
        return { r, i: r.add(n, MsgType.MSG_TYPE_PORT_NAME) };
      };
      const host = b.init.o.hostPriv;
      const a = bare(host);
      await assert.rejects(startup.reboot({ refport: a.i, code: 0 }, { rights: a.r }), /host port/);
      const e = bare(host);
      await assert.rejects(startup.essentialTask({ task: e.i, credential: e.i, name: "forged", excpt: 0 }, { rights: e.r }), /host port/);
      const proc = client(it0, ProcessDefinition, b.init.booted!.proc);
      const m = await proc.getmsgport({ pid: 2 });
      await it0.insertRight(c.task, 0x101, portAt(m, m.msgport), MsgType.MSG_TYPE_COPY_SEND);
      const s = bare(it0.self);
      await assert.rejects(client(t, MsgDefinition, 0x101).sigPost({ signal: SIG.TERM, sigcode: 0, refport: s.i }, { rights: s.r }), /only from itself/);
      await new Promise((r) => setTimeout(r, 100));
      let halted = false;
      void b.init.halted.then(() => (halted = true));
      await new Promise((r) => setImmediate(r));
      assert.equal(halted, false, "the hurd is still up");
      assert.ok((await proc.getallpids({})).pids.includes(1));
      await it0.taskTerminate(c.task);
      await it0.deallocate(c.task);
    });

    // Shrunk (by hand): [reboot {refport: a send right that is not the host port} with a MOVE_RECEIVE and a COPY_SEND beside it], then the caller dies.
    it("startup_reboot refused (EPERM) keeps none of the rights its request brought", async () => {
      const it0 = b.initTask;
      await until(async () => {
        const n = initNames();
        await new Promise((r) => setTimeout(r, 50));
        return n === initNames();
      });
      const before = initNames();
      const c = await it0.taskCreate("rebooter");
      const t = await b.h.attach(c.taskId, c.token);
      await it0.insertRight(c.task, 0x100, await b.init.startupPort, MsgType.MSG_TYPE_MAKE_SEND);
      const a = await t.allocate(PortRight.PORT_RIGHT_RECEIVE);
      const z = await t.allocate(PortRight.PORT_RIGHT_RECEIVE);
      const r = new Rights();
      const refport = r.makeSend(a);
      r.add(z, MsgType.MSG_TYPE_MOVE_RECEIVE);
      r.add(t.self, MsgType.MSG_TYPE_COPY_SEND);
      await assert.rejects(client(t, StartupDefinition, 0x100).reboot({ refport, code: 0 }, { rights: r }), /EPERM|host port/);
      await it0.taskTerminate(c.task);
      await it0.deallocate(c.task);
      await until(() => initNames() === before, 3000, `init's names back to ${before} (now ${initNames()})`);
    });
  });
}

for (const kind of busKinds) {
  describe(`fuzz regressions: proc (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    // Shrunk: [handleSignal {signal: <a name>, sigcode: -1}] on a process handle (seed 11).
    it("proc_handle_signal with a negative sigcode reaches the process (msg.defs's int sigcode, carried as its bits), proc throws nothing", async () => {
      const c = await ph.spawn(ph.startup, "negative-sigcode");
      const h = await ph.startup.proc.pidOpen({ pid: c.pid, serial: 0 });
      await client(ph.startup.task, ProcessDefinition, portAt(h, h.handle)).handleSignal({ signal: SIG.USR1, sigcode: -1 });
      await settle(c);
      assert.deepEqual(c.signals.at(-1), { signal: SIG.USR1, sigcode: 0xffffffff });
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });
  });
}

describe("fuzz regressions: the kernel's edge", () => {
  // Shrunk: [SendTrap {heartbeat: true, task and token its own}] (the call stayed open until its deadline).
  it("send_trap of a heartbeat answers at once: a trap that asks nothing still ends the caller's call", async () => {
    const { Kernel, Edge } = await import("@hurdmesh/kernel");
    const grpc = await import("@grpc/grpc-js");
    const { Trap, CallReply } = await import("@hurdmesh/proto/hurd/mach/v1/mach");
    const k = new Kernel({ system: `hb${process.pid}` }, { log: () => {} });
    const edge = new Edge(k);
    const port = await edge.listen("127.0.0.1:0");
    const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const b = k.bootTask({ name: "beats" });
      const trap = Buffer.from(Trap.encode(Trap.fromPartial({ task: b.task.id, token: b.token, credit: 1, heartbeat: true })).finish());
      const t0 = Date.now();
      const rep = await new Promise<Buffer>((resolve, reject) =>
        c.makeUnaryRequest("/hurd.mach.v1.Mach/SendTrap", (x: Buffer) => x, (x: Buffer) => x, trap, new grpc.Metadata(), { deadline: Date.now() + 2000 }, (e, r) => (e ? reject(e) : resolve(r!))),
      );
      assert.equal(CallReply.decode(rep).code, 0);
      assert.ok(Date.now() - t0 < 1000, "answered, not left to the deadline");
    } finally {
      c.close();
      await edge.close();
      k.close();
    }
  });
});

for (const kind of busKinds) {
  describe(`fuzz regressions: the kernel model (${kind} bus)`, () => {
    let h: Hurd;
    before(async () => {
      h = await startHurd(kind);
    });
    after(async () => h.close());

    // Shrunk: [allocate(0), insert(0, 0, MAKE_SEND), extract(0, 0, COPY_SEND),
    // destroy(1, 0), request(nosenders, 0), destroy(0, 0), death(1)]: the
    // kernel sent no-senders (70), the model owed a send-once notification
    // (71). The kernel was right (ipc_right_destroy releases the name's send
    // right, firing the request, before the receive right destroys the
    // port); the model was fixed.
    it("destroy of a name holding the receive right and the last send right fires the no-senders request, not a send-once notification", async () => {
      const a = await h.task("ns-destroy");
      const x = await a.allocate();
      await a.insertRight(a.self, x, x, MsgType.MSG_TYPE_MAKE_SEND);
      const n = await a.allocate();
      const got: number[] = [];
      a.receive(n, async (m) => {
        got.push(m.id);
      });
      await a.requestNotification(x, NotifyId.NOTIFY_NO_SENDERS, n, 1);
      await a.destroy(x);
      await until(() => got.length > 0, 3000, "a notification for the destroyed port");
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(got, [NotifyId.NOTIFY_NO_SENDERS]);
      await a.detach();
    });
  });
}

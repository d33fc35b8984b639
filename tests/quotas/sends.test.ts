// All-or-nothing sends on a real nats-server: nothing larger than the bus
// carries is accepted (NATS's advertised max_payload, 1 MiB by default,
// bounds what the kernel takes, below its own maxBodyBytes of 4 MiB), and
// a delivery the bus refuses after the copy-in is undone: the receiver
// keeps no name and spends no credit, the sender gets its rights and its
// destination right back, so no-senders still fires. The wedge:
// four 1.1 MiB sends to a task with window 4 stopped every later delivery.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, NotifyId, Task } from "@hurdmesh/mach";
import { EdgeBus } from "@hurdmesh/mach/edge";
import { Edge } from "@hurdmesh/kernel";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { inbox, MsgType, nth, rejectsWith, snapshot } from "../kernel/kit.js";

const MiB = 1024 * 1024;
const TO = 0x6000;
const GIFT = 0x6001;

describe("all-or-nothing sends (nats bus, a real nats-server)", { skip: !busKinds.includes("nats") && "the NATS suites are off (HURD_TEST_BUSES)" }, () => {
  let h: Hurd;
  let edge: Edge;
  let r: Task;
  let port: number;
  /** A task on the kernel's gRPC edge (as the CLI and workloads are), which may send up to the kernel's maxBodyBytes. */
  let e: Task;
  let addr = "";
  before(async () => {
    h = await startHurd("nats");
    edge = new Edge(h.kernel);
    addr = `127.0.0.1:${await edge.listen("127.0.0.1:0")}`;
    r = await h.task("receiver", { window: 4 });
    port = await r.allocate();
    const c = await r.taskCreate("edge-sender");
    await r.insertRight(c.task, TO, port, MsgType.MSG_TYPE_MAKE_SEND);
    await r.insertRight(c.task, GIFT, await r.allocate(), MsgType.MSG_TYPE_MAKE_SEND);
    e = await Task.attach({ bus: new EdgeBus(addr, c.taskId, c.token), system: h.kernel.config.system, taskId: c.taskId, token: c.token });
  });
  after(async () => {
    e?.abandon();
    await edge?.close();
    await h?.close();
  });

  const kr = () => h.kernel.tasks.get(r.id)!;

  it("the kernel takes the server's max_payload as its bound", () => {
    assert.equal(h.kernel.busLimit, MiB);
  });

  it("a body the bus cannot carry is MACH_SEND_NO_BUFFER at once, and the receiver's window is untouched (four 1.1 MiB sends, window 4)", async () => {
    const box = inbox(r, port);
    const big = new Uint8Array(1.1 * MiB);
    for (let i = 0; i < 4; i++) await rejectsWith(e.rpc(TO, 100 + i, big, { timeoutMs: 5000 }), "MACH_SEND_NO_BUFFER");
    assert.equal(kr().credit, 4);
    for (let i = 0; i < 4; i++) e.send({ destination: TO, id: 200 + i, body: new Uint8Array(10) });
    await nth(box, 4, "four later deliveries");
    assert.deepEqual(box.map((m) => m.id), [200, 201, 202, 203]);
    r.unreceive(port);
  });

  it("a task on NATS cannot publish what the server would refuse: MACH_SEND_NO_BUFFER before anything is sent", async () => {
    const self = await r.allocate();
    const to = (await r.extractRight(0, self, MsgType.MSG_TYPE_MAKE_SEND)).name;
    assert.throws(() => r.send({ destination: to, id: 1, body: new Uint8Array(1.1 * MiB) }), (x: unknown) => (x as { code?: number }).code === Errno.MACH_SEND_NO_BUFFER);
  });

  it("many rights push a message past the bus: refused whole, the sender's space as it was", async () => {
    const before = await snapshot(e);
    const ports = Array.from({ length: 500 }, () => ({ name: GIFT, disposition: MsgType.MSG_TYPE_COPY_SEND }));
    await rejectsWith(e.rpc(TO, 300, new Uint8Array(MiB - 4096), { ports, timeoutMs: 5000 }), "MACH_SEND_NO_BUFFER");
    assert.deepEqual(await snapshot(e), before);
    assert.equal(kr().credit, 4);
  });

  describe("a delivery the bus refuses after the copy-in (the kernel's bound set past the server's)", () => {
    before(() => {
      // As a kernel that trusted maxBodyBytes did: the publish is where it fails.
      h.kernel.busLimit = Infinity;
    });
    after(() => {
      h.kernel.busLimit = MiB;
    });

    it("rolls back the receiver's names and credit, and fails back to the sender with every right and the destination right", async () => {
      const spaceR = await snapshot(r);
      const spaceE = await snapshot(e);
      const srights = h.kernel.tasks.get(r.id)!.space.entries.get(port)!.port!.srights;
      const ports = [
        { name: GIFT, disposition: MsgType.MSG_TYPE_COPY_SEND },
        ...Array.from({ length: 100 }, () => ({ name: GIFT, disposition: MsgType.MSG_TYPE_COPY_SEND })),
      ];
      for (let i = 0; i < 4; i++) await rejectsWith(e.rpc(TO, 400 + i, new Uint8Array(1.1 * MiB), { ports, timeoutMs: 5000 }), "MACH_SEND_NO_BUFFER");
      assert.equal(kr().credit, 4, "no credit spent on the failed deliveries");
      assert.deepEqual(await snapshot(r), spaceR, "the receiver keeps no name from them");
      assert.equal(h.kernel.tasks.get(r.id)!.space.entries.get(port)!.port!.srights, srights, "the destination right went back");
      // The rights it sent are back as they were (the failed RPCs' reply
      // ports the runtime destroys and makes anew: a late reply could not be told apart).
      const mine = (x: string[]) => x.filter((l) => l.startsWith(`${TO}:`) || l.startsWith(`${GIFT}:`));
      assert.deepEqual(mine(await snapshot(e)), mine(spaceE));
      const box = inbox(r, port);
      for (let i = 0; i < 4; i++) e.send({ destination: TO, id: 500 + i, body: new Uint8Array(10) });
      await nth(box, 4, "later deliveries");
      r.unreceive(port);
    });

    it("no-senders still fires once the sender lets its last send right go", async () => {
      const p2 = await r.allocate();
      const n = await r.allocate();
      const notes = inbox(r, n);
      const c = await r.taskCreate("lone-sender");
      await r.insertRight(c.task, TO, p2, MsgType.MSG_TYPE_MAKE_SEND);
      await r.requestNotification(p2, NotifyId.NOTIFY_NO_SENDERS, n, 1);
      const lone = await Task.attach({ bus: new EdgeBus(addr, c.taskId, c.token), system: h.kernel.config.system, taskId: c.taskId, token: c.token });
      try {
        // MOVE_SEND of its only send right: a failed delivery must give it back, not lose it.
        await rejectsWith(lone.rpc(TO, 600, new Uint8Array(1.1 * MiB), { destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND, timeoutMs: 5000 }), "MACH_SEND_NO_BUFFER");
        assert.equal(notes.length, 0, "the sender still holds its right");
        // Back as Mach's pseudo-receive puts it: under a name of its own (names are never reused).
        const { names, types } = await lone.names();
        const back = names.filter((n, i) => n !== lone.self && types[i]! & (1 << 16));
        assert.equal(back.length, 1, "one send right came back");
        await lone.deallocate(back[0]!);
        const m = await nth(notes, 1, "no-senders");
        assert.equal(m.id, 70);
      } finally {
        lone.abandon();
      }
    });
  });
});

// The stub runtime's RPC contract (packages/mach/src/task.ts, serve.ts,
// client.ts): replies, error codes, asynchronous handlers, deadlines
// (ETIMEDOUT never early, the reply port of a timed-out call never reused),
// and what detaching does to calls in flight.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, Errno, HurdError, MsgType, serve, type Client, type Task } from "@hurdmesh/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";

const PING = 0x5000;

async function receiveNames(t: Task): Promise<Set<number>> {
  const { names, types } = await t.names();
  return new Set(names.filter((_n, i) => types[i]! & (1 << 17)));
}

for (const kind of busKinds) {
  describe(`runtime RPCs (${kind} bus)`, () => {
    let h: Hurd;
    let srv: Task;
    let cli: Task;
    let ping: Client<typeof PingDefinition>;
    let port: number;
    before(async () => {
      h = await startHurd(kind);
      srv = await h.task("rpc-server");
      port = await srv.allocate();
      serve(srv, PingDefinition, {
        ping: (req, ctx) => ({ payload: req.payload, sender: ctx.msg.sender }),
        echo: async (req) => {
          if (req.delayMs) await new Promise((r) => setTimeout(r, req.delayMs));
          if (req.fail) throw new HurdError(req.fail, "asked to fail");
          return { payload: req.payload };
        },
      }).add(port, {});
      const c = await srv.taskCreate("rpc-client");
      await srv.insertRight(c.task, PING, port, MsgType.MSG_TYPE_MAKE_SEND);
      cli = await h.attach(c.taskId, c.token);
      ping = client(cli, PingDefinition, PING);
    });
    after(async () => {
      await h.close();
    });

    it("answers synchronous and asynchronous handlers, many in flight", async () => {
      const r = await ping.ping({ payload: new Uint8Array([1, 2, 3]) });
      assert.deepEqual([...r.payload], [1, 2, 3]);
      assert.equal(r.sender, cli.id);
      const all = await Promise.all(Array.from({ length: 300 }, (_x, i) => (i % 2 ? ping.ping : ping.echo)({ payload: new Uint8Array([i & 0xff, i >> 8]) })));
      all.forEach((x, i) => assert.deepEqual([...x.payload], [i & 0xff, i >> 8]));
    });

    it("a handler's error reaches the caller with its code, synchronous or not", async () => {
      await assert.rejects(ping.echo({ fail: Errno.EPERM }), (e: unknown) => e instanceof HurdError && e.code === Errno.EPERM && /asked to fail/.test(e.message));
      await assert.rejects(ping.echo({ fail: Errno.ESRCH, delayMs: 5 }), (e: unknown) => e instanceof HurdError && e.code === Errno.ESRCH);
      // An id the interface does not have answers MIG_BAD_ID.
      await assert.rejects(cli.rpc(PING, 34000, new Uint8Array(0)), (e: unknown) => e instanceof HurdError && e.code === Errno.MIG_BAD_ID);
    });

    it("ETIMEDOUT comes no earlier than the deadline; the late reply is dropped with its reply port", async () => {
      await ping.ping({});
      const before = await receiveNames(cli);
      const t0 = performance.now();
      await assert.rejects(ping.echo({ delayMs: 300, payload: new Uint8Array([9]) }, { timeoutMs: 100 }), (e: unknown) => e instanceof HurdError && e.code === Errno.ETIMEDOUT);
      const took = performance.now() - t0;
      assert.ok(took >= 100, `timed out after ${took} ms`);
      assert.ok(took < 100 + 250, `timed out only after ${took} ms`);
      // The timed-out call's reply port is destroyed, not put back in the pool.
      await until(async () => (await receiveNames(cli)).size === before.size - 1, 3000, "reply port destroyed");
      const now = await receiveNames(cli);
      const gone = [...before].filter((n) => !now.has(n));
      assert.equal(gone.length, 1);
      // Calls made while the late reply is due get their own answers (a
      // reused reply port would fail them: the kernel never reuses a name).
      const mine = await Promise.all([1, 2, 3].map((i) => ping.echo({ payload: new Uint8Array([i]), delayMs: 120 })));
      assert.deepEqual(
        mine.map((m) => m.payload[0]),
        [1, 2, 3],
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await ping.ping({ payload: new Uint8Array([7]) })).payload[0], 7);
      assert.ok(!(await receiveNames(cli)).has(gone[0]!));
    });

    it("abandoning a task fails its calls in flight with KERN_INVALID_TASK at once, and later calls too", async () => {
      const c = await srv.taskCreate("rpc-abandon");
      await srv.insertRight(c.task, PING, port, MsgType.MSG_TYPE_MAKE_SEND);
      const t = await h.attach(c.taskId, c.token);
      const call = client(t, PingDefinition, PING).echo({ delayMs: 2000 }, { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      t.abandon();
      await assert.rejects(call, (e: unknown) => e instanceof HurdError && e.code === Errno.KERN_INVALID_TASK);
      assert.ok(performance.now() - t0 < 1000);
      await assert.rejects(t.rpc(PING, 33000, new Uint8Array(0)), (e: unknown) => e instanceof HurdError && e.code === Errno.KERN_INVALID_TASK);
    });
  });
}

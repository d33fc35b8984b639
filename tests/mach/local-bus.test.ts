// The in-process hub (packages/mach/src/bus/local.ts): routing (exact,
// `prefix.>`, `*`), its routing cache kept right across subscribe and
// unsubscribe, delivery order, and request deadlines.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, HurdError, LocalHub } from "@hurdmesh/mach";

const tick = () => new Promise((r) => setImmediate(r));
const bytes = (n: number) => new Uint8Array([n]);

describe("LocalHub", () => {
  it("a message storm does not starve timers (heartbeats and leases keep running)", async () => {
    const hub = new LocalHub();
    const c = hub.connect();
    const data = new Uint8Array(1);
    let n = 0;
    let stop = false;
    // Two subjects bouncing a message forever: delivery never runs dry.
    c.subscribe("ping", () => {
      n++;
      if (!stop) c.publish("pong", data);
    });
    c.subscribe("pong", () => {
      if (!stop) c.publish("ping", data);
    });
    c.publish("ping", data);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    const late = performance.now() - t0;
    stop = true;
    await c.close();
    assert.ok(n > 1000, `the storm ran (${n} deliveries)`);
    assert.ok(late < 500, `a 20 ms timer fired after ${Math.round(late)} ms`);
  });

  it("callers that send again from a reply's continuation do not starve timers (the queue empties between bursts)", async () => {
    const hub = new LocalHub();
    const c = hub.connect();
    const data = new Uint8Array(1);
    c.subscribe("echo", (_s, d, reply) => {
      if (reply) c.publish(reply, d);
    });
    let n = 0;
    let stop = false;
    // Each loop has one request in flight and sends the next from the
    // promise's continuation (a microtask), as an RPC load does: the hub's
    // queue runs dry after every delivery.
    // Bounded, so that a starving hub ends the test (and fails it) rather than hanging it.
    const loop = async () => {
      while (!stop && n < 200_000) {
        await c.request("echo", data, 1000);
        n++;
      }
    };
    const loops = Promise.all([loop(), loop(), loop(), loop()]);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    const late = performance.now() - t0;
    stop = true;
    await loops;
    await c.close();
    assert.ok(n > 1000, `the loops ran (${n} requests)`);
    assert.ok(late < 500, `a 20 ms timer fired after ${Math.round(late)} ms`);
  });

  it("routes exact, tail and star subscriptions, and keeps per-subject order", async () => {
    const hub = new LocalHub();
    const a = hub.connect();
    const got: string[] = [];
    a.subscribe("x.y.z", (s, d) => got.push(`exact ${s} ${d[0]}`));
    a.subscribe("x.>", (s, d) => got.push(`tail ${s} ${d[0]}`));
    a.subscribe("x.*.z", (s, d) => got.push(`star ${s} ${d[0]}`));
    const b = hub.connect();
    for (let i = 0; i < 3; i++) b.publish("x.y.z", bytes(i));
    b.publish("x.q", bytes(9));
    b.publish("y.y.z", bytes(8));
    await tick();
    assert.deepEqual(got, [
      "exact x.y.z 0", "tail x.y.z 0", "star x.y.z 0",
      "exact x.y.z 1", "tail x.y.z 1", "star x.y.z 1",
      "exact x.y.z 2", "tail x.y.z 2", "star x.y.z 2",
      "tail x.q 9",
    ]);
  });

  it("a subject delivered before sees subscriptions made and dropped after", async () => {
    const hub = new LocalHub();
    const c = hub.connect();
    const got: string[] = [];
    const s1 = c.subscribe("a.b.c", () => got.push("s1"));
    c.publish("a.b.c", bytes(1));
    await tick();
    const s2 = c.subscribe("a.>", () => got.push("s2"));
    c.publish("a.b.c", bytes(2));
    await tick();
    s1.unsubscribe();
    c.publish("a.b.c", bytes(3));
    await tick();
    s2.unsubscribe();
    c.publish("a.b.c", bytes(4));
    await tick();
    assert.deepEqual(got, ["s1", "s1", "s2", "s2"]);
  });

  it("a handler that unsubscribes another stops its delivery at once; one that subscribes sees the next message", async () => {
    const hub = new LocalHub();
    const c = hub.connect();
    const got: string[] = [];
    let n = 0;
    c.subscribe("m", () => {
      got.push("first");
      if (n++ === 0) {
        second.unsubscribe();
        c.subscribe("m", () => got.push("added"));
      }
    });
    const second = c.subscribe("m", () => got.push("second"));
    c.publish("m", bytes(1));
    await tick();
    c.publish("m", bytes(2));
    await tick();
    assert.deepEqual(got, ["first", "first", "added"]);
  });

  it("request: answered, ETIMEDOUT no earlier than the deadline, and failed by close", async () => {
    const hub = new LocalHub();
    const srv = hub.connect();
    srv.subscribe("echo", (_s, d, reply) => reply && srv.publish(reply, d));
    const c = hub.connect();
    assert.deepEqual([...(await c.request("echo", bytes(5), 1000))], [5]);
    // A subscriber that never answers: the deadline decides.
    srv.subscribe("silent", () => {});
    const t0 = performance.now();
    await assert.rejects(c.request("silent", bytes(1), 50), (e: unknown) => e instanceof HurdError && e.code === Errno.ETIMEDOUT);
    assert.ok(performance.now() - t0 >= 50);
    const p = c.request("silent", bytes(1), 60_000);
    await c.close();
    await assert.rejects(p, (e: unknown) => e instanceof HurdError && e.code === Errno.MACH_SEND_INVALID_DEST);
  });

  it("request: nobody subscribed is MACH_SEND_INVALID_DEST at once, as NATS's no responders", async () => {
    const hub = new LocalHub();
    const c = hub.connect();
    const t0 = performance.now();
    await assert.rejects(c.request("nobody", bytes(1), 5000), (e: unknown) => e instanceof HurdError && e.code === Errno.MACH_SEND_INVALID_DEST);
    assert.ok(performance.now() - t0 < 1000);
    // Once someone listens, the same subject answers.
    const srv = hub.connect();
    srv.subscribe("nobody", (_s, d, reply) => reply && srv.publish(reply, d));
    assert.deepEqual([...(await c.request("nobody", bytes(7), 1000))], [7]);
  });
});

// A task's NATS user expires and is renewed (TaskNatsRenew), and its bus
// moves to a connection that presents the new JWT (NatsBus's handover):
// through several renewals a stream of messages arrives whole, in order,
// once, and RPCs keep working, also when the incoming connection hears the
// server later than the outgoing one. With authorization off there is
// nothing to renew, and the suite says so.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, MsgType, serve, type Task } from "@hurdmesh/mach";
import { attachOverNats, type NatsBus } from "@hurdmesh/mach/nats";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { busKinds, natsKeys, natsUrl, startHurd, until, type Hurd } from "../harness.js";
import { natsRelay } from "../nats/kit.js";

const TTL_S = 3;
const STREAM = 4711;
/** How much later than the first the later connections through the relay hear the server: a renewal's incoming connection on a slower route. */
const LAG_MS = 60;

/** A stream of numbered messages from `b` to `port` in bursts of 20, with a Ping between bursts, for `ms`: how many sent and pinged. */
async function stream(b: Task, name: number, pingName: number, ms: number): Promise<{ sent: number; pings: number }> {
  const pinger = client(b, PingDefinition, pingName);
  let sent = 0;
  let pings = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < 20; i++) {
      const body = new Uint8Array(4);
      new DataView(body.buffer).setUint32(0, sent++);
      b.send({ destination: name, id: STREAM, body });
    }
    const r = await pinger.ping({ payload: new Uint8Array([pings & 0xff]) });
    assert.equal(r.payload[0], pings++ & 0xff);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { sent, pings };
}

/** Each of 0..sent-1 once, in order; else which came twice, and what the buses went through. */
function assertOnceInOrder(got: number[], sent: number, a: Task, b: Task): void {
  if (got.length !== sent) {
    const count = new Map<number, number>();
    for (const n of got) count.set(n, (count.get(n) ?? 0) + 1);
    const twice = [...count].filter(([, c]) => c > 1).map(([n]) => n);
    const bus = (t: Task) => ({ reconnects: (t.bus as NatsBus).reconnects, expires: (t.bus as NatsBus).expires });
    assert.fail(`${got.length} taken of ${sent} sent; ${twice.length} twice (first ${twice.slice(0, 5).join(", ")}): receiver ${JSON.stringify(bus(a))}, sender ${JSON.stringify(bus(b))}, now ${Date.now()}`);
  }
  for (let i = 0; i < got.length; i++) if (got[i] !== i) assert.fail(`message ${i} arrived as ${got[i]} (out of order or lost)`);
}

/** A receiver task `a` (a stream port and a Ping server) and a sender task holding send rights to both. */
async function pair(h: Hurd, a: Task): Promise<{ got: number[]; c: { taskId: number; token: string }; NAME: number }> {
  const port = await a.allocate();
  const got: number[] = [];
  a.receive(port, (m) => {
    if (m.id === STREAM) got.push(new DataView(m.body.buffer, m.body.byteOffset).getUint32(0));
    else a.refuse(m);
  });
  const ping = await a.allocate();
  serve(a, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(ping, {});
  const c = await a.taskCreate("sender");
  const NAME = 0x700;
  await a.insertRight(c.task, NAME, port, MsgType.MSG_TYPE_MAKE_SEND);
  await a.insertRight(c.task, NAME + 1, ping, MsgType.MSG_TYPE_MAKE_SEND);
  return { got, c, NAME };
}

describe("NATS users renewed under load", { skip: (!busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats") || (!process.env.HURD_NATS_KEYS && "NATS authorization is off") }, () => {
  let h: Hurd;
  before(async () => {
    void natsKeys();
    h = await startHurd("nats", {}, { natsUserTtlS: TTL_S });
  });
  after(() => h?.close());

  it(`a ${TTL_S} s JWT is renewed before it expires, and no message is lost, repeated or reordered across the handovers`, async () => {
    const a = await h.task("receiver", { timeoutMs: 10_000 });
    const { got, c, NAME } = await pair(h, a);
    const b: Task = await h.attach(c.taskId, c.token, { timeoutMs: 10_000 });
    const expiresA = (a.bus as NatsBus).expires;
    const expiresB = (b.bus as NatsBus).expires;
    assert.ok(expiresA > 0 && expiresB > 0, "both connect as users whose JWTs expire");
    const { sent, pings } = await stream(b, NAME, NAME + 1, (TTL_S * 2 + 2) * 1000);
    await until(() => got.length >= sent, 10_000, `all ${sent} messages`);
    assertOnceInOrder(got, sent, a, b);
    // Renewed at least twice each (a third of the life left each time), and still attached.
    assert.ok((a.bus as NatsBus).expires >= expiresA + TTL_S, `receiver renewed (${expiresA} -> ${(a.bus as NatsBus).expires})`);
    assert.ok((b.bus as NatsBus).expires >= expiresB + TTL_S, `sender renewed (${expiresB} -> ${(b.bus as NatsBus).expires})`);
    assert.equal(a.detached || b.detached, false);
    assert.ok(pings > 10);
  });

  it(`a renewal's incoming connection hearing the server ${LAG_MS} ms later than the outgoing one: what it gets late is matched, not passed on twice`, async () => {
    const relay = await natsRelay(natsUrl(), { lagMs: (n) => (n === 0 ? 0 : LAG_MS) });
    try {
      const boot = h.kernel.bootTask({ name: "receiver-lagged" });
      const a = await attachOverNats(relay.url, { system: h.kernel.config.system, taskId: boot.task.id, token: boot.token, credentials: h.natsCredentials(boot.task.id), timeoutMs: 10_000 });
      try {
        const { got, c, NAME } = await pair(h, a);
        const b: Task = await h.attach(c.taskId, c.token, { timeoutMs: 10_000 });
        const expiresA = (a.bus as NatsBus).expires;
        const { sent } = await stream(b, NAME, NAME + 1, (TTL_S + 2) * 1000);
        await until(() => got.length >= sent, 10_000, `all ${sent} messages`);
        // Late copies of the last ones would come after: give them the time.
        await new Promise((r) => setTimeout(r, LAG_MS * 3));
        assert.ok((a.bus as NatsBus).expires > expiresA, "the receiver was renewed, through the relay");
        assertOnceInOrder(got, sent, a, b);
      } finally {
        a.abandon();
        await a.bus.close().catch(() => {});
      }
    } finally {
      await relay.close();
    }
  });
});

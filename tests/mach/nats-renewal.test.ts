// A task's NATS user expires and is renewed (TaskNatsRenew), and its bus
// moves to a connection that presents the new JWT (NatsBus's handover):
// through several renewals a stream of messages arrives whole, in order,
// once, and RPCs keep working. With authorization off there is nothing to
// renew, and the suite says so.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, MsgType, serve, type Task } from "@hurdmesh/mach";
import type { NatsBus } from "@hurdmesh/mach/nats";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { busKinds, natsKeys, startHurd, until, type Hurd } from "../harness.js";

const TTL_S = 3;
const STREAM = 4711;

describe("NATS users renewed under load", { skip: (!busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats") || (!process.env.HURD_NATS_KEYS && "NATS authorization is off") }, () => {
  let h: Hurd;
  before(async () => {
    void natsKeys();
    h = await startHurd("nats", {}, { natsUserTtlS: TTL_S });
  });
  after(() => h?.close());

  it(`a ${TTL_S} s JWT is renewed before it expires, and no message is lost, repeated or reordered across the handovers`, async () => {
    const a = await h.task("receiver", { timeoutMs: 10_000 });
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
    const b: Task = await h.attach(c.taskId, c.token, { timeoutMs: 10_000 });
    const expiresA = (a.bus as NatsBus).expires;
    const expiresB = (b.bus as NatsBus).expires;
    assert.ok(expiresA > 0 && expiresB > 0, "both connect as users whose JWTs expire");
    const pinger = client(b, PingDefinition, NAME + 1);
    let sent = 0;
    let pings = 0;
    const end = Date.now() + (TTL_S * 2 + 2) * 1000;
    while (Date.now() < end) {
      for (let i = 0; i < 20; i++) {
        const body = new Uint8Array(4);
        new DataView(body.buffer).setUint32(0, sent++);
        b.send({ destination: NAME, id: STREAM, body });
      }
      const r = await pinger.ping({ payload: new Uint8Array([pings & 0xff]) });
      assert.equal(r.payload[0], pings++ & 0xff);
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => got.length >= sent, 10_000, `all ${sent} messages`);
    assert.equal(got.length, sent, "none repeated");
    for (let i = 0; i < got.length; i++) if (got[i] !== i) assert.fail(`message ${i} arrived as ${got[i]} (out of order or lost)`);
    // Renewed at least twice each (a third of the life left each time), and still attached.
    assert.ok((a.bus as NatsBus).expires >= expiresA + TTL_S, `receiver renewed (${expiresA} -> ${(a.bus as NatsBus).expires})`);
    assert.ok((b.bus as NatsBus).expires >= expiresB + TTL_S, `sender renewed (${expiresB} -> ${(b.bus as NatsBus).expires})`);
    assert.equal(a.detached || b.detached, false);
    assert.ok(pings > 10);
  });
});

// The runtime's JetStream key-value bucket (@hurdmesh/mach/nats's
// JetStreamKv) on the nats-server `npm test` starts with JetStream: what
// proc and auth write their state through to, each as the NATS user of its
// own bucket (the subject map's "store" role), which reaches no other.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HurdError } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { JetStreamKv, type NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsBus, natsKeys } from "../harness.js";

describe("JetStream key-value bucket", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  const system = `kv${process.pid}`;
  const buses: NatsBus[] = [];
  const storeBus = async (hurd: string, server: string) => {
    const b = await natsBus(system, { kind: "store", hurd, server });
    buses.push(b);
    return b;
  };
  const open = async (hurd: string, server: string, b?: NatsBus) =>
    JetStreamKv.open((b ?? (await storeBus(hurd, server))).nc, system, hurd, server, { timeoutMs: 3000, inboxPrefix: natsKeys() ? inboxOf(system, { kind: "store", hurd, server }) : undefined });
  after(async () => {
    for (const b of buses) await b.close();
  });

  it("put, overwrite and delete are acknowledged; entries() reads back each key's last value; purge empties it; an empty bucket reads back empty", async () => {
    const kv = await open("", "proc");
    assert.equal((await kv.entries()).size, 0);
    const enc = (s: string) => new TextEncoder().encode(s);
    for (let i = 0; i < 50; i++) await kv.put(`p${i}`, enc(`v${i}`));
    await kv.put("p7", enc("again"));
    await kv.delete("p8");
    // The same bucket opened again (a restarted server) sees the same.
    const again = await open("", "proc");
    const got = await again.entries();
    assert.equal(got.size, 49);
    assert.equal(new TextDecoder().decode(got.get("p7")), "again");
    assert.equal(got.has("p8"), false);
    assert.equal(new TextDecoder().decode(got.get("p49")), "v49");
    await again.purge();
    assert.equal((await kv.entries()).size, 0);
    // Another hurd's bucket is another stream.
    const other = await open("sub1", "proc");
    await other.put("x", enc("1"));
    assert.equal((await kv.entries()).size, 0);
    assert.throws(() => kv.subjects.key("a.b"), RangeError);
  });

  it("a server's store user reaches its own bucket only: opening, writing or purging another server's is refused", { skip: !natsKeys() && "NATS authorization is off" }, async () => {
    const auth = await open("", "auth");
    await auth.put("h1", new TextEncoder().encode("root"));
    const procs = await storeBus("", "proc");
    // proc's user, speaking for auth's bucket: every call is refused by nats-server (no answer comes back).
    await assert.rejects(open("", "auth", procs), (e: unknown) => e instanceof HurdError && e.errno === "EIO");
    // A write straight to auth's key, and a purge of auth's stream: refused too.
    await assert.rejects(procs.request(auth.subjects.key("h1"), new TextEncoder().encode("forged"), 1000));
    await assert.rejects(procs.request(auth.subjects.streamPurge, new TextEncoder().encode("{}"), 1000));
    const left = await auth.entries();
    assert.equal(left.size, 1);
    assert.equal(new TextDecoder().decode(left.get("h1")), "root");
  });
});

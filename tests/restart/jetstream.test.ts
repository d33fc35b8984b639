// The runtime's JetStream key-value bucket (@hurdmesh/mach/nats's
// JetStreamKv) on the nats-server `npm test` starts with -js: what proc and
// auth write their state through to.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { JetStreamKv, NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsUrl } from "../harness.js";

describe("JetStream key-value bucket", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  let bus: NatsBus;
  before(async () => {
    bus = await NatsBus.connect(natsUrl());
  });
  after(async () => {
    await bus.close();
  });

  it("put, overwrite and delete are acknowledged; entries() reads back each key's last value; purge empties it; an empty bucket reads back empty", async () => {
    const system = `kv${process.pid}`;
    const kv = await JetStreamKv.open(bus.nc, system, "", "proc");
    assert.equal((await kv.entries()).size, 0);
    const enc = (s: string) => new TextEncoder().encode(s);
    for (let i = 0; i < 50; i++) await kv.put(`p${i}`, enc(`v${i}`));
    await kv.put("p7", enc("again"));
    await kv.delete("p8");
    // The same bucket opened again (a restarted server) sees the same.
    const again = await JetStreamKv.open(bus.nc, system, "", "proc");
    const got = await again.entries();
    assert.equal(got.size, 49);
    assert.equal(new TextDecoder().decode(got.get("p7")), "again");
    assert.equal(got.has("p8"), false);
    assert.equal(new TextDecoder().decode(got.get("p49")), "v49");
    await again.purge();
    assert.equal((await kv.entries()).size, 0);
    // Another hurd's bucket is another stream.
    const other = await JetStreamKv.open(bus.nc, system, "sub1", "proc");
    await other.put("x", enc("1"));
    assert.equal((await kv.entries()).size, 0);
    assert.throws(() => kv.subjects.key("a.b"), RangeError);
  });
});

// auth's store as a log (LogAuthStore over store-log.ts), in memory and on
// JetStream as auth's store user: a new process reads every handle back, an
// old process is fenced once a new one opened the log, a snapshot and its
// tail give the image the changes made, an older layout's keys (the
// KvAuthStore auth had before) are not read as a log but start it afresh.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { inboxOf } from "@hurdmesh/mach/internal";
import { HurdError, MemoryLogBacking, MemoryStoreLog, StoreFencedError } from "@hurdmesh/mach";
import { JetStreamKv, JetStreamStoreLog, type NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsBus, natsKeys } from "../../../tests/harness.js";
import type { Ids } from "./handles.js";
import { LogAuthStore, MemoryAuthStore, type AuthStore } from "./store.js";

const ids = (uid: number): Ids => ({ euids: [uid], auids: [uid, 0], egids: [100], agids: [] });

/**
 * A fresh start, a root, handles made and one gone; a new store on the same
 * log (a new process of task 7) reads every handle back; another task's
 * open (a later boot) forgets them for good.
 */
async function roundTrip(store: () => Promise<AuthStore>): Promise<void> {
  const a = await store();
  assert.equal(await a.open(7), null, "a fresh start");
  await a.putHandle(3, ids(0));
  await a.putSelf(3, 9);
  // Concurrent, as a makeauth load asks them.
  await Promise.all([10, 11, 12, 13].map((n) => a.putHandle(n, ids(1000 + n))));
  await a.deleteHandle(11);
  const image = await (await store()).open(7);
  assert.ok(image, "a restart reads the image back");
  assert.equal(image.root, 3);
  assert.equal(image.notifyPort, 9);
  assert.deepEqual([...image.handles.keys()].sort((x, y) => x - y), [3, 10, 12, 13]);
  assert.deepEqual(image.handles.get(12), ids(1012));
  assert.equal(await (await store()).open(8), null, "another task's image is not taken");
  assert.equal(await (await store()).open(7), null, "and is gone for good");
}

/** Two processes of task 7 on one log: the old one's next write is refused (EIO to its caller, StoreFencedError to onBroken), the new one's lands. */
async function fencing(store: () => Promise<LogAuthStore>): Promise<void> {
  const old = await store();
  await old.open(7);
  await old.putHandle(3, ids(0));
  await old.putSelf(3, 9);
  const broken: Error[] = [];
  old.onBroken = (e) => broken.push(e);
  const next = await store();
  assert.ok(await next.open(7));
  await assert.rejects(old.putHandle(20, ids(666)), (e: unknown) => e instanceof HurdError && e.errno === "EIO");
  assert.equal(broken.length, 1);
  assert.ok(broken[0] instanceof StoreFencedError, `fenced: ${broken[0]?.message}`);
  await assert.rejects(old.deleteHandle(3), (e: unknown) => e instanceof HurdError && e.errno === "EIO", "and writes nothing more");
  assert.equal(broken.length, 1, "onBroken once");
  await next.putHandle(21, ids(21));
  const image = (await (await store()).open(7))!;
  assert.deepEqual([...image.handles.keys()].sort((x, y) => x - y), [3, 21], "the old process's handle is not there, the new one's is");
}

/** Enough changes for snapshots; the image a new store reads (snapshot + tail) is the one the changes made. */
async function snapshots(store: () => Promise<LogAuthStore>, n: number): Promise<LogAuthStore> {
  const a = await store();
  // Task 8 (a later boot): what the tests before left is forgotten, the changes below are the whole image.
  assert.equal(await a.open(8), null);
  await a.putHandle(3, ids(0));
  await a.putSelf(3, 9);
  const want = new Map<number, Ids>([[3, ids(0)]]);
  for (let i = 0; i < n; i += 8) {
    // Eight at a time, as a load's concurrent makeauths group-commit; every third batch also drops an older handle.
    const batch = Array.from({ length: 8 }, (_, j) => 100 + ((i + j) % 3000));
    await Promise.all(batch.map((name) => a.putHandle(name, ids(name + i))));
    for (const name of batch) want.set(name, ids(name + i));
    if (i % 24 === 0 && i > 0) {
      const gone = 100 + ((i * 7) % 3000);
      await a.deleteHandle(gone);
      want.delete(gone);
    }
  }
  const image = (await (await store()).open(8))!;
  assert.ok(image);
  assert.equal(image.root, 3);
  assert.equal(image.notifyPort, 9);
  assert.equal(image.handles.size, want.size);
  assert.deepEqual(new Map([...image.handles].sort((x, y) => x[0] - y[0])), new Map([...want].sort((x, y) => x[0] - y[0])));
  return a;
}

describe("auth's store", () => {
  it("in memory: the image read back by the same task, another task's forgotten", async () => {
    const mem = new MemoryAuthStore();
    await roundTrip(async () => mem);
  });

  it("as a log in memory: read back, group commit, fencing, snapshots, an older layout reset", async () => {
    const backing = new MemoryLogBacking();
    await roundTrip(async () => new LogAuthStore(new MemoryStoreLog(backing)));
    const group = new LogAuthStore(new MemoryStoreLog(backing));
    await group.open(7);
    await Promise.all(Array.from({ length: 50 }, (_, i) => group.putHandle(200 + i, ids(i))));
    assert.ok(group.stats.writes < 50, `concurrent changes share writes (${group.stats.writes} for 50)`);
    await fencing(async () => new LogAuthStore(new MemoryStoreLog(backing)));
    const s = await snapshots(async () => new LogAuthStore(new MemoryStoreLog(backing)), 12_000);
    assert.ok(s.stats.snapshots >= 1, "a snapshot once the tail passed its minimum and twice the last one");
    assert.ok(backing.msgs.length < s.stats.writes, `the log was cut at the snapshot (${backing.msgs.length} messages, ${s.stats.writes} writes)`);
    // The keys KvAuthStore wrote ("self", "h<name>"): not this log's, so it starts afresh.
    const old = new MemoryLogBacking();
    old.msgs.push({ seq: ++old.seq, key: "self", data: new TextEncoder().encode('{"task":7,"root":3,"notify":9}') });
    old.msgs.push({ seq: ++old.seq, key: "h3", data: new TextEncoder().encode(JSON.stringify(ids(0))) });
    const fresh = new LogAuthStore(new MemoryStoreLog(old));
    assert.equal(await fresh.open(7), null, "an older layout is not read as a log");
    assert.ok(old.msgs.every((m) => /^L\d+$/.test(m.key)), "and is dropped");
    await fresh.putHandle(3, ids(0));
    await fresh.putSelf(3, 9);
    assert.ok(await new LogAuthStore(new MemoryStoreLog(old)).open(7));
  });

  describe("on JetStream", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
    const buses: NatsBus[] = [];
    after(async () => {
      for (const b of buses) await b.close();
    });
    const storeUser = async (system: string) => {
      const b = await natsBus(system, { kind: "store", hurd: "", server: "auth" });
      buses.push(b);
      return { nc: b.nc, o: { timeoutMs: 5000, inboxPrefix: natsKeys() ? inboxOf(system, { kind: "store", hurd: "", server: "auth" }) : undefined } };
    };
    const system = `al${process.pid}`;
    const open = async () => {
      const u = await storeUser(system);
      return new LogAuthStore(await JetStreamStoreLog.open(u.nc, system, "", "auth", u.o));
    };

    it("as auth's store user on its bucket: read back by a new connection, fencing by expected last sequence, snapshots", async () => {
      await roundTrip(open);
      await fencing(open);
      const s = await snapshots(open, 12_000);
      assert.ok(s.stats.snapshots >= 1);
      await s.log.reset();
    });

    it("KvAuthStore's keys left in the bucket: the log starts afresh", async () => {
      const sys = `ao${process.pid}`;
      const u = await storeUser(sys);
      const kv = await JetStreamKv.open(u.nc, sys, "", "auth", u.o);
      await kv.put("self", new TextEncoder().encode('{"task":7,"root":3,"notify":9}'));
      await kv.put("h3", new TextEncoder().encode(JSON.stringify(ids(0))));
      const log = new LogAuthStore(await JetStreamStoreLog.open(u.nc, sys, "", "auth", u.o));
      assert.equal(await log.open(7), null, "not read as a log");
      assert.equal((await kv.entries()).has("h3"), false, "the old keys are gone");
      await log.putHandle(3, ids(0));
      await log.putSelf(3, 9);
      const image = await new LogAuthStore(await JetStreamStoreLog.open(u.nc, sys, "", "auth", u.o)).open(7);
      assert.ok(image);
      assert.deepEqual([...image.handles.keys()], [3]);
      await log.log.reset();
    });
  });
});

// proc's store (store.ts) on its own: the records of a small process table
// written as batches and read back as the image a restarted proc would
// rebuild from, in memory and on a JetStream KV bucket of a real
// nats-server, as proc's store user.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { inboxOf } from "@hurdmesh/mach/internal";
import { MemoryLogBacking, MemoryStoreLog, StoreFencedError, type StoreLog } from "@hurdmesh/mach";
import { JetStreamKv, JetStreamStoreLog, type NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsBus, natsKeys } from "../../../tests/harness.js";
import { Handle } from "./handles.js";
import { Login, P, Pgrp, Proc, Session, addChild } from "./proc.js";
import { KvProcStore, LogProcStore, MemoryProcStore, ProcBatch, bytesOf, type ProcStore } from "./store.js";

/** pid 1, a session leader 10 in pgrp 10 with a child 11 (a zombie), a handle on 11; the self record. */
function table() {
  const root = new Login("root");
  const init = new Proc(1, 1, root);
  init.uids = [0, 0];
  const s = new Session(10);
  s.sidport = 0x301;
  const g = new Pgrp(10, s);
  const leader = new Proc(10, 2, new Login("alice"));
  leader.uids = [1000, 1000];
  leader.task = 0x210;
  leader.taskId = 42;
  leader.port = 0x211;
  leader.args = new TextEncoder().encode("sh\0-c\0true\0");
  leader.pgrp = g;
  addChild(init, leader);
  const z = new Proc(11, 3, leader.login);
  z.uids = leader.uids;
  z.pgrp = g;
  z.flags = P.DEAD | P.EXEC;
  z.status = 3 << 8;
  z.rusage = { utimeUs: 5, stimeUs: 6, maxrssKb: 7, msgsnd: 8, msgrcv: 9 };
  addChild(leader, z);
  const h = new Handle(0x400, 11, 3, 1000, z);
  h.ids = [1000, 1000];
  h.died(z);
  const b = new ProcBatch();
  b.self({ task: 7, notifyPort: 0x100, authPort: 0x101, hostPriv: 0x102, deviceMaster: 0, pidNext: 12, serials: 3 });
  for (const p of [init, leader, z]) b.proc(p);
  b.pgrp(10, 10);
  b.session(10, s.sidport);
  b.handle(h.port, h);
  return { init, leader, z, h, b };
}

async function roundTrip(store: () => Promise<ProcStore>): Promise<void> {
  const first = await store();
  assert.equal(await first.open(7), null, "a fresh bucket holds no image");
  const t = table();
  await first.write(t.b);
  // The same process changed twice in one burst is one key, with its last state.
  const burst = new ProcBatch();
  t.leader.status = 1;
  burst.proc(t.leader);
  t.leader.flags |= P.STOPPED;
  burst.proc(t.leader);
  assert.equal(burst.size, 1);
  await first.write(burst);

  // The restarted process reads the image and is the writer from then on (a log fences the first).
  const second = await store();
  const image = await second.open(7);
  assert.ok(image, "the image a restarted proc reads");
  assert.equal(image.self.pidNext, 12);
  assert.deepEqual([...image.procs.keys()].sort((a, b) => a - b), [1, 10, 11]);
  const leader = image.procs.get(10)!;
  assert.equal(leader.parent, 1);
  assert.equal(leader.pgid, 10);
  assert.equal(leader.login, "alice");
  assert.equal(leader.task, 0x210);
  assert.equal(leader.flags & P.STOPPED, P.STOPPED);
  assert.equal(leader.status, 1);
  assert.deepEqual(bytesOf(leader.args), t.leader.args);
  const z = image.procs.get(11)!;
  assert.equal(z.parent, 10);
  assert.equal(z.status, 3 << 8);
  assert.equal(z.flags & P.DEAD, P.DEAD);
  assert.deepEqual(z.rusage, t.z.rusage);
  assert.deepEqual(image.pgrps.get(10), { pgid: 10, sid: 10 });
  assert.deepEqual(image.sessions.get(10), { sid: 10, sidport: 0x301 });
  const h = image.handles.get(0x400)!;
  assert.deepEqual(h.owner, { uid: 1000 });
  assert.equal(h.final?.status, 3 << 8);

  // Reaped: the zombie's record, its handle's and the pgrp's go.
  const reap = new ProcBatch();
  t.z.flags |= P.REAPED;
  reap.proc(t.z);
  reap.handle(0x400, null);
  reap.pgrp(10, null);
  await second.write(reap);
  const after = (await (await store()).open(7))!;
  assert.equal(after.procs.has(11), false);
  assert.equal(after.handles.size, 0);
  assert.equal(after.pgrps.size, 0);
  assert.equal(after.sessions.size, 1);

  // Another task's image (a later boot's proc): forgotten, not rebuilt.
  assert.equal(await (await store()).open(8), null);
  assert.equal(await (await store()).open(7), null, "and gone for good");
}

/**
 * The log's own promises, on `log()` (each call a new process of the same
 * server): a new writer fences the old one; a batch over the largest
 * message goes as parts and comes back whole; a snapshot drops what came
 * before it and the image is the same; a batch cut off mid-parts is not
 * read back.
 */
async function logBehaviour(log: () => Promise<StoreLog>, maxMessage: number, cutOff: ((l: StoreLog) => Promise<void>) | null): Promise<void> {
  const a = await log();
  await a.reset();
  await a.append(new TextEncoder().encode("one"));
  const big = new Uint8Array(maxMessage * 2 + 17).map((_, i) => i % 251);
  await a.append(big);
  const b = await log();
  const img = await b.open();
  assert.equal(img.snapshot, null);
  assert.deepEqual(img.entries.map((e) => e.length), [3, big.length]);
  assert.deepEqual(img.entries[1], big, "a batch split into parts comes back whole");
  // The old writer is refused once the new one opened the log; the new one goes on.
  await assert.rejects(a.append(new TextEncoder().encode("stale")), StoreFencedError);
  await b.append(new TextEncoder().encode("two"));
  await b.snapshot(new TextEncoder().encode("SNAP"));
  await b.append(new TextEncoder().encode("three"));
  const c = await log();
  const after = await c.open();
  assert.equal(new TextDecoder().decode(after.snapshot!), "SNAP");
  assert.deepEqual(after.entries.map((e) => new TextDecoder().decode(e)), ["three"]);
  assert.equal(c.snapshotBytes, 4);
  assert.equal(c.tailBytes, 5);
  if (cutOff) {
    await cutOff(c);
    const d = await log();
    assert.deepEqual((await d.open()).entries.map((e) => new TextDecoder().decode(e)), ["three"], "a batch whose last part never landed is not read back");
  }
}

/** Writes `n` batches of one process record each (pid 100+i), and checks the image a new store reads back. */
async function manyBatches(store: () => Promise<LogProcStore>, n: number): Promise<LogProcStore> {
  const first = await store();
  assert.equal(await first.open(7), null);
  const t = table();
  await first.write(t.b);
  for (let i = 0; i < n; i++) {
    const b = new ProcBatch();
    const p = new Proc(100 + (i % 50), 10 + i, new Login("bob"));
    p.args = new Uint8Array(2000).fill(65 + (i % 26));
    b.proc(p);
    await first.write(b);
  }
  const image = (await (await store()).open(7))!;
  assert.ok(image);
  assert.equal(image.procs.size, 3 + Math.min(n, 50));
  assert.equal(image.procs.get(100 + ((n - 1) % 50))!.serial, 10 + n - 1, "the last write of a key wins, across snapshots");
  return first;
}

describe("proc's store", () => {
  it("in memory: batches written, the image read back by the same task, another task's forgotten", async () => {
    const mem = new MemoryProcStore();
    await roundTrip(async () => mem);
  });

  it("as a log in memory: one message per batch, fencing, parts, snapshots, a cut-off batch", async () => {
    const backing = new MemoryLogBacking(4096);
    await logBehaviour(async () => new MemoryStoreLog(backing), 4096, async () => {
      // A process killed between the parts of a batch: its first part stored, the rest never.
      backing.msgs.push({ seq: ++backing.seq, key: "L9999", data: new TextEncoder().encode('{"k":"b","i":0,"of":2}\nhalf') });
    });
    const procs = new MemoryLogBacking();
    await roundTrip(async () => new LogProcStore(new MemoryStoreLog(procs)));
    const store = await manyBatches(async () => new LogProcStore(new MemoryStoreLog(procs)), 1500);
    assert.ok(store.stats.snapshots >= 1, "a snapshot once the tail passed 1 MiB and twice the last one");
    assert.ok(procs.msgs.length < 1000, `the log was cut at the snapshot (${procs.msgs.length} messages)`);
  });

  describe("on JetStream KV", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
    const system = `ps${process.pid}`;
    const buses: NatsBus[] = [];
    after(async () => {
      for (const b of buses) await b.close();
    });
    it("as proc's store user: batches acknowledged, the image read back by a new connection, another task's purged", async () => {
      const store = async () => {
        const b = await natsBus(system, { kind: "store", hurd: "", server: "proc" });
        buses.push(b);
        return new KvProcStore(await JetStreamKv.open(b.nc, system, "", "proc", { timeoutMs: 5000, inboxPrefix: natsKeys() ? inboxOf(system, { kind: "store", hurd: "", server: "proc" }) : undefined }));
      };
      await roundTrip(store);
    });
    const logSystem = `pl${process.pid}`;
    const openLog = async () => {
      const b = await natsBus(logSystem, { kind: "store", hurd: "", server: "proc" });
      buses.push(b);
      return JetStreamStoreLog.open(b.nc, logSystem, "", "proc", { timeoutMs: 5000, inboxPrefix: natsKeys() ? inboxOf(logSystem, { kind: "store", hurd: "", server: "proc" }) : undefined });
    };
    it("as a log on JetStream, as proc's store user: fencing by expected last sequence, parts, snapshots, the image read back", async () => {
      const max = buses[0]?.nc.info?.max_payload ?? (await openLog(), buses.at(-1)!.nc.info!.max_payload);
      await logBehaviour(openLog, max, null);
      await (await openLog()).reset();
      await roundTrip(async () => new LogProcStore(await openLog()));
      const store = await manyBatches(async () => new LogProcStore(await openLog()), 1500);
      assert.ok(store.stats.snapshots >= 1);
      await (await openLog()).reset();
    });
    it("an older layout's records (a KvProcStore's keys) in the bucket: the log starts afresh", async () => {
      const sys = `po${process.pid}`;
      const b = await natsBus(sys, { kind: "store", hurd: "", server: "proc" });
      buses.push(b);
      const inboxPrefix = natsKeys() ? inboxOf(sys, { kind: "store", hurd: "", server: "proc" }) : undefined;
      const old = new KvProcStore(await JetStreamKv.open(b.nc, sys, "", "proc", { timeoutMs: 5000, inboxPrefix }));
      assert.equal(await old.open(7), null);
      await old.write(table().b);
      const log = new LogProcStore(await JetStreamStoreLog.open(b.nc, sys, "", "proc", { timeoutMs: 5000, inboxPrefix }));
      assert.equal(await log.open(7), null, "not read as a log");
      await log.write(table().b);
      assert.ok(await new LogProcStore(await JetStreamStoreLog.open(b.nc, sys, "", "proc", { timeoutMs: 5000, inboxPrefix })).open(7));
      await log.log.reset();
    });
  });
});

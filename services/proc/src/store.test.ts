// proc's store (store.ts) on its own: the records of a small process table
// written as batches and read back as the image a restarted proc would
// rebuild from, in memory and on a JetStream KV bucket of a real
// nats-server, as proc's store user.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { inboxOf } from "@hurdmesh/mach/internal";
import { JetStreamKv, type NatsBus } from "@hurdmesh/mach/nats";
import { busKinds, natsBus, natsKeys } from "../../../tests/harness.js";
import { Handle } from "./handles.js";
import { Login, P, Pgrp, Proc, Session, addChild } from "./proc.js";
import { KvProcStore, MemoryProcStore, ProcBatch, bytesOf, type ProcStore } from "./store.js";

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

  const image = await (await store()).open(7);
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
  await first.write(reap);
  const after = (await (await store()).open(7))!;
  assert.equal(after.procs.has(11), false);
  assert.equal(after.handles.size, 0);
  assert.equal(after.pgrps.size, 0);
  assert.equal(after.sessions.size, 1);

  // Another task's image (a later boot's proc): forgotten, not rebuilt.
  assert.equal(await (await store()).open(8), null);
  assert.equal(await (await store()).open(7), null, "and gone for good");
}

describe("proc's store", () => {
  it("in memory: batches written, the image read back by the same task, another task's forgotten", async () => {
    const mem = new MemoryProcStore();
    await roundTrip(async () => mem);
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
  });
});

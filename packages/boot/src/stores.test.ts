// superviseStore on auth (issue 17): an old auth fenced by a newer process
// of its task exits 0 (nothing starts a third); a store that fails for any
// other reason has it exit EX_STORE_FAILED, to be restarted from what was
// acknowledged; auth's in-memory store has nothing to watch.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LogAuthStore, MemoryAuthStore } from "@hurdmesh/auth";
import { MemoryLogBacking, MemoryStoreLog, type Task } from "@hurdmesh/mach";
import { EX_STORE_FAILED, superviseStore } from "./stores.js";

const ids = { euids: [0], auids: [0], egids: [0], agids: [0] };
const task = { id: 5 } as Task;
const settle = () => new Promise((r) => setTimeout(r, 200));

describe("superviseStore (auth)", () => {
  it("an old auth fenced by a newer process of its task exits 0", async () => {
    const backing = new MemoryLogBacking();
    const old = new LogAuthStore(new MemoryStoreLog(backing));
    await old.open(7);
    await old.putSelf(3, 9);
    const codes: number[] = [];
    superviseStore({ store: old }, { system: "t", task, exit: (c) => codes.push(c) });
    assert.ok(await new LogAuthStore(new MemoryStoreLog(backing)).open(7));
    await assert.rejects(old.putHandle(4, ids));
    await settle();
    assert.deepEqual(codes, [0]);
  });

  it("a store that fails otherwise exits EX_STORE_FAILED; one that failed before it was watched too", async () => {
    const log = new MemoryStoreLog();
    const store = new LogAuthStore(log);
    await store.open(7);
    log.append = async () => {
      throw new Error("JetStream away");
    };
    await assert.rejects(store.putHandle(4, ids));
    const codes: number[] = [];
    superviseStore({ store }, { system: "t", task, exit: (c) => codes.push(c) });
    await settle();
    assert.deepEqual(codes, [EX_STORE_FAILED]);
  });

  it("auth's in-memory store: nothing to watch", () => {
    superviseStore({ store: new MemoryAuthStore() }, { system: "t", task, exit: () => assert.fail("no exit") });
  });
});

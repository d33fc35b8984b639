import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds } from "../harness.js";
import { bootProcHurd, type ProcHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`proc boot (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind);
    });
    after(async () => ph.close());

    it("startup is pid 2 and proc_getallpids shows 1, 2, 3 and 4", async () => {
      assert.equal(ph.startup.pid, 2);
      const { pids } = await ph.startup.proc.getallpids({});
      for (const p of [1, 2, 3, 4]) assert.ok(pids.includes(p), `pid ${p} in ${pids}`);
    });

    it("a forked child gets a pid, its parent is the forker, and wait reports its exit", async () => {
      const c = await ph.spawn(ph.startup, "kid");
      assert.ok(c.pid >= 100);
      const ids = await c.proc.getpids({});
      assert.equal(ids.ppid, 2);
      await c.proc.markExit({ status: 3 << 8, sigcode: 0 });
      await c.task.detach();
      const w = await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      assert.equal(w.pidStatus, c.pid);
      assert.equal(w.status, 3 << 8);
    });
  });
}

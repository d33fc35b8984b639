// Every failure the fuzzer found, as the case it shrank to, named after it.
// Each was fixed in the server code in its own commit; these keep it fixed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, Rights } from "@hurdmesh/mach";
import { busKinds } from "../harness.js";
import { World } from "../auth/world.js";

for (const kind of busKinds) {
  describe(`fuzz regressions: auth (${kind} bus)`, () => {
    let w: World;
    before(async () => {
      w = await World.start(kind);
    });
    after(async () => w.close());

    // Shrunk: [getIds carrying {name: the caller's first name, COPY_SEND}], then the caller dies.
    it("auth_getids with a right attached keeps no right of it: auth's space is as before once the caller is gone", async () => {
      const before = await w.authRefs();
      const p = await w.party("getids-with-a-right");
      const handle = await w.handle(p, { euids: [1000], auids: [1000] });
      const r = new Rights();
      r.add(p.task.self, MsgType.MSG_TYPE_COPY_SEND);
      const ids = await w.authc(p.task, handle).getIds({}, { rights: r });
      assert.deepEqual(ids.euids, [1000]);
      await w.boot.task.taskTerminate(p.port);
      await w.boot.task.deallocate(p.port);
      await w.authSpaceIs(before, "no send right or dead name of the caller's task port stays in auth's space");
    });
  });
}

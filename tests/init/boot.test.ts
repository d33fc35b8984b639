import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds } from "../harness.js";
import { bootHurd, type BootedHurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`init boots a hurd (${kind} bus)`, () => {
    let b: BootedHurd;
    const log: string[] = [];
    before(async () => {
      b = await bootHurd(kind, { log });
    });
    after(async () => b.close());

    it("shows pids 1, 2, 3 and 4 with init's servers as children of startup", async () => {
      const proc = client(b.initTask, ProcessDefinition, b.init.booted!.proc);
      const { procs } = await proc.getallprocinfo({ startPid: 1, max: 100 });
      const byPid = new Map(procs.map((p) => [p.pid, p]));
      assert.equal(byPid.get(1)?.command, "/libexec/runsystem");
      assert.equal(byPid.get(2)?.command, "/hurd/startup");
      assert.equal(byPid.get(3)?.command, "kernel");
      assert.equal(byPid.get(4)?.command, "/hurd/proc");
      const auth = procs.find((p) => p.command === "/hurd/auth");
      assert.ok(auth, `auth is listed: ${JSON.stringify(procs.map((p) => [p.pid, p.ppid, p.command]))}`);
      assert.equal(auth.ppid, 2, "auth is a child of startup");
      assert.equal(byPid.get(4)?.ppid, 2, "proc is a child of startup");
      assert.equal(byPid.get(2)?.ppid, 1);
      assert.ok(log.some((l) => l.includes("pid 1 started")), log.join("\n"));
    });
  });
}

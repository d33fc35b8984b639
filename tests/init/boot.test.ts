import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { BOOT_NAMES } from "@hurdmesh/init";
import { client, isErrno, MsgType, PortRight, Rights } from "@hurdmesh/mach";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
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

    it("a bare name (MSG_TYPE_PORT_NAME) is no host port: startup_reboot and startup_essential_task are EPERM, and init keeps its own right of that number", async () => {
      const hostPriv = b.initTask.hostPriv;
      const refs = await b.initTask.getRefs(hostPriv, PortRight.PORT_RIGHT_SEND);
      const c = await b.init.makeConsole();
      const con = await b.h.attach(c.taskId, c.token);
      try {
        const startup = client(con, StartupDefinition, BOOT_NAMES.startup);
        // The number init's host_priv right has in init's space: anyone can write it in a message.
        const bare = () => {
          const r = new Rights();
          return { r, i: r.add(hostPriv, MsgType.MSG_TYPE_PORT_NAME) };
        };
        const v = bare();
        await assert.rejects(startup.reboot({ refport: v.i, code: 0 }, { rights: v.r }), (e) => isErrno(e, "EPERM"));
        const w = bare();
        const t = await con.allocate(PortRight.PORT_RIGHT_RECEIVE);
        const ti = w.r.makeSend(t);
        await assert.rejects(startup.essentialTask({ credential: w.i, task: ti, excpt: 0, name: "forged" }, { rights: w.r }), (e) => isErrno(e, "EPERM"));
        assert.equal(await b.initTask.getRefs(hostPriv, PortRight.PORT_RIGHT_SEND), refs, "init's host_priv urefs");
        const proc = client(b.initTask, ProcessDefinition, b.init.booted!.proc);
        assert.equal((await proc.getpids({})).pid, 2, "the hurd is still up");
      } finally {
        await con.detach().catch(() => {});
      }
    });
  });
}

describe("init boots whatever order proc and auth come up in", () => {
  for (const late of ["proc", "auth"]) {
    it(`${late} late: the other's hand-shake waits for it, then the hurd is up`, async () => {
      const { Init } = await import("@hurdmesh/init");
      const { InProcessLauncher } = await import("@hurdmesh/boot");
      const { startHurd } = await import("../harness.js");
      const h = await startHurd("local");
      try {
        const initTask = await h.task("init", { hostPriv: true, timeoutMs: 20000 });
        const inner = new InProcessLauncher((id, token) => h.attach(id, token, { window: 1024, timeoutMs: 20000 }));
        const order: string[] = [];
        const launcher = {
          async launch(name: string, taskId: number, token: string, ports: Parameters<typeof inner.launch>[3]) {
            if (name === late) await new Promise((r) => setTimeout(r, 400));
            order.push(name);
            return inner.launch(name, taskId, token, ports);
          },
        };
        const log: string[] = [];
        const init = new Init({ task: initTask, hostPriv: initTask.hostPriv, launcher, log: (l) => log.push(l), config: { bootReportMs: 100 } });
        await init.boot();
        assert.equal(order[1], late, `started in the order ${order}`);
        assert.ok(log.some((l) => l.includes(`waiting for`) && l.includes(late)), `boot said what it waited for: ${log.join(" | ")}`);
        assert.ok(log.some((l) => l.includes("pid 1 started")));
      } finally {
        await h.close();
      }
    });
  }

  it("gives up with a clear message when a server never comes", async () => {
    const { Init } = await import("@hurdmesh/init");
    const { startHurd } = await import("../harness.js");
    const h = await startHurd("local");
    try {
      const initTask = await h.task("init", { hostPriv: true });
      const init = new Init({ task: initTask, hostPriv: initTask.hostPriv, launcher: { launch: async () => {} }, log: () => {}, config: { bootTimeoutMs: 300, bootReportMs: 100 } });
      await assert.rejects(init.boot(), /ETIMEDOUT.*waiting for proc \(startup_procinit\) and auth \(startup_authinit\)/);
    } finally {
      await h.close();
    }
  });
});

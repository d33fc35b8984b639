// Each of a hurd's limits and each policy, RPC by RPC, bad values
// included: what the kernel refuses, with which code, and that a refusal
// changes nothing; limits charged up the namespace chain (a nested hurd's
// usage counts against its ancestors' limits, as cgroups and Zircon jobs).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, PortRight, type Task } from "@hurdmesh/mach";
import type { SendFailed } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { defaultKernelConfig } from "@hurdmesh/kernel";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { rejectsWith, MsgType, sleep } from "../kernel/kit.js";
import { info, subhurd } from "./kit.js";

for (const kind of busKinds) {
  describe(`hurd limits (${kind} bus)`, () => {
    let h: Hurd;
    let a: Task & { hostPriv: number };
    before(async () => {
      h = await startHurd(kind);
      a = await h.task("quota-root", { hostPriv: true });
    });
    after(async () => {
      await h.close();
    });

    it("the root hurd's limits are the kernel's totals; a new hurd gets the defaults for one", async () => {
      const root = await info(a, a.hostPriv);
      const c = h.kernel.config;
      assert.deepEqual(root.limits, { maxTasks: c.maxTasks, maxPorts: c.maxPorts, maxQueuedBytes: c.maxQueuedBytes, maxChildren: c.maxHurds });
      const s = await subhurd(h, a, "defaults");
      const i = await info(a, s.hostPriv);
      assert.deepEqual(i.limits, c.hurdLimits);
      assert.equal(i.tasks, 1);
      assert.equal(i.depth, 1);
      assert.deepEqual(i.policy, { denyNewTasks: false, killOnLimit: false, closed: false });
    });

    it("max_tasks: task_create past it is KERN_RESOURCE_SHORTAGE, and a nested hurd's tasks count against its ancestors", async () => {
      const s = await subhurd(h, a, "tasks3", { limits: { maxTasks: 3 } });
      await s.task.taskCreate("t1");
      const nested = await subhurd(h, s.task, "nested");
      assert.equal((await info(a, s.hostPriv)).tasks, 3, "the nested hurd's task is s's too");
      const before = h.kernel.tasks.size;
      await rejectsWith(s.task.taskCreate("t3"), "KERN_RESOURCE_SHORTAGE");
      await rejectsWith(nested.task.taskCreate("deep"), "KERN_RESOURCE_SHORTAGE");
      await rejectsWith(s.task.taskCreate("n2", { newNamespace: true }), "KERN_RESOURCE_SHORTAGE");
      assert.equal(h.kernel.tasks.size, before, "nothing was made");
      // Room comes back when a task ends.
      await nested.task.detach();
      await until(async () => (await info(a, s.hostPriv)).tasks === 2, 3000, "the nested hurd's task to be uncharged");
      await s.task.taskCreate("t3");
    });

    it("max_ports: a new name past it is KERN_RESOURCE_SHORTAGE; a right arriving past it arrives as MACH_PORT_DEAD; freeing a name makes room", async () => {
      const s = await subhurd(h, a, "ports", { limits: { maxPorts: 12 } });
      const names: number[] = [];
      for (;;) {
        try {
          names.push(await s.task.allocate());
        } catch (e) {
          assert.equal((e as { errno?: string }).errno, "KERN_RESOURCE_SHORTAGE");
          break;
        }
        assert.ok(names.length < 20, "the limit holds");
      }
      assert.equal((await info(a, s.hostPriv)).ports, 12);
      // Inserting a right there from outside is refused the same way.
      const mine = await a.allocate();
      await rejectsWith(a.insertRight(s.taskPort, 0x7000, mine, MsgType.MSG_TYPE_MAKE_SEND), "KERN_RESOURCE_SHORTAGE");
      // A right in a message: the message arrives, the right as a dead name.
      const got: number[] = [];
      s.task.receive(names[0]!, (m) => void got.push(m.ports[0]!.name));
      const to = (await a.extractRight(s.taskPort, names[0]!, MsgType.MSG_TYPE_MAKE_SEND)).name;
      a.send({ destination: to, id: 1, ports: [{ name: mine, disposition: MsgType.MSG_TYPE_MAKE_SEND }] });
      await until(() => got.length === 1, 3000, "the message");
      assert.equal(got[0], 0xffffffff);
      await s.task.destroy(names.pop()!);
      await s.task.allocate();
    });

    it("max_queued_bytes: a message that would wait past it is MACH_SEND_NO_BUFFER; a delivered one costs nothing; draining gives the bytes back", async () => {
      const s = await subhurd(h, a, "queued", { limits: { maxQueuedBytes: 64 * 1024 } });
      // A receiver in the root hurd that takes one message and then holds its credit.
      const rc = await a.taskCreate("slow-receiver");
      const r = await h.attach(rc.taskId, rc.token, { window: 1 });
      const port = await r.allocate();
      await r.call("portSetQlimit", { name: port, qlimit: 1000 });
      let release!: () => void;
      const held = new Promise<void>((res) => (release = res));
      let taken = 0;
      r.receive(port, async () => {
        taken++;
        await held;
      });
      const send = (await a.extractRight(rc.task, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const to = 0x5000;
      await a.insertRight(s.taskPort, to, send, MsgType.MSG_TYPE_COPY_SEND);
      const failed: SendFailed[] = [];
      s.task.onSendFailed = (f) => void failed.push(f);
      const body = new Uint8Array(16 * 1024);
      for (let i = 0; i < 8; i++) s.task.send({ destination: to, id: 2, body });
      await until(() => failed.length > 0, 3000, "a refusal");
      await sleep(50);
      const i = await info(a, s.hostPriv);
      assert.equal(taken, 1, "the first went straight to the receiver");
      assert.ok(i.queuedBytes > 32 * 1024 && i.queuedBytes <= 64 * 1024, `queued ${i.queuedBytes}`);
      assert.ok(failed.every((f) => f.code === Errno.MACH_SEND_NO_BUFFER));
      assert.equal(failed.length + 1 + Math.round(i.queuedBytes / (16 * 1024 + 256)), 8);
      assert.ok((await s.task.taskInfo()).queuedBytes === i.queuedBytes, "charged to the sender too");
      release();
      await until(async () => (await info(a, s.hostPriv)).queuedBytes === 0, 3000, "the queue to drain");
    });

    it("max_children: a nested hurd past it is KERN_RESOURCE_SHORTAGE, at any depth", async () => {
      const s = await subhurd(h, a, "kids", { limits: { maxChildren: 2 } });
      const n1 = await subhurd(h, s.task, "k1");
      await subhurd(h, n1.task, "k2");
      assert.equal((await info(a, s.hostPriv)).children, 2);
      await rejectsWith(s.task.taskCreate("k3", { newNamespace: true }), "KERN_RESOURCE_SHORTAGE");
      await rejectsWith(n1.task.taskCreate("k3", { newNamespace: true }), "KERN_RESOURCE_SHORTAGE");
      const z = await subhurd(h, a, "zero-kids", { limits: { maxChildren: 0 } });
      await rejectsWith(z.task.taskCreate("none", { newNamespace: true }), "KERN_RESOURCE_SHORTAGE");
    });

    it("an emptied hurd is unlinked and uncounted", async () => {
      const s = await subhurd(h, a, "empties", { limits: { maxChildren: 1 } });
      const n = await subhurd(h, s.task, "gone-soon");
      await rejectsWith(s.task.taskCreate("second", { newNamespace: true }), "KERN_RESOURCE_SHORTAGE");
      await n.task.detach();
      await until(async () => (await info(a, s.hostPriv)).children === 0, 3000, "the empty hurd to go");
      await subhurd(h, s.task, "second");
    });

    it("bad limits: negative, zero, above the parent's, past 2^53 are refused and make nothing", async () => {
      const before = h.kernel.tasks.size;
      const children = h.kernel.root.children.size;
      await rejectsWith(a.taskCreate("neg", { newNamespace: true, limits: { maxTasks: -1 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.taskCreate("negq", { newNamespace: true, limits: { maxQueuedBytes: -5 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.taskCreate("zero", { newNamespace: true, limits: { maxTasks: 0 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.taskCreate("zerop", { newNamespace: true, limits: { maxPorts: 0 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.taskCreate("huge", { newNamespace: true, limits: { maxTasks: 10 ** 15 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.taskCreate("huger", { newNamespace: true, limits: { maxPorts: 2 ** 60 } }), "MIG_BAD_ARGUMENTS");
      const s = await subhurd(h, a, "small", { limits: { maxTasks: 5 } });
      await rejectsWith(s.task.taskCreate("bigger", { newNamespace: true, limits: { maxTasks: 6 } }), "KERN_INVALID_VALUE");
      const inner = await subhurd(h, s.task, "inner");
      assert.equal((await info(s.task, inner.hostPriv)).limits!.maxTasks, 5, "a default never above the parent's own");
      assert.equal(h.kernel.tasks.size, before + 2);
      assert.equal(h.kernel.root.children.size, children + 1);
    });

    it("max names per task: KERN_NO_SPACE (per task, beside the hurd's limit)", async () => {
      const h2 = await startHurd(kind, { maxNamesPerTask: 8 });
      try {
        const t = await h2.task("full");
        let n = (await t.names()).names.length;
        while (n < 8) {
          await t.allocate();
          n++;
        }
        await rejectsWith(t.allocate(), "KERN_NO_SPACE");
        await rejectsWith(t.allocate(PortRight.PORT_RIGHT_DEAD_NAME), "KERN_NO_SPACE");
      } finally {
        await h2.close();
      }
    });
  });

  describe(`hurd policy (${kind} bus)`, () => {
    let h: Hurd;
    let a: Task & { hostPriv: number };
    before(async () => {
      h = await startHurd(kind);
      a = await h.task("policy-root", { hostPriv: true });
    });
    after(async () => {
      await h.close();
    });

    it("deny_new_tasks: no task_create in the hurd or a hurd nested in it (KERN_NO_ACCESS), from inside or out", async () => {
      const s = await subhurd(h, a, "frozen");
      const n = await subhurd(h, s.task, "frozen-inner");
      await a.call("namespaceSetPolicy", { hostPriv: s.hostPriv, namespaceId: 0, policy: { denyNewTasks: true, killOnLimit: false, closed: false } });
      await rejectsWith(s.task.taskCreate("x"), "KERN_NO_ACCESS");
      await rejectsWith(n.task.taskCreate("x"), "KERN_NO_ACCESS");
      await rejectsWith(a.taskCreate("x", { parent: s.taskPort }), "KERN_NO_ACCESS");
      await a.taskCreate("root-still-works");
    });

    it("closed: tasks of the hurd may create tasks in it, tasks from outside may not", async () => {
      const s = await subhurd(h, a, "closed", { policy: { denyNewTasks: false, killOnLimit: false, closed: true } });
      await s.task.taskCreate("inside");
      await rejectsWith(a.taskCreate("outside", { parent: s.taskPort }), "KERN_NO_ACCESS");
      await rejectsWith(a.taskCreate("outside-ns", { parent: s.taskPort, newNamespace: true }), "KERN_NO_ACCESS");
      const n = await subhurd(h, s.task, "closed-inner");
      await n.task.taskCreate("nested-inside-is-inside");
    });

    it("task_create with a new hurd takes a send right to the host port of the parent's hurd or of one enclosing it (KERN_NO_ACCESS otherwise), and a refusal makes nothing", async () => {
      // A task of the root hurd without its host port.
      const plain = await h.task("no-host");
      const tasks = h.kernel.tasks.size;
      const names = (await plain.names()).names.length;
      const hurds = (await info(a, a.hostPriv)).children;
      await rejectsWith(plain.taskCreate("rogue", { newNamespace: true }), "KERN_NO_ACCESS");
      await rejectsWith(plain.taskCreate("rogue", { newNamespace: true, dieWithParent: true, limits: { maxTasks: 1 } }), "KERN_NO_ACCESS");
      assert.equal(h.kernel.tasks.size, tasks);
      assert.equal((await plain.names()).names.length, names);
      assert.equal((await info(a, a.hostPriv)).children, hurds);
      // Without a new hurd it may still make tasks in its own.
      await plain.taskCreate("plain-child");
      // A subhurd's first task holds its own hurd's host port: it nests hurds
      // in its hurd, but not in a sibling's, whose task port it was given.
      const s1 = await subhurd(h, a, "host-s1");
      const s2 = await subhurd(h, a, "host-s2");
      await subhurd(h, s1.task, "host-s1-inner");
      const S2 = 0x2400;
      await a.insertRight(s1.taskPort, S2, s2.taskPort, MsgType.MSG_TYPE_COPY_SEND);
      await rejectsWith(s1.task.taskCreate("into-sibling", { parent: S2, newNamespace: true }), "KERN_NO_ACCESS");
      await s1.task.taskCreate("sibling-task", { parent: S2 });
      // The root hurd's host port reaches every hurd nested in it.
      await a.taskCreate("from-above", { parent: s2.taskPort, newNamespace: true });
      assert.equal((await info(a, s2.hostPriv)).children, 1);
    });

    it("kill_on_limit: a task that runs into the limit is terminated instead of refused", async () => {
      const s = await subhurd(h, a, "killer", { limits: { maxTasks: 2 }, policy: { denyNewTasks: false, killOnLimit: true, closed: false } });
      await s.task.taskCreate("fits");
      await assert.rejects(s.task.taskCreate("one-too-many"));
      await until(() => s.task.detached, 3000, "the offender to be told of its end");
      assert.equal((await info(a, s.hostPriv)).tasks, 1, "the offender is gone, its first child stays");
      // Queued bytes and names kill the same way.
      const q = await subhurd(h, a, "killer-ports", { limits: { maxPorts: 4 }, policy: { denyNewTasks: false, killOnLimit: true, closed: false } });
      for (let i = 0; i < 6 && !q.task.detached; i++) await q.task.allocate().catch(() => {});
      await until(() => q.task.detached, 3000, "the name hog to be killed");
    });

    it("namespace_set_policy through a hurd's own host port only tightens; an ancestor's may loosen, within the parent's limits", async () => {
      const s = await subhurd(h, a, "tighten", { limits: { maxTasks: 10 } });
      const own = { hostPriv: s.hostPriv, namespaceId: 0 };
      const fromRoot = { hostPriv: a.hostPriv, namespaceId: s.namespaceId };
      await a.call("namespaceSetPolicy", { ...own, limits: { maxTasks: 8 } });
      await rejectsWith(a.call("namespaceSetPolicy", { ...own, limits: { maxTasks: 9 } }), "KERN_NO_ACCESS");
      await a.call("namespaceSetPolicy", { ...own, policy: { denyNewTasks: false, killOnLimit: false, closed: true } });
      await rejectsWith(a.call("namespaceSetPolicy", { ...own, policy: { denyNewTasks: false, killOnLimit: false, closed: false } }), "KERN_NO_ACCESS");
      await a.call("namespaceSetPolicy", { ...fromRoot, policy: { denyNewTasks: false, killOnLimit: false, closed: false }, limits: { maxTasks: 100 } });
      const i = await info(a, a.hostPriv, s.namespaceId);
      assert.equal(i.limits!.maxTasks, 100);
      assert.equal(i.policy!.closed, false);
      await rejectsWith(a.call("namespaceSetPolicy", { ...fromRoot, limits: { maxTasks: h.kernel.config.maxTasks + 1 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.call("namespaceSetPolicy", { ...fromRoot, limits: { maxTasks: -1 } }), "KERN_INVALID_VALUE");
      await rejectsWith(a.call("namespaceSetPolicy", { ...fromRoot, limits: { maxPorts: 0 } }), "KERN_INVALID_VALUE");
      // A limit below what the hurd holds refuses the next charge, and ends nothing.
      await a.call("namespaceSetPolicy", { ...fromRoot, limits: { maxTasks: 1 } });
      await rejectsWith(s.task.taskCreate("over"), "KERN_RESOURCE_SHORTAGE");
      assert.equal(s.task.detached, false);
    });

    it("namespace calls: a name that is no host port is KERN_INVALID_HOST; a hurd not nested in the host's is KERN_INVALID_ARGUMENT", async () => {
      const s1 = await subhurd(h, a, "sib1");
      const s2 = await subhurd(h, a, "sib2");
      const p = await a.allocate();
      await rejectsWith(a.call("namespaceInfo", { hostPriv: p, namespaceId: 0 }), "KERN_INVALID_HOST");
      await rejectsWith(a.call("namespaceSetPolicy", { hostPriv: 0x7777, namespaceId: 0 }), "KERN_INVALID_HOST");
      await rejectsWith(a.call("namespaceInfo", { hostPriv: s1.hostPriv, namespaceId: s2.namespaceId }), "KERN_INVALID_ARGUMENT");
      await rejectsWith(a.call("namespaceSetPolicy", { hostPriv: s1.hostPriv, namespaceId: h.kernel.root.id }), "KERN_INVALID_ARGUMENT");
      await rejectsWith(a.call("namespaceInfo", { hostPriv: a.hostPriv, namespaceId: 987654 }), "KERN_INVALID_ARGUMENT");
    });
  });
}


describe("the limits' flags", () => {
  it("hurd subhurd create --help and hurd subhurd set --help show every limit and the policy, with the kernel's defaults", () => {
    const main = fileURLToPath(new URL("../../packages/cli/src/main.ts", import.meta.url));
    const d = defaultKernelConfig.hurdLimits;
    for (const sub of ["create", "set"]) {
      const r = spawnSync(process.execPath, ["--import", "tsx", main, "subhurd", sub, "--help"], { encoding: "utf8", timeout: 60000 });
      assert.equal(r.status, 0, r.stderr);
      for (const flag of ["--max-tasks", "--max-ports", "--max-queued-bytes", "--max-children", "--policy"]) assert.match(r.stdout, new RegExp(`${flag} <`), `${sub}: ${flag}`);
      if (sub === "create") {
        const help = r.stdout.replace(/\s+/g, " ");
        assert.match(help, new RegExp(`--max-tasks <n> .*\\(default ${d.maxTasks}\\)`));
        assert.match(help, new RegExp(`--max-ports <n> .*\\(default ${d.maxPorts}\\)`));
        assert.match(help, new RegExp(`--max-queued-bytes <size> .*\\(default ${d.maxQueuedBytes / 1024 / 1024}M\\)`));
        assert.match(help, new RegExp(`--max-children <n> .*\\(default ${d.maxChildren}\\)`));
        assert.match(help, /deny-new-tasks, kill-on-limit, closed/);
      }
    }
  });
});

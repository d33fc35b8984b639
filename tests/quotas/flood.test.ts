// Noisy neighbours: one subhurd floods the kernel — tasks, port names,
// queued bytes (4 MiB a message in process; on NATS, as large as its
// max_payload lets a message be), oversize messages, deep nesting — and
// each flood is refused at the hurd's limit, while a sibling hurd keeps
// serving (its Ping RPCs and process lifecycles complete, none fails) and
// the process that runs the kernel stays under the sum of the noisy hurd's
// limits plus a stated base.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { Process, WNOHANG } from "@hurdmesh/libhurd";
import { client, Errno, HurdError, MsgType, Rights, serve, type Task } from "@hurdmesh/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import type { SendFailed } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, until } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";
import { info, MiB } from "./kit.js";

/** The noisy hurd's limits: small, so that every flood reaches them quickly. */
const LIMITS = { maxTasks: 64, maxPorts: 4096, maxQueuedBytes: 16 * MiB, maxChildren: 4 };
/**
 * What those limits let the noisy hurd hold in kernel memory, from the
 * measured costs (config.ts): a task about 1.4 KiB, a name with its port
 * about 345 bytes, queued bytes as charged.
 */
const LIMIT_BYTES = LIMITS.maxTasks * 1434 + LIMITS.maxPorts * 345 + LIMITS.maxQueuedBytes;
/**
 * The stated base: what else the process that runs the kernel holds once
 * a flood is at its limit — the flooders' own runtime state and the
 * garbage collector's slack — beside the kernel's objects. The kernel runs
 * in the test's process (with every task's runtime), so memory is measured
 * as V8 counts it after a full collection (heap and buffers): the process's
 * RSS would count the flooders' refused 4 MiB messages not yet returned to
 * the system, which are the flooder's, not the kernel's.
 */
const BASE = 32 * MiB;

/** Bytes in use after a full collection (V8's gc, exposed at run time for this measure). */
async function inUse(): Promise<number> {
  const gc = runInNewContext("gc") as () => void;
  gc();
  await turn();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
setFlagsFromString("--expose-gc");

const code = (e: unknown) => HurdError.from(e).errno;

/**
 * One turn of the event loop. In process every delivery is a microtask: a
 * loop of calls that never waits for a turn keeps the event loop to
 * itself, so the flood and the sibling's work each take one per call, and
 * run side by side as separate programs would.
 */
const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Keeps a flood going at its limit (each attempt refused) for at least
 * `ms`, and until the sibling has done some of each of its kinds of work
 * meanwhile: how long that takes depends on the machine, not on a fixed
 * budget; only a sibling that does nothing for SIBLING_STALL_MS fails.
 */
async function hold(work: { pings: number; lifecycles: number }, ms: number, attempt: () => Promise<unknown>): Promise<void> {
  const p0 = work.pings;
  const l0 = work.lifecycles;
  const start = Date.now();
  const enough = () => work.pings - p0 >= 10 && work.lifecycles - l0 >= 2;
  while (Date.now() - start < ms || !enough()) {
    if (Date.now() - start > SIBLING_STALL_MS) break;
    await attempt().catch(() => {});
    await turn();
  }
  assert.ok(enough(), `the sibling went on during the flood (${work.pings - p0} pings, ${work.lifecycles - l0} lifecycles in ${Date.now() - start} ms)`);
}
/** How long a flood may hold the sibling's work up entirely before that counts as a denial of service. */
const SIBLING_STALL_MS = 30_000;

for (const kind of busKinds) {
  describe(`noisy neighbours (${kind} bus)`, () => {
    let b: BootedHurd;
    let quiet: Subhurd;
    let noisy: Subhurd;
    let sibling: Process;
    let ping: () => Promise<unknown>;
    const work = { pings: 0, lifecycles: 0, errors: [] as string[], stop: false, loops: [] as Promise<void>[] };
    let mem0 = 0;
    let held = 0;
    /** What the process holds now against before the floods (at a flood's limit). */
    const measure = async () => (held = Math.max(held, (await inUse()) - mem0));
    const attach = (id: number, token: string, window = 1024) => b.h.attach(id, token, { window, timeoutMs: 20000 });

    /** A task inside the noisy hurd to flood from (dies with the hurd's startup task). */
    async function flooder(name: string, window = 256): Promise<Task> {
      const r = await noisy.task.taskCreate(name, { dieWithParent: true });
      return attach(r.taskId, r.token, window);
    }

    before(async () => {
      b = await bootHurd(kind);
      const log = () => {};

      quiet = await bootSubhurd(b.initTask, "quiet", attach, new InProcessLauncher(attach), { log });
      noisy = await bootSubhurd(b.initTask, "noisy", attach, new InProcessLauncher(attach), { log, limits: LIMITS });

      sibling = await Process.attach(quiet.task, quiet.init.booted!.proc, quiet.init.booted!.auth, { msgport: false });
      // A Ping server in the quiet hurd, and the sibling's startup as its client.
      const ps = await quiet.task.taskCreate("pinger");
      const pinger = await attach(ps.taskId, ps.token);
      const port = await pinger.allocate();
      serve(pinger, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(port, {});
      const name = (await quiet.task.extractRight(ps.task, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const pc = client(quiet.task, PingDefinition, name);
      const payload = new Uint8Array(16);
      ping = () => pc.ping({ payload });
      await ping();
      // The sibling's work, all through the floods: Pings and process lifecycles, a few in flight.
      const loop = async (f: () => Promise<unknown>, count: () => void) => {
        while (!work.stop) {
          await turn();
          try {
            await f();
            count();
          } catch (e) {
            work.errors.push(`${(e as Error).message}`);
          }
        }
      };
      const lifecycle = async () => {
        const c = await sibling.task.taskCreate("sibling-child");
        const x = new Rights();
        await sibling.proc.child({ child: x.copySend(c.task) }, { rights: x });
        await sibling.task.taskTerminate(c.task);
        sibling.task.deallocate(c.task).catch(() => {});
        await sibling.wait(-1);
      };
      mem0 = await inUse();
      for (let i = 0; i < 4; i++) work.loops.push(loop(ping, () => work.pings++));
      for (let i = 0; i < 2; i++) work.loops.push(loop(lifecycle, () => work.lifecycles++));
    });
    after(async () => {
      work.stop = true;
      await Promise.allSettled(work.loops);
      while (await sibling?.wait(-1, WNOHANG).catch(() => null));
      await b?.close();
    });

    it("tasks: task_create is refused at max_tasks (KERN_RESOURCE_SHORTAGE)", async () => {
      const f = await flooder("task-flood");
      let made = 0;
      let refused = "";
      while (!refused && made < 1000) {
        await f.taskCreate("t", { dieWithParent: true }).then(
          () => made++,
          (e) => (refused = code(e)),
        );
        await turn();
      }
      try {
        assert.equal(refused, "KERN_RESOURCE_SHORTAGE");
        assert.equal((await info(b.initTask, noisy.hostPriv)).tasks, LIMITS.maxTasks);
        await measure();
        await hold(work, 500, () => f.taskCreate("t", { dieWithParent: true }));
      } finally {
        await f.detach();
      }
      await until(async () => (await info(b.initTask, noisy.hostPriv)).tasks < 10, 30_000, "the flood's tasks to end with their parent");
    });

    it("port names: mach_port_allocate is refused at max_ports (KERN_RESOURCE_SHORTAGE)", async () => {
      const f = await flooder("port-flood");
      let refused = "";
      for (let i = 0; i < 10_000 && !refused; i += 64) {
        const got = await Promise.allSettled(Array.from({ length: 64 }, () => f.allocate()));
        const no = got.find((g) => g.status === "rejected");
        if (no) refused = code((no as PromiseRejectedResult).reason);
        await turn();
      }
      try {
        assert.equal(refused, "KERN_RESOURCE_SHORTAGE");
        // The hurd's own servers take and give back names meanwhile: at the limit, give or take a few.
        const ports = (await info(b.initTask, noisy.hostPriv)).ports;
        assert.ok(ports <= LIMITS.maxPorts && ports >= LIMITS.maxPorts - 16, `${ports} names`);
        await measure();
        await hold(work, 500, () => f.allocate());
      } finally {
        await f.detach();
      }
      await until(async () => (await info(b.initTask, noisy.hostPriv)).ports < 200, 30_000, "the flood's names to go");
    });

    it("queued bytes: messages that would wait past max_queued_bytes are MACH_SEND_NO_BUFFER", async () => {
      // A receiver in the noisy hurd that takes nothing: its credit is spent on the first message.
      const f = await flooder("queue-flood");
      const sr = await f.taskCreate("sink", { dieWithParent: true });
      const sink = await attach(sr.taskId, sr.token, 1);
      const port = await sink.allocate();
      await sink.call("portSetQlimit", { name: port, qlimit: 65536 });
      sink.receive(port, () => new Promise<void>(() => {}));
      const fto = (await f.extractRight(sr.task, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const failed: SendFailed[] = [];
      f.onSendFailed = (x) => void failed.push(x);
      // 4 MiB a message in process; on NATS as much as one message of the bus carries.
      const size = Math.min(4 * MiB, b.h.kernel.busLimit - 4096);
      const body = new Uint8Array(size);
      const fits = Math.floor(LIMITS.maxQueuedBytes / (size + 256));
      for (let i = 0; i < fits + 4; i++) {
        f.send({ destination: fto, id: 7, body });
        await turn();
      }
      try {
        await until(() => failed.length >= 3, 30_000, "refusals");
        await hold(work, 500, async () => f.send({ destination: fto, id: 7, body }));
        const i = await info(b.initTask, noisy.hostPriv);
        assert.ok(i.queuedBytes <= LIMITS.maxQueuedBytes, `${i.queuedBytes} queued`);
        assert.ok(i.queuedBytes >= LIMITS.maxQueuedBytes - 2 * (size + 256), `${i.queuedBytes} queued: the limit was reached`);
        assert.ok(failed.every((x) => x.code === Errno.MACH_SEND_NO_BUFFER));
        await measure();
      } finally {
        await f.detach();
      }
      await until(async () => (await info(b.initTask, noisy.hostPriv)).queuedBytes === 0, 30_000, "the queue to be destroyed with its port");
    });

    it("oversize messages: MACH_SEND_NO_BUFFER, nothing queued", async () => {
      const f = await flooder("big-flood");
      const port = await f.allocate();
      const to = (await f.extractRight(0, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const body = new Uint8Array(Math.min(b.h.kernel.config.maxBodyBytes, b.h.kernel.busLimit) + 1024);
      for (let i = 0; i < 5; i++) {
        await assert.rejects(
          (async () => f.rpc(to, 8, body, { timeoutMs: 30_000 }))(),
          (e: unknown) => code(e) === "MACH_SEND_NO_BUFFER",
        );
      }
      try {
        await hold(work, 500, async () => f.rpc(to, 8, body, { timeoutMs: 30_000 }));
        assert.equal((await info(b.initTask, noisy.hostPriv)).queuedBytes, 0);
      } finally {
        await f.detach();
      }
    });

    it("deep nesting: a nested hurd past max_children is KERN_RESOURCE_SHORTAGE; a flooder without the host port makes none (KERN_NO_ACCESS)", async () => {
      const f = await flooder("nest-flood");
      try {
        assert.equal(await f.taskCreate("nest", { newNamespace: true, dieWithParent: true }).then(() => "accepted", code), "KERN_NO_ACCESS");
      } finally {
        await f.detach();
      }
      // The noisy hurd's startup holds its host port (BOOT_NAMES.hostPriv),
      // which reaches every hurd nested in it: it nests one in the last.
      const top = await noisy.task.taskCreate("nest-top", { dieWithParent: true });
      let parent = top.task;
      let nested = 0;
      let refused = "";
      const nest = () => noisy.task.taskCreate("nest", { parent, newNamespace: true, dieWithParent: true });
      while (!refused && nested < 40) {
        await nest().then(
          (r) => {
            parent = r.task;
            nested++;
          },
          (e) => (refused = code(e)),
        );
        await turn();
      }
      try {
        assert.equal(refused, "KERN_RESOURCE_SHORTAGE");
        assert.equal(nested, LIMITS.maxChildren);
        await hold(work, 500, nest);
      } finally {
        await noisy.task.taskTerminate(top.task);
      }
      await until(async () => (await info(b.initTask, noisy.hostPriv)).children === 0, 30_000, "the nested hurds to end");
    });

    it("the sibling hurd kept serving throughout, and the kernel's process stayed within the noisy hurd's limits plus the base", async (t) => {
      assert.deepEqual(work.errors, []);
      assert.ok(work.pings > 20, `${work.pings} pings`);
      assert.ok(work.lifecycles > 5, `${work.lifecycles} lifecycles`);
      t.diagnostic(`held at the limits: ${Math.round(held / MiB)} MiB over the start; bound ${Math.round((LIMIT_BYTES + BASE) / MiB)} MiB (limits ${Math.round(LIMIT_BYTES / MiB)} + base ${BASE / MiB})`);
      assert.ok(held <= LIMIT_BYTES + BASE, `held ${Math.round(held / MiB)} MiB over the start; bound ${Math.round((LIMIT_BYTES + BASE) / MiB)} MiB`);
      // And it still does, now.
      await ping();
    });
  });
}


// The trace stream on the bus (hurd.<system>.trace.>), on both buses: a
// holder of host_priv watches an RPC between two tasks; no host_priv, a
// wrong token and junk are refused with their errno; a watch ends when its
// lease runs out, when it is cancelled, when its task dies and when the
// kernel closes, and after the last one the kernel's tracer is gone; the
// number of watches is bounded; big batches are cut to what the bus takes.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, Errno, HurdError, LocalHub, MsgType, serve, Task, type Bus } from "@hurdmesh/mach";
import { methods, TRACE_LEASE, traceSubjects, watchTraceOnBus } from "@hurdmesh/mach/internal";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { TraceBatch, TraceWatchCtl, TraceWatchReply, TraceWatchRequest, WatchRequest, type TraceCount, type TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { busKinds, natsBus, until } from "../../../tests/harness.js";
import { Kernel } from "./kernel.js";
import { TraceBus } from "./trace-bus.js";
import { TrapServer } from "./trap.js";

const PING = methods(PingDefinition).byKey.get("ping")!.msgid;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;

const errnoOf = (e: unknown) => (e instanceof HurdError ? e.code : -1);

for (const kind of busKinds) {
  describe(`trace stream on the bus (${kind} bus)`, () => {
    let kernel: Kernel;
    let hub: LocalHub;
    let kbus: Bus;
    let cbus: Bus;
    let tb: TraceBus;
    let trapServer: TrapServer;
    const buses: Bus[] = [];
    const tasks: Task[] = [];
    const system = `tbus${process.pid}x${++n}`;
    const subjects = traceSubjects(system);
    const connect = async (): Promise<Bus> => {
      const b = kind === "local" ? hub.connect() : await natsBus(system);
      buses.push(b);
      return b;
    };
    const attach = async (taskId: number, token: string): Promise<Task> => {
      const t = await Task.attach({ bus: await connect(), system, taskId, token, timeoutMs: 3000 });
      tasks.push(t);
      return t;
    };
    /** A task holding host_priv, not attached: a watcher needs only its credentials. */
    const watcher = (name = "watcher") => {
      const b = kernel.bootTask({ name, hostPriv: true });
      return { cred: { taskId: b.task.id, token: b.token }, hostPriv: b.hostPriv, task: b.task };
    };
    const raw = async (subject: string, bytes: Uint8Array): Promise<TraceWatchReply> => TraceWatchReply.decode(await cbus.request(subject, bytes, 3000));
    const rawWatch = (q: Partial<TraceWatchRequest>) => raw(subjects.watch, TraceWatchRequest.encode(TraceWatchRequest.fromPartial(q)).finish());
    const rawCtl = (q: Partial<TraceWatchCtl>) => raw(subjects.ctl, TraceWatchCtl.encode(TraceWatchCtl.fromPartial(q)).finish());
    /** Every message published on a watch's subject, decoded. */
    const listen = async (subject: string) => {
      const got: { batch: TraceBatch; bytes: number }[] = [];
      const sub = cbus.subscribe(subject, (_s, d) => got.push({ batch: TraceBatch.decode(d), bytes: d.length }));
      await cbus.flush();
      return { got, stop: () => sub.unsubscribe(), ended: () => got.find((g) => g.batch.ended !== 0)?.batch.ended ?? 0 };
    };

    before(async () => {
      kernel = new Kernel({ system }, { log: () => {} });
      hub = new LocalHub();
      kbus = await connect();
      cbus = await connect();
      trapServer = new TrapServer(kernel, kbus);
      trapServer.start();
      tb = new TraceBus(kernel, kbus, { pollMs: 20 });
      tb.start();
      await kbus.flush();
    });
    after(async () => {
      for (const t of tasks) t.abandon();
      tb.stop();
      trapServer.stop();
      kernel.close();
      for (const b of buses) await b.close();
    });

    it("shows a watcher an RPC between two tasks: request and reply, with tasks, names and msgids", async () => {
      const a = await attach(...creds(kernel.bootTask({ name: "server" })));
      const p = await a.allocate();
      serve(a, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(p, {});
      const child = await a.taskCreate("caller");
      const b = await attach(child.taskId, child.token);
      const NAME = 0x4321;
      await a.insertRight(child.task, NAME, p, MsgType.MSG_TYPE_MAKE_SEND);

      const w = watcher();
      const records: TraceRecord[] = [];
      assert.equal(kernel.tracer, null, "nobody watches yet");
      const watch = await watchTraceOnBus(cbus, system, w.cred, { hostPriv: w.hostPriv, tasks: [b.id] }, (batch) => records.push(...batch.records));
      assert.equal(watch.subject, `hurd.${system}.trace.${watch.watchId}`);
      assert.equal(watch.leaseMs, TRACE_LEASE.defaultMs);
      assert.notEqual(kernel.tracer, null, "recording once the watch is started");
      assert.equal(kernel.trace.watching, 1);

      const res = await client(b, PingDefinition, NAME).ping({ payload: new Uint8Array([9, 8, 7]) });
      assert.deepEqual([...res.payload], [9, 8, 7]);
      await until(() => records.some((r) => r.isReply), 3000, "the reply's record");
      const req = records.find((r) => !r.isReply && r.msgid === PING);
      assert.ok(req, JSON.stringify(records));
      assert.equal(req.fromTask, b.id);
      assert.equal(req.toTask, a.id);
      assert.equal(req.senderName, NAME);
      assert.equal(req.receiverName, p);
      assert.equal(req.namespaceId, kernel.root.id);
      assert.equal(req.rpc, "hurd.bench.v1.Ping/Ping");
      assert.equal(req.error, 0);
      const rep = records.find((r) => r.isReply)!;
      assert.equal(rep.fromTask, a.id);
      assert.equal(rep.toTask, b.id);
      assert.equal(rep.replyTo, req.n);
      assert.equal(rep.msgid, PING + 100);
      assert.equal(rep.code, 0);
      // The filter held: only messages to or from the caller.
      for (const r of records) assert.ok(r.fromTask === b.id || r.toTask === b.id, JSON.stringify(r));

      await watch.stop();
      assert.equal(await watch.ended, Errno.KERN_ABORTED);
      assert.equal(tb.size, 0);
      assert.equal(kernel.tracer, null, "the last watch gone, routing pays nothing");
      assert.equal(kernel.trace.active, false);
    });

    it("a rate-limited bus watch: records up to its rate, every other message counted in the batches' counts", async () => {
      // Ping RPCs: each request and each reply is surely delivered, so each is recorded or counted.
      const a = await attach(...creds(kernel.bootTask({ name: "sampled-server" })));
      const p = await a.allocate();
      serve(a, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(p, {});
      const child = await a.taskCreate("sampled-caller");
      const b = await attach(child.taskId, child.token);
      const NAME = 0x4322;
      await a.insertRight(child.task, NAME, p, MsgType.MSG_TYPE_MAKE_SEND);
      const w = watcher();
      const records: TraceRecord[] = [];
      const counts: TraceCount[] = [];
      let dropped = 0;
      const watch = await watchTraceOnBus(cbus, system, w.cred, { hostPriv: w.hostPriv, tasks: [b.id], recordsPerSecond: 5 }, (batch) => {
        records.push(...batch.records);
        counts.push(...batch.counts);
        dropped += batch.dropped;
      });
      try {
        const N = 100;
        const t0 = Date.now();
        const ping = client(b, PingDefinition, NAME);
        for (let i = 0; i < N / 20; i++) await Promise.all(Array.from({ length: 20 }, () => ping.ping({ payload: new Uint8Array([1]) })));
        const seen = (reply: boolean) =>
          records.filter((r) => r.msgid === (reply ? PING + 100 : PING)).length + counts.filter((c) => c.isReply === reply && c.msgid === (reply ? PING + 100 : PING)).reduce((n, c) => n + c.count, 0);
        await until(() => seen(false) >= N && seen(true) >= N, 10_000, `${N} requests and replies recorded or counted`).catch((e) => { throw new Error(`${e.message}: ${seen(false)} requests, ${seen(true)} replies, ${records.length} records, counts ${JSON.stringify(counts)}`); });
        const secs = (Date.now() - t0) / 1000;
        assert.equal(dropped, 0);
        assert.equal(seen(false), N);
        assert.equal(seen(true), N);
        // A second's worth at once, then the rate.
        assert.ok(records.length >= 1 && records.length <= 5 + Math.ceil(5 * secs) + 1, `${records.length} records in ${secs.toFixed(1)} s at 5 a second`);
        for (const c of counts) {
          assert.ok(c.count > 0);
          assert.deepEqual([c.fromTask, c.toTask], c.isReply ? [a.id, b.id] : [b.id, a.id]);
          assert.equal(c.rpc, "hurd.bench.v1.Ping/Ping");
        }
      } finally {
        await watch.stop();
      }
    });

    it("leaves the watcher's own messages out unless include_self, as the edge does", async () => {
      const wb = kernel.bootTask({ name: "self-watcher", hostPriv: true });
      const me = await attach(wb.task.id, wb.token);
      const other = await attach(...creds(kernel.bootTask({ name: "bystander" })));
      const mine = await me.allocate();
      const theirs = await other.allocate();
      for (const includeSelf of [false, true]) {
        const records: TraceRecord[] = [];
        const watch = await watchTraceOnBus(cbus, system, { taskId: wb.task.id, token: wb.token }, { hostPriv: wb.hostPriv, includeSelf }, (b) => records.push(...b.records));
        me.send({ destination: mine, destinationDisposition: MsgType.MSG_TYPE_MAKE_SEND, id: 5001 });
        other.send({ destination: theirs, destinationDisposition: MsgType.MSG_TYPE_MAKE_SEND, id: 5002 });
        await until(() => records.some((r) => r.msgid === 5002), 3000, "the bystander's message");
        await sleep(50);
        assert.equal(records.find((r) => r.msgid === 5002)!.fromTask, other.id);
        const own = records.filter((r) => r.msgid === 5001);
        if (includeSelf) {
          assert.equal(own.length, 1);
          assert.equal(own[0]!.fromTask, me.id);
        } else assert.equal(own.length, 0, JSON.stringify(own));
        await watch.stop();
      }
    });

    it("refuses a task without host_priv with KERN_NO_ACCESS, and a name that is no host port with KERN_INVALID_HOST", async () => {
      const plain = kernel.bootTask({ name: "nopriv" });
      await assert.rejects(watchTraceOnBus(cbus, system, { taskId: plain.task.id, token: plain.token }, {}, () => {}), (e) => errnoOf(e) === Errno.KERN_NO_ACCESS);
      // A raw request with no WatchRequest at all is no better.
      assert.equal((await rawWatch({ taskId: plain.task.id, token: plain.token })).errno, Errno.KERN_NO_ACCESS);
      const self = [...plain.task.space.entries.keys()][0]!;
      await assert.rejects(
        watchTraceOnBus(cbus, system, { taskId: plain.task.id, token: plain.token }, { hostPriv: self }, () => {}),
        (e) => errnoOf(e) === Errno.KERN_INVALID_HOST,
      );
      assert.equal(tb.size, 0);
      assert.equal(kernel.tracer, null, "a refused watcher costs routing nothing");
    });

    it("refuses a wrong token or an unknown task with KERN_INVALID_TASK", async () => {
      const w = watcher("badtoken");
      const rejected = kernel.stats.rejectedTraps;
      const wrong = w.cred.token.slice(0, -1) + (w.cred.token.endsWith("A") ? "B" : "A");
      await assert.rejects(watchTraceOnBus(cbus, system, { ...w.cred, token: wrong }, { hostPriv: w.hostPriv }, () => {}), (e) => errnoOf(e) === Errno.KERN_INVALID_TASK);
      assert.equal((await rawWatch({ taskId: 999_999, token: w.cred.token, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) })).errno, Errno.KERN_INVALID_TASK);
      assert.equal(kernel.stats.rejectedTraps, rejected + 2);
      // Renewing or cancelling needs the token too.
      const ok = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) });
      assert.equal(ok.errno, 0);
      assert.equal((await rawCtl({ ...w.cred, token: wrong, watchId: ok.watchId, cancel: true })).errno, Errno.KERN_INVALID_TASK);
      assert.equal(tb.size, 1);
      assert.equal((await rawCtl({ ...w.cred, watchId: ok.watchId, cancel: true })).errno, 0);
      assert.equal(tb.size, 0);
    });

    it("ends a watch whose lease runs out unrenewed, and the kernel's tracer goes back to null", async () => {
      const w = watcher("lapsed");
      const q = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }), leaseMs: 1 });
      assert.equal(q.errno, 0, q.error);
      assert.equal(q.leaseMs, TRACE_LEASE.minMs, "a lease below the minimum is raised to it");
      const l = await listen(q.subject);
      assert.equal(kernel.tracer, null, "nothing is recorded before the first renewal");
      const t0 = Date.now();
      const r = await rawCtl({ ...w.cred, watchId: q.watchId });
      assert.equal(r.errno, 0);
      assert.equal(r.leaseMs, TRACE_LEASE.minMs);
      assert.notEqual(kernel.tracer, null);
      await sleep(TRACE_LEASE.minMs / 2);
      assert.equal(tb.size, 1, "still within its lease");
      await until(() => tb.size === 0, 3000, "the lease to run out");
      assert.ok(Date.now() - t0 >= TRACE_LEASE.minMs - 5, `ended after ${Date.now() - t0} ms`);
      assert.equal(kernel.tracer, null);
      assert.equal(kernel.trace.active, false);
      await until(() => l.ended() !== 0, 3000, "the last batch");
      assert.equal(l.ended(), Errno.ETIMEDOUT);
      l.stop();
      // It is gone for its owner too.
      assert.equal((await rawCtl({ ...w.cred, watchId: q.watchId })).errno, Errno.ENOENT);
    });

    it("clamps a long lease, and keeps a renewed watch past its first lease", async () => {
      const w = watcher("renewer");
      const long = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }), leaseMs: 4_000_000_000 });
      assert.equal(long.leaseMs, TRACE_LEASE.maxMs);
      assert.equal((await rawCtl({ ...w.cred, watchId: long.watchId, cancel: true })).errno, 0);
      const watch = await watchTraceOnBus(cbus, system, w.cred, { hostPriv: w.hostPriv }, () => {}, { leaseMs: TRACE_LEASE.minMs });
      assert.equal(watch.leaseMs, TRACE_LEASE.minMs);
      await sleep(TRACE_LEASE.minMs * 2);
      assert.equal(tb.size, 1, "the client renewed it");
      assert.notEqual(kernel.tracer, null);
      await watch.stop();
      assert.equal(kernel.tracer, null);
    });

    it("ends a cancelled watch, and only its own task may cancel it", async () => {
      const w = watcher("canceller");
      const other = watcher("other");
      const q = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) });
      const l = await listen(q.subject);
      assert.equal((await rawCtl({ ...w.cred, watchId: q.watchId })).errno, 0);
      assert.equal(kernel.trace.watching, 1);
      assert.equal((await rawCtl({ ...other.cred, watchId: q.watchId, cancel: true })).errno, Errno.ENOENT);
      assert.equal(tb.size, 1);
      assert.equal((await rawCtl({ ...w.cred, watchId: q.watchId, cancel: true })).errno, 0);
      assert.equal(tb.size, 0);
      assert.equal(kernel.tracer, null);
      await until(() => l.ended() !== 0, 3000, "the last batch");
      assert.equal(l.ended(), Errno.KERN_ABORTED);
      l.stop();
    });

    it("ends the watch of a task that dies", async () => {
      const w = watcher("mortal");
      let endedWith = 0;
      const watch = await watchTraceOnBus(cbus, system, w.cred, { hostPriv: w.hostPriv }, () => {}, { onEnd: (c) => (endedWith = c) });
      assert.notEqual(kernel.tracer, null);
      kernel.terminate(w.task, "test");
      // The kernel's sweep timer is unref'd (it must not hold a process open): something here must.
      await until(() => endedWith !== 0, 3000, "the watch to end");
      assert.equal(await watch.ended, Errno.KERN_TERMINATED);
      assert.equal(endedWith, Errno.KERN_TERMINATED);
      assert.equal(tb.size, 0);
      assert.equal(kernel.tracer, null);
    });

    it("answers junk on both subjects with EINVAL and keeps serving", async () => {
      const refused = tb.stats.refused;
      for (const junk of [new Uint8Array([0xff, 0xff, 0xff, 0xff]), new TextEncoder().encode("junk, not protobuf"), new Uint8Array([0x1a, 0x05, 0xff])]) {
        assert.equal((await raw(subjects.watch, junk)).errno, Errno.EINVAL);
        assert.equal((await raw(subjects.ctl, junk)).errno, Errno.EINVAL);
      }
      // With no reply subject there is nobody to answer, and nothing breaks.
      cbus.publish(subjects.watch, new Uint8Array([0xff]));
      cbus.publish(subjects.ctl, new Uint8Array([0xff]));
      // Nor is a good request with nowhere to send the watch's id: it would only hold a slot.
      const w = watcher("after-junk");
      cbus.publish(subjects.watch, TraceWatchRequest.encode(TraceWatchRequest.fromPartial({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) })).finish());
      await until(() => tb.stats.refused === refused + 9, 3000, "the unanswered requests handled");
      assert.equal(tb.size, 0);
      const watch = await watchTraceOnBus(cbus, system, w.cred, { hostPriv: w.hostPriv }, () => {});
      assert.equal(tb.size, 1);
      await watch.stop();
      assert.equal(tb.stats.refused, refused + 9);
    });

    it(`holds at most maxTraceWatches (${64}) watches: EAGAIN past it, room again when one ends`, async () => {
      assert.equal(kernel.config.maxTraceWatches, 64);
      const w = watcher("greedy");
      const ids: number[] = [];
      for (let i = 0; i < 64; i++) {
        const r = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) });
        assert.equal(r.errno, 0, r.error);
        ids.push(r.watchId);
      }
      assert.equal(new Set(ids).size, 64, "ids are distinct");
      assert.equal(tb.size, 64);
      const over = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) });
      assert.equal(over.errno, Errno.EAGAIN);
      assert.match(over.error, /64 trace watches/);
      assert.equal((await rawCtl({ ...w.cred, watchId: ids.pop()!, cancel: true })).errno, 0);
      const again = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv }) });
      assert.equal(again.errno, 0);
      ids.push(again.watchId);
      for (const id of ids) assert.equal((await rawCtl({ ...w.cred, watchId: id, cancel: true })).errno, 0);
      assert.equal(tb.size, 0);
      assert.equal(kernel.tracer, null);
    });

    it("cuts a big flush into batches the bus takes, losing no record", async () => {
      const a = await attach(...creds(kernel.bootTask({ name: "bulk" })));
      const p = await a.allocate();
      const w = watcher("bulk-watcher");
      const q = await rawWatch({ ...w.cred, watch: WatchRequest.fromPartial({ hostPriv: w.hostPriv, tasks: [a.id], bodies: true }) });
      const l = await listen(q.subject);
      assert.equal((await rawCtl({ ...w.cred, watchId: q.watchId })).errno, 0);
      const body = new Uint8Array(60_000).fill(7);
      for (let i = 0; i < 12; i++) a.send({ destination: p, destinationDisposition: MsgType.MSG_TYPE_MAKE_SEND, id: 4242, body });
      const seen = () => l.got.reduce((s, g) => s + g.batch.records.filter((r) => r.msgid === 4242 && r.body.length === 60_000).length, 0);
      await until(() => seen() === 12, 5000, "12 records with their bodies");
      // 720 kB of bodies: at least three messages, none over the 256 KiB cut.
      for (const g of l.got) assert.ok(g.bytes <= 256 * 1024, `a batch of ${g.bytes} bytes`);
      assert.ok(l.got.length >= 3);
      assert.equal(l.got.reduce((s, g) => s + g.batch.dropped, 0), 0);
      assert.equal((await rawCtl({ ...w.cred, watchId: q.watchId, cancel: true })).errno, 0);
      l.stop();
    });
  });

  describe(`trace stream on the bus at kernel close (${kind} bus)`, () => {
    it("ends every watch with KERN_TERMINATED and clears the lease timer when the kernel closes", async () => {
      const system = `tbusc${process.pid}x${++n}`;
      const hub = new LocalHub();
      const kbus = kind === "local" ? hub.connect() : await natsBus(system);
      const cbus = kind === "local" ? hub.connect() : await natsBus(system);
      const kernel = new Kernel({ system }, { log: () => {} });
      const tb = new TraceBus(kernel, kbus, { pollMs: 20 });
      tb.start();
      await kbus.flush();
      const b = kernel.bootTask({ name: "w", hostPriv: true });
      const watch = await watchTraceOnBus(cbus, system, { taskId: b.task.id, token: b.token }, { hostPriv: b.hostPriv }, () => {});
      assert.equal(tb.size, 1);
      assert.notEqual((tb as unknown as { sweeper: unknown }).sweeper, null);
      kernel.close();
      assert.equal(tb.size, 0);
      assert.equal((tb as unknown as { sweeper: unknown }).sweeper, null, "no timer outlives the kernel");
      assert.equal(kernel.tracer, null);
      assert.equal(await watch.ended, Errno.KERN_TERMINATED);
      // It no longer serves: a request finds nobody.
      await kbus.flush();
      await assert.rejects(cbus.request(traceSubjects(system).watch, new Uint8Array(0), 1000), (e) => errnoOf(e) === Errno.MACH_SEND_INVALID_DEST);
      await cbus.close();
      await kbus.close();
    });
  });
}

function creds(b: { task: { id: number }; token: string }): [number, string] {
  return [b.task.id, b.token];
}

// The kernel's trace stream and the rpctrace view: records exist only while
// someone watches, carry both sides' names and the rights moved, and format
// into rpctrace's lines for a scripted fork–signal–exit–wait.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SIG } from "@hurdmesh/libhurd";
import { Errno, MsgType } from "@hurdmesh/mach";
import { Message } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { WATCH_COUNTS } from "../../services/kernel/src/trace.js";
import type { TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { RpcTraceFormatter } from "../../packages/cli/src/rpctrace/format.js";
import { busKinds } from "../harness.js";
import { sequence, world, type World } from "./kit.js";

for (const kind of busKinds) {
  describe(`rpctrace view (${kind} bus)`, () => {
    let w: World;
    before(async () => {
      w = await world(kind);
    });
    after(async () => w.close());

    it("the kernel traces nothing, and checks one field, while nobody watches", async () => {
      const k = w.b.h.kernel;
      assert.equal(k.tracer, null);
      const stop = k.trace.watch({}, () => {});
      assert.notEqual(k.tracer, null, "a watcher turns the stream on");
      stop();
      assert.equal(k.tracer, null, "and off again when it leaves");
      await w.init.getpids();
      assert.equal(k.trace.stats.records, 0);
    });

    it("prints the expected lines for a scripted fork, signal, exit and wait", async () => {
      const k = w.b.h.kernel;
      const records: TraceRecord[] = [];
      const initTask = w.init.task.id;
      const stop = k.trace.watch({ tasks: [initTask], follow: true, bodies: true }, (rs) => records.push(...rs));
      const r = await sequence(w);
      await new Promise((res) => setImmediate(res));
      stop();
      assert.equal(k.tracer, null);
      const pids = new Map<number, number>([
        [initTask, w.init.pid],
        [r.childTask, r.pid],
      ]);
      const who = (t: number) => (pids.has(t) ? `task${t}(pid${pids.get(t)})` : `task${t}`);
      let out = "";
      const f = new RpcTraceFormatter((s) => (out += s), { who });
      for (const rec of records) f.push(rec);
      f.end();
      // A request whose reply came after other messages ends in ` ...N` and its
      // reply prints later as `N... = ...` (rpctrace's own convention): join them.
      const lines = joinInterleaved(out.trimEnd().split("\n"));
      const I = `task${initTask}\\(pid${w.init.pid}\\)`;
      const C = `task${r.childTask}\\(pid${r.pid}\\)`;
      // Each pattern must match a line, in this order (other lines may come between).
      const want = [
        new RegExp(`^${I}->hurd\\.process\\.v1\\.Process/Child \\(\\) pn\\{copy-send \\d+->\\d+\\} = 0$`),
        new RegExp(`^${C}->hurd\\.process\\.v1\\.Process/Getpids \\(\\) = 0 \\{pid: ${r.pid}, ppid: ${w.init.pid}, orphaned: true\\}$`),
        new RegExp(`^${I}->hurd\\.process\\.v1\\.Process/Getmsgport \\(pid: ${r.pid}\\) = 0 .*pn\\{`),
        new RegExp(`^${I}->hurd\\.msg\\.v1\\.Msg/SigPost \\(signal: ${SIG.USR1}.*\\) pn\\{copy-send \\d+->\\d+\\} = 0$`),
        new RegExp(`^${C}->hurd\\.process\\.v1\\.Process/MarkExit \\(status: 1792\\) = 0$`),
        new RegExp(`^${I}->hurd\\.process\\.v1\\.Process/Waitid \\(pid: ${r.pid}, options: \\d+\\) = 0 \\{status: 1792, .*pidStatus: ${r.pid}\\}$`),
      ];
      let at = 0;
      for (const re of want) {
        const i = lines.findIndex((l, j) => j >= at && re.test(l));
        assert.ok(i >= 0, `no line matching ${re} after line ${at} in:\n${out}`);
        at = i + 1;
      }
      // Records carry both sides of every message.
      const sig = records.find((x) => x.rpc === "hurd.msg.v1.Msg/SigPost" && !x.isReply)!;
      assert.equal(sig.fromTask, initTask);
      assert.equal(sig.toTask, r.childTask);
      assert.ok(sig.senderName > 0 && sig.receiverName > 0);
      assert.ok(sig.rights.some((x) => x.startsWith("reply make-send-once")));
      const rep = records.find((x) => x.isReply && x.replyTo === sig.n)!;
      assert.equal(rep.fromTask, r.childTask);
      assert.equal(rep.toTask, initTask);
      assert.equal(rep.code, 0);
    });

    it("errors print as rpctrace does: the code and its name", async () => {
      const k = w.b.h.kernel;
      let out = "";
      const f = new RpcTraceFormatter((s) => (out += s));
      const stop = k.trace.watch({ tasks: [w.init.task.id], bodies: true }, (rs) => rs.forEach((x) => f.push(x)));
      await assert.rejects(w.init.proc.getmsgport({ pid: 99999 }));
      await new Promise((res) => setImmediate(res));
      stop();
      f.end();
      assert.match(out, /->hurd\.process\.v1\.Process\/Getmsgport \(pid: 99999\) = 0x40000003 \(ESRCH\)/);
    });

    it("a watcher that falls behind loses records, counted; routing never waits for it", async () => {
      const k = w.b.h.kernel;
      let got = 0;
      let dropped = 0;
      const stop = k.trace.watch({ buffer: 50 }, (rs, d) => {
        got += rs.length;
        dropped += d;
      });
      // 100 RPCs at a time make 200 records in a few turns of the loop: more than the buffer holds.
      for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 100 }, () => w.init.getpids()));
      await new Promise((res) => setImmediate(res));
      stop();
      assert.ok(got > 0);
      assert.ok(dropped > 0, "some were dropped");
      assert.ok(got + dropped >= 2000, `${got} + ${dropped}`);
    });

    it("a rate-limited watch gets at most its rate in records and every other message counted, by edge and RPC", async () => {
      const k = w.b.h.kernel;
      const me = w.init.task.id;
      const recs: TraceRecord[] = [];
      const counted = new Map<string, number>();
      let dropped = 0;
      const rate = 20;
      const stop = k.trace.watch({ tasks: [me], recordsPerSecond: rate, bodies: true }, (rs, d, cs) => {
        recs.push(...rs);
        dropped += d;
        for (const c of cs) {
          assert.ok(c.count > 0);
          const key = `${c.fromTask}>${c.toTask} ${c.rpc}${c.isReply ? " reply" : ""}`;
          counted.set(key, (counted.get(key) ?? 0) + c.count);
        }
      });
      const t0 = Date.now();
      const N = 300;
      for (let i = 0; i < N / 50; i++) await Promise.all(Array.from({ length: 50 }, () => w.init.getpids()));
      await new Promise((res) => setImmediate(res));
      stop();
      const secs = (Date.now() - t0) / 1000;
      assert.equal(dropped, 0);
      // The bucket holds a second's worth, and refills at the rate.
      assert.ok(recs.length <= rate + Math.ceil(rate * secs) + 1, `${recs.length} records in ${secs.toFixed(2)} s at ${rate}/s`);
      assert.ok(recs.length >= Math.min(rate, 2 * N), `the first second's worth is recorded: ${recs.length}`);
      // Every Getpids request and reply is there, recorded or counted, on its edge.
      const name = "hurd.process.v1.Process/Getpids";
      const reqs = recs.filter((r) => r.rpc === name && !r.isReply && r.fromTask === me).length;
      const reps = recs.filter((r) => r.rpc === name && r.isReply && r.toTask === me).length;
      const proc = recs.find((r) => r.rpc === name && !r.isReply)?.toTask ?? [...counted.keys()].map((k) => /^\d+>(\d+) /.exec(k)?.[1]).find(Boolean);
      assert.equal(reqs + (counted.get(`${me}>${proc} ${name}`) ?? 0), N, `requests: ${[...counted].join("; ")}`);
      assert.equal(reps + (counted.get(`${proc}>${me} ${name} reply`) ?? 0), N, `replies: ${[...counted].join("; ")}`);
    });

    it("a flood of distinct messages past the rate keeps at most WATCH_COUNTS counters: the rest are dropped, and said so", async () => {
      const k = w.b.h.kernel;
      const me = w.init.task;
      let counters = 0;
      let counted = 0;
      let recorded = 0;
      let dropped = 0;
      const stop = k.trace.watch({ tasks: [me.id], recordsPerSecond: 1 }, (rs, d, cs) => {
        recorded += rs.filter((r) => r.msgid >= 700_000).length;
        dropped += d;
        for (const c of cs) if (c.msgid >= 700_000) (counters++, (counted += c.count));
      });
      // Refused sends, each with a message id of its own, told to the tracer as the trap path
      // tells it, all within one turn of the loop: no batch leaves in between.
      const N = WATCH_COUNTS + 500;
      const t = k.tasks.get(me.id)!;
      for (let i = 0; i < N; i++) k.trace.refused(t, Message.fromPartial({ destination: 0x7fff_0000, destinationDisposition: MsgType.MSG_TYPE_COPY_SEND, id: 700_000 + i }), Errno.MACH_SEND_INVALID_DEST);
      stop();
      assert.equal(counters, WATCH_COUNTS, "the counters kept");
      assert.equal(dropped, N - WATCH_COUNTS - recorded, "the rest dropped, and said so");
      assert.equal(recorded + counted + dropped, N, `${recorded} recorded, ${counted} counted, ${dropped} dropped`);
      assert.ok((await me.names()).names.length > 0, "the kernel still answers");
    });
  });
}

function joinInterleaved(lines: string[]): string[] {
  const out: string[] = [];
  const open = new Map<string, number>();
  for (const l of lines) {
    const cont = /^(\d+)\.\.\. (.*)$/.exec(l);
    if (cont && open.has(cont[1]!)) {
      const i = open.get(cont[1]!)!;
      out[i] = `${out[i]} ${cont[2]}`;
      open.delete(cont[1]!);
      continue;
    }
    const start = / \.\.\.(\d+)$/.exec(l);
    if (start) {
      open.set(start[1]!, out.length);
      out.push(l.slice(0, start.index));
      continue;
    }
    out.push(l);
  }
  return out;
}

// The kernel log's parts on their own (services/kernel/src/log-format.ts,
// @hurdmesh/mach/nats's JetStreamLog and JetStreamKv.update): the record
// format refuses what it cannot read whole, an append that does not follow
// the log's last entry is refused (the fence), and the leadership key's
// compare-and-set lets exactly one of two writers win.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { FencedError, JetStreamKv, JetStreamLog, NatsBus } from "@hurdmesh/mach/nats";
import { BurstWriter, EdgeOp, readBurst, Rec } from "../../services/kernel/src/log-format.js";
import { Journal, type LogWriter } from "../../services/kernel/src/journal.js";
import type { Bus, BusHandler, BusSubscription } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { busKinds, natsBus, natsKeys } from "../harness.js";

describe("kernel log record format", () => {
  it("a burst reads back record by record; a cut, overlong or foreign-version entry is refused whole", () => {
    const w = new BurstWriter();
    w.add(Rec.CLOCK, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    w.add(Rec.TRAP, Buffer.from("trap"), 1);
    w.add(Rec.SWEEP, null);
    const b = w.take();
    assert.equal(w.records, 0);
    const r = readBurst(b);
    assert.deepEqual(r.map((x) => x.kind), [Rec.CLOCK, Rec.TRAP, Rec.SWEEP]);
    assert.equal(r[1]!.payload[0], 1);
    assert.equal(r[1]!.payload.subarray(1).toString(), "trap");
    assert.throws(() => readBurst(b.subarray(0, b.length - 2)), /runs past the entry|cut short/);
    const v2 = Buffer.from(b);
    v2[0] = 9;
    assert.throws(() => readBurst(v2), /version 9/);
    assert.throws(() => readBurst(new Uint8Array(0)), /version/);
  });
});

describe("kernel log on JetStream", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  // On the suite's server (authorization on), as the kernel's own NATS user: its role reaches its log and its leadership key.
  const system = `klog${process.pid}`;
  let bus: NatsBus;
  const inboxPrefix = () => (natsKeys() ? inboxOf(system, { kind: "kernel" }) : undefined);
  before(async () => {
    bus = await natsBus(system, { kind: "kernel" });
  });
  after(async () => {
    await bus?.close();
  });

  it("appends chain on the expected last sequence; a stale writer is fenced; a tail sees every entry in order", async () => {
    const log = await JetStreamLog.open(bus.nc, system, { inboxPrefix: inboxPrefix() });
    const { first, last } = await log.state();
    assert.ok(first > last, "a new log is empty");
    const s1 = await log.append(new Uint8Array([1]), last);
    const s2 = await log.append(new Uint8Array([2]), s1);
    // A writer that still expects s1 (a deposed leader) is refused.
    await assert.rejects(log.append(new Uint8Array([99]), s1), FencedError);
    assert.equal((await log.state()).last, s2);
    const seen: number[] = [];
    const tail = log.tail(first, (seq, d) => seen.push(seq * 1000 + d[0]!), (e) => assert.fail(e));
    await log.append(new Uint8Array([3]), s2);
    const t0 = Date.now();
    while (seen.length < 3 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    tail.stop();
    assert.deepEqual(seen, [s1 * 1000 + 1, s2 * 1000 + 2, (s2 + 1) * 1000 + 3]);
  });

  it("the leadership key: compare-and-set on its revision, exactly one of two writers wins", async () => {
    const kv = await JetStreamKv.open(bus.nc, system, "", "kernel", { inboxPrefix: inboxPrefix() });
    assert.equal(await kv.get("leader"), null);
    const enc = (s: string) => new TextEncoder().encode(s);
    const r1 = await kv.update("leader", enc("a"), 0);
    assert.ok(r1 !== null);
    assert.equal(await kv.update("leader", enc("b"), 0), null, "a key already written is not 'never written'");
    const both = await Promise.all([kv.update("leader", enc("c"), r1), kv.update("leader", enc("d"), r1)]);
    assert.equal(both.filter((x) => x !== null).length, 1);
    const cur = await kv.get("leader");
    assert.ok(cur !== null && ["c", "d"].includes(new TextDecoder().decode(cur.value)));
  });

  it("append before visible: an idle leader's answer, bus or gRPC, leaves only once the entry that caused it is acknowledged", async () => {
    const log = await JetStreamLog.open(bus.nc, system, { inboxPrefix: inboxPrefix() });
    const gated = new GatedLog(log);
    const out = new RecordingBus();
    const { last } = await log.state();
    const j = new Journal(gated, out, { lastSeq: last, leading: () => true, deposed: (e) => assert.fail(e) });
    const said: string[] = [];
    // As handleTrap does: the answer is made while the trap is applied, its record added after.
    j.output("reply.1", new Uint8Array([1]));
    j.after(() => said.push("grpc answer"));
    j.trap(new Uint8Array([7, 7]), true, true);
    j.edge(EdgeOp.SINK, 42, 256);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(gated.waiting, 1, "one append for the burst");
    assert.deepEqual(out.published, [], "nothing on the bus before the append is acknowledged");
    assert.deepEqual(said, [], "no gRPC answer before the append is acknowledged");
    gated.open();
    await j.synced();
    assert.deepEqual(out.published, ["reply.1"]);
    assert.deepEqual(said, ["grpc answer"]);
    // The entry is in the log, records in order, the edge's with its task and window.
    const { last: now } = await log.state();
    assert.equal(now, last + 1);
    const recs: ReturnType<typeof readBurst>[] = [];
    const tail = log.tail(now, (_seq, d) => recs.push(readBurst(d)), (e) => assert.fail(e));
    const t0 = Date.now();
    while (recs.length < 1 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    tail.stop();
    const kinds = recs[0]!.map((r) => r.kind);
    assert.deepEqual(kinds, [Rec.TRAP, Rec.EDGE]);
    const e = recs[0]![1]!.payload;
    assert.deepEqual([e[0], e.readUInt32LE(1), e.readUInt32LE(5)], [EdgeOp.SINK, 42, 256]);
    // An output with no record of its own (a refused trap's answer) still leaves, after the writes before it.
    j.output("reply.2", new Uint8Array([2]));
    for (let i = 0; i < 5 && out.published.length < 2; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(out.published, ["reply.1", "reply.2"]);
  });
});

/** The log, with each append held until the test opens the gate (to see what the journal sends meanwhile). */
class GatedLog implements LogWriter {
  waiting = 0;
  private gate: (() => void) | null = null;
  private readonly opened: Promise<void>;
  constructor(private readonly log: LogWriter) {
    this.opened = new Promise((r) => (this.gate = r));
  }
  open(): void {
    this.gate?.();
  }
  async append(data: Uint8Array, expected: number): Promise<number> {
    this.waiting++;
    await this.opened;
    return this.log.append(data, expected);
  }
}

/** A bus that keeps the subjects published on, in order. */
class RecordingBus implements Bus {
  readonly kind = "nats" as const;
  readonly closed = false;
  readonly maxPayload = undefined;
  published: string[] = [];
  publish(subject: string): void {
    this.published.push(subject);
  }
  subscribe(_s: string, _h: BusHandler): BusSubscription {
    return { unsubscribe() {} };
  }
  request(): Promise<Uint8Array> {
    return Promise.reject(new Error("not asked"));
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

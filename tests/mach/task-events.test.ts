// The hand-written TaskEventsNotification codec (packages/mach/src/task-events.ts)
// against the generated one: the same bytes both ways, any proto3 form of
// the message accepted, malformed bytes refused with a RangeError.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { TaskEventsNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { clearTaskEvents, decodeTaskEvents, encodeTaskEvents, newTaskEvents, type TaskEvents } from "../../packages/mach/src/task-events.js";

function sample(n: number): TaskEvents {
  const e = newTaskEvents();
  for (let i = 0; i < n; i++) {
    e.kind.push(i % 2 ? 2 : 1);
    // Small ids, ids past 2^31 and 2^32, and the largest a number holds exactly.
    e.taskId.push([i, 200 + i, 2 ** 31 + i, 2 ** 32 + i, Number.MAX_SAFE_INTEGER - i][i % 5]!);
    e.parentId.push(i % 2 ? 0 : 16384 + i);
    e.namespaceId.push(7 + (i % 3));
    e.name.push(i % 2 ? "" : i % 4 === 0 ? `child-${i}` : `ünïcødé ✓ ${i}`);
  }
  return e;
}

const plain = (e: TaskEvents) => ({ kind: [...e.kind], taskId: [...e.taskId], parentId: [...e.parentId], namespaceId: [...e.namespaceId], name: [...e.name] });

describe("TaskEventsNotification codec", () => {
  it("writes exactly what the generated encoder writes, and reads it back", () => {
    for (const n of [0, 1, 2, 5, 100, 600]) {
      const e = sample(n);
      const mine = encodeTaskEvents(e);
      assert.deepEqual(Buffer.from(mine), Buffer.from(TaskEventsNotification.encode(e).finish()), `${n} events`);
      assert.deepEqual(TaskEventsNotification.decode(mine), plain(e));
      const back = newTaskEvents();
      decodeTaskEvents(mine, back);
      assert.deepEqual(plain(back), plain(e));
    }
  });

  it("reads back names that repeat, differ by one byte, or are empty, each as written", () => {
    const names = ["make", "make", "mako", "", "make", "", "", "ünï", "make", "x".repeat(65), "x".repeat(65), "makf"];
    const e = newTaskEvents();
    for (const [i, name] of names.entries()) {
      e.kind.push(1);
      e.taskId.push(100 + i);
      e.parentId.push(1);
      e.namespaceId.push(2);
      e.name.push(name);
    }
    const back = newTaskEvents();
    decodeTaskEvents(encodeTaskEvents(e), back);
    assert.deepEqual(back.name, names);
  });

  it("encodes only the first n entries when asked, and refuses arrays too short or values a uint64 field cannot take", () => {
    const e = sample(10);
    const back = newTaskEvents();
    decodeTaskEvents(encodeTaskEvents(e, 4), back);
    assert.deepEqual(back.taskId, e.taskId.slice(0, 4));
    assert.throws(() => encodeTaskEvents(e, 11), RangeError);
    for (const bad of [-1, 1.5, 2 ** 53, NaN]) {
      const x = sample(3);
      x.taskId[1] = bad;
      assert.throws(() => encodeTaskEvents(x), RangeError, String(bad));
    }
  });

  it("decodes unpacked numbers and skips unknown fields, as any proto3 reader must", () => {
    const w = new BinaryWriter();
    w.uint32((9 << 3) | 0).uint32(42); // unknown varint
    for (const [k, t, p, ns, name] of [[1, 300, 5, 9, "a"], [2, 300, 0, 9, ""]] as const) {
      w.uint32((1 << 3) | 0).uint32(k);
      w.uint32((2 << 3) | 0).uint64(t);
      w.uint32((3 << 3) | 0).uint64(p);
      w.uint32((4 << 3) | 0).uint64(ns);
      w.uint32((5 << 3) | 2).string(name);
    }
    w.uint32((10 << 3) | 2).bytes(new Uint8Array([1, 2, 3])); // unknown bytes
    w.uint32((11 << 3) | 1).fixed64(7); // unknown fixed64
    w.uint32((12 << 3) | 5).fixed32(7); // unknown fixed32
    const into = sample(3); // refilled, not appended to
    decodeTaskEvents(w.finish(), into);
    assert.deepEqual(plain(into), { kind: [1, 2], taskId: [300, 300], parentId: [5, 0], namespaceId: [9, 9], name: ["a", ""] });
  });

  it("refuses truncated and malformed bytes with a RangeError, leaving nothing half-read behind for the next message", () => {
    const good = encodeTaskEvents(sample(6));
    const into = newTaskEvents();
    for (let cut = 1; cut < good.length; cut++) {
      try {
        decodeTaskEvents(good.subarray(0, cut), into);
      } catch (e) {
        assert.ok(e instanceof RangeError, `cut at ${cut}: ${String(e)}`);
      }
    }
    const bad = [
      new Uint8Array([0x0a, 0x05, 0x01]), // packed field longer than the message
      new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // varint of 11 bytes
      new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), // past 2^53
      new Uint8Array([0x0b]), // group wire type
      new Uint8Array([0x49, 0x01]), // fixed64 cut short
    ];
    for (const b of bad) assert.throws(() => decodeTaskEvents(b, into), RangeError, Buffer.from(b).toString("hex"));
    decodeTaskEvents(good, into);
    assert.deepEqual(plain(into), plain(sample(6)));
    clearTaskEvents(into);
    assert.equal(into.kind.length + into.name.length, 0);
  });
});

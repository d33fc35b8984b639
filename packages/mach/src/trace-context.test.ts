// The binary trace context messages carry, and its text form at the edges.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isSampled, isTraceContext, NO_TRACE_CONTEXT, traceContextOf, traceparentOf, TRACE_CONTEXT_BYTES } from "./trace-context.js";

const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("binary trace context", () => {
  it("round-trips a W3C traceparent through its 25 bytes", () => {
    const c = traceContextOf(TP);
    assert.equal(c.length, TRACE_CONTEXT_BYTES);
    assert.equal(Buffer.from(c.subarray(0, 16)).toString("hex"), "0af7651916cd43dd8448eb211c80319c");
    assert.equal(Buffer.from(c.subarray(16, 24)).toString("hex"), "b7ad6b7169203331");
    assert.equal(c[24], 1);
    assert.ok(isTraceContext(c));
    assert.ok(isSampled(c));
    assert.equal(traceparentOf(c), TP);
    const unsampled = traceContextOf(TP.slice(0, 53) + "00");
    assert.equal(isSampled(unsampled), false);
    assert.equal(traceparentOf(unsampled), TP.slice(0, 53) + "00");
  });

  it("reads a later version's first four fields, as W3C asks of a version-00 parser", () => {
    const c = traceContextOf("01" + TP.slice(2) + "-future-stuff");
    assert.equal(traceparentOf(c), TP);
  });

  it("refuses malformed text: empty context, never a throw", () => {
    for (const bad of [
      "",
      "garbage",
      TP.toUpperCase(), // W3C: lowercase hex only
      TP.slice(0, 54),
      TP + "x", // version 00 is exactly 55 characters
      "ff" + TP.slice(2), // version ff is invalid
      "00-00000000000000000000000000000000-b7ad6b7169203331-01", // zero trace id
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // zero span id
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
      "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333\u00e9-01",
    ])
      assert.equal(traceContextOf(bad), NO_TRACE_CONTEXT, JSON.stringify(bad));
    assert.equal(traceContextOf(undefined), NO_TRACE_CONTEXT);
  });

  it("a binary context of the wrong size or with zero ids is no context", () => {
    assert.equal(isTraceContext(new Uint8Array(24)), false);
    assert.equal(isTraceContext(new Uint8Array(26).fill(1)), false);
    assert.equal(isTraceContext(new Uint8Array(25)), false);
    const zeroSpan = traceContextOf(TP).slice();
    zeroSpan.fill(0, 16, 24);
    assert.equal(isTraceContext(zeroSpan), false);
    assert.equal(traceparentOf(zeroSpan), "");
    assert.equal(traceparentOf(new Uint8Array(7)), "");
  });
});

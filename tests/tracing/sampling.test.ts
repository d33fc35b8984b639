// Ratio sampling: a new trace is sampled with the configured probability
// (a Math.random() draw, not a hash of a trace id made for the purpose),
// and every span below a root follows the root's decision: a sampled
// kernel span has its server span, an unsampled one has none, and no span
// is left without its parent. Checked statistically (bounds of five
// standard deviations: a correct sampler fails about once in 1.7 million
// runs) on the SDK alone and through a booted hurd.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace";
import { installTracingHooks } from "@hurdmesh/telemetry";
import { createTelemetry, type SdkTelemetry } from "@hurdmesh/telemetry-sdk";
import { busKinds } from "../harness.js";
import { world, type World } from "./kit.js";

/** Whether `k` successes in `n` draws of probability `p` lie within five standard deviations of n·p. */
function plausible(k: number, n: number, p: number): boolean {
  const sd = Math.sqrt(n * p * (1 - p));
  return Math.abs(k - n * p) <= 5 * sd;
}

const ratioEnv = (r: string): NodeJS.ProcessEnv => ({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: r });

describe("the root sampler draws against the ratio", () => {
  const made: SdkTelemetry[] = [];
  const tel = (o: Parameters<typeof createTelemetry>[0]) => {
    const t = createTelemetry(o);
    made.push(t);
    return t;
  };
  const random = Math.random;
  afterEach(async () => {
    Math.random = random;
    for (const t of made.splice(0)) await t.shutdown();
  });

  it("OTEL_TRACES_SAMPLER=parentbased_traceidratio samples that share of new traces", () => {
    for (const p of [0.01, 0.25, 0.5, 0.9]) {
      const t = tel({ service: "test", exporter: new InMemorySpanExporter(), env: ratioEnv(String(p)) });
      const n = 20000;
      let k = 0;
      for (let i = 0; i < n; i++) if (t.light.sampleRoot("root")) k++;
      assert.ok(plausible(k, n, p), `ratio ${p}: ${k} of ${n} sampled`);
    }
  });

  it("the decision is Math.random() against the ratio, for the environment's sampler and a TraceIdRatioBasedSampler given", () => {
    const byEnv = tel({ service: "test", exporter: new InMemorySpanExporter(), env: ratioEnv("0.25") });
    const given = tel({ service: "test", exporter: new InMemorySpanExporter(), sampler: new TraceIdRatioBasedSampler(0.25), env: {} });
    for (const t of [byEnv, given]) {
      Math.random = () => 0.2;
      assert.equal(t.light.sampleRoot("root"), true);
      Math.random = () => 0.3;
      assert.equal(t.light.sampleRoot("root"), false);
      Math.random = random;
      // An unsampled new trace still carries a context: its children follow "not sampled" instead of deciding again.
      assert.equal(t.light.neverSampled, false);
      assert.equal(t.light.unsampledContext().length, 25);
    }
  });

  it("ratio 0 never samples and carries no context; ratio 1 and nonsense (clamped) always sample", () => {
    const zero = tel({ service: "test", exporter: new InMemorySpanExporter(), env: ratioEnv("0") });
    assert.equal(zero.light.neverSampled, true);
    assert.equal(zero.light.unsampledContext().length, 0);
    for (let i = 0; i < 1000; i++) assert.equal(zero.light.sampleRoot("root"), false);
    for (const r of ["1", "7", "nonsense"]) {
      const t = tel({ service: "test", exporter: new InMemorySpanExporter(), env: ratioEnv(r) });
      for (let i = 0; i < 1000; i++) assert.equal(t.light.sampleRoot("root"), true, `ratio ${r}`);
    }
    const negative = tel({ service: "test", exporter: new InMemorySpanExporter(), env: ratioEnv("-1") });
    assert.equal(negative.light.neverSampled, true);
  });
});

for (const kind of busKinds) {
  describe(`ratio sampling through a hurd (${kind} bus)`, () => {
    let w: World;
    before(async () => {
      w = await world(kind);
    });
    after(async () => {
      installTracingHooks(null);
      w.b.h.kernel.trace.useTelemetry(null);
      await w.close();
    });

    it("half the kernel's new traces are sampled, and each server span follows its kernel span's decision", async () => {
      const exporter = new InMemorySpanExporter();
      const tel = createTelemetry({ service: "test", exporter, scheduledDelayMillis: 10, maxQueueSize: 8192, env: ratioEnv("0.5") });
      const k = w.b.h.kernel;
      k.trace.useTelemetry(tel);
      const off = installTracingHooks(tel);
      const N = 400;
      try {
        // init's calls outside any span: each request is a new trace, decided by the kernel.
        for (let i = 0; i < N; i++) await w.init.getpids();
      } finally {
        off();
        k.trace.useTelemetry(null);
      }
      await tel.flush();
      const spans = exporter.getFinishedSpans();
      const method = "hurd.process.v1.Process/Getpids";
      const kernelSpans = spans.filter((s) => s.kind === SpanKind.PRODUCER && s.attributes["rpc.method"] === method);
      const serverSpans = spans.filter((s) => s.kind === SpanKind.SERVER && s.name === method);
      assert.ok(plausible(kernelSpans.length, N, 0.5), `${kernelSpans.length} of ${N} requests sampled`);
      for (const s of kernelSpans) assert.equal(s.parentSpanContext, undefined, "a request from outside any span is a root");
      // Children follow their parent: one server span per sampled request, under it; none for the others.
      const kernelIds = new Set(kernelSpans.map((s) => s.spanContext().spanId));
      assert.equal(serverSpans.length, kernelSpans.length);
      for (const s of serverSpans) assert.ok(kernelIds.has(s.parentSpanContext?.spanId ?? ""), "a server span under a sampled kernel span");
      assert.equal(tel.dropped, 0);
      await tel.shutdown();
    });
  });
}

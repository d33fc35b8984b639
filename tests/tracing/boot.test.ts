// A boot is one trace a person can read: a root span "hurd boot", one span
// per phase (core servers start, proc and auth wired, essential tasks check
// in, pid 1 starts), and under them the kernel's span for every message of
// the boot and the servers' handler spans.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { InProcessLauncher } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { createTelemetry } from "@hurdmesh/telemetry-sdk";
import { busKinds, startHurd, type Hurd } from "../harness.js";

for (const kind of busKinds) {
  describe(`boot trace (${kind} bus)`, () => {
    let h: Hurd | null = null;
    after(async () => {
      installTracingHooks(null);
      setGlobalTelemetry(null);
      await h?.close();
    });

    it("init's boot is one trace: phases under the root, every boot RPC under a phase", async () => {
      h = await startHurd(kind);
      const exporter = new InMemorySpanExporter();
      const tel = createTelemetry({ service: "boot-test", exporter, scheduledDelayMillis: 10, maxQueueSize: 100_000 });
      h.kernel.trace.useTelemetry(tel);
      setGlobalTelemetry(tel);
      installTracingHooks(tel);
      const initTask = await h.task("init", { hostPriv: true, timeoutMs: 20000 });
      const hub = h;
      const init = new Init({ task: initTask, hostPriv: initTask.hostPriv, launcher: new InProcessLauncher((id, token) => hub.attach(id, token, { window: 1024, timeoutMs: 20000 })), log: () => {} });
      await init.boot();
      h.kernel.trace.useTelemetry(null);
      installTracingHooks(null);
      await tel.flush();
      const spans: ReadableSpan[] = exporter.getFinishedSpans();
      const root = spans.find((s) => s.name === "hurd boot");
      assert.ok(root, "a root span for the boot");
      assert.equal(root.parentSpanContext, undefined);
      const traceId = root.spanContext().traceId;
      const inBoot = spans.filter((s) => s.spanContext().traceId === traceId);
      const byId = new Map(inBoot.map((s) => [s.spanContext().spanId, s]));
      const phases = inBoot.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId).map((s) => s.name);
      assert.deepEqual(phases, ["start core servers (proc, auth)", "wire proc and auth", "essential tasks check in", "start pid 1 (runsystem)"]);
      const phaseOf = (s: ReadableSpan): string | undefined => {
        for (let p = s; p; p = byId.get(p.parentSpanContext?.spanId ?? "")!) if (p.parentSpanContext?.spanId === root.spanContext().spanId) return p.name;
        return undefined;
      };
      const kernel = (re: RegExp) => inBoot.filter((s) => s.kind === SpanKind.PRODUCER && re.test(String(s.attributes["rpc.method"])));
      for (const [re, phase] of [
        [/Startup\/Procinit$/, "start core servers (proc, auth)"],
        [/Startup\/Authinit$/, "start core servers (proc, auth)"],
        [/Process\/Child$/, "wire proc and auth"],
        [/Process\/MarkImportant$/, "wire proc and auth"],
        [/Process\/SetInitTask$/, "start pid 1 (runsystem)"],
      ] as const) {
        const ks = kernel(re);
        assert.ok(ks.length > 0, `a kernel span for ${re} in the boot trace`);
        assert.equal(phaseOf(ks[0]!), phase, `${re} under "${phase}"`);
        assert.ok(inBoot.some((s) => s.kind === SpanKind.SERVER && s.parentSpanContext?.spanId === ks[0]!.spanContext().spanId), `${re} handled under its kernel span`);
      }
      assert.ok(kernel(/Startup\/EssentialTask$/).length >= 2, "auth's and proc's essential-task registrations are in the boot trace");
      // Readable: no span of the boot names a parent that is not in it, but
      // those under pid 1's wait for orphans: its request span stays open
      // (it ends when the reply comes) for as long as the hurd runs.
      for (const s of inBoot) if (s !== root && !/Process\/Waitid$/.test(s.name)) assert.ok(byId.has(s.parentSpanContext!.spanId), `parent of ${s.name} in the trace`);
      assert.equal(tel.dropped, 0);
      await tel.shutdown();
    });
  });
}

// A/B driver (not part of the bench): a kernel call's trace context in
// binary inside the call (Call.trace_context, what the runtime sends) against
// the text traceparent NATS header it replaced (what an older runtime sends,
// which the kernel still reads). Both are the same raw port_get_refs trap on
// one NATS connection, 64 in flight, kernel tracing on, the caller inside a
// span; they differ only in where the context rides. Rounds alternate A and
// B, so both share the machine's conditions.
//   node --conditions=@hurdmesh/source --import tsx bench/ab-call-context.ts [ms per round] [rounds]
import { NatsBus } from "@hurdmesh/mach/nats";
import { methods, NO_TRACE_CONTEXT, subjectsOf, traceparentOf } from "@hurdmesh/mach/internal";
import { CallReply, MachDefinition, Trap } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { createTelemetry, SerializingExporter } from "@hurdmesh/telemetry-sdk";
import { SpanKind } from "@opentelemetry/api";
import { startNats } from "./nats.js";
import { kernelRig, NATS_AUTH_OFF } from "./rig.js";

const ms = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 5);
const IN_FLIGHT = 64;
const mach = methods(MachDefinition);

const nats = await startNats();
const ctx = { natsUrl: nats.url, natsAuth: null, durationMs: ms, inFlight: [IN_FLIGHT], log: (l: string) => console.error(`# ${l}`) };
const k = await kernelRig(NATS_AUTH_OFF, ctx, ctx.log);
const raw = await NatsBus.connect(nats.url, "ab-call-context");
try {
  const tel = createTelemetry({ service: "bench", exporter: new SerializingExporter(), env: {} });
  k.kernel.trace.useTelemetry(tel);
  const boot = k.kernel.bootTask({ name: "ab" });
  const t = await k.attach(boot.task.id, boot.token);
  const name = await t.allocate();
  // The caller's span, as the runtime's hooks would hand it to Task.call.
  const span = tel.light.startSpan("ab caller", SpanKind.INTERNAL, null, {});
  const subject = subjectsOf(k.system).trap;
  const msgid = mach.byKey.get("portGetRefs")!.msgid;
  const request = MachDefinition.methods.portGetRefs.requestType.encode({ name, right: 1 }).finish();
  const call = async (binary: boolean) => {
    // Each call builds its trap as Task.call does: the context read, then the encoding.
    const c = span.context;
    const bytes = Trap.encode({ task: boot.task.id, token: boot.token, credit: 0, seq: 0, call: { msgid, request, traceContext: binary ? c : NO_TRACE_CONTEXT } }).finish();
    const ans = CallReply.decode(await raw.request(subject, bytes, 10000, binary ? undefined : traceparentOf(c)));
    if (ans.code !== 0) throw new Error(`port_get_refs answered ${ans.code}: ${ans.detail}`);
  };
  const run = async (binary: boolean) => {
    const end = performance.now() + ms;
    let n = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await call(binary);
          n++;
        }
      }),
    );
    return (n / (performance.now() - t0)) * 1000;
  };
  await run(true);
  await run(false);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0;
    const x = await run(first);
    const y = await run(!first);
    (first ? a : b).push(x);
    (first ? b : a).push(y);
    console.log(`round ${r + 1}: binary ${Math.round(first ? x : y)} calls/s, header ${Math.round(first ? y : x)} calls/s`);
  }
  const median = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1]!;
  const ma = median(a);
  const mb = median(b);
  console.log(`median: binary in the call ${Math.round(ma)} calls/s, traceparent header ${Math.round(mb)} calls/s: binary ${(((ma - mb) / mb) * 100).toFixed(1)} % (load ${(await import("node:os")).loadavg()[0]!.toFixed(1)})`);
  span.end();
  k.kernel.trace.useTelemetry(null);
  await tel.shutdown();
} finally {
  await raw.close();
  await k.close();
  await nats.stop();
}
process.exit(0);

// A/B driver (not part of the bench): tracing off vs 100 % sampled vs sampled
// at HURD_BENCH_TRACE_RATIO (default the bench's SAMPLED_RATIO), 64 in
// flight, interleaved 250 ms slices; each row with its spans dropped.
//   npx tsx --conditions=@hurdmesh/source bench/ab-tracing.ts [ms per row]
import { startNats } from "./nats.js";
import { FULL, MODES, SAMPLED, tracing } from "./rows/tracing.js";
MODES.splice(0, MODES.length, "off", FULL, ...(FULL === SAMPLED.replace(/\d+%/, "100%") && SAMPLED !== FULL ? [SAMPLED] : []));
const nats = await startNats();
const dur = Number(process.argv[2] ?? 6000);
const rows = await tracing.run!({ natsUrl: nats.url, durationMs: dur, inFlight: [64], log: (l) => { if (l.startsWith("overhead")) console.log(l); } });
for (const r of rows) console.log(r.name.padEnd(70), r.bus.padEnd(6), String(Math.round(r.calls_per_s)).padStart(7), "/s", String(r.cpu_us_per_call).padStart(8), "cpu_us/call", String(r.spans_dropped ?? "-").padStart(8), "dropped");
await nats.stop();
process.exit(0);

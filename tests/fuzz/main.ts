// The fuzz command (run it as `npm run fuzz -- …`, which starts nats-server
// for --bus nats): every target asked for, one after another, each in a
// world of its own; a report per target; exit 1 on any crash or violation.
//
//   --target kernel|proc|auth|startup|edge|all   (default all)
//   --messages N      per target (default 10000)
//   --seed S          (default: from the clock; printed)
//   --path P          with --seed: replay one shrunk failure
//   --replay-path R   with --path, for kernel-model: the counterexample's replayPath
//   --bus local|nats  (default local)
//   --ms T            stop each target after T ms
//   --shrink-ms T     shrink a failure for at most T ms (default 120000)
//   --json            one JSON line per target after its report
import { parseArgs } from "node:util";
import { fuzz, formatReport, type FuzzReport } from "./core.js";
import { TARGETS } from "./targets.js";
import type { BusKind } from "../harness.js";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "all" },
    messages: { type: "string", default: "10000" },
    seed: { type: "string" },
    path: { type: "string" },
    "replay-path": { type: "string" },
    bus: { type: "string", default: "local" },
    ms: { type: "string" },
    "shrink-ms": { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const names = values.target === "all" ? Object.keys(TARGETS) : values.target!.split(",");
for (const n of names) if (!TARGETS[n]) throw new Error(`no fuzz target ${n}: ${Object.keys(TARGETS).join(", ")} or all`);
const bus = values.bus as BusKind;
if (bus !== "local" && bus !== "nats") throw new Error("--bus is local or nats");
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000_007;
const messages = Number(values.messages);
console.log(`# fuzz: targets ${names.join(", ")}, ${messages} messages each, ${bus} bus, seed ${seed}${values.path ? `, path ${values.path}` : ""}`);
const reports: FuzzReport[] = [];
for (const n of names) {
  const target = await TARGETS[n]!();
  const r = await fuzz(target, bus, {
    messages,
    seed,
    path: values.path,
    replayPath: values["replay-path"],
    timeLimitMs: values.ms ? Number(values.ms) : undefined,
    shrinkMs: values["shrink-ms"] ? Number(values["shrink-ms"]) : undefined,
    progress: (l) => console.log(`# ${l}`),
  });
  reports.push(r);
  console.log(formatReport(r));
  if (values.json) console.log(JSON.stringify(r));
}
const bad = reports.filter((r) => r.crashes || r.violations);
console.log(`# total: ${reports.reduce((a, r) => a + r.messages, 0)} messages, ${reports.reduce((a, r) => a + r.crashes, 0)} crashes, ${reports.reduce((a, r) => a + r.violations, 0)} invariant violations`);
process.exit(bad.length ? 1 : 0);

// `npm run bench [-- --json] [--duration=MS] [--only=GROUP,...]`
//
// One process, one run: starts its own nats-servers on free loopback ports
// (if a selected group needs them: one with NATS authorization on, as every
// deployment runs, for the brokered rows; an anonymous one for raw NATS and
// the "nats, auth off" rows), runs the row groups of bench/rows, prints
// a table (or, with --json, one JSON line per row on stdout, progress and
// verdicts on stderr) with the ratios against raw NATS and PASS/MISS against
// the targets, and stops the server. To add rows, add a RowGroup file under
// rows/ and list it in GROUPS; to add a target, add it to TARGETS.
import { measureInterleaved, type Row } from "./harness.js";
import { startNats, startSecuredNats } from "./nats.js";
import { NATS_AUTH_OFF } from "./rig.js";
import { kernelLocal, kernelNats, kernelNatsAuthOff, PING, TASK_CREATE } from "./rows/kernel.js";
import { RAW_NATS as RAW, rawNats } from "./rows/nats.js";
import type { BenchContext, Opened, RowGroup } from "./rows/types.js";
import { authLocal, authNats } from "./rows/auth.js";
import { boot } from "./rows/boot.js";
import { LIFECYCLE, procLifecycle, procScale, SUBHURD, subhurdLifecycle, WRITE_THROUGH } from "./rows/proc.js";
import { FULL, SAMPLED, SAMPLED_RATIO, tracing, tracingName } from "./rows/tracing.js";
import { CLI, cli } from "./rows/cli.js";
import { metrics, metricsName } from "./rows/metrics.js";
import { GATEWAY_GETPIDS, gateway, NATIVE_GETPIDS } from "./rows/gateway.js";
import { web, webName } from "./rows/web.js";
import { quotasLocal, quotasNats, SIBLING } from "./rows/quotas.js";
import { failover, failoverName } from "./rows/failover.js";
import { accounting, accountingName } from "./rows/accounting.js";
import { AUTH_NO_TLS, AUTH_TLS, NEITHER, natsTls, PING_KERNEL_PROC, RAW_TLS } from "./rows/nats-tls.js";

const GROUPS: RowGroup[] = [rawNats, kernelNats, kernelNatsAuthOff, kernelLocal, procLifecycle, subhurdLifecycle, authNats, authLocal, procScale, boot, tracing, metrics, web, cli, gateway, quotasLocal, quotasNats, accounting, failover, natsTls];
const IN_FLIGHT = [1, 64];


function find(rows: Row[], name: string, bus: string, inFlight: number): Row | undefined {
  return rows.find((r) => r.name === name && r.bus === bus && r.in_flight === inFlight);
}

interface Target {
  label: string;
  /** The row the target judges (its verdict is attached to it in --json). */
  row(rows: Row[]): Row | undefined;
  /** The measured value, or undefined when its rows were not run. */
  value(rows: Row[]): number | undefined;
  limit: number;
  /** Why the row cannot count whatever its value (a MISS), or undefined when it can. */
  invalid?(rows: Row[]): string | undefined;
  /** "<=": the value must not exceed the limit; ">=": must reach it. */
  op: "<=" | ">=";
  unit: string;
}

const TARGETS: Target[] = [
  {
    label: "brokered NATS p50 / raw NATS p50 (1 in flight)",
    row: (rows) => find(rows, PING, "nats", 1),
    value: (rows) => ratio(find(rows, PING, "nats", 1)?.p50_us, find(rows, RAW, "nats", 1)?.p50_us),
    op: "<=",
    limit: 2.5,
    unit: "x",
  },
  {
    label: "brokered NATS calls/s / raw NATS calls/s (64 in flight)",
    row: (rows) => find(rows, PING, "nats", 64),
    value: (rows) => ratio(find(rows, PING, "nats", 64)?.calls_per_s, find(rows, RAW, "nats", 64)?.calls_per_s),
    op: ">=",
    limit: 0.4,
    unit: "x",
  },
  // NATS authorization (issue 15): the brokered rows with it on (bus "nats")
  // against the same rows on an anonymous server, measured interleaved.
  ...[PING, LIFECYCLE].flatMap((what): Target[] => [
    {
      label: `${what}: p50 with NATS authorization / without (1 in flight)`,
      row: (rows) => find(rows, what, "nats", 1),
      value: (rows) => ratio(find(rows, what, "nats", 1)?.p50_us, find(rows, what, NATS_AUTH_OFF, 1)?.p50_us),
      op: "<=",
      limit: 1.1,
      unit: "x",
    },
    {
      label: `${what}: calls/s with NATS authorization / without (64 in flight)`,
      row: (rows) => find(rows, what, "nats", 64),
      value: (rows) => ratio(find(rows, what, "nats", 64)?.calls_per_s, find(rows, what, NATS_AUTH_OFF, 64)?.calls_per_s),
      op: ">=",
      limit: 0.9,
      unit: "x",
    },
  ]),
  // TLS (issue 15's nats-tls group): as deployed, the kernel in a process of
  // its own; and the floor, plain nats.js with and without TLS on the same kind of server (informational: its limit is the target's).
  ...([[PING_KERNEL_PROC, NEITHER], [RAW_TLS, AUTH_NO_TLS]] as const).flatMap(([what, off]): Target[] => [
    {
      label: `${what}: p50 with NATS authorization and TLS / ${off} (1 in flight)`,
      row: (rows) => find(rows, what, AUTH_TLS, 1),
      value: (rows) => ratio(find(rows, what, AUTH_TLS, 1)?.p50_us, find(rows, what, off, 1)?.p50_us),
      op: "<=",
      limit: 1.1,
      unit: "x",
    },
    {
      label: `${what}: calls/s with NATS authorization and TLS / ${off} (64 in flight)`,
      row: (rows) => find(rows, what, AUTH_TLS, 64),
      value: (rows) => ratio(find(rows, what, AUTH_TLS, 64)?.calls_per_s, find(rows, what, off, 64)?.calls_per_s),
      op: ">=",
      limit: 0.9,
      unit: "x",
    },
  ]),
  {
    label: "minting a task's NATS user: task creation p50 with / without NATS authorization (1 in flight)",
    row: (rows) => find(rows, TASK_CREATE, "nats", 1),
    value: (rows) => {
      const on = find(rows, TASK_CREATE, "nats", 1)?.p50_us;
      const off = find(rows, TASK_CREATE, NATS_AUTH_OFF, 1)?.p50_us;
      return on === undefined || off === undefined ? undefined : Math.round(on - off);
    },
    op: "<=",
    limit: 1000,
    unit: " µs",
  },
  // proc's write-through (issue 17): lifecycles with proc writing its table
  // to a JetStream log (one message per batch) against the same without, interleaved on one server.
  {
    label: "process lifecycles/s with proc writing through / without (NATS, 64 in flight)",
    row: (rows) => find(rows, WRITE_THROUGH, NATS_AUTH_OFF, 64),
    value: (rows) => ratio(find(rows, WRITE_THROUGH, NATS_AUTH_OFF, 64)?.calls_per_s, find(rows, LIFECYCLE, NATS_AUTH_OFF, 64)?.calls_per_s),
    op: ">=",
    limit: 0.75,
    unit: "x",
  },
  {
    label: "in-process brokered p50 (1 in flight)",
    row: (rows) => find(rows, PING, "local", 1),
    value: (rows) => find(rows, PING, "local", 1)?.p50_us,
    op: "<=",
    limit: 30,
    unit: "µs",
  },
  {
    label: "auth rendezvous p50 / brokered Ping p50 (NATS, 1 in flight)",
    row: (rows) => find(rows, "auth rendezvous (full reauth)", "nats", 1),
    value: (rows) => ratio(find(rows, "auth rendezvous (full reauth)", "nats", 1)?.p50_us, find(rows, PING, "nats", 1)?.p50_us),
    op: "<=",
    limit: 3.5,
    unit: "x",
  },
  {
    label: "process lifecycles/s in-process (64 in flight)",
    row: (rows) => find(rows, LIFECYCLE, "local", 64),
    value: (rows) => find(rows, LIFECYCLE, "local", 64)?.calls_per_s,
    op: ">=",
    limit: 5000,
    unit: "/s",
  },
  {
    label: "process lifecycles/s on NATS (64 in flight)",
    row: (rows) => find(rows, LIFECYCLE, "nats", 64),
    value: (rows) => find(rows, LIFECYCLE, "nats", 64)?.calls_per_s,
    op: ">=",
    limit: 2000,
    unit: "/s",
  },
  ...[1, 3].map(
    (d): Target => ({
      label: `lifecycles/s in a subhurd at depth ${d} / root hurd (64 in flight)`,
      row: (rows) => find(rows, SUBHURD(d), "local", 64),
      value: (rows) => ratio(find(rows, SUBHURD(d), "local", 64)?.calls_per_s, find(rows, SUBHURD(0), "local", 64)?.calls_per_s),
      op: ">=",
      limit: 0.9,
      unit: "x",
    }),
  ),
  ...[100_000, 1_000_000].map((n): Target => {
    const name = `proc memory per live process (${n.toLocaleString("en-US")} processes)`;
    return { label: name, row: (rows) => rows.find((r) => r.name === name), value: (rows) => rows.find((r) => r.name === name)?.bytes_per_process as number | undefined, op: "<=", limit: 1024, unit: " B" };
  }),
  // Tracing's cost counts only for rows that exported every span they made:
  // a row that dropped spans did not pay for them.
  ...[FULL, SAMPLED].flatMap((mode) =>
    [PING, LIFECYCLE].map((what): Target => {
      const name = tracingName(what, mode);
      const row = (rows: Row[]) => rows.find((r) => r.name === name && r.bus === "nats" && r.in_flight === 64);
      const dropped = (rows: Row[]) => {
        const d = row(rows)?.spans_dropped as number | undefined;
        return d ? `${d.toLocaleString("en-US")} spans dropped` : undefined;
      };
      const what_ = mode === FULL ? "100% sampling" : `${Math.round(SAMPLED_RATIO * 100)}% sampling`;
      return { label: `tracing overhead, ${what_}, 0 spans dropped: ${what} (NATS, 64 in flight)`, row, value: (rows) => row(rows)?.overhead as number | undefined, invalid: dropped, op: "<=", limit: 0.1, unit: "" };
    }),
  ),
  ...[PING, LIFECYCLE].map((what): Target => {
    const name = metricsName(what, "on");
    const row = (rows: Row[]) => rows.find((r) => r.name === name && r.bus === "nats" && r.in_flight === 64);
    return { label: `metrics overhead: ${what} (NATS, 64 in flight)`, row, value: (rows) => row(rows)?.overhead as number | undefined, op: "<=", limit: 0.03, unit: "" };
  }),
  // The live view's cost: `hurd web` attached, a page reading its events, against no view.
  ...[PING, LIFECYCLE].map((what): Target => {
    const name = webName(what, "connected");
    const row = (rows: Row[]) => rows.find((r) => r.name === name && r.bus === "nats" && r.in_flight === 64);
    return { label: `hurd web overhead: ${what} (NATS, 64 in flight)`, row, value: (rows) => row(rows)?.overhead as number | undefined, op: "<=", limit: 0.1, unit: "" };
  }),
  ...(["local", "nats"] as const).flatMap((bus): Target[] => [
    {
      label: `sibling hurd's Ping p50, neighbour flooding / idle (${bus}, 1 in flight)`,
      row: (rows) => find(rows, SIBLING("Ping", true), bus, 1),
      value: (rows) => ratio(find(rows, SIBLING("Ping", true), bus, 1)?.p50_us, find(rows, SIBLING("Ping", false), bus, 1)?.p50_us),
      op: "<=",
      limit: 1.5,
      unit: "x",
    },
    {
      label: `sibling hurd's lifecycles/s, neighbour flooding / idle (${bus}, 64 in flight)`,
      row: (rows) => find(rows, SIBLING("lifecycle", true), bus, 64),
      value: (rows) => ratio(find(rows, SIBLING("lifecycle", true), bus, 64)?.calls_per_s, find(rows, SIBLING("lifecycle", false), bus, 64)?.calls_per_s),
      op: ">=",
      limit: 0.8,
      unit: "x",
    },
  ]),
  // The kernel's log (issue 18): what appending every burst before sending costs, on the same server in the same run.
  ...[PING, LIFECYCLE].flatMap((what): Target[] => [
    {
      label: `kernel log on / off: ${what} calls/s (NATS, 64 in flight)`,
      row: (rows) => find(rows, failoverName(what, "on"), NATS_AUTH_OFF, 64),
      value: (rows) => ratio(find(rows, failoverName(what, "on"), NATS_AUTH_OFF, 64)?.calls_per_s, find(rows, failoverName(what, "off"), NATS_AUTH_OFF, 64)?.calls_per_s),
      op: ">=",
      limit: 0.7,
      unit: "x",
    },
    {
      label: `kernel log on / off: ${what} p50 (NATS, 1 in flight)`,
      row: (rows) => find(rows, failoverName(what, "on"), NATS_AUTH_OFF, 1),
      value: (rows) => ratio(find(rows, failoverName(what, "on"), NATS_AUTH_OFF, 1)?.p50_us, find(rows, failoverName(what, "off"), NATS_AUTH_OFF, 1)?.p50_us),
      op: "<=",
      limit: 1.5,
      unit: "x",
    },
  ]),
  // Resource accounting's own cost (issue 16): on against a kernel with it
  // off, interleaved; 1 in flight by p50, 64 in flight by calls/s.
  ...(["local", "nats"] as const).flatMap((bus) =>
    [PING, LIFECYCLE].flatMap((what): Target[] => [
      {
        label: `accounting cost: ${what} p50 on / off - 1 (${bus}, 1 in flight)`,
        row: (rows) => find(rows, accountingName(what, "on"), bus, 1),
        value: (rows) => less(ratio(find(rows, accountingName(what, "on"), bus, 1)?.p50_us, find(rows, accountingName(what, "off"), bus, 1)?.p50_us)),
        op: "<=",
        limit: 0.05,
        unit: "",
      },
      {
        label: `accounting cost: 1 - ${what} calls/s on / off (${bus}, 64 in flight)`,
        row: (rows) => find(rows, accountingName(what, "on"), bus, 64),
        value: (rows) => {
          const r = ratio(find(rows, accountingName(what, "on"), bus, 64)?.calls_per_s, find(rows, accountingName(what, "off"), bus, 64)?.calls_per_s);
          return r === undefined ? undefined : Math.round((1 - r) * 100) / 100;
        },
        op: "<=",
        limit: 0.05,
        unit: "",
      },
    ]),
  ),
  {
    label: "list procinfo of 100,000 processes",
    row: (rows) => rows.find((r) => r.name.startsWith("list procinfo of 100")),
    value: (rows) => rows.find((r) => r.name.startsWith("list procinfo of 100"))?.total_ms as number | undefined,
    op: "<=",
    limit: 1000,
    unit: " ms",
  },
  ...IN_FLIGHT.map(
    (n): Target => ({
      label: `gateway Process/Getpids p50 / native NATS call p50 (${n} in flight)`,
      row: (rows) => find(rows, GATEWAY_GETPIDS, "nats", n),
      value: (rows) => ratio(find(rows, GATEWAY_GETPIDS, "nats", n)?.p50_us, find(rows, NATIVE_GETPIDS, "nats", n)?.p50_us),
      op: "<=",
      limit: 2,
      unit: "x",
    }),
  ),
  {
    label: "hurd --help p50 / node -e 0 p50 (built CLI)",
    row: (rows) => rows.find((r) => r.name === CLI.help),
    value: (rows) => ratio(rows.find((r) => r.name === CLI.help)?.p50_us, rows.find((r) => r.name === CLI.node)?.p50_us),
    op: "<=",
    limit: 2,
    unit: "x",
  },
  {
    label: "hurd ps against an embedded hurd, wall p50",
    row: (rows) => rows.find((r) => r.name === CLI.hurdPs),
    value: (rows) => rows.find((r) => r.name === CLI.hurdPs)?.p50_ms as number | undefined,
    op: "<=",
    limit: 150,
    unit: " ms",
  },
  {
    label: "hurd up (embedded) start to ready, p50",
    row: (rows) => rows.find((r) => r.name === CLI.up),
    value: (rows) => rows.find((r) => r.name === CLI.up)?.p50_ms as number | undefined,
    op: "<=",
    limit: 500,
    unit: " ms",
  },
];

/** A ratio as what it adds: 1.03 → 0.03. */
function less(r: number | undefined): number | undefined {
  return r === undefined ? undefined : Math.round((r - 1) * 100) / 100;
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100;
}

/** Ratios against raw NATS at the same concurrency, added to every non-raw row. */
function addRatios(rows: Row[]): void {
  for (const r of rows) {
    if (r.name === RAW) continue;
    const raw = find(rows, RAW, "nats", r.in_flight);
    if (!raw) continue;
    r.p50_vs_raw = ratio(r.p50_us, raw.p50_us);
    r.throughput_vs_raw = ratio(r.calls_per_s, raw.calls_per_s);
  }
}

function parseArgs(argv: string[]) {
  const o = { json: false, durationMs: 2500, only: null as string[] | null };
  for (const a of argv) {
    if (a === "--json") o.json = true;
    else if (a.startsWith("--duration=")) o.durationMs = Number(a.slice(11));
    else if (a.startsWith("--only=")) o.only = a.slice(7).split(",");
    else if (a === "--help" || a === "-h") {
      console.log("usage: npm run bench [-- --json] [--duration=MS per row] [--only=" + GROUPS.map((g) => g.name).join(",") + "]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.durationMs > 0)) throw new Error("--duration must be a positive number of ms");
  return o;
}

function fmt(v: unknown): string {
  if (v === undefined || v === null) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(v < 10 ? 2 : 1);
  return String(v);
}

function table(rows: Row[]): string {
  const head = ["path", "bus", "in flight", "p50 µs", "p99 µs", "calls/s", "p50 / raw", "calls/s / raw", "CPU µs/call", "+children", "errors", "spans dropped"];
  const body = rows.map((r) => [r.name, r.bus, r.in_flight, r.p50_us, r.p99_us, r.calls_per_s, r.p50_vs_raw, r.throughput_vs_raw, r.cpu_us_per_call, r.children_cpu_us_per_call, r.errors, r.spans_dropped].map(fmt));
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" | ") + " |";
  return [line(head), "|" + w.map((n, i) => (i < 2 ? "-".repeat(n + 1) + "-" : "-".repeat(n + 1) + ":")).join("|") + "|", ...body.map(line)].join("\n");
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (l: string) => console.error(`# ${l}`);
  const groups = GROUPS.filter((g) => !args.only || args.only.includes(g.name));
  if (groups.length === 0) throw new Error(`no such group: ${args.only?.join(",")}`);
  const t0 = performance.now();
  const needsNats = groups.some((g) => g.needsNats !== false);
  const nats = needsNats ? await startNats() : null;
  const secured = needsNats ? await startSecuredNats().catch(async (e) => (await nats?.stop(), Promise.reject(e))) : null;
  if (nats) log(`nats-server on ${nats.url} (anonymous), ${secured!.url} (NATS authorization on)`);
  const ctx: BenchContext = { natsUrl: nats?.url ?? "", natsAuth: secured, durationMs: args.durationMs, inFlight: IN_FLIGHT, log };
  let rows: Row[] = [];
  const opened: Opened[] = [];
  try {
    // Groups that hand over subjects are measured together, interleaved, at
    // each level; then groups that measure by themselves, one after another.
    for (const g of groups) if (g.open) opened.push(await g.open(ctx));
    const subjects = opened.flatMap((o) => o.subjects);
    if (subjects.length > 0) {
      for (const n of IN_FLIGHT) {
        log(`${subjects.length} subjects interleaved, ${n} in flight: ${subjects.map((s) => `${s.name} (${s.bus})`).join(", ")}`);
        rows.push(...(await measureInterleaved(subjects, n, { durationMs: args.durationMs })));
      }
      // Table order: subject by subject, each at every level.
      rows = subjects.flatMap((s) => rows.filter((r) => r.name === s.name && r.bus === s.bus));
    }
    for (const o of opened.splice(0)) await o.close();
    for (const g of groups) if (g.run && !g.open) rows.push(...(await g.run(ctx)));
  } finally {
    for (const o of opened) await o.close().catch(() => {});
    await nats?.stop();
    await secured?.stop();
  }
  addRatios(rows);
  const results = TARGETS.map((t) => {
    const v = t.value(rows);
    const why = v === undefined ? undefined : t.invalid?.(rows);
    const pass = v === undefined ? undefined : why !== undefined ? false : t.op === "<=" ? v <= t.limit : v >= t.limit;
    return { ...t, v, pass, why };
  });
  const verdict = (pass: boolean | undefined) => (pass === undefined ? "SKIP" : pass ? "PASS" : "MISS");
  const lines = results.map((t) => `${verdict(t.pass).padEnd(4)}  ${t.label}: ${fmt(t.v)}${t.unit} (target ${t.op} ${t.limit}${t.unit})${t.why ? `: does not count, ${t.why}` : ""}`);
  if (args.json) {
    // Only rows on stdout; each judged row carries its verdicts.
    for (const t of results) {
      const r = t.row(rows);
      if (r) ((r.targets ??= []) as unknown[]).push({ target: t.label, value: t.v ?? null, op: t.op, limit: t.limit, unit: t.unit, result: verdict(t.pass) });
    }
    for (const r of rows) console.log(JSON.stringify(r));
    for (const l of lines) log(l);
  } else {
    console.log(table(rows));
    console.log("");
    for (const l of lines) console.log(l);
    console.log(`\n(${Math.round((performance.now() - t0) / 100) / 10} s, ${args.durationMs} ms per row after warm-up; node ${process.version})`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);

// Diagnosis driver (not part of the bench): where a quiet hurd's Ping waits
// while a neighbour floods, on NATS (authorization on). Alternates idle and
// flooding phases of the quotas-nats rows, 1 in flight, and for each phase
// prints the Ping's p50, this process's event-loop utilisation and CPU, and
// (flooding) a CPU profile's self time by where the code lives.
//   node --conditions=@hurdmesh/source --import tsx bench/prof-quotas.ts [ms per phase] [rounds]
import { Session } from "node:inspector/promises";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { startNats, startSecuredNats } from "./nats.js";
import { quotasNats } from "./rows/quotas.js";
import { NatsBus } from "@hurdmesh/mach/nats";

const ms = Number(process.argv[2] ?? 3000);
const rounds = Number(process.argv[3] ?? 2);
const nats = await startNats();
const secured = await startSecuredNats();
const opened = await quotasNats.open!({ natsUrl: nats.url, natsAuth: secured, durationMs: ms, inFlight: [1], log: (l) => console.error(`# ${l}`) });
const [idle, flooding] = opened.subjects;
// The control: a neighbour as busy on NATS and in this process, but whose
// messages never reach the kernel (three request/reply loops on the
// anonymous server, 1 KiB each, one in flight each, as the flooders go).
const echo = await NatsBus.connect(nats.url, "echo");
const asker = await NatsBus.connect(nats.url, "asker");
echo.subscribe("echo", (_s, data, reply) => reply && echo.publish(reply, data));
let rawOn = false;
let rawDone = 0;
const body = new Uint8Array(1024);
const rawLoops = Array.from({ length: 3 }, async () => {
  for (;;) {
    if (!rawOn) {
      await new Promise((r) => setTimeout(r, 5));
      if (stopped) return;
      continue;
    }
    await asker.request("echo", body, 1000).catch(() => {});
    rawDone++;
    await new Promise((r) => setImmediate(r));
  }
});
let stopped = false;
const rawNeighbour = { name: "sibling hurd Ping, raw NATS neighbour", call: () => ((rawOn = true), idle!.call()) };
const idleOnly = { name: idle!.name, call: () => ((rawOn = false), idle!.call()) };
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 200 });

type Node = { id: number; callFrame: { functionName: string; url: string }; children?: number[] };
function bucket(url: string, fn: string): string {
  if (url === "" ) return fn === "(garbage collector)" ? "gc" : fn === "(idle)" ? "idle" : fn === "(program)" ? "program" : `native:${fn}`;
  if (url.includes("/services/kernel/")) return "kernel";
  if (url.includes("@nats-io") || url.includes("/nats/")) return "nats.js";
  if (url.includes("/packages/mach/src/bus/")) return "mach bus";
  if (url.includes("/packages/mach/")) return "mach (task, client, serve)";
  if (url.includes("/packages/proto/")) return "proto codecs";
  if (url.includes("/services/proc/") || url.includes("/services/auth/") || url.includes("/services/init/")) return "proc/auth/init";
  if (url.includes("/bench/")) return "bench";
  if (url.includes("/packages/libhurd/")) return "libhurd";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  return url.replace(/^.*node_modules\//, "nm:").split("/").slice(0, 2).join("/");
}

/** CPU ticks (user + system) of this process's descendants: the nats-servers. */
function childTicks(): number {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid="]).toString().trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
  const mine = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of rows) if (!mine.has(pid!) && mine.has(ppid!)) (mine.add(pid!), (grew = true));
  }
  mine.delete(process.pid);
  let t = 0;
  for (const pid of mine) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      t += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return t;
}
/** The machine's busy and total ticks (/proc/stat). */
function machine(): [number, number] {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return [total - f[3]! - f[4]!, total];
}

async function phase(s: typeof idle, profile: boolean) {
  const lat: number[] = [];
  const nt0 = childTicks();
  const [b0, t0m] = machine();
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  if (profile) await session.post("Profiler.start");
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = performance.now();
    await s!.call();
    lat.push(performance.now() - t0);
  }
  const elu = performance.eventLoopUtilization(elu0);
  const nt = childTicks() - nt0;
  const [b1, t1m] = machine();
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const out = `${s!.name.padEnd(40)} p50 ${(lat[lat.length >> 1]! * 1000).toFixed(0)} µs, ${lat.length} calls, ELU ${(elu.utilization * 100).toFixed(0)} %, CPU ${(((cpu.user + cpu.system) / 1000 / ms) * 100).toFixed(0)} % of one core; nats-servers ${((nt * 10 / ms) * 100).toFixed(0)} % of one core; machine busy ${(((b1 - b0) / (t1m - t0m)) * 100).toFixed(0)} % of its cores`;
  console.log(out);
  if (!profile) return;
  const { profile: p } = (await session.post("Profiler.stop")) as unknown as { profile: { nodes: Node[]; samples: number[]; timeDeltas: number[] } };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!;
    const b = bucket(n.callFrame.url, n.callFrame.functionName);
    self.set(b, (self.get(b) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  for (const [b, t] of [...self].sort((x, y) => y[1] - x[1]).slice(0, 14)) console.log(`    ${b.padEnd(34)} ${((t / total) * 100).toFixed(1).padStart(5)} %`);
}

try {
  for (let r = 0; r < rounds; r++) {
    await phase(idleOnly as typeof idle, r === rounds - 1);
    await phase({ ...flooding!, call: () => ((rawOn = false), flooding!.call()) }, r === rounds - 1);
    const d0 = rawDone;
    await phase(rawNeighbour as typeof idle, r === rounds - 1);
    console.log(`    (raw neighbour: ${Math.round(((rawDone - d0) / ms) * 1000)} requests/s)`);
  }
} finally {
  rawOn = false;
  stopped = true;
  await Promise.all(rawLoops);
  await echo.close();
  await asker.close();
  await opened.close();
  await nats.stop();
  await secured.stop();
}
process.exit(0);

// Profiling driver (not part of the bench): where `hurd web`'s cost goes,
// for the brokered Ping at 64 in flight on a booted hurd with its edge, as
// the web rows run it (bench/rows/web.ts), on an anonymous nats-server of
// its own. It measures the Ping for `ms` with no view, then starts the
// built `hurd web` (under --cpu-prof) with a page reading its events and
// measures again, each phase under this process's CPU profiler (the kernel
// runs here). Printed per phase: throughput and each part's share of this
// process's busy time (self time); then the top functions of both this
// process (view attached) and of `hurd web`'s own profile.
//   node --conditions=@hurdmesh/source --import tsx bench/prof-web.ts [ms] [rounds]
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Edge } from "@hurdmesh/kernel";
import { WNOHANG } from "@hurdmesh/libhurd";
import { killGroup, spawnGroup } from "./children.js";
import { childrenCpuUs, registerChild } from "./cpu.js";
import { startNats, type NatsServer } from "./nats.js";
import { bootRig, NATS_AUTH_OFF } from "./rig.js";
import { compiledEnv, hurdBin } from "./rows/cli.js";
import { connectPage, pingIn } from "./rows/web.js";

const ms = Number(process.argv[2] ?? 4000);
const rounds = Number(process.argv[3] ?? 1);
const IN_FLIGHT = 64;

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

function part(url: string, fn: string): string {
  if (url === "") return fn === "(idle)" ? "idle" : fn === "(garbage collector)" ? "gc" : fn === "(program)" ? "program" : `native:${fn}`;
  if (/\/kernel\/(src|dist)\/trace(-bus)?\./.test(url)) return "kernel trace";
  if (/\/kernel\/(src|dist)\/edge\./.test(url)) return "kernel edge";
  if (url.includes("/services/kernel/")) return "kernel";
  if (url.includes("@grpc/")) return "grpc-js";
  if (url.includes("@nats-io") || url.includes("/nats/")) return "nats.js";
  if (url.includes("/packages/mach/")) return "mach runtime";
  if (url.includes("/packages/proto/")) return "proto codecs";
  if (url.includes("/packages/web/")) return "web";
  if (url.includes("/packages/cli/")) return "cli";
  if (/\/services\/(proc|auth|init)\//.test(url)) return "proc/auth/init";
  if (url.includes("/packages/libhurd/")) return "libhurd";
  if (url.includes("/bench/")) return "bench";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  return url.replace(/^.*node_modules\//, "nm:").split("/").slice(0, 2).join("/");
}

function report(title: string, p: Profile, top = 25): void {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const f = byId.get(p.samples[i]!)!.callFrame;
    const dt = p.timeDeltas[i] ?? 0;
    all += dt;
    const pt = part(f.url, f.functionName);
    parts.set(pt, (parts.get(pt) ?? 0) + dt);
    const k = `${f.functionName || "(anon)"} ${f.url.replace(/^.*\/(node_modules|packages|services)\//, "")}:${f.lineNumber + 1}`;
    fns.set(k, (fns.get(k) ?? 0) + dt);
  }
  const notBusy = (x: string) => x === "idle" || x === "node:inspector" || x.startsWith("(idle)");
  const busy = [...parts].filter(([x]) => !notBusy(x)).reduce((a, [, t]) => a + t, 0);
  console.log(`${title}: busy ${((busy / all) * 100).toFixed(1)} % of ${(all / 1e6).toFixed(1)} s`);
  for (const [x, t] of [...parts].filter(([x]) => !notBusy(x)).sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`    ${x.padEnd(30)} ${((t / busy) * 100).toFixed(1).padStart(5)} %`);
  console.log(`  top functions (self, % of busy):`);
  for (const [x, t] of [...fns].filter(([x]) => !x.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${((t / busy) * 100).toFixed(1).padStart(5)} %  ${x}`);
}

function threadsUs(pid: number): number {
  let ns = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    // Gone.
  }
  return ns / 1000;
}

/** ns on CPU by thread name (summed over threads of one name). */
function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const name = readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      out.set(name, (out.get(name) ?? 0) + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]));
    }
  } catch {
    // Gone.
  }
  return out;
}

let nats: NatsServer | null = null;
const closers: (() => Promise<void> | void)[] = [];
const state = mkdtempSync(join(tmpdir(), "hurd-prof-web-"));
try {
  nats = await startNats();
  const ctx = { natsUrl: nats.url, natsAuth: null, durationMs: ms, inFlight: [IN_FLIGHT], log: (l: string) => console.error(`# ${l}`) };
  const r = await bootRig(NATS_AUTH_OFF, ctx, ctx.log);
  closers.push(async () => {
    while (await r.parent.wait(-1, WNOHANG).catch(() => null));
    await r.close();
  });
  const edge = new Edge(r.kernel);
  const port = await edge.listen("127.0.0.1:0");
  closers.unshift(() => edge.close());
  const call = await pingIn(r);
  // Batches the kernel hands its watchers (the view's gRPC stream writes).
  const sinks = { batches: 0, records: 0, counts: 0 };
  const perSec = new Map<number, number>();
  if (process.env.HURD_PROF_DEBUG) closers.push(() => console.log(`records by second: ${[...perSec.values()].join(" ")}`));
  const watch = r.kernel.trace.watch.bind(r.kernel.trace);
  r.kernel.trace.watch = (f, sink) =>
    watch(f, (recs, dropped, counts) => {
      sinks.batches++;
      sinks.records += recs.length;
      if (process.env.HURD_PROF_DEBUG) for (const r of recs) perSec.set(Math.floor(r.tsMs / 1000), (perSec.get(Math.floor(r.tsMs / 1000)) ?? 0) + 1);
      sinks.counts += counts.length;
      sink(recs, dropped, counts);
    });
  const run = async (forMs: number) => {
    const end = performance.now() + forMs;
    let n = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await call();
          n++;
        }
      }),
    );
    return n;
  };
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 1000 });
  const gc = { minor: 0, major: 0, nMinor: 0, nMajor: 0 };
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      const kind = ((e as unknown as { detail: { kind: number } }).detail).kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) (gc.minor += e.duration), gc.nMinor++;
      else (gc.major += e.duration), gc.nMajor++;
    }
  }).observe({ entryTypes: ["gc"] });
  let webPid = 0;
  const webUs = () => (webPid ? threadsUs(webPid) : 0);
  const profiled = async (label: string): Promise<Profile> => {
    await session.post("Profiler.start");
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const k0 = childrenCpuUs();
    const w0 = webUs();
    const g0 = { ...gc };
    const s0 = { ...sinks };
    const n = await run(ms);
    const took = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const k = childrenCpuUs() - k0;
    const w = webUs() - w0;
    const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: Profile };
    const per = (us: number) => (us / n).toFixed(1);
    console.log(`== ${label}: ${Math.round((n / took) * 1000)} Pings/s; CPU µs/Ping: this process ${per(c.user + c.system)}, children ${per(k)} (hurd web ${per(w)}, ${((w / 1000 / took) * 100).toFixed(1)} % of a core)`);
    if (sinks.batches > s0.batches) console.log(`   to the view (${r.kernel.trace.watching} watches): ${(((sinks.batches - s0.batches) * 1000) / took).toFixed(0)} batches/s, ${(((sinks.records - s0.records) * 1000) / took).toFixed(0)} records/s, ${(((sinks.counts - s0.counts) * 1000) / took).toFixed(0)} counters/s`);
    console.log(`   GC here: ${gc.nMinor - g0.nMinor} minor ${(gc.minor - g0.minor).toFixed(0)} ms, ${gc.nMajor - g0.nMajor} major ${(gc.major - g0.major).toFixed(0)} ms; heap ${Math.round(process.memoryUsage().heapUsed / 1e6)} MB`);
    return profile;
  };
  await run(1000);
  const console_ = await r.init.makeConsole([]);
  writeFileSync(join(state, `w.json`), JSON.stringify({ system: r.system, edge: `127.0.0.1:${port}`, console: console_ }), { mode: 0o600 });
  const profDir = join(state, "prof");
  const stats = { events: 0, bytes: 0 };
  let on: Profile | null = null;
  let off: Profile | null = null;
  for (let round = 0; round < rounds; round++) {
    off = await profiled(`round ${round + 1}, no view`);
    const prof = process.env.HURD_PROF_WEB === "0" ? [] : ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-interval=1000"];
    const p = spawnGroup(process.execPath, [...prof, hurdBin, "web", "--hurd", "w", "--listen", "127.0.0.1:0"], { env: compiledEnv({ HURD_STATE_DIR: state }), stdio: ["ignore", "pipe", "pipe"] });
    webPid = p.pid!;
    registerChild(p.pid);
    let out = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (out += d));
    for (let i = 0; i < 600 && !/hurd web: http:\/\/\S+/.test(out) && p.exitCode === null; i++) await new Promise((res) => setTimeout(res, 100));
    const m = /hurd web: (http:\/\/[^/\s]+)/.exec(out);
    if (!m) throw new Error(`hurd web did not start: ${out}`);
    const stopPage = connectPage(m[1]!, console_.token, "w", stats);
    await new Promise((res) => setTimeout(res, 1500));
    const th0 = threads(webPid);
    on = await profiled(`round ${round + 1}, hurd web connected`);
    const th1 = threads(webPid);
    console.log(`   hurd web's threads (ms on CPU): ${[...th1].map(([k, v]) => [k, (v - (th0.get(k) ?? 0)) / 1e6] as const).filter(([, v]) => v >= 1).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")}`);
    stopPage();
    const exited = new Promise((res) => p.once("exit", res));
    p.kill("SIGINT");
    await Promise.race([exited, new Promise((res) => setTimeout(res, 5000))]);
    if (p.exitCode === null) killGroup(p);
  }
  session.disconnect();
  console.log(`the page read ${stats.events} events (${Math.round(stats.bytes / 1024)} KiB)`);
  report("bench process (kernel, Ping), hurd web connected, last round", on!);
  const files = (process.env.HURD_PROF_WEB === "0" ? [] : readdirSync(profDir)).filter((f) => f.endsWith(".cpuprofile"));
  for (const f of files.slice(-1)) report(`hurd web process (${f}, whole life)`, JSON.parse(readFileSync(join(profDir, f), "utf8")) as Profile);
  if (process.env.HURD_PROF_KEEP) {
    const keep = process.env.HURD_PROF_KEEP;
    writeFileSync(join(keep, "bench-off.cpuprofile"), JSON.stringify(off));
    writeFileSync(join(keep, "bench-on.cpuprofile"), JSON.stringify(on));
    for (const f of files) writeFileSync(join(keep, f), readFileSync(join(profDir, f)));
  }
} finally {
  for (const c of closers) await Promise.resolve(c()).catch(() => {});
  await nats?.stop();
  rmSync(state, { recursive: true, force: true });
}
process.exit(0);

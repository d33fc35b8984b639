// `npm run soak -- --kernel-kills N [--workers W] [--gap-ms MS] [--lead-lease-ms MS] [--auth 0|1] [--standby-after-ms MS]`
//
// Issue 18's soak: the kernel survives kill -9. A hurd as `hurd up --nats
// --standby` runs it: a nats-server with JetStream and authorization on,
// the kernel as its own OS process with its log (--journal) and a standby
// kernel replaying that log (--standby), both on one edge address; proc and
// auth OS processes of their own (ProcessLauncher). Init is this process,
// attached over NATS as the boot task the first kernel wrote into its boot
// file (as hurd-init does), so that the load runs with init's rights.
//
// The load and the checks are issue 17's (soak-load.ts). The leading kernel
// is SIGKILLed N times, each time once the standby is ready and the gap has
// passed; each time a new standby is started in place of the dead kernel
// (hurd up does the same; each new standby starts from the log's newest
// snapshot, and the soak counts those). After each kill: the failover time (SIGKILL to the first
// proc RPC answered, brokered through the new leader), the time until a
// lifecycle of the load completes again, and the residents checked.
//
// A kernel call whose answer the dead leader held back fails ETIMEDOUT at
// its deadline (docs/kernel-log.md, "What is lost"): it is allowed, counted
// as uncertain and printed apart. An ETIMEDOUT of a call sent when no kill
// was near it is a hang. Exit 1 on any process or handle lost, pid handed
// out twice, hang or failure other than those.
//
// Not in the default test run. Every process it starts (the nats-server,
// the kernels, proc and auth) ends when it ends, however it ends: they are
// killed on exit, and the kernels and servers also exit when their IPC
// channel to this process closes (a SIGKILL of this process).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ProcessLauncher } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { Process } from "@hurdmesh/libhurd";
import { READY_FD_ENV } from "@hurdmesh/mach/internal";
import { attachOverNats } from "@hurdmesh/mach/nats";
import { writeFabricKeys } from "@hurdmesh/mach/nats-auth";
import { nodeImports } from "@hurdmesh/telemetry-sdk";
import { startNats, startSecuredNats } from "./nats.js";
import { flag, loadSummary, newStats, percentile, soakLog as log, soakLoad } from "./soak-load.js";

const KILLS = flag("kernel-kills", 10);
const WORKERS = flag("workers", 16);
/** Load between a failover's first answer (and the new standby being ready) and the next kill. */
const GAP_MS = flag("gap-ms", 4000);
/** The lead lease, hurd-kernel's default (hurd up does not set it). */
const LEAD_LEASE_MS = flag("lead-lease-ms", 1500);
/** 1 (default): NATS authorization on, as `hurd up --nats` runs it; 0: anonymous NATS (--nats-insecure). */
const AUTH = flag("auth", 1);
/**
 * How long after a kernel's exit its replacement standby is started: 0
 * (default) at once, as hurd up does. Later keeps the new standby's replay
 * of the whole log (from the same stream) out of the takeover it follows.
 */
const STANDBY_AFTER_MS = flag("standby-after-ms", 0);
const CALL_TIMEOUT_MS = 30_000;
/** A failover, a standby's start or the load coming back that takes longer than this stops the soak (counted as a hang). */
const LIMIT_MS = 60_000;

const KERNEL_MAIN = fileURLToPath(import.meta.resolve("@hurdmesh/kernel/main"));

/** One hurd-kernel process, as this soak sees it. */
interface KernelProc {
  p: ChildProcess;
  standby: boolean;
  /** It said it leads (its readiness line with the edge). */
  leading: boolean;
  /** It said it replayed the log and stands by. */
  ready: Promise<boolean>;
  /** When it said it leads, and its own count of the takeover ("took over after N ms"). */
  ledAt?: number;
  takeoverMs?: number;
  /** Its takeover's fenced TAKEOVER append, acknowledged after this long. */
  fenceMs?: number;
  /** How many log entries it had still to replay when it won the lead. */
  behind?: number;
  /** When it was started, and when it said it was ready. */
  startedAt: number;
  readyAt?: number;
  /** Its last lines, for a failure's message. */
  tail: string[];
  exited: Promise<void>;
}

/** Kill windows: a call sent within a kill's reach (sent before the kill, not past the first answer after it) may have had its answer held by the dead leader. */
const windows: { killedAt: number; servedAt: number }[] = [];
/** Kernels that exited of themselves (status 3), by what they said. */
const gaveUp = new Map<string, number>();
/** The log's snapshots (failover.ts): written by standbys, and started from by kernels (the log before them is cut). */
const snapshots = { written: 0, restored: 0, bytes: 0 };
const stats = newStats((sentAt) => (windows.some((w) => sentAt >= w.killedAt - CALL_TIMEOUT_MS && sentAt <= w.servedAt) ? "uncertain" : "hung"));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-soak-kernel-"));
  const kernels = new Set<KernelProc>();
  let launcher: ProcessLauncher | null = null;
  let stopping = false;
  // However this ends: every process it started goes with it.
  const killAll = () => {
    stopping = true;
    launcher?.killAll("SIGKILL");
    for (const k of kernels) k.p.kill("SIGKILL");
  };
  process.on("exit", () => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));

  const secured = AUTH ? await startSecuredNats({ jetstream: true }) : null;
  const nats = secured ?? (await startNats());
  const system = `ksoak${process.pid}`;
  const keysFile = join(dir, "keys.json");
  if (secured) writeFabricKeys(keysFile, secured.keys);
  const bootFile = join(dir, "boot.json");
  const grpc = `127.0.0.1:${await freePort()}`;
  const kargs = [...nodeImports(), KERNEL_MAIN, "--nats", nats.url, ...(secured ? ["--nats-keys", keysFile] : ["--nats-insecure"]), "--grpc", grpc, "--system", system, "--lead-lease-ms", String(LEAD_LEASE_MS)];

  /** A kernel: the first leads with the log and boots init; the others stand by. */
  const startKernel = (standby: boolean): KernelProc => {
    const extra = standby ? ["--standby"] : ["--journal", "--boot", "init", "--boot-file", bootFile];
    const p = spawn(process.execPath, [...kargs, ...extra], { stdio: ["ignore", "pipe", "pipe", "ipc", "pipe"], env: { ...process.env, [READY_FD_ENV]: "4" } });
    p.channel?.unref();
    let readyAs: (v: boolean) => void = () => {};
    const k: KernelProc = { p, standby, leading: false, startedAt: Date.now(), ready: new Promise((r) => (readyAs = r)), tail: [], exited: new Promise((r) => p.once("exit", () => r())) };
    const lines = (s: NodeJS.ReadableStream, each: (l: string) => void) => {
      let buf = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => {
        buf += d;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          each(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    };
    const said = (l: string) => {
      k.tail.push(l);
      if (k.tail.length > 30) k.tail.shift();
      // The readiness descriptor says one line only (a standby's is that it replays): its lead is read from its log.
      if (/leading \((fresh log|took over)/.test(l)) {
        k.leading = true;
        const at = Date.parse(/"time":"([^"]+)"/.exec(l)?.[1] ?? "");
        k.ledAt = Number.isNaN(at) ? Date.now() : at;
      }
      const b = /(\d+) behind it when it won the lead/.exec(l);
      if (b) k.behind = Number(b[1]);
      const f = /fence (\d+) ms/.exec(l);
      if (f) k.fenceMs = Number(f[1]);
      const m = /took over after (\d+) ms/.exec(l);
      if (m) k.takeoverMs = Number(m[1]);
      const sn = /snapshot after log entry (\d+): (\d+) bytes/.exec(l);
      if (sn) {
        snapshots.written++;
        snapshots.bytes = Number(sn[2]);
      }
      if (/restored the snapshot after log entry/.test(l)) snapshots.restored++;
      // A leader that ends a task by lease ends the hurd's servers (docs/kernel-log.md, "Soak"): said as it happens.
      if (/kernel log diverged/.test(l) || (k.leading && /lease expired|lost its process/.test(l))) log(`kernel ${p.pid}: ${l}`);
    };
    lines(p.stdout!, said);
    lines(p.stderr!, said);
    // Its readiness line: {standby: true} once it replays, {edge} for the first kernel once it leads.
    lines(p.stdio[4] as NodeJS.ReadableStream, (l) => {
      const r = JSON.parse(l) as { edge?: string; standby?: boolean };
      if (r.edge) k.leading = true;
      k.readyAt = Date.now();
      readyAs(true);
    });
    p.once("exit", (code, sig) => {
      readyAs(false);
      kernels.delete(k);
      // A kernel gone while the hurd runs (the leader killed, a deposed one): a new standby in its place, as hurd up does.
      if (stopping) return;
      if (sig !== "SIGKILL") {
        // A deposed leader, or a standby that could not catch up within the lead lease: why, in its words.
        const why = /"level":"fatal".*"msg":"([^"]*)"/.exec(k.tail.findLast((l) => /"level":"fatal"/.test(l)) ?? "")?.[1]?.replace(/\d+/g, "N") ?? `${sig ?? `status ${code}`}`;
        gaveUp.set(why, (gaveUp.get(why) ?? 0) + 1);
        log(`kernel ${p.pid} exited (${sig ?? `status ${code}`}): ${why}`);
      }
      if (STANDBY_AFTER_MS === 0) startKernel(true);
      else setTimeout(() => stopping || startKernel(true), STANDBY_AFTER_MS);
    });
    kernels.add(k);
    return k;
  };
  const within = async <T>(what: string, p: Promise<T>, ms = LIMIT_MS): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([p, new Promise<never>((_, j) => (timer = setTimeout(() => j(new Error(`${what}: not within ${ms} ms`)), ms)))]);
    } finally {
      clearTimeout(timer);
    }
  };
  const standby = () => [...kernels].find((k) => !k.leading);

  const t0 = Date.now();
  try {
    const first = startKernel(false);
    if (!(await within("the first kernel", first.ready))) throw new Error(`the first kernel did not start:\n  ${first.tail.join("\n  ")}`);
    const sb = startKernel(true);
    if (!(await within("the standby", sb.ready))) throw new Error(`the standby did not start:\n  ${sb.tail.join("\n  ")}`);
    const boot = JSON.parse(readFileSync(bootFile, "utf8")) as {
      tasks: Record<string, { taskId: number; token: string; hostPriv: number; nats?: { jwt: string; seed: string } }>;
      stores?: Record<string, { jwt: string; seed: string }>;
    };
    const me = boot.tasks.init!;
    const initTask = await attachOverNats(nats.url, { name: "soak init", system, taskId: me.taskId, token: me.token, credentials: me.nats, window: 1024, timeoutMs: CALL_TIMEOUT_MS });
    launcher = new ProcessLauncher({
      NATS_URL: nats.url,
      HURD_SYSTEM: system,
      ...(secured ? { credentials: (id, tok) => initTask.natsCredentials(id, tok), stores: boot.stores } : {}),
    });
    const init = new Init({ task: initTask, hostPriv: me.hostPriv, launcher, log: (l) => log(`init: ${l}`) });
    const booted = await init.boot();
    log(`hurd ${system} up in ${Date.now() - t0} ms: a leading kernel with its log and a standby (lead lease ${LEAD_LEASE_MS} ms), proc and auth OS processes, on ${nats.url} (JetStream, authorization ${secured ? "on" : "OFF"})`);
    const parent = await Process.attach(initTask, booted.proc, booted.auth, { msgport: false });
    const soak = await soakLoad({ stats, parent, auth: booted.auth, dieWithParent: true });
    await soak.check();
    const stopLoad = soak.start(WORKERS);

    const failoverMs: number[] = [];
    const takeoverMs: number[] = [];
    const fenceMs: number[] = [];
    const ledMs: number[] = [];
    const resumedMs: number[] = [];
    const standbyMs: number[] = [];
    /** Why the kills stopped before N: the hurd without a kernel that serves (counted as a loss). */
    let broken: string | null = null;
    let kills = 0;
    for (let i = 0; i < KILLS && !broken; i++) try {
      await new Promise((r) => setTimeout(r, GAP_MS));
      // The next kill only once a standby has replayed the log: else it is a kill of the only kernel.
      await within("a standby", (async () => {
        while (!standby()) await new Promise((r) => setTimeout(r, 50));
      })());
      const s = standby()!;
      if (!(await within("a standby", s.ready))) throw new Error("no standby ready to take over");
      const leader = [...kernels].find((k) => k.leading && k.p.exitCode === null && k.p.signalCode === null);
      if (!leader?.p.pid) throw new Error("no leading kernel to kill");
      const before = stats.lifecycles;
      const w = { killedAt: Date.now(), servedAt: Infinity };
      windows.push(w);
      process.kill(leader.p.pid, "SIGKILL");
      kills++;
      // Failover time: the kill to the first proc RPC answered, each leg of it a trap the new leader took and a delivery it made.
      await within(`kill ${i + 1}: the first answer through the new leader`, firstAnswer(() => parent.proc.getpids({}, { timeoutMs: PROBE_TIMEOUT_MS })));
      const answered = Date.now();
      w.servedAt = answered;
      failoverMs.push(answered - w.killedAt);
      // Its log line may come after the answer it made possible.
      await within(`kill ${i + 1}: the standby's lead`, (async () => {
        while (!s.leading) await new Promise((r) => setTimeout(r, 10));
      })());
      if (s.ledAt) ledMs.push(s.ledAt - w.killedAt);
      if (s.takeoverMs !== undefined) takeoverMs.push(s.takeoverMs);
      if (s.fenceMs !== undefined) fenceMs.push(s.fenceMs);
      // The load flows again: a lifecycle (fork to wait) begun after the first answer has ended.
      await within(`kill ${i + 1}: the load`, (async () => {
        while (stats.lastBegun < answered) await new Promise((r) => setTimeout(r, 5));
      })());
      resumedMs.push(Date.now() - w.killedAt);
      await soak.check();
      // How long the new standby takes to replay the whole log (it grows with the run: no snapshots), from its process's start.
      const n = STANDBY_AFTER_MS === 0 ? standby() : undefined;
      if (n && (await within("the new standby", n.ready)) && n.readyAt) standbyMs.push(n.readyAt - n.startedAt);
      log(
        `kill ${i + 1}/${KILLS}: leader ${leader.p.pid} killed; ${s.p.pid} leads (${s.ledAt ? s.ledAt - w.killedAt : "?"} ms, its takeover ${s.takeoverMs ?? "?"} ms, ${s.behind ?? "?"} entries behind, its fence ${s.fenceMs ?? "?"} ms)${s.p.exitCode !== null ? ", then gave up" : ""}; first answer ${answered - w.killedAt} ms; load again ${resumedMs.at(-1)} ms; ${stats.lifecycles} lifecycles (${stats.lifecycles - before} meanwhile), ${stats.processesLost.size} lost, ${stats.hung} hung, ${stats.uncertain} uncertain`,
      );
    } catch (e) {
      broken = (e as Error).message;
      log(`STOPPED at kill ${i + 1}: ${broken}`);
      for (const k of kernels) log(`kernel ${k.p.pid} (${k.leading ? "leading" : "standby"}), its last lines:\n  ${k.tail.slice(-6).join("\n  ")}`);
    }
    // A call still unanswered long past its deadline is a hang.
    const left = await Promise.race([stopLoad().then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 2 * CALL_TIMEOUT_MS))]);
    if (left) stats.hung++;
    // With no kernel serving, every resident's check would wait out its deadline: the run already failed.
    if (!broken) await soak.check();
    const p = (xs: number[]) => `p50 ${percentile(xs, 50)} ms, p99 ${percentile(xs, 99)} ms, max ${xs.length ? Math.max(...xs) : NaN} ms`;
    const out = [
      ...(broken ? [`STOPPED after ${kills} of ${KILLS} kills: ${broken}`] : []),
      `soak: ${kills} kernel kills, ${WORKERS} workers, lead lease ${LEAD_LEASE_MS} ms, NATS authorization ${secured ? "on" : "off"}, ${Math.round((Date.now() - t0) / 1000)} s`,
      ...loadSummary(stats),
      `uncertain (ETIMEDOUT of a call in flight at a kill: its answer may have died with the leader): ${stats.uncertain}${stats.uncertainBy.size ? ` (${[...stats.uncertainBy].map(([n, c]) => `${n} ${c}`).join(", ")})` : ""}`,
      `failover, SIGKILL to the first proc RPC answered through the new leader: ${p(failoverMs)}`,
      `  SIGKILL to the standby saying it leads: ${p(ledMs)}; its own count of the takeover (decided to lead to serving): ${p(takeoverMs)}, of which the fenced TAKEOVER append: ${p(fenceMs)}`,
      `  SIGKILL to the load flowing again (a lifecycle begun after the first answer has ended): ${p(resumedMs)}`,
      `a new standby, its start to replaying the whole log: ${p(standbyMs)}`,
      `log snapshots: ${snapshots.written} written (the last ${snapshots.bytes} bytes), ${snapshots.restored} kernels started from one`,
      `kernels that gave up (exit 3) other than those killed: ${[...gaveUp].map(([n, c]) => `${c} "${n}"`).join(", ") || "none"}`,
    ];
    console.log(out.join("\n"));
    const unclear = [...stats.failed.keys()];
    process.exitCode = broken || stats.processesLost.size || stats.handlesLost.size || stats.hung || stats.duplicatedPids || unclear.length ? 1 : 0;
  } catch (e) {
    for (const k of kernels) log(`kernel ${k.p.pid} (${k.leading ? "leading" : "standby"}), its last lines:\n  ${k.tail.join("\n  ")}`);
    throw e;
  } finally {
    stopping = true;
    // proc and auth first (their state is written through), then every kernel at once: a standby stopped after its leader would take over.
    const all = [...(launcher?.children ?? []), ...(launcher?.spares ?? [])];
    launcher?.killAll("SIGTERM");
    const gone = all.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
    await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 5000))]);
    const ks = [...kernels];
    for (const k of ks) k.p.kill("SIGKILL");
    await Promise.all(ks.map((k) => k.exited));
    killAll();
    await nats.stop();
  }
}

/** How long one probe of the new leader waits for its answer. */
const PROBE_TIMEOUT_MS = 5_000;
/** How often a new probe is sent while none has been answered: the failover time is known to within this. */
const PROBE_EVERY_MS = 25;

/**
 * The first answer to `probe`, sent again every PROBE_EVERY_MS until one is
 * answered. One probe is not enough: a call sent in the instant after the
 * SIGKILL can reach the dead leader's subscription before nats-server has
 * seen its connection close, and then only its deadline ends it (ETIMEDOUT).
 */
function firstAnswer(probe: () => Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const timer = setInterval(send, PROBE_EVERY_MS);
    function send() {
      probe().then(
        () => {
          if (done) return;
          done = true;
          clearInterval(timer);
          resolve();
        },
        () => {},
      );
    }
    send();
  });
}

/** A free loopback port: both kernels listen on one address (whichever leads), as hurd up --standby fixes it. */
async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const s = createServer();
  await new Promise<void>((r, j) => s.once("error", j).listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

await main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
// The init task's NATS connection and the load's timers would keep the loop alive: the run is over.
process.exit();

// The load and the checks both soaks run (bench/soak.ts: proc and auth
// killed, issue 17; bench/soak-kernel.ts: the leading kernel killed, issue
// 18): forks as glibc makes them, setsid/setpgid, proc and auth handles,
// signals through handles, exits and waits; residents made before the first
// kill and checked after each one. What differs between the soaks is what a
// failed call means, so the counting takes that as a parameter (Stats.timedOut).
import type { Process } from "@hurdmesh/libhurd";
import { client, HurdError, portAt, Rights, SIG, W, type Task } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";

/** `--name N` or `--name=N`, a whole number, else `dflt`. */
export function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = eq ? eq.slice(name.length + 3) : i >= 0 ? process.argv[i + 1] : undefined;
  const n = v === undefined ? dflt : Number(v);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`--${name} wants a whole number (got ${v})`);
  return n;
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export function errnoOf(e: unknown): string {
  return HurdError.from(e).errno;
}

export const soakLog = (l: string) => console.error(`[soak ${new Date().toISOString().slice(11, 23)}] ${l}`);

export interface Stats {
  lifecycles: number;
  calls: number;
  failed: Map<string, number>;
  /** Errors of a call that retried one answered MIG_SERVER_DIED which had taken effect (a wait's ECHILD: the first wait reaped). */
  afterUncertain: Map<string, number>;
  hung: number;
  /** ETIMEDOUT of a call the kernel soak allows: its answer may have been held by the leader that died (docs/kernel-log.md). */
  uncertain: number;
  /** The same, by call. */
  uncertainBy: Map<string, number>;
  /** When the latest lifecycle that has completed began (its fork): the load flows once one begun after an event has completed. */
  lastBegun: number;
  duplicatedPids: number;
  processesLost: Set<number>;
  handlesLost: Set<string>;
  /**
   * Whether an ETIMEDOUT of a call sent at `sentAt` is allowed (uncertain)
   * rather than hung. Issue 17's soak: never (a restarted server answers
   * MIG_SERVER_DIED, not silence).
   */
  timedOut: (sentAt: number) => "uncertain" | "hung";
}

export function newStats(timedOut: Stats["timedOut"] = () => "hung"): Stats {
  return { lifecycles: 0, calls: 0, failed: new Map(), afterUncertain: new Map(), hung: 0, uncertain: 0, uncertainBy: new Map(), lastBegun: 0, duplicatedPids: 0, processesLost: new Set(), handlesLost: new Set(), timedOut };
}

/** What a lifecycle's calls were told: once one was answered MIG_SERVER_DIED or timed out, whether it took effect is unknown. */
interface Lifecycle {
  uncertain: boolean;
}
/** What a call after an uncertain one may be told when the uncertain one did take effect: its process reaped, its task gone. */
const FOLLOW_UPS = new Set(["ECHILD", "ESRCH", "KERN_INVALID_TASK"]);

function note(stats: Stats, what: string, e: unknown, sentAt: number, l?: Lifecycle): void {
  const n = errnoOf(e);
  if (l?.uncertain && FOLLOW_UPS.has(n)) {
    stats.afterUncertain.set(n, (stats.afterUncertain.get(n) ?? 0) + 1);
    return;
  }
  if (n === "ETIMEDOUT") {
    if (stats.timedOut(sentAt) === "uncertain") {
      stats.uncertain++;
      // A kernel call's own deadline (its request reached a kernel, no answer came) or an RPC's reply that never came.
      const how = `${what} (${/kernel\.trap/.test(String((e as Error)?.message)) ? "kernel call" : "reply"})`;
      stats.uncertainBy.set(how, (stats.uncertainBy.get(how) ?? 0) + 1);
      if (l) l.uncertain = true;
      return;
    }
    stats.hung++;
  }
  if (l && n === "MIG_SERVER_DIED") l.uncertain = true;
  stats.failed.set(n, (stats.failed.get(n) ?? 0) + 1);
}

/** One RPC of the load: its answer, or undefined (counted) when it failed. */
async function call<T>(stats: Stats, what: string, f: () => Promise<T>, l?: Lifecycle): Promise<T | undefined> {
  stats.calls++;
  const t = Date.now();
  try {
    return await f();
  } catch (e) {
    note(stats, what, e, t, l);
    // A call that fails with no round trip (a task the kernel ended) would spin the load on its own failures.
    await new Promise((r) => setTimeout(r, 10));
    return undefined;
  }
}

/** Asked until answered: a server's death answers a call MIG_SERVER_DIED, and the caller asks again. */
export async function retried<T>(f: () => Promise<T>, what: string): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (e) {
      if (errnoOf(e) !== "MIG_SERVER_DIED" || i >= 20) throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
    }
  }
}

interface Resident {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Its process port, in the parent's space. */
  port: number;
  handle: number;
}

export interface LoadOptions {
  stats: Stats;
  /** The load's parent: init's task, attached to proc and auth. */
  parent: Process;
  /** auth's server port in parent's space. */
  auth: number;
  /**
   * Children's tasks end with their parent (task_create's die-with-parent):
   * no OS process attaches to them, and a kernel process keeps an
   * unattached task only attachGraceMs (30 s); the in-process kernel of
   * issue 17's soak is given a day instead.
   */
  dieWithParent?: boolean;
  residents?: number;
  authHandles?: number;
}

/**
 * Makes the residents (children with a pid, parent, group, session and a
 * handle each) and auth handles, and returns `check`, which finds any of
 * them changed or gone, and `start`, which runs `workers` lifecycles in a
 * loop until the `stop` it returns is called.
 */
export async function soakLoad(o: LoadOptions) {
  const { stats, parent } = o;
  const task: Task = parent.task;
  const auth = client(task, AuthDefinition, o.auth);
  const seen = new Set<number>();
  const seePid = (pid: number) => {
    if (seen.has(pid)) stats.duplicatedPids++;
    seen.add(pid);
  };

  /** fork as glibc does it: task_create, proc_task2proc, proc_child; the child's process port and pid. */
  const fork = async (name: string) => {
    const c = await task.taskCreate(name, { dieWithParent: o.dieWithParent });
    const r = new Rights();
    const t2p = await parent.proc.task2proc({ task: r.copySend(c.task) }, { rights: r });
    const port = portAt(t2p, t2p.proc);
    const r2 = new Rights();
    await parent.proc.child({ child: r2.copySend(c.task) }, { rights: r2 });
    const ids = await client(task, ProcessDefinition, port).getpids({});
    return { task: c.task, port, pid: ids.pid, ppid: ids.ppid };
  };

  // The residents: live through every kill, each checked after each one.
  const residents: Resident[] = [];
  for (let i = 0; i < (o.residents ?? 32); i++) {
    const c = await fork(`resident${i}`);
    seePid(c.pid);
    const cp = client(task, ProcessDefinition, c.port);
    if (i % 3 === 0) await cp.setsid({});
    else if (i % 3 === 1) await parent.proc.setpgrp({ pid: c.pid, pgrp: 0 });
    const h = await parent.proc.pidOpen({ pid: c.pid, serial: 0 });
    const pgid = (await parent.proc.getpgrp({ pid: c.pid })).pgrp;
    const sid = (await parent.proc.getsid({ pid: c.pid })).sid;
    residents.push({ pid: c.pid, ppid: c.ppid, pgid, sid, port: c.port, handle: portAt(h, h.handle) });
  }
  const authHandles: { port: number; euid: number }[] = [];
  for (let i = 0; i < (o.authHandles ?? 64); i++) {
    const h = await auth.makeAuth({ otherHandles: [], euids: [5000 + i], auids: [], egids: [100 + i], agids: [] });
    authHandles.push({ port: portAt(h, h.newhandle), euid: 5000 + i });
  }

  /** Everything the residents and auth handles were: a mismatch is a process or handle lost. */
  const check = async () => {
    for (const r of residents) {
      const cp = client(task, ProcessDefinition, r.port);
      const ids = await retried(() => cp.getpids({}), `resident ${r.pid}'s getpids`).catch(() => null);
      const pgid = await retried(() => parent.proc.getpgrp({ pid: r.pid }), "getpgrp").then((x) => x.pgrp, () => -1);
      const sid = await retried(() => parent.proc.getsid({ pid: r.pid }), "getsid").then((x) => x.sid, () => -1);
      if (!ids || ids.pid !== r.pid || ids.ppid !== r.ppid || pgid !== r.pgid || sid !== r.sid) {
        if (!stats.processesLost.has(r.pid)) soakLog(`LOST process ${r.pid}: ${JSON.stringify({ ids, pgid, sid, want: r })}`);
        stats.processesLost.add(r.pid);
      }
      const hp = await retried(() => client(task, ProcessDefinition, r.handle).handleGetpid({}), "handleGetpid").catch(() => null);
      if (!hp || hp.pid !== r.pid || !hp.alive) stats.handlesLost.add(`proc:${r.pid}`);
    }
    for (const a of authHandles) {
      const ids = await retried(() => client(task, AuthDefinition, a.port).getIds({}), "getIds").catch(() => null);
      if (!ids || ids.euids[0] !== a.euid) stats.handlesLost.add(`auth:${a.euid}`);
    }
  };

  let stop = false;
  const worker = async (w: number) => {
    for (let k = 0; !stop; k++) {
      stats.calls++;
      let c: Awaited<ReturnType<typeof fork>>;
      const t = Date.now();
      try {
        c = await fork(`w${w}.${k}`);
      } catch (e) {
        note(stats, "fork", e, t);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      seePid(c.pid);
      const l: Lifecycle = { uncertain: false };
      const cp = client(task, ProcessDefinition, c.port);
      if (k % 3 === 0) await call(stats, "proc setsid", () => cp.setsid({}), l);
      else if (k % 3 === 1) await call(stats, "proc setpgrp", () => parent.proc.setpgrp({ pid: c.pid, pgrp: 0 }), l);
      const h = await call(stats, "proc pidOpen", () => parent.proc.pidOpen({ pid: c.pid, serial: 0 }), l);
      const handle = h ? portAt(h, h.handle) : 0;
      const a = await call(stats, "auth makeAuth", () => auth.makeAuth({ otherHandles: [], euids: [1000 + w], auids: [], egids: [], agids: [] }));
      if (a) {
        const ap = portAt(a, a.newhandle);
        await call(stats, "auth getIds", () => client(task, AuthDefinition, ap).getIds({}));
        await task.deallocate(ap).catch(() => {});
      }
      // How it ends: an exit status, SIGKILL through its handle, or its task terminated.
      let want: number | null = null;
      const end = k % 3;
      if (end === 0) {
        const status = W.exitcode((w * 7 + k) & 0x7f, 0);
        if (await call(stats, "proc markExit", () => cp.markExit({ status, sigcode: 0 }), l)) want = status;
        await call(stats, "task_terminate", () => task.taskTerminate(c.task), l);
      } else if (end === 1 && handle) {
        if (await call(stats, "proc handleSignal", () => client(task, ProcessDefinition, handle).handleSignal({ signal: SIG.KILL, sigcode: 0 }), l)) want = W.exitcode(0, SIG.KILL);
        else await call(stats, "task_terminate", () => task.taskTerminate(c.task), l);
      } else await call(stats, "task_terminate", () => task.taskTerminate(c.task), l);
      // Reaped, whatever failed before: asked again while the server restarts.
      for (let i = 0; i < 5 && !stop; i++) {
        stats.calls++;
        const tw = Date.now();
        try {
          const r = await parent.proc.wait({ pid: c.pid, options: 0 });
          if (want !== null && !l.uncertain && r.status !== want) soakLog(`pid ${c.pid}: wait says ${r.status}, its end was ${want}`);
          break;
        } catch (e) {
          note(stats, "proc wait", e, tw, l);
          // Only a server's death is worth asking again for (ECHILD after one: the wait it cut off had reaped).
          if (errnoOf(e) !== "MIG_SERVER_DIED") break;
          await new Promise((r) => setImmediate(r));
        }
      }
      stats.lastBegun = Math.max(stats.lastBegun, t);
      if (handle) await task.deallocate(handle).catch(() => {});
      await task.deallocate(c.port).catch(() => {});
      await task.deallocate(c.task).catch(() => {});
      stats.lifecycles++;
    }
  };

  const start = (workers: number) => {
    const load = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
    return async () => {
      stop = true;
      await load;
    };
  };
  return { check, start, auth };
}

/** The lines both soaks print about the load. */
export function loadSummary(stats: Stats): string[] {
  const failed = [...stats.failed].map(([n, c]) => `${n} ${c}`).join(", ") || "none";
  return [
    `lifecycles: ${stats.lifecycles}; RPCs: ${stats.calls}`,
    `processes lost: ${stats.processesLost.size}`,
    `handles lost: ${stats.handlesLost.size}`,
    `RPCs failed: ${failed}`,
    `after a call whose outcome was unknown (MIG_SERVER_DIED; ETIMEDOUT across a failover) that had taken effect: ${[...stats.afterUncertain].map(([n, c]) => `${n} ${c}`).join(", ") || "none"}`,
    `RPCs hung: ${stats.hung}`,
    `pids handed out twice: ${stats.duplicatedPids}`,
  ];
}

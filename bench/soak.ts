// `npm run soak -- --kills N [--workers W] [--gap-ms MS] [--lease-ms MS]`
//
// Issue 17's soak: a hurd whose proc and auth are OS processes of their own
// (ProcessLauncher, as `hurd up --nats` runs them) on a real nats-server
// with JetStream, their state written through to it; a load of forks,
// setsid/setpgid, handles, signals through them, exits, waits and auth
// handles; and proc and auth SIGKILLed in turn, N times in all. Each kill is
// answered by init's launcher starting the server again in place.
//
// Checked after every restart and at the end: the residents (children made
// before the first kill, each with its pid, parent, group, session and a
// handle) and the auth handles made before it are as they were. Printed:
// processes lost, handles lost, RPCs failed (by error) and hung (no answer
// within the task's deadline), pids handed out twice, and the restart time,
// kill to the first RPC the new process answered, p50/p99.
//
// Not in the default test run: 100 kills take a while. Every process it
// starts (the nats-server, the servers) ends when it does, however it ends.
import { ProcessLauncher } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { Kernel, TrapServer, watchHolders } from "@hurdmesh/kernel";
import { Process } from "@hurdmesh/libhurd";
import { client, HurdError, portAt, Rights, SIG, Task, W } from "@hurdmesh/mach";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { inboxOf } from "@hurdmesh/mach/internal";
import { NKey } from "@hurdmesh/mach/nats-auth";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { startNats, startSecuredNats } from "./nats.js";

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = eq ? eq.slice(name.length + 3) : i >= 0 ? process.argv[i + 1] : undefined;
  const n = v === undefined ? dflt : Number(v);
  if (!(Number.isInteger(n) && n >= 0)) throw new Error(`--${name} wants a whole number (got ${v})`);
  return n;
}

const KILLS = flag("kills", 20);
const WORKERS = flag("workers", 16);
/** Load between a restart's first answer and the next kill. */
const GAP_MS = flag("gap-ms", 4000);
const LEASE_MS = flag("lease-ms", 2000);
/** 1 (default): NATS authorization on, as `hurd up --nats` runs it, so the kernel hears a server's connection close (holders.ts); 0: anonymous NATS, the lease alone tells a death. */
const AUTH = flag("auth", 1);
const GRACE_MS = 30_000;
/** The launcher restarts one server at most 5 times a minute: the same server is not killed again sooner than this. */
const SAME_SERVER_MS = 12_500;
const RESIDENTS = 32;
const AUTH_HANDLES = 64;
const CALL_TIMEOUT_MS = 30_000;

const log = (l: string) => console.error(`[soak ${new Date().toISOString().slice(11, 23)}] ${l}`);

const stats = {
  lifecycles: 0,
  calls: 0,
  failed: new Map<string, number>(),
  /** Errors of a call that retried one answered MIG_SERVER_DIED which had taken effect (a wait's ECHILD: the first wait reaped). */
  afterUncertain: new Map<string, number>(),
  hung: 0,
  duplicatedPids: 0,
  processesLost: new Set<number>(),
  handlesLost: new Set<string>(),
  restartMs: { proc: [] as number[], auth: [] as number[] },
};

function errnoOf(e: unknown): string {
  return HurdError.from(e).errno;
}

/** What a lifecycle's calls were told: once one was answered MIG_SERVER_DIED, whether it took effect is unknown. */
interface Lifecycle {
  uncertain: boolean;
}
/** What a call after an uncertain one may be told when the uncertain one did take effect: its process reaped, its task gone. */
const FOLLOW_UPS = new Set(["ECHILD", "ESRCH", "KERN_INVALID_TASK"]);

function note(e: unknown, l?: Lifecycle): void {
  const n = errnoOf(e);
  if (n === "ETIMEDOUT") stats.hung++;
  if (l?.uncertain && FOLLOW_UPS.has(n)) {
    stats.afterUncertain.set(n, (stats.afterUncertain.get(n) ?? 0) + 1);
    return;
  }
  if (l && n === "MIG_SERVER_DIED") l.uncertain = true;
  stats.failed.set(n, (stats.failed.get(n) ?? 0) + 1);
}

/** One RPC of the load: its answer, or undefined (counted) when it failed. */
async function call<T>(f: () => Promise<T>, l?: Lifecycle): Promise<T | undefined> {
  stats.calls++;
  try {
    return await f();
  } catch (e) {
    note(e, l);
    // A call that fails with no round trip would spin on microtasks alone.
    await new Promise((r) => setImmediate(r));
    return undefined;
  }
}

/** Asked until answered: a server's death answers a call MIG_SERVER_DIED, and the caller asks again. */
async function retried<T>(f: () => Promise<T>, what: string): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await f();
    } catch (e) {
      if (errnoOf(e) !== "MIG_SERVER_DIED" || i >= 20) throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
    }
  }
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Resident {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Its process port, in init's space. */
  port: number;
  handle: number;
}

async function main(): Promise<void> {
  const secured = AUTH ? await startSecuredNats({ jetstream: true }) : null;
  const nats = secured ?? (await startNats());
  const system = `soak${process.pid}`;
  const buses: NatsBus[] = [];
  let launcher: ProcessLauncher | null = null;
  // However this ends: the servers go with it (they also exit when their IPC channel to this process closes).
  const killServers = () => {
    for (const c of launcher?.children ?? []) c.kill("SIGKILL");
  };
  process.on("exit", killServers);
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));
  const connect = async (name: string) => {
    const b = await NatsBus.connect(nats.url, name);
    buses.push(b);
    return b;
  };
  // The load's children are processes of proc's table whose tasks no OS process attaches to: the kernel keeps them however long the run (attachGraceMs).
  const keys = secured?.keys;
  const natsUsers = keys ? { account: keys.account, signer: NKey.fromSeed(keys.accountSigningSeed, "account"), revoker: null } : undefined;
  const kernel = new Kernel({ system, leaseMs: LEASE_MS, restartGraceMs: GRACE_MS, attachGraceMs: 24 * 3600_000 }, { log: (l) => log(`kernel: ${l}`), nats: natsUsers });
  const kernelBus = await NatsBus.connect(nats.url, { name: "soak kernel", credentials: kernel.natsUsers?.kernel(), inboxPrefix: keys ? inboxOf(system, { kind: "kernel" }) : undefined });
  buses.push(kernelBus);
  const traps = new TrapServer(kernel, kernelBus);
  traps.start();
  if (keys) {
    // The kernel hears its account's connections close, as hurd-kernel does with its keys file.
    const updater = await NatsBus.connect(nats.url, { name: "soak account updater", credentials: keys.updater, inboxPrefix: inboxOf(keys.system, { kind: "account-updater", account: keys.account }) });
    buses.push(updater);
    await watchHolders(kernel, updater, keys.account);
  }
  const b = kernel.bootTask({ name: "init", hostPriv: true });
  const initTask = keys
    ? await attachOverNats(nats.url, { system, taskId: b.task.id, token: b.token, credentials: kernel.bootUser(b.task), window: 1024, timeoutMs: CALL_TIMEOUT_MS })
    : await Task.attach({ bus: await connect("soak init"), system, taskId: b.task.id, token: b.token, window: 1024, timeoutMs: CALL_TIMEOUT_MS });
  launcher = new ProcessLauncher({
    NATS_URL: nats.url,
    HURD_SYSTEM: system,
    ...(kernel.natsUsers ? { credentials: (id, tok) => initTask.natsCredentials(id, tok), stores: { auth: kernel.natsUsers.store("", "auth"), proc: kernel.natsUsers.store("", "proc") } } : {}),
  });
  const init = new Init({ task: initTask, hostPriv: b.hostPriv, launcher, log: (l) => log(`init: ${l}`) });
  const t0 = Date.now();
  try {
    const booted = await init.boot();
    log(`hurd ${system} up in ${Date.now() - t0} ms: proc and auth are OS processes on ${nats.url} (JetStream), lease ${LEASE_MS} ms`);
    const parent = await Process.attach(initTask, booted.proc, booted.auth, { msgport: false });
    const task = parent.task;
    const auth = client(task, AuthDefinition, booted.auth);
    const seen = new Set<number>();
    const seePid = (pid: number) => {
      if (seen.has(pid)) stats.duplicatedPids++;
      seen.add(pid);
    };

    /** fork as glibc does it: task_create, proc_task2proc, proc_child; the child's process port and pid. */
    const fork = async (name: string) => {
      const c = await task.taskCreate(name);
      const r = new Rights();
      const t2p = await parent.proc.task2proc({ task: r.copySend(c.task) }, { rights: r });
      const port = portAt(t2p, t2p.proc);
      const r2 = new Rights();
      await parent.proc.child({ child: r2.copySend(c.task) }, { rights: r2 });
      const ids = await client(task, ProcessDefinition, port).getpids({});
      return { task: c.task, port, pid: ids.pid, ppid: ids.ppid };
    };

    // The residents: live through every kill, each checked after each restart.
    const residents: Resident[] = [];
    for (let i = 0; i < RESIDENTS; i++) {
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
    for (let i = 0; i < AUTH_HANDLES; i++) {
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
          if (!stats.processesLost.has(r.pid)) log(`LOST process ${r.pid}: ${JSON.stringify({ ids, pgid, sid, want: r })}`);
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
    await check();

    let stop = false;
    const worker = async (w: number) => {
      for (let k = 0; !stop; k++) {
        stats.calls++;
        let c: Awaited<ReturnType<typeof fork>>;
        try {
          c = await fork(`w${w}.${k}`);
        } catch (e) {
          note(e);
          await new Promise((r) => setImmediate(r));
          continue;
        }
        seePid(c.pid);
        const l: Lifecycle = { uncertain: false };
        const cp = client(task, ProcessDefinition, c.port);
        if (k % 3 === 0) await call(() => cp.setsid({}), l);
        else if (k % 3 === 1) await call(() => parent.proc.setpgrp({ pid: c.pid, pgrp: 0 }), l);
        const h = await call(() => parent.proc.pidOpen({ pid: c.pid, serial: 0 }), l);
        const handle = h ? portAt(h, h.handle) : 0;
        const a = await call(() => auth.makeAuth({ otherHandles: [], euids: [1000 + w], auids: [], egids: [], agids: [] }));
        if (a) {
          const ap = portAt(a, a.newhandle);
          await call(() => client(task, AuthDefinition, ap).getIds({}));
          await task.deallocate(ap).catch(() => {});
        }
        // How it ends: an exit status, SIGKILL through its handle, or its task terminated.
        let want: number | null = null;
        const end = k % 3;
        if (end === 0) {
          const status = W.exitcode((w * 7 + k) & 0x7f, 0);
          if (await call(() => cp.markExit({ status, sigcode: 0 }), l)) want = status;
          await call(() => task.taskTerminate(c.task), l);
        } else if (end === 1 && handle) {
          if (await call(() => client(task, ProcessDefinition, handle).handleSignal({ signal: SIG.KILL, sigcode: 0 }), l)) want = W.exitcode(0, SIG.KILL);
          else await call(() => task.taskTerminate(c.task), l);
        } else await call(() => task.taskTerminate(c.task), l);
        // Reaped, whatever failed before: asked again while the server restarts.
        for (let i = 0; i < 5 && !stop; i++) {
          stats.calls++;
          try {
            const r = await parent.proc.wait({ pid: c.pid, options: 0 });
            if (want !== null && !l.uncertain && r.status !== want) log(`pid ${c.pid}: wait says ${r.status}, its end was ${want}`);
            break;
          } catch (e) {
            note(e, l);
            // Only a server's death is worth asking again for (ECHILD after one: the wait it cut off had reaped).
            if (errnoOf(e) !== "MIG_SERVER_DIED") break;
            await new Promise((r) => setImmediate(r));
          }
        }
        if (handle) await task.deallocate(handle).catch(() => {});
        await task.deallocate(c.port).catch(() => {});
        await task.deallocate(c.task).catch(() => {});
        stats.lifecycles++;
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    const lastKill = { proc: 0, auth: 0 };
    const probe: Record<string, () => Promise<unknown>> = { proc: () => parent.proc.getpids({}), auth: () => auth.getIds({}) };
    for (let i = 0; i < KILLS; i++) {
      const server = i % 2 === 0 ? "proc" : "auth";
      await new Promise((r) => setTimeout(r, Math.max(GAP_MS, lastKill[server] + SAME_SERVER_MS - Date.now())));
      const child = launcher.children.find((c) => c.spawnargs.at(-1) === server);
      if (!child?.pid) throw new Error(`no ${server} process to kill`);
      lastKill[server] = Date.now();
      const before = stats.lifecycles;
      const t = Date.now();
      process.kill(child.pid, "SIGKILL");
      // Restart time: the kill to the first call the new process answers.
      await retried(probe[server], `${server}'s first answer`);
      const ms = Date.now() - t;
      stats.restartMs[server].push(ms);
      await check();
      log(`kill ${i + 1}/${KILLS}: ${server} back in ${ms} ms; ${stats.lifecycles} lifecycles (${stats.lifecycles - before} meanwhile), ${stats.processesLost.size} lost, ${stats.hung} hung`);
    }
    stop = true;
    await load;
    await check();
    const all = [...stats.restartMs.proc, ...stats.restartMs.auth];
    const failed = [...stats.failed].map(([n, c]) => `${n} ${c}`).join(", ") || "none";
    const out = [
      `soak: ${KILLS} kills (proc ${stats.restartMs.proc.length}, auth ${stats.restartMs.auth.length}), ${WORKERS} workers, lease ${LEASE_MS} ms, ${Math.round((Date.now() - t0) / 1000)} s`,
      `lifecycles: ${stats.lifecycles}; RPCs: ${stats.calls}`,
      `processes lost: ${stats.processesLost.size}`,
      `handles lost: ${stats.handlesLost.size}`,
      `RPCs failed: ${failed}`,
      `after a call answered MIG_SERVER_DIED that had taken effect: ${[...stats.afterUncertain].map(([n, c]) => `${n} ${c}`).join(", ") || "none"}`,
      `RPCs hung: ${stats.hung}`,
      `pids handed out twice: ${stats.duplicatedPids}`,
      `restart to first answered RPC: p50 ${percentile(all, 50)} ms, p99 ${percentile(all, 99)} ms (proc p50 ${percentile(stats.restartMs.proc, 50)} p99 ${percentile(stats.restartMs.proc, 99)}; auth p50 ${percentile(stats.restartMs.auth, 50)} p99 ${percentile(stats.restartMs.auth, 99)})`,
    ];
    console.log(out.join("\n"));
    const unclear = [...stats.failed.keys()].filter((n) => n !== "MIG_SERVER_DIED");
    process.exitCode = stats.processesLost.size || stats.handlesLost.size || stats.hung || stats.duplicatedPids || unclear.length ? 1 : 0;
  } finally {
    launcher.children.forEach((c) => c.kill("SIGTERM"));
    const gone = launcher.children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
    await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 5000))]);
    killServers();
    traps.stop();
    kernel.close();
    for (const x of buses) await x.close().catch(() => {});
    await nats.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

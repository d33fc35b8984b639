// proc restarts in place (issue 17): its process goes as SIGKILL leaves it
// (no goodbye, the task's lease lapses) in the middle of a load of forks,
// setsid/setpgid, handles, signals through them, exits and waits; a new
// process attaches to the same task, rebuilds its tables from its store
// (a log on JetStream on NATS, as proc's own store user; memory in process) and
// goes on. Every child the load made is as the load last saw it (pid,
// parent, group, session, exit status for a zombie, gone once reaped, its
// handle answering), every call either completed or failed with a clear
// error (none hung), a call made while proc had no process is answered
// late, and no pid was handed out twice. Then, with the load stopped, a
// restart changes nothing proc_getallprocinfo shows; a half-written image
// is mended; and a proc whose store fails answers EIO, and a restart shows
// the failed call changed nothing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, HurdError, portAt, SIG, W, type Task } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { JetStreamStoreLog, type NatsBus } from "@hurdmesh/mach/nats";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { LogProcStore, MemoryProcStore, ProcBatch, startProc, type ProcImage, type ProcServer, type ProcStore } from "@hurdmesh/proc";
import { busKinds, natsBus, natsKeys, until, type Hurd } from "../harness.js";
import { bootProcHurd, codeOf, Errno, exitProcess, type Proc, type ProcHurd } from "../proc/kit.js";

const LEASE = 1000;
const GRACE = 4000;
/** Restarts per bus in the default suite. */
const ROUNDS = Number(process.env.HURD_RESTART_ROUNDS ?? 20);
/** Children each round waits for before the kill (the load keeps going through it). */
const PER_ROUND = 4;
/** Errors a caller of a restarting proc may see: each says the server went, none is a hang. */
const CLEAR = new Set(["MIG_SERVER_DIED"]);
const WNOHANG = 1;

/** What the load last saw of a child it made. */
interface Child {
  c: Proc;
  /** Its parent (a shell of the load). */
  sh: Proc;
  pid: number;
  pgid: number;
  sid: number;
  state: "live" | "zombie" | "reaped";
  status: number;
  /** A handle's name in its shell's space, or 0. */
  handle: number;
  /** A call about it failed (MIG_SERVER_DIED): whether it took effect is unknown, so it is not checked. */
  uncertain: boolean;
}

async function storeFor(kind: string, h: Hurd): Promise<{ store: ProcStore; bus: NatsBus | null }> {
  if (kind !== "nats") return { store: new MemoryProcStore(), bus: null };
  const system = h.kernel.config.system;
  const role = { kind: "store", hurd: "", server: "proc" } as const;
  const bus = await natsBus(system, role);
  const log = await JetStreamStoreLog.open(bus.nc, system, "", "proc", { inboxPrefix: natsKeys() ? inboxOf(system, role) : undefined });
  return { store: new LogProcStore(log), bus };
}

/** Kills proc's process (no detach: its lease lapses) and starts a new one on its task from `store`. */
async function restartProc(ph: ProcHurd, task: Task, store: ProcStore): Promise<{ task: Task; proc: ProcServer; ms: number }> {
  task.abandon();
  const t0 = Date.now();
  await until(() => ph.h.kernel.lapsed.size === 1, LEASE * 10, "the lapse");
  // Asked while proc has no process: queued in the kernel, answered late by the new one.
  const late = ph.startup.proc.getpids({});
  const next = await ph.h.attach(ph.procTask.taskId, ph.procTask.token, { hold: true, window: 1024, timeoutMs: 10_000 });
  const proc = await startProc(next, { store });
  assert.equal(proc.restarted, true);
  assert.equal((await late).pid, ph.startup.pid, "a call queued during the restart, answered late");
  const ms = Date.now() - t0;
  assert.ok(ms < GRACE, `restart took ${ms} ms`);
  return { task: next, proc, ms };
}

/** Everything proc_getallprocinfo shows (no task info: that is the kernel's, and moves). */
async function table(p: Proc): Promise<unknown[]> {
  const out: unknown[] = [];
  let start = 1;
  for (;;) {
    const r = await p.proc.getallprocinfo({ startPid: start, max: 4096, flags: 0 });
    out.push(...r.procs);
    if (!r.nextPid) return out;
    start = r.nextPid;
  }
}

for (const kind of busKinds) {
  describe(`proc restart in place (${kind} bus)`, () => {
    let ph: ProcHurd;
    let store: ProcStore;
    let storeBus: NatsBus | null = null;
    let procTask: Task;
    let proc: ProcServer;
    before(async () => {
      // The store is opened once the hurd is up (its system names the bucket), before proc starts.
      ph = await bootProcHurd(
        kind,
        {},
        { leaseMs: LEASE, restartGraceMs: GRACE },
        {
          store: async (h) => {
            const o = await storeFor(kind, h);
            storeBus = o.bus;
            return (store = o.store);
          },
        },
      );
      procTask = ph.procTask.task;
      proc = ph.proc;
      await procTask.call("taskSetEssential", { task: 0, essential: true });
      assert.equal(proc.restarted, false);
    });
    after(async () => {
      await ph.close();
      await storeBus?.close();
    });

    it(`keeps every process, group, session, zombie and handle through ${ROUNDS} restarts under a load; every call completes or fails clearly; no pid twice`, async () => {
      const children: Child[] = [];
      const seen = new Set<number>();
      const failures = new Map<string, number>();
      let calls = 0;
      let made = 0;
      let stop = false;
      const note = async (e: unknown, child?: Child) => {
        const n = HurdError.from(e).errno;
        failures.set(n, (failures.get(n) ?? 0) + 1);
        if (child) child.uncertain = true;
        // A call that fails with no round trip would spin on microtasks alone: yield.
        await new Promise((r) => setImmediate(r));
      };
      /** One call of the load: true if it completed. */
      const call = async <T>(f: () => Promise<T>, child?: Child): Promise<T | undefined> => {
        calls++;
        try {
          return await f();
        } catch (e) {
          await note(e, child);
          return undefined;
        }
      };
      const shells = await Promise.all([0, 1, 2].map((i) => ph.spawn(ph.startup, `sh${i}`)));
      const worker = async (sh: Proc, w: number) => {
        for (let k = 0; !stop; k++) {
          // On the local bus the load is all microtasks: a turn for the timers
          // (leases' heartbeats, the rounds' polling) every child.
          await new Promise((r) => setImmediate(r));
          let c: Proc | undefined;
          calls++;
          try {
            c = await ph.spawn(sh, `c${w}.${k}`);
          } catch (e) {
            await note(e);
            continue;
          }
          // No pid handed out twice: pids are never reused in this run (no wrap), across every restart.
          assert.ok(!seen.has(c.pid), `pid ${c.pid} handed out twice`);
          seen.add(c.pid);
          const ids = await call(() => sh.proc.getsid({ pid: sh.pid }));
          const child: Child = { c, sh, pid: c.pid, pgid: 0, sid: ids?.sid ?? 0, state: "live", status: 0, handle: 0, uncertain: ids === undefined };
          const g = await call(() => sh.proc.getpgrp({ pid: sh.pid }), child);
          child.pgid = g?.pgrp ?? 0;
          children.push(child);
          if (k % 3 === 0) {
            if (await call(() => c.proc.setsid({}), child)) child.pgid = child.sid = c.pid;
          } else if (k % 3 === 1) {
            if (await call(() => sh.proc.setpgrp({ pid: c.pid, pgrp: 0 }), child)) child.pgid = c.pid;
          }
          const h = await call(() => sh.proc.pidOpen({ pid: c.pid, serial: 0 }), child);
          if (h) child.handle = portAt(h, h.handle);
          const end = (k >> 1) % 3;
          const hc = child.handle ? client(sh.task, ProcessDefinition, child.handle) : null;
          if (end === 2 && hc) {
            // A signal through the handle reaches the child's message port, and the answer waits for it.
            if (await call(() => hc.handleSignal({ signal: SIG.USR1, sigcode: 0 }), child)) assert.ok(c.signals.some((x) => x.signal === SIG.USR1), `pid ${c.pid} got SIGUSR1`);
          } else if (end === 0 && k % 2 === 1 && hc) {
            // Killed through its handle: the task ends, and proc hears of it by notification.
            if (await call(() => hc.handleSignal({ signal: SIG.KILL, sigcode: 0 }), child)) {
              child.state = "zombie";
              child.status = W.exitcode(0, SIG.KILL);
            } else child.state = "zombie";
          } else if (end !== 2) {
            const status = W.exitcode((w * 16 + k) & 0x7f, 0);
            if (!(await call(() => exitProcess(c, status).then(() => true), child))) {
              await c.task.detach().catch(() => {});
              child.state = "zombie";
              child.uncertain = true;
            } else {
              child.state = "zombie";
              child.status = status;
            }
            if (end === 1) {
              const r = await call(() => sh.proc.wait({ pid: c.pid, options: 0 }), child);
              if (r) {
                // An exit whose proc_mark_exit failed ends as the task's death: SIGKILL's status.
                if (!child.uncertain) assert.equal(r.status, child.status, `pid ${c.pid}'s exit status`);
                child.state = "reaped";
              }
            }
          }
          made++;
        }
      };
      const load = Promise.all(shells.map((sh, i) => worker(sh, i)));
      const times: number[] = [];
      const rounds = async () => {
        for (let round = 0; round < ROUNDS; round++) {
          // Children made by this round's process, not a burst before it.
          const base = made;
          await until(() => made >= base + PER_ROUND, 60_000, "some children made");
          const r = await restartProc(ph, procTask, store);
          procTask = r.task;
          proc = r.proc;
          times.push(r.ms);
        }
      };
      try {
        await rounds();
      } finally {
        stop = true;
        await load;
      }
      for (const [n] of failures) assert.ok(CLEAR.has(n), `a call failed with ${n}: ${JSON.stringify([...failures])}`);
      // Every child as the load last saw it: pid, parent, group, session; a
      // reaped one gone; a zombie's status for its parent's wait; its handle
      // answering for its incarnation.
      let checked = 0;
      for (const ch of children) {
        if (ch.uncertain) continue;
        checked++;
        if (ch.state === "live") {
          const ids = await ch.c.proc.getpids({});
          assert.deepEqual([ids.pid, ids.ppid], [ch.pid, ch.sh.pid], `pid ${ch.pid}'s parent`);
          assert.equal((await ch.c.proc.getpgrp({ pid: ch.pid })).pgrp, ch.pgid, `pid ${ch.pid}'s pgrp`);
          assert.equal((await ch.c.proc.getsid({ pid: ch.pid })).sid, ch.sid, `pid ${ch.pid}'s session`);
        } else if (ch.state === "reaped") assert.equal(await codeOf(ch.sh.proc.getpgrp({ pid: ch.pid })), Errno.ESRCH, `pid ${ch.pid} was reaped`);
        if (ch.handle) {
          const hp = await client(ch.sh.task, ProcessDefinition, ch.handle).handleGetpid({});
          assert.deepEqual([hp.pid, hp.alive], [ch.pid, ch.state === "live"], `pid ${ch.pid}'s handle`);
        }
        if (ch.state === "zombie") {
          const r = await ch.sh.proc.wait({ pid: ch.pid, options: WNOHANG });
          assert.equal(r.status, ch.status, `zombie ${ch.pid}'s status`);
        }
      }
      // The allocator goes on past every pid handed out.
      assert.ok(proc.pids.position > Math.max(...seen), "the pid allocator's position survived");
      const uncertain = children.filter((x) => x.uncertain).length;
      console.log(
        `proc restart (${kind}): ${ROUNDS} restarts, ${children.length} children (${checked} checked, ${uncertain} with a call that failed MIG_SERVER_DIED), ${calls} calls, failures ${JSON.stringify([...failures])}; restart ms p50 ${times.sort((a, b) => a - b)[times.length >> 1]} max ${times.at(-1)}`,
      );
      assert.ok(checked > ROUNDS, `only ${checked} children checked`);
      for (const ch of children) if (ch.state === "live") await ch.c.task.detach().catch(() => {});
    });

    it("with the load stopped, a restart changes nothing proc_getallprocinfo shows", async () => {
      const sh = await ph.spawn(ph.startup, "quiet");
      const a = await ph.spawn(sh, "a");
      await a.proc.setsid({});
      const b = await ph.spawn(sh, "b");
      await sh.proc.setpgrp({ pid: b.pid, pgrp: 0 });
      await exitProcess(b, W.exitcode(9, 0));
      await sh.proc.pidOpen({ pid: a.pid, serial: 0 });
      await ph.startup.proc.setexecdata({ ports: [], ints: [7, 8, 9] });
      // b is a zombie once proc hears its task ended (the kernel's notice comes on its own): the table is read after that.
      const ZOMBIE = 0x100;
      await until(async () => ((await table(ph.startup)) as { pid: number; state: number }[]).some((p) => p.pid === b.pid && (p.state & ZOMBIE) !== 0), 10_000, "b's end heard by proc");
      const before = await table(ph.startup);
      const r = await restartProc(ph, procTask, store);
      procTask = r.task;
      proc = r.proc;
      const after = (await table(ph.startup)) as { pid: number; state: number }[];
      // A leftover of the load before this test (a task the kernel ends
      // when its lease runs out) may die between the two readings: proc
      // then records its end, and that is the only change allowed.
      const was = new Map((before as { pid: number; state: number }[]).map((p) => [p.pid, p]));
      const ended = new Set(after.filter((p) => (p.state & ZOMBIE) !== 0 && ((was.get(p.pid)?.state ?? ZOMBIE) & ZOMBIE) === 0).map((p) => p.pid));
      for (const own of [sh.pid, a.pid, b.pid]) assert.ok(!ended.has(own), `pid ${own} of this test changed across the restart`);
      const kept = (rows: { pid: number }[]) => rows.filter((p) => !ended.has(p.pid));
      assert.deepEqual(kept(after), kept(before as { pid: number }[]));
      assert.deepEqual((await ph.startup.proc.getexecdata({})).ints, [7, 8, 9], "the exec data");
      // A handle opened by the new process: its ports are its own now.
      assert.equal((await sh.proc.pidOpen({ pid: a.pid, serial: 0 })).pid, a.pid);
      assert.equal((await sh.proc.wait({ pid: b.pid, options: WNOHANG })).status, W.exitcode(9, 0));
      await a.task.detach();
      await sh.task.detach();
    });

    it("a half-written image is mended at the restart: a pgrp its last member's batch did not delete goes, its pid with it", async () => {
      // What the store holds if proc died writing a batch whose other keys landed (JetStream has no multi-key transaction).
      const b = new ProcBatch();
      b.pgrp(77_777, 77_777);
      b.session(77_777, 0);
      await store.write(b);
      const r = await restartProc(ph, procTask, store);
      procTask = r.task;
      proc = r.proc;
      assert.equal(await codeOf(ph.startup.proc.getsessionpgids({ sid: 77_777 })), Errno.ESRCH);
      assert.equal(proc.pids.inUse(77_777), false);
      assert.equal((await store.open(ph.procTask.taskId))?.pgrps.has(77_777), false, "the mended records are written back");
    });
  });
}

/** A store that fails on demand, over a memory store that keeps what was acknowledged. */
class FailingStore implements ProcStore {
  failing = false;
  readonly inner = new MemoryProcStore();
  open(taskId: number): Promise<ProcImage | null> {
    return this.inner.open(taskId);
  }
  async write(b: Parameters<ProcStore["write"]>[0]): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.failing) throw new Error("the store refused the write (test)");
    this.inner.write(b);
  }
}

describe("proc whose store fails (local bus)", () => {
  it("answers EIO, and a restart from the store shows the failed call changed nothing", async () => {
    const store = new FailingStore();
    const ph = await bootProcHurd("local", {}, { leaseMs: LEASE, restartGraceMs: GRACE }, { store });
    try {
      await ph.procTask.task.call("taskSetEssential", { task: 0, essential: true });
      const c = await ph.spawn(ph.startup, "c");
      await c.proc.setExe({ path: "/bin/before" });
      store.failing = true;
      assert.equal(await codeOf(c.proc.setExe({ path: "/bin/after" })), Errno.EIO);
      assert.equal(await codeOf(c.proc.setsid({})), Errno.EIO, "a broken proc answers EIO from then on");
      assert.equal(await codeOf(c.proc.getpids({})), Errno.EIO, "reads too: its memory is ahead of its store");
      store.failing = false;
      const r = await restartProc(ph, ph.procTask.task, store);
      assert.equal((await c.proc.getExe({ pid: c.pid })).path, "/bin/before");
      assert.notEqual((await c.proc.getsid({ pid: c.pid })).sid, c.pid);
      assert.equal(r.proc.journal?.broken, null);
      await c.task.detach();
    } finally {
      await ph.close();
    }
  });
});

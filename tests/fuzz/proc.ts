// proc, fuzzed: every Process RPC, to a process port of a root process, of
// a user process (uid 7000-7002) and to a process handle, and every Msg RPC
// to the fuzzers' message ports (which proc hands out through
// proc_getmsgport), with random bodies and rights. The fuzzing processes
// of a batch are killed and reaped at its end; then proc must still answer,
// its tables must agree (assertConsistent), no process of the batch may be
// left, and the kernel's books must balance. (This replaces the home-made
// generator of tests/proc/robustness.test.ts; its short run is
// tests/fuzz/fuzz.test.ts.)
import { portAt } from "@hurdmesh/mach";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import type { BusKind } from "../harness.js";
import { assertConsistent, bootProcHurd, userProcess, type Proc, type ProcHurd } from "../proc/kit.js";
import { Violation, settles, type FuzzTarget } from "./core.js";
import { checkBooks, rpcCase, rpcTable, sendRpcs, type RpcCase, type Sender } from "./rpc.js";

const TABLE = rpcTable([
  { name: "Process", def: ProcessDefinition },
  { name: "Msg", def: MsgDefinition },
]);

const WNOHANG = 1;

export interface ProcWorld {
  ph: ProcHurd;
  /** pids alive before any batch (the hurd's own). */
  baseline: Set<number>;
  uid: number;
}

/** The batch's fuzzers: a root process, a user process, and the root's handle on the user. */
async function fuzzers(w: ProcWorld): Promise<{ senders: Sender[]; procs: Array<Proc & { taskInParent: number }> }> {
  const { ph } = w;
  const root = await ph.spawn(ph.startup, "fuzz-root");
  const user = await userProcess(ph, ph.startup, [7000 + (w.uid++ % 3)], "fuzz-user");
  const h = await root.proc.pidOpen({ pid: user.pid, serial: 0 });
  // Message ports as any process finds them: proc_getmsgport.
  const m1 = await root.proc.getmsgport({ pid: user.pid });
  const m2 = await user.proc.getmsgport({ pid: root.pid });
  return {
    procs: [root, user],
    senders: [
      { task: root.task, dests: { Process: [root.port, portAt(h, h.handle)], Msg: [portAt(m1, m1.msgport), root.msgport] } },
      { task: user.task, dests: { Process: [user.port], Msg: [portAt(m2, m2.msgport), user.msgport] } },
    ],
  };
}

/** Kills every process of the batch and reaps it, as their parent (startup) would. */
async function reap(w: ProcWorld, procs: Array<Proc & { taskInParent: number }>): Promise<void> {
  const st = w.ph.startup;
  for (const p of procs) await st.task.taskTerminate(p.taskInParent).catch(() => {});
  for (const p of procs) await st.task.deallocate(p.taskInParent).catch(() => {});
  const leftover = () => [...w.ph.proc.byPid.keys()].filter((pid) => !w.baseline.has(pid));
  await settles(
    async () => {
      // Reap what is a zombie of startup's; a fuzzer may have made itself another's child: those are reaped by proc at their parent's death.
      for (;;) {
        const r = await st.proc.wait({ pid: -1, options: WNOHANG }).catch(() => null);
        if (!r || !r.pidStatus) break;
      }
      return leftover().length === 0;
    },
    "processes of a finished batch are left in proc's tables",
    () => leftover().map((pid) => `${pid}: ${JSON.stringify(describe(w, pid))}`).join("; "),
  );
}

function describe(w: ProcWorld, pid: number): object {
  const p = w.ph.proc.byPid.get(pid);
  if (!p) return {};
  return { parent: p.parent?.pid, dead: p.dead, flags: p.flags.toString(16), task: p.taskId };
}

export const procTarget: FuzzTarget<ProcWorld, RpcCase> = {
  name: "proc",
  batchSize: 512,
  async start(kind: BusKind) {
    const ph = await bootProcHurd(kind, { maxWaitersPerProcess: 8, maxMsgportWaiters: 8 });
    return { ph, baseline: new Set(ph.proc.byPid.keys()), uid: 0 };
  },
  entries: () => TABLE.entries,
  message: () => rpcCase(TABLE, 2),
  async run(w, batch, stats) {
    // The baseline of this batch: a leak of an earlier one (while shrinking) is not this one's.
    w.baseline = new Set(w.ph.proc.byPid.keys());
    const { senders, procs } = await fuzzers(w);
    try {
      await sendRpcs(w.ph.h.kernel, TABLE, senders, batch, stats, { timeoutMs: 100, inFlight: 32 });
    } finally {
      await reap(w, procs);
    }
  },
  async check(w) {
    const { ph } = w;
    const { pids } = await ph.startup.proc.getallpids({}, { timeoutMs: 3000 });
    for (const p of [1, 2, 3, 4]) if (!pids.includes(p)) throw new Violation(`pid ${p} did not survive the batch`);
    try {
      assertConsistent(ph.proc);
    } catch (e) {
      throw new Violation(`proc's tables disagree: ${(e as Error).message}`);
    }
    checkBooks(ph.h.kernel, "after a proc batch");
    // A normal lifecycle still works.
    const c = await ph.spawn(ph.startup, "after-batch");
    await c.proc.markExit({ status: 1 << 8, sigcode: 0 });
    await c.task.detach();
    const r = await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    if (r.status !== 1 << 8) throw new Violation(`proc_wait after a batch answered status ${r.status}`);
    await ph.startup.task.deallocate(c.taskInParent).catch(() => {});
  },
  close: (w) => w.ph.close(),
};


// proc's rows: process lifecycles per second (create a child task and
// process, the task ends, the parent waits), on both buses; memory per live
// process in proc's tables at 100,000 and 1,000,000 processes; and the time
// `ps` takes to list 100,000 processes through proc_getallprocinfo pages.
import { Rights } from "@hurdmesh/mach";
import { Process, WNOHANG } from "@hurdmesh/libhurd";
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd } from "@hurdmesh/init";
import { KvProcStore, LogProcStore } from "@hurdmesh/proc";
import { JetStreamKv, JetStreamStoreLog, NatsBus } from "@hurdmesh/mach/nats";
import type { Row } from "../harness.js";
import { bootRig, NATS_AUTH_OFF, type Rig } from "../rig.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

export const LIFECYCLE = "process lifecycle (fork, exit, wait)";

/** One lifecycle, the way glibc's fork and a killed child go: task_create, proc_child, task_terminate, proc_wait. */
export function lifecycle(r: Rig): () => Promise<unknown> {
  const p = r.parent;
  return async () => {
    const c = await p.task.taskCreate("bench-child");
    const x = new Rights();
    await p.proc.child({ child: x.copySend(c.task) }, { rights: x });
    await p.task.taskTerminate(c.task);
    p.task.deallocate(c.task).catch(() => {});
    // Some child of ours has ended (with 64 in flight, not necessarily this one): reap one.
    await p.wait(-1);
  };
}

export const WRITE_THROUGH = `${LIFECYCLE}, proc writing through (JetStream log)`;
/** The earlier layout, a KV put per key of each batch: kept as a row to compare with. */
export const WRITE_THROUGH_KV = `${LIFECYCLE}, proc writing through (JetStream KV, a put per key)`;

export const procLifecycle: RowGroup = {
  name: "proc",
  async open(ctx: BenchContext): Promise<Opened> {
    const local = await bootRig("local", ctx, ctx.log);
    const nats = await bootRig("nats", ctx, ctx.log);
    // The same on a nats-server without authorization: what authorization costs.
    const open = await bootRig(NATS_AUTH_OFF, ctx, ctx.log);
    // The same with proc writing its table through to a bucket of its own
    // (the bench's anonymous nats-server runs JetStream), as hurd up --nats
    // runs it: each RPC answered once JetStream acknowledged its changes.
    const storeBus = await NatsBus.connect(ctx.natsUrl, "bench proc store");
    let kv: JetStreamKv | null = null;
    let log: JetStreamStoreLog | null = null;
    const stored = await bootRig(NATS_AUTH_OFF, ctx, ctx.log, { procStore: async (system) => new LogProcStore((log = await JetStreamStoreLog.open(storeBus.nc, system, "", "proc"))) });
    const storedKv = await bootRig(NATS_AUTH_OFF, ctx, ctx.log, { procStore: async (system) => new KvProcStore((kv = await JetStreamKv.open(storeBus.nc, system, "", "proc"))) });
    return {
      subjects: [
        { name: LIFECYCLE, bus: "local", call: lifecycle(local) },
        { name: LIFECYCLE, bus: "nats", call: lifecycle(nats) },
        { name: LIFECYCLE, bus: NATS_AUTH_OFF, call: lifecycle(open) },
        { name: WRITE_THROUGH, bus: NATS_AUTH_OFF, call: lifecycle(stored) },
        { name: WRITE_THROUGH_KV, bus: NATS_AUTH_OFF, call: lifecycle(storedKv) },
      ],
      async close() {
        // Reap what the last turns left behind, then stop.
        for (const r of [local, nats, open, stored, storedKv]) while (await r.parent.wait(-1, WNOHANG).catch(() => null));
        await local.close();
        await nats.close();
        await open.close();
        await stored.close();
        await storedKv.close();
        await kv?.purge().catch(() => {});
        await log?.reset().catch(() => {});
        await storeBus.close();
      },
    };
  },
};

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export const procScale: RowGroup = {
  name: "proc-scale",
  needsNats: false,
  async run(ctx: BenchContext): Promise<Row[]> {
    const rows: Row[] = [];
    const r = await bootRig("local", ctx, ctx.log);
    try {
      const srv = r.proc;
      if (!(globalThis as { gc?: unknown }).gc) ctx.log("no global.gc (run with --expose-gc): memory rows are rough");
      let made = 0;
      for (const target of [100_000, 1_000_000]) {
        gc();
        const before = process.memoryUsage().heapUsed;
        const t0 = performance.now();
        // Processes as proc holds them (no task: the kernel's side is not proc's memory).
        for (; made < target; made++) srv.createProcess(0, 0);
        const took = performance.now() - t0;
        gc();
        const per = (process.memoryUsage().heapUsed - before) / (target - (target === 100_000 ? 0 : 100_000));
        rows.push({ name: `proc memory per live process (${target.toLocaleString("en-US")} processes)`, bus: "-", in_flight: 0, calls: target, p50_us: 0, p99_us: 0, calls_per_s: Math.round(((target - (target === 100_000 ? 0 : 100_000)) / took) * 1000), errors: 0, cpu_us_per_call: 0, bytes_per_process: Math.round(per) });
        if (target === 100_000) {
          // ps of 100,000 processes: proc_getallprocinfo pages, one call stream.
          const t1 = performance.now();
          let start = 1;
          let listed = 0;
          for (;;) {
            const page = await r.parent.proc.getallprocinfo({ startPid: start, max: 4096, flags: 0 });
            listed += page.procs.length;
            if (!page.nextPid) break;
            start = page.nextPid;
          }
          const ms = performance.now() - t1;
          rows.push({ name: `list procinfo of ${listed.toLocaleString("en-US")} processes`, bus: "local", in_flight: 1, calls: listed, p50_us: 0, p99_us: 0, calls_per_s: Math.round((listed / ms) * 1000), errors: 0, cpu_us_per_call: 0, total_ms: Math.round(ms) });
        }
      }
    } finally {
      await r.close();
    }
    return rows;
  },
};

/**
 * Process lifecycles inside subhurds at depth 1 and 3 against the root hurd,
 * in one rig, interleaved: each level's procs hear of nested tasks too, so
 * this is what nesting costs.
 */
export const SUBHURD = (depth: number) => (depth === 0 ? `${LIFECYCLE}, root hurd` : `${LIFECYCLE}, subhurd depth ${depth}`);

export const subhurdLifecycle: RowGroup = {
  name: "subhurd",
  needsNats: false,
  async open(ctx: BenchContext): Promise<Opened> {
    const r = await bootRig("local", ctx, ctx.log);
    const d1 = await bootSubhurd(r.parent.task, "d1", r.attach, new InProcessLauncher(r.attach));
    const d2 = await bootSubhurd(d1.task, "d2", r.attach, new InProcessLauncher(r.attach));
    const d3 = await bootSubhurd(d2.task, "d3", r.attach, new InProcessLauncher(r.attach));
    const as = async (s: typeof d1) => Process.attach(s.task, s.init.booted!.proc, s.init.booted!.auth, { msgport: false });
    const [p1, p3] = await Promise.all([as(d1), as(d3)]);
    const rig = (p: Process) => lifecycle({ ...r, parent: p });
    return {
      subjects: [
        { name: SUBHURD(0), bus: "local", call: rig(r.parent) },
        { name: SUBHURD(1), bus: "local", call: rig(p1) },
        { name: SUBHURD(3), bus: "local", call: rig(p3) },
      ],
      async close() {
        for (const p of [r.parent, p1, p3]) while (await p.wait(-1, WNOHANG).catch(() => null));
        await r.close();
      },
    };
  },
};

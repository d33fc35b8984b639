// init (the startup server), fuzzed: every Startup RPC to the startup port
// and every Msg RPC to init's message port, from two unprivileged tasks
// of a hurd booted as `hurd up` boots it (init, proc, auth, pid 1), with
// random bodies and rights. At a batch's end the tasks die; then the hurd
// must still be up (init not halted, pids 1-4 and auth alive), init's
// space must hold nothing of theirs, proc's tables must agree, and the
// kernel's books must balance.
import { MsgType, client, portAt } from "@hurdmesh/mach";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import type { ProcServer } from "@hurdmesh/proc";
import type { BusKind } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";
import { assertConsistent } from "../proc/kit.js";
import { Violation, settles, type FuzzTarget } from "./core.js";
import { checkBooks, rpcCase, rpcTable, sendRpcs, type RpcCase, type Sender } from "./rpc.js";

const TABLE = rpcTable([
  { name: "Startup", def: StartupDefinition },
  { name: "Msg", def: MsgDefinition },
]);

export interface StartupWorld {
  b: BootedHurd;
  halted: boolean;
  startupPort: number;
  /** init's message port, a send right in init's space. */
  msgport: number;
  names: number;
  before: Set<number>;
  n: number;
}

const namesOf = (w: StartupWorld) => w.b.h.kernel.tasks.get(w.b.initTask.id)?.space.entries.size ?? -1;

/** The names init gained in the batch: type, urefs, and whose port. */
function newNames(w: StartupWorld): string {
  const sp = w.b.h.kernel.tasks.get(w.b.initTask.id)?.space;
  if (!sp) return "";
  const out: string[] = [];
  for (const [name, e] of sp.entries) {
    if (w.before.has(name)) continue;
    const p = e.port;
    out.push(`${name}: type ${e.bits.toString(16)} urefs ${e.urefs} port ${p ? `${p.id} (receiver ${p.receiver?.id ?? "-"}, ${p.kobject?.kind ?? "plain"}${p.active ? "" : ", dead"})` : "-"}`);
  }
  return out.join("; ");
}

export const startupTarget: FuzzTarget<StartupWorld, RpcCase> = {
  name: "startup",
  batchSize: 512,
  async start(kind: BusKind) {
    const b = await bootHurd(kind, { config: { dosyncTimeoutMs: 200 } });
    const w: StartupWorld = { b, halted: false, startupPort: await b.init.startupPort, msgport: 0, names: 0, before: new Set(), n: 0 };
    void b.init.halted.then(() => (w.halted = true));
    if (process.env.HURD_FUZZ_TRACE === "1") {
      const sp = b.h.kernel.tasks.get(b.initTask.id)!.space;
      const insert = sp.insert.bind(sp);
      sp.insert = (e) => {
        console.error(`INIT gets ${e.name}: type ${e.bits.toString(16)} port ${e.port?.id} receiver ${e.port?.receiver?.id} ${e.port?.kobject?.kind ?? ""}`);
        insert(e);
      };
    }
    const proc = client(b.initTask, ProcessDefinition, b.init.booted!.proc);
    const m = await proc.getmsgport({ pid: 2 });
    w.msgport = portAt(m, m.msgport);
    return w;
  },
  entries: () => TABLE.entries,
  message: () => rpcCase(TABLE, 2),
  async run(w, batch, stats) {
    const { b } = w;
    const it = b.initTask;
    // The baseline of this batch: a leak of an earlier one (while shrinking) is not this one's.
    w.names = namesOf(w);
    w.before = new Set(w.b.h.kernel.tasks.get(w.b.initTask.id)?.space.entries.keys());
    const made: Array<{ port: number }> = [];
    const senders: Sender[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await it.taskCreate(`fuzz-${w.n++}`);
        made.push({ port: c.task });
        const task = await b.h.attach(c.taskId, c.token);
        await it.insertRight(c.task, 0x100, w.startupPort, MsgType.MSG_TYPE_MAKE_SEND);
        await it.insertRight(c.task, 0x101, w.msgport, MsgType.MSG_TYPE_COPY_SEND);
        senders.push({ task, dests: { Startup: [0x100], Msg: [0x101] } });
      }
      await sendRpcs(b.h.kernel, TABLE, senders, batch, stats, { timeoutMs: 100, inFlight: 32 });
    } finally {
      for (const m of made) {
        await it.taskTerminate(m.port).catch(() => {});
        await it.deallocate(m.port).catch(() => {});
      }
    }
  },
  async check(w) {
    const { b } = w;
    if (w.halted) throw new Violation("init halted: the hurd went down");
    await settles(
      () => namesOf(w) <= w.names,
      "init's space holds names of tasks that are gone",
      () => `${w.names} names before the batch, ${namesOf(w)} now: ${newNames(w)}`,
    );
    const proc = client(b.initTask, ProcessDefinition, b.init.booted!.proc);
    const { pids } = await proc.getallpids({}, { timeoutMs: 3000 });
    for (const p of [1, 2, 3, 4]) if (!pids.includes(p)) throw new Violation(`pid ${p} did not survive the batch`);
    const srv = (b.launcher as { started?: Record<string, unknown> }).started?.proc as ProcServer | undefined;
    if (srv) {
      try {
        assertConsistent(srv);
      } catch (e) {
        throw new Violation(`proc's tables disagree: ${(e as Error).message}`);
      }
    }
    checkBooks(b.h.kernel, "after a startup batch");
  },
  close: (w) => w.b.close(),
};

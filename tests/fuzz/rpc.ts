// Messages to a Hurd server over the bus, as a hostile process sends them:
// any RPC of the server's interfaces, from any of the batch's fuzzing
// tasks, to any port it holds of that server, with a random, mutated or
// truncated body and random rights attached (any name it holds, any
// disposition). A batch is sent with a bounded number in flight, so the
// calls of one batch interleave in the server (rendezvous, waits).
import fc from "fast-check";
import { Errno, HurdError, type Task } from "@hurdmesh/mach";
import { methods, type MethodInfo, type ServiceDef } from "@hurdmesh/mach/internal";
import type { Kernel } from "@hurdmesh/kernel";
import { auditKernel } from "./audit.js";
import { Violation, type FuzzStats } from "./core.js";
import { bodyOf, bytesOf, numOf, right, type Body, type RightCase } from "./gen.js";

/** One interface and where a sender's messages for it go. */
export interface RpcGroup {
  /** Its name in reports: "Process", "Msg", … */
  name: string;
  def: ServiceDef;
}

/** A fuzzing task and, per group, the names of that group's ports in its space. */
export interface Sender {
  task: Task;
  dests: Record<string, number[]>;
}

export interface RpcCase {
  group: number;
  method: number;
  sender: number;
  dest: number;
  body: Body;
  rights: RightCase[];
}

export interface RpcTable {
  groups: RpcGroup[];
  infos: MethodInfo[][];
  entries: string[];
}

export function rpcTable(groups: RpcGroup[]): RpcTable {
  const infos = groups.map((g) => [...methods(g.def).byKey.values()]);
  return { groups, infos, entries: groups.flatMap((g, i) => infos[i]!.map((m) => `${g.name}.${m.key}`)) };
}

/** Every method equally likely, whatever its interface's size. */
export function rpcCase(t: RpcTable, senders: number): fc.Arbitrary<RpcCase> {
  const all = t.infos.flatMap((ms, g) => ms.map((m, i) => ({ g, i, body: bodyOf(m.def) })));
  return fc.nat({ max: all.length - 1 }).chain((k) => {
    const m = all[k]!;
    return fc.record({
      group: fc.constant(m.g),
      method: fc.constant(m.i),
      sender: fc.nat({ max: senders - 1 }),
      dest: fc.nat({ max: 7 }),
      body: m.body,
      rights: fc.oneof({ weight: 3, arbitrary: fc.constant<RightCase[]>([]) }, { weight: 4, arbitrary: fc.array(right, { maxLength: 3 }) }),
    });
  });
}

const TRACE = process.env.HURD_FUZZ_TRACE === "1";

/** Answers that say the message never reached the server's routine. */
const UNREACHED = new Set<number>([Errno.MIG_BAD_ARGUMENTS, Errno.ETIMEDOUT, Errno.KERN_INVALID_TASK, Errno.MIG_SERVER_DIED]);
const isSendError = (c: number) => c >= 0x10000002 && c <= 0x10000015;

/** Sends a batch; `inFlight` calls at most at once. */
export async function sendRpcs(kernel: Kernel, t: RpcTable, senders: Sender[], batch: RpcCase[], stats: FuzzStats, o: { timeoutMs: number; inFlight: number }): Promise<void> {
  const running = new Set<Promise<void>>();
  for (const c of batch) {
    const s = senders[c.sender % senders.length]!;
    const g = t.groups[c.group]!;
    const m = t.infos[c.group]![c.method]!;
    const dests = s.dests[g.name] ?? [];
    if (!dests.length || s.task.detached) continue;
    const dest = dests[c.dest % dests.length]!;
    const kt = kernel.tasks.get(s.task.id);
    const names = kt ? [...kt.space.entries.keys()] : [];
    const body = bytesOf(m.def, c.body, names);
    const ports = c.rights.map((r) => ({ name: numOf(r.name, names) >>> 0, disposition: r.disposition }));
    const entry = `${g.name}.${m.key}`;
    if (TRACE) console.error(`RPC ${entry} from task ${s.task.id} to ${dest} ports ${JSON.stringify(ports)} body ${body.length} bytes`);
    stats.sent();
    if (m.simple) {
      try {
        s.task.send({ destination: dest, id: m.msgid, body, ports });
        stats.reach(entry);
      } catch {
        // The sender is gone: it fuzzed itself to death.
      }
      continue;
    }
    const p = s.task.rpc(dest, m.msgid, body, { ports, timeoutMs: o.timeoutMs }).then(
      (rep) => {
        s.task.dropRights(rep);
        stats.answered(0);
        stats.reach(entry);
      },
      (e) => {
        const code = e instanceof HurdError ? e.code : Errno.EIO;
        stats.answered(code);
        if (!UNREACHED.has(code) && !isSendError(code)) stats.reach(entry);
      },
    );
    running.add(p);
    void p.finally(() => running.delete(p));
    if (running.size >= (TRACE ? 1 : o.inFlight)) await Promise.race(running);
  }
  await Promise.all(running);
}

/** The kernel's books balance (see audit.ts). */
export function checkBooks(kernel: Kernel, when: string): void {
  const a = auditKernel(kernel);
  if (a.problems.length) throw new Violation(`kernel books ${when}:\n${a.problems.join("\n")}`);
}

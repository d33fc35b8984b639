// The kernel's trap path, fuzzed over the bus as a hostile task would use
// it: trap bodies built from the proto (sends with random names,
// dispositions, reply rights and port arrays; every kernel call with random
// fields), random bytes, well-formed traps mutated or cut short, bodies and
// port arrays past the kernel's bounds, and wrong or missing tokens. Each
// batch runs two fresh tasks in a namespace of their own, one holding that
// namespace's host_priv (so namespace_terminate, task_for_id and
// register_new_task_notification run their real checks), and ends the
// namespace; then the kernel's books are audited and nothing of the batch
// may be left: no task, no name, no port, no queued message.
import fc from "fast-check";
import { Errno, LocalHub, type Bus } from "@hurdmesh/mach";
import { methods } from "@hurdmesh/mach/internal";
import { Kernel, TrapServer, type KernelConfig, type KTask } from "@hurdmesh/kernel";
import { CallReply, MachDefinition, TaskNatsCredentialsRequest, Trap, type Message } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { natsBus, type BusKind } from "../harness.js";
import { auditKernel, type KernelCensus } from "./audit.js";
import { Violation, settles, type FuzzStats, type FuzzTarget } from "./core.js";
import { DISPOSITIONS, bodyOf, bytesOf, num, numOf, right, type Body, type Num, type RightCase } from "./gen.js";

const TRACE = process.env.HURD_FUZZ_TRACE === "1";
const MACH = methods(MachDefinition);
/** The calls a task makes as traps on the bus: all but the edge's own stream and trap carrier. */
export const TRAP_CALLS = [...MACH.byKey.values()].filter((m) => m.key !== "receive" && m.key !== "sendTrap");

/** Small bounds, so that past-the-bound cases cost little and happen often. */
export const FUZZ_KERNEL_CONFIG: Partial<KernelConfig> = {
  maxBodyBytes: 16 * 1024,
  maxPortsPerMessage: 16,
  maxNamesPerTask: 512,
  maxBlockedSenders: 8,
  qlimit: 8,
  qlimitMax: 64,
  maxUrefs: 1000,
  maxWindow: 64,
};

/** Who a trap claims to be: one of the batch's tasks or some id, with its token, another's, or none. */
export interface Who {
  task: number;
  token: "own" | "other" | "none" | "garbage";
}

export interface MessageCase {
  destination: Num;
  destinationDisposition: number;
  reply: Num;
  replyDisposition: number;
  id: number;
  body: { size: number } | { over: true };
  ports: RightCase[];
  timeoutMs: number;
}

export type TrapCase =
  | { send: MessageCase; who: Who; credit: number }
  | { call: number; body: Body; who: Who; credit: number }
  | { msgSend: MessageCase; who: Who }
  | { heartbeat: true; who: Who; credit: number }
  | { raw: Uint8Array }
  | { mutate: TrapCase; at: Array<[number, number]> }
  | { truncate: TrapCase; keep: number };

const who: fc.Arbitrary<Who> = fc.record({
  task: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constantFrom(2, 3, 4) }),
  token: fc.oneof({ weight: 12, arbitrary: fc.constant("own" as const) }, { weight: 1, arbitrary: fc.constantFrom("other" as const, "none" as const, "garbage" as const) }),
});

export const messageCase: fc.Arbitrary<MessageCase> = fc.record({
  destination: num,
  destinationDisposition: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constantFrom(17, 18, 19, 20, 21) }, { weight: 1, arbitrary: fc.constantFrom(...DISPOSITIONS) }),
  reply: fc.oneof({ weight: 3, arbitrary: fc.constant<Num>({ small: 0 }) }, { weight: 3, arbitrary: num }),
  replyDisposition: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constantFrom(17, 18, 19, 20, 21) }, { weight: 1, arbitrary: fc.constantFrom(...DISPOSITIONS) }),
  id: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer()),
  body: fc.oneof({ weight: 20, arbitrary: fc.nat({ max: 64 }).map((size) => ({ size })) }, { weight: 1, arbitrary: fc.constant({ over: true as const }) }),
  ports: fc.oneof({ weight: 10, arbitrary: fc.array(right, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(right, { minLength: 15, maxLength: 18 }) }),
  timeoutMs: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 30 }) }),
});

const credit = fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat({ max: 100 }) }, { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 2 ** 31) });

/** The calls that end the caller (or its whole namespace): rarer, or a batch is over after its first few traps. */
const FATAL = new Set(["detach", "namespaceTerminate", "taskTerminate"]);
const indexes = (fatal: boolean) => TRAP_CALLS.flatMap((m, i) => (FATAL.has(m.key) === fatal ? [i] : []));

/** Kernel calls by index into TRAP_CALLS, and now and then a msgid no call has. */
const callIndex = fc.oneof(
  { weight: 60, arbitrary: fc.constantFrom(...indexes(false)) },
  { weight: 1, arbitrary: fc.constantFrom(...indexes(true)) },
  { weight: 1, arbitrary: fc.constant(-1) },
);

const bodies = TRAP_CALLS.map((m) => bodyOf(m.def));

const wellFormed: fc.Arbitrary<TrapCase> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ send: messageCase, who, credit }) },
  {
    weight: 12,
    arbitrary: callIndex.chain((call) => fc.record({ call: fc.constant(call), body: call < 0 ? bodies[0]! : bodies[call]!, who, credit })),
  },
  { weight: 2, arbitrary: fc.record({ msgSend: messageCase, who }) },
  { weight: 1, arbitrary: fc.record({ heartbeat: fc.constant(true as const), who, credit }) },
);

export const trapCase: fc.Arbitrary<TrapCase> = fc.oneof(
  { weight: 20, arbitrary: wellFormed },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((raw) => ({ raw })) },
  { weight: 2, arbitrary: fc.record({ mutate: wellFormed, at: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ truncate: wellFormed, keep: fc.nat() }) },
);

/** The two tasks of a batch, as the kernel knows them. */
export interface Party {
  k: KTask;
  token: string;
}

export interface KernelWorld {
  kind: BusKind;
  kernel: Kernel;
  bus: Bus;
  close(): Promise<void>;
  baseline: KernelCensus;
}

/** A kernel with its trap server, and one more bus connection for the fuzzer's traps. */
export async function kernelWorld(kind: BusKind, config: Partial<KernelConfig> = FUZZ_KERNEL_CONFIG): Promise<KernelWorld> {
  const kernel = new Kernel({ system: `fz${process.pid}x${++worlds}`, ...config }, { log: () => {} });
  const hub = new LocalHub();
  // On NATS the kernel connects as the kernel and the fuzzer as a party that
  // may use any subject of the system (it plays every task, on one connection).
  const system = kernel.config.system;
  const kbus = kind === "local" ? hub.connect() : await natsBus(system, { kind: "kernel" });
  const trap = new TrapServer(kernel, kbus);
  trap.start();
  await kbus.flush();
  const bus = kind === "local" ? hub.connect() : await natsBus(system);
  return {
    kind,
    kernel,
    bus,
    baseline: auditKernel(kernel).census,
    async close() {
      trap.stop();
      kernel.close();
      await bus.close();
      await kbus.close();
    },
  };
}
let worlds = 0;

/** The current names of a task, in a stable order (a name picked by index resolves the same way on replay). */
export function namesOf(t: KTask | undefined): number[] {
  return t ? [...t.space.entries.keys()] : [];
}

function tokenOf(w: Who, parties: Party[]): { task: number; token: string } {
  const p = parties[w.task];
  const id = p ? p.k.id : 0x7fff0000 + w.task;
  const own = p?.token ?? "";
  const token = w.token === "own" ? own : w.token === "other" ? (parties[(w.task + 1) % parties.length]?.token ?? "") : w.token === "none" ? "" : "x".repeat(own.length || 43);
  return { task: id, token };
}

export function messageOf(m: MessageCase, names: readonly number[], maxBody: number, seq: number): Message {
  return {
    destination: numOf(m.destination, names) >>> 0,
    destinationDisposition: m.destinationDisposition,
    reply: numOf(m.reply, names) >>> 0,
    replyDisposition: m.replyDisposition,
    id: m.id | 0,
    body: "over" in m.body ? new Uint8Array(maxBody + 1) : new Uint8Array(m.body.size),
    ports: m.ports.map((r) => ({ name: numOf(r.name, names) >>> 0, disposition: r.disposition })),
    timeoutMs: m.timeoutMs,
    seq,
    code: 0,
    traceContext: new Uint8Array(0),
  };
}

/** What one case sends: the trap's bytes, and what it stands for (an entry point, or null for garbage). */
export function trapBytes(c: TrapCase, parties: Party[], maxBody: number, seq: number): { bytes: Uint8Array; entry: string | null; good: boolean } {
  if ("raw" in c) return { bytes: c.raw, entry: null, good: false };
  if ("mutate" in c) {
    const inner = trapBytes(c.mutate, parties, maxBody, seq);
    const out = inner.bytes.slice();
    if (out.length) for (const [i, v] of c.at) out[i % out.length] = v;
    return { bytes: out, entry: null, good: false };
  }
  if ("truncate" in c) {
    const inner = trapBytes(c.truncate, parties, maxBody, seq);
    return { bytes: inner.bytes.subarray(0, inner.bytes.length ? c.keep % inner.bytes.length : 0), entry: null, good: false };
  }
  const id = tokenOf(c.who, parties);
  const good = c.who.token === "own" && c.who.task < parties.length;
  const names = namesOf(parties[c.who.task]?.k);
  if ("send" in c) {
    return { bytes: Trap.encode({ ...id, credit: c.credit, seq: 0, send: messageOf(c.send, names, maxBody, seq) }).finish(), entry: "send", good };
  }
  if ("msgSend" in c) {
    const req = MachDefinition.methods.msgSend.requestType.encode(messageOf(c.msgSend, names, maxBody, seq)).finish();
    return { bytes: Trap.encode({ ...id, credit: 0, seq: 0, call: { msgid: MACH.byKey.get("msgSend")!.msgid, request: req, traceContext: new Uint8Array(0) } }).finish(), entry: "msgSend", good };
  }
  if ("heartbeat" in c) return { bytes: Trap.encode(Trap.fromPartial({ ...id, credit: c.credit, heartbeat: true })).finish(), entry: "heartbeat", good };
  const m = c.call >= 0 ? TRAP_CALLS[c.call]! : null;
  let request = m ? bytesOf(m.def, c.body, names) : new Uint8Array([8, 1]);
  // task_nats_credentials names a task by id and token: a random token never
  // matches, so a well-formed body names one of the batch's tasks (flipped,
  // cut and random bodies still go as they are).
  if (m?.key === "taskNatsCredentials" && "fields" in c.body) {
    const p = parties[c.who.task % parties.length]!;
    request = TaskNatsCredentialsRequest.encode({ taskId: p.k.id, token: p.token }).finish();
  }
  return { bytes: Trap.encode({ ...id, credit: c.credit, seq: 0, call: { msgid: m ? m.msgid : 4999, request, traceContext: new Uint8Array(0) } }).finish(), entry: m ? m.key : null, good };
}

/** Answers that mean the trap never reached a handler. */
const UNREACHED = new Set<number>([Errno.MIG_BAD_ID, Errno.MIG_BAD_ARGUMENTS, Errno.KERN_INVALID_TASK]);

/** Sends a batch of trap cases from fresh tasks, then ends them; answers how the batch went. */
export async function runTraps(w: KernelWorld, batch: TrapCase[], stats: FuzzStats): Promise<void> {
  const k = w.kernel;
  // The baseline of this batch: a leak of an earlier one (while shrinking) is not this one's.
  w.baseline = auditKernel(k).census;
  const ns = k.newNamespace(k.root, "fuzz");
  k.root.children.add(ns);
  const a = k.bootTask({ name: "fuzz-a", ns, hostPriv: true });
  const b = k.bootTask({ name: "fuzz-b", ns });
  const parties: Party[] = [
    { k: a.task, token: a.token },
    { k: b.task, token: b.token },
  ];
  // Each holds the other's task port, so insert/extract and task calls cross spaces.
  await crossTaskPorts(w, parties, a.hostPriv);
  const answers = new Set<Promise<void>>();
  let seq = 1;
  for (const c of batch) {
    const { bytes, entry, good } = trapBytes(c, parties, k.config.maxBodyBytes, seq++);
    if (TRACE) console.error(`trap ${JSON.stringify(c)}`);
    stats.sent();
    // Sends go one way, as tasks send them; calls wait for their answer.
    // Garbage goes one way too: what it decodes to may be a heartbeat, which has none.
    const oneWay = "send" in c || "heartbeat" in c || entry === null;
    if (oneWay) {
      w.bus.publish(k.subjects.trap, bytes);
      if (entry && good) stats.reach(entry);
      continue;
    }
    const t0 = Date.now();
    const p = w.bus.request(k.subjects.trap, bytes, 5000).then(
      (rep) => {
        if (TRACE && Date.now() - t0 > 500) console.error(`SLOW ${Date.now() - t0} ms: ${JSON.stringify(c)}`);
        const r = CallReply.decode(rep);
        stats.answered(r.code);
        if (entry && good && !UNREACHED.has(r.code)) stats.reach(entry);
      },
      () => {
        if (TRACE) console.error(`TIMEOUT: ${JSON.stringify(c)}`);
        stats.answered(Errno.ETIMEDOUT);
      },
    );
    answers.add(p);
    void p.finally(() => answers.delete(p));
    // A bounded number in flight, as a task's window bounds it: a sliding
    // window (the next call goes out as soon as one is answered), not waves
    // of 32 that wait for their slowest.
    if (answers.size >= 32) await Promise.race(answers);
  }
  await Promise.all(answers);
  await w.bus.flush();
  // One more round trip: every trap published before it has been handled.
  // (A call: heartbeats are never answered.)
  await kcall(w, parties[0]!, "portNames", {}).catch(() => {});
  const audit = auditKernel(k);
  if (audit.problems.length) throw new Violation(`kernel books while the batch's tasks live:\n${audit.problems.join("\n")}`);
  if (ns.active) k.destroyNamespace(ns, "fuzz batch over");
}

/** A kernel call over the bus as `p`, as Task.call makes it. */
export async function kcall(w: KernelWorld, p: Party, key: string, req: object): Promise<Record<string, unknown>> {
  const m = MACH.byKey.get(key)!;
  const request = m.def.requestType.encode(m.def.requestType.fromPartial(req)).finish();
  const rep = CallReply.decode(await w.bus.request(w.kernel.subjects.trap, Trap.encode(Trap.fromPartial({ task: p.k.id, token: p.token, call: { msgid: m.msgid, request } })).finish(), 5000));
  if (rep.code) throw new Violation(`${key} for the batch's setup failed: ${rep.code} ${rep.detail}`);
  return m.def.responseType.decode(rep.reply) as Record<string, unknown>;
}

/** a takes b's task port through task_for_id (it holds the namespace's host_priv) and gives b its own. */
async function crossTaskPorts(w: KernelWorld, [a, b]: Party[], hostPriv: number): Promise<void> {
  const { task } = (await kcall(w, a!, "taskForId", { hostPriv, taskId: b!.k.id })) as { task: number };
  const aself = a!.k.space.byPort.get(a!.k.self)!.name;
  await kcall(w, a!, "portInsertRight", { task, name: 0x4000, right: aself, disposition: 19 });
}

/** After the batch's namespace ended: nothing of it may be left. */
export async function checkKernel(w: KernelWorld): Promise<void> {
  const k = w.kernel;
  let audit = auditKernel(k);
  await settles(
    () => {
      audit = auditKernel(k);
      const c = audit.census;
      const b = w.baseline;
      return !audit.problems.length && c.tasks === b.tasks && c.names === b.names && c.ports === b.ports && c.queued === b.queued && c.blocked === b.blocked && c.namespaces === b.namespaces;
    },
    "the batch's tasks are gone but the kernel did not return to its baseline",
    () => `baseline ${JSON.stringify(w.baseline)}, now ${JSON.stringify(audit.census)}${audit.problems.length ? `\n${audit.problems.join("\n")}` : ""}`,
  );
}

export const kernelTarget: FuzzTarget<KernelWorld, TrapCase> = {
  name: "kernel",
  batchSize: 200,
  start: (kind) => kernelWorld(kind),
  entries: () => [...TRAP_CALLS.map((m) => m.key), "send", "heartbeat"],
  message: () => trapCase,
  run: runTraps,
  check: (w) => checkKernel(w),
  close: (w) => w.close(),
};

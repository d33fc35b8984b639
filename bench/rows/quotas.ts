// Noisy neighbours: a sibling hurd's Ping RPCs and process lifecycles while
// another hurd floods the kernel, against the same with that hurd idle, in
// one run (interleaved, so both see the same machine). The flood: the noisy
// hurd holds all it may (its tasks, port names and queued bytes at their
// limits, the queue full of 4 MiB messages in process, of max_payload-sized
// ones on NATS), and three flooders in it keep asking for more — a task, a
// port name, a queued message — back to back, one call in flight each,
// every one refused at its limit.
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { Process, WNOHANG } from "@hurdmesh/libhurd";
import { client, MsgType, serve, type Task } from "@hurdmesh/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { bootRig, type Rig } from "../rig.js";
import { lifecycle } from "./proc.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

const MiB = 1024 * 1024;
/** The noisy hurd's limits: a few dozen MiB of kernel memory, reached in a second. */
const LIMITS = { maxTasks: 64, maxPorts: 4096, maxQueuedBytes: 16 * MiB, maxChildren: 4 };

export const SIBLING = (what: "Ping" | "lifecycle", flooding: boolean) => `sibling hurd ${what}, neighbour ${flooding ? "flooding" : "idle"}`;

/**
 * The flood: on while a "flooding" row is measured, off (waiting) while an
 * "idle" one is. Every loop waiting for it is woken (one waiter kept alone
 * left the others asleep for good, and close() waiting on them: the hang
 * that kept these rows out of the bench).
 */
class Flood {
  on = false;
  private readonly waiting = new Set<() => void>();
  stopped = false;
  /** Attempts refused with the code of their limit. */
  refused = 0;
  /** Attempts that failed otherwise (the first kept): the flood is not what the rows say. */
  other = 0;
  firstOther = "";

  set(on: boolean): void {
    if (on === this.on) return;
    this.on = on;
    if (on) this.wakeAll();
  }

  private wakeAll(): void {
    for (const w of this.waiting) w();
    this.waiting.clear();
  }

  /** Runs `attempt` back to back while the flood is on; each is expected to be refused with one of `codes`. */
  async loop(attempt: () => Promise<unknown>, codes: string[]): Promise<void> {
    while (!this.stopped) {
      if (!this.on) {
        await new Promise<void>((r) => this.waiting.add(r));
        continue;
      }
      await attempt().then(
        () => this.fail("an attempt past the limit was accepted"),
        (e) => (codes.includes((e as { errno?: string }).errno ?? "") ? this.refused++ : this.fail((e as Error).message)),
      );
      // A turn of the event loop: in process, a loop of refusals would otherwise keep it.
      await new Promise((r) => setImmediate(r));
    }
  }

  private fail(why: string): void {
    if (this.other++ === 0) this.firstOther = why;
  }

  stop(): void {
    this.stopped = true;
    this.wakeAll();
  }
}

/** Fills the noisy hurd to its limits from `f` (a task inside it); answers what the flooders retry. */
async function fill(f: Task, attach: Rig["attach"], busLimit: number): Promise<Array<{ attempt: () => Promise<unknown>; codes: string[] }>> {
  // Queued bytes: a receiver that takes nothing after its first message, its queue filled to the byte.
  const sr = await f.taskCreate("sink", { dieWithParent: true });
  const sink = await attach(sr.taskId, sr.token, { window: 1 });
  const port = await sink.allocate();
  await sink.call("portSetQlimit", { name: port, qlimit: 65536 });
  sink.receive(port, () => new Promise<void>(() => {}));
  const to = (await f.extractRight(sr.task, port, MsgType.MSG_TYPE_MAKE_SEND)).name;
  for (const size of [Math.min(4 * MiB, busLimit - 4096), 64 * 1024, 1024]) {
    const body = new Uint8Array(size);
    for (let i = 0; i < 100; i++) {
      const ok = await f.rpc(to, 9, body, { timeoutMs: 100 }).then(
        () => true,
        (e) => (e as { errno?: string }).errno === "ETIMEDOUT",
      );
      if (!ok) break;
    }
  }
  // Tasks and names: up to the limits.
  for (let i = 0; i < 1000; i++) if (!(await f.taskCreate("t", { dieWithParent: true }).then(() => true, () => false))) break;
  for (let i = 0; i < 10_000; i++) if (!(await f.allocate().then(() => true, () => false))) break;
  const small = new Uint8Array(1024);
  return [
    { attempt: () => f.taskCreate("t", { dieWithParent: true }), codes: ["KERN_RESOURCE_SHORTAGE"] },
    { attempt: () => f.allocate(), codes: ["KERN_RESOURCE_SHORTAGE"] },
    { attempt: () => f.rpc(to, 9, small, { timeoutMs: 100 }), codes: ["MACH_SEND_NO_BUFFER", "KERN_RESOURCE_SHORTAGE"] },
  ];
}

function group(kind: "local" | "nats"): RowGroup {
  return {
    name: `quotas-${kind}`,
    needsNats: kind === "nats",
    async open(ctx: BenchContext): Promise<Opened> {
      const r: Rig = await bootRig(kind, ctx, ctx.log);
      const log = () => {};
      const quiet: Subhurd = await bootSubhurd(r.parent.task, "quiet", r.attach, new InProcessLauncher(r.attach), { log });
      const noisy: Subhurd = await bootSubhurd(r.parent.task, "noisy", r.attach, new InProcessLauncher(r.attach), { log, limits: LIMITS });
      const sibling = await Process.attach(quiet.task, quiet.init.booted!.proc, quiet.init.booted!.auth, { msgport: false });
      // The sibling's Ping server and its client, both in the quiet hurd.
      const ps = await quiet.task.taskCreate("pinger");
      const pinger = await r.attach(ps.taskId, ps.token);
      const pport = await pinger.allocate();
      serve(pinger, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(pport, {});
      const pname = (await quiet.task.extractRight(ps.task, pport, MsgType.MSG_TYPE_MAKE_SEND)).name;
      const pc = client(quiet.task, PingDefinition, pname);
      const payload = new Uint8Array(16);
      const ping = () => pc.ping({ payload });
      await ping();
      const life = lifecycle({ ...r, parent: sibling });
      // The flooders, each a task in the noisy hurd (one of them fills it).
      const fr = await noisy.task.taskCreate("flooder", { dieWithParent: true });
      const f = await r.attach(fr.taskId, fr.token);
      const attempts = await fill(f, r.attach, r.kernel.busLimit);
      const flood = new Flood();
      const loops = attempts.map((a) => flood.loop(a.attempt, a.codes));
      const as = (on: boolean, call: () => Promise<unknown>) => () => {
        // A flood that stopped (its task gone) or is not being refused makes
        // the flooding rows meaningless: their calls fail, and the row says so.
        if (on && (f.detached || flood.other > 0)) return Promise.reject(new Error(`the flood is not what it should be: ${f.detached ? "its task is gone" : flood.firstOther}`));
        flood.set(on);
        return call();
      };
      return {
        subjects: [
          { name: SIBLING("Ping", false), bus: kind, call: as(false, ping) },
          { name: SIBLING("Ping", true), bus: kind, call: as(true, ping) },
          { name: SIBLING("lifecycle", false), bus: kind, call: as(false, life) },
          { name: SIBLING("lifecycle", true), bus: kind, call: as(true, life) },
        ],
        async close() {
          flood.stop();
          await Promise.allSettled(loops);
          ctx.log(`quotas (${kind}): ${flood.refused} flood attempts refused at their limits${flood.other ? `; ${flood.other} failed otherwise (first: ${flood.firstOther})` : ""}`);
          while (await sibling.wait(-1, WNOHANG).catch(() => null));
          await r.close();
        },
      };
    },
  };
}

export const quotasLocal = group("local");
export const quotasNats = group("nats");

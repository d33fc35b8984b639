// A hurd booted the way containers boot it (a boot claim, launch orders to
// proc's and auth's containers, pid 1) and watched over the bus keeps to
// the subject map: every publish, subscription, request and answer each
// party makes is one its role's permissions (permissionsOf in
// packages/mach/src/subjects.ts) grant, and between them they use every
// kind of subject the map has. NATS permissions derived from the map will
// therefore let a hurd run.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { awaitLaunch, BusLauncher, InProcessLauncher, startBootServer } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { Kernel, TraceBus, TrapServer } from "@hurdmesh/kernel";
import { LocalHub, Task, type Bus, type BusHandler, type BusSubscription } from "@hurdmesh/mach";
import { matches, parseSubject, permissionsOf, subjectsOf, type ParsedSubject, type Role } from "@hurdmesh/mach/internal";
import { BootClaimReply, BootClaimRequest } from "@hurdmesh/proto/hurd/boot/v1/boot";
import { TraceBatch, TraceWatchCtl, TraceWatchReply, TraceWatchRequest, WatchRequest } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { BootClaims } from "../../services/kernel/src/boot-claim.js";
import { until } from "../harness.js";

type Op = "publish" | "request" | "subscribe" | "respond";

/** A party's connection: passes everything through and notes what it did on which subject. */
class RecordingBus implements Bus {
  readonly ops: Array<{ op: Op; subject: string }> = [];
  private readonly replies = new Set<string>();
  constructor(
    public readonly role: Role | null,
    private readonly inner: Bus,
  ) {}
  get kind() {
    return this.inner.kind;
  }
  get closed() {
    return this.inner.closed;
  }
  publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    this.ops.push({ op: this.replies.delete(subject) ? "respond" : "publish", subject });
    this.inner.publish(subject, data, reply, traceparent);
  }
  subscribe(subject: string, handler: BusHandler): BusSubscription {
    this.ops.push({ op: "subscribe", subject });
    return this.inner.subscribe(subject, (s, d, reply, tp) => {
      if (reply) this.replies.add(reply);
      handler(s, d, reply, tp);
    });
  }
  request(subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array> {
    this.ops.push({ op: "request", subject });
    return this.inner.request(subject, data, timeoutMs, traceparent);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** What `role` did that its permissions do not grant. */
function beyond(system: string, bus: RecordingBus): string[] {
  const p = permissionsOf(system, bus.role!);
  const pub = (s: string) => p.publish.some((x) => matches(x, s)) && !p.denyPublish.some((x) => matches(x, s));
  // A subscription pattern is granted when a granted pattern covers it token for token.
  const sub = (s: string) => p.subscribe.some((x) => matches(x, s));
  const out: string[] = [];
  for (const { op, subject } of bus.ops) {
    const ok =
      op === "publish" ? pub(subject) : op === "request" ? pub(subject) && p.inbox !== undefined && sub(`${p.inbox}.x.1`) : op === "subscribe" ? sub(subject) : p.respond !== null;
    if (!ok) out.push(`${JSON.stringify(bus.role)} ${op} ${subject}`);
  }
  return out;
}

describe("a booted hurd keeps to the subject map", () => {
  it("the kernel, startup, the servers' containers, every task and a trace watcher do only what their roles grant", async () => {
    const system = `subj${process.pid}`;
    const s = subjectsOf(system);
    const hub = new LocalHub();
    const buses: RecordingBus[] = [];
    const connect = (role: Role | null) => {
      const b = new RecordingBus(role, hub.connect());
      buses.push(b);
      return b;
    };
    const kernel = new Kernel({ system }, { log: () => {} });
    const kbus = connect({ kind: "kernel" });
    const traps = new TrapServer(kernel, kbus);
    traps.start();
    const claims = new BootClaims(kernel, kbus, "a-long-secret", { pollMs: 50 });
    claims.start();
    const traceBus = new TraceBus(kernel, kbus);
    traceBus.start();
    const tasks: Task[] = [];
    const attach = async (taskId: number, token: string, bus: RecordingBus = connect({ kind: "task", taskId })) => {
      const t = await Task.attach({ bus, system, taskId, token, window: 1024, timeoutMs: 20_000 });
      tasks.push(t);
      return t;
    };
    try {
      // proc's and auth's containers wait for their launch orders.
      const launched = (["auth", "proc"] as const).map((server) =>
        awaitLaunch(connect({ kind: "launch", hurd: "", server }), s.launch("", server), async (o) => {
          await startBootServer(server, await attach(o.taskId, o.token), { hostPriv: o.hostPriv, attach });
        }),
      );
      // init's container claims its boot task, then boots as that task with proc and auth launched over the bus.
      const claimBus = connect({ kind: "boot-claim", hurd: "" });
      const claim = BootClaimReply.decode(await claimBus.request(s.bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret: "a-long-secret" })).finish(), 5000));
      assert.equal(claim.errno, 0, claim.error);
      const ibus = connect({ kind: "task", taskId: claim.taskId, launches: "" });
      const initTask = await attach(claim.taskId, claim.token, ibus);
      const launcher = new BusLauncher(ibus, { system, hurd: "", remote: ["auth", "proc"], local: new InProcessLauncher((id, token) => attach(id, token)) });
      const init = new Init({ task: initTask, hostPriv: claim.hostPriv, launcher, log: () => {} });
      await init.boot();
      await Promise.all(launched);

      // A trace watcher, as watchTraceOnBus does it: the task asks, then the
      // watcher's own connection subscribes, starts, sees a batch, cancels.
      const cred = { taskId: initTask.id, token: claim.token };
      const granted = TraceWatchReply.decode(
        await ibus.request(s.traceWatch, TraceWatchRequest.encode({ ...cred, watch: WatchRequest.fromPartial({ hostPriv: claim.hostPriv }), leaseMs: 0 }).finish(), 5000),
      );
      assert.equal(granted.errno, 0, granted.error);
      const wbus = connect({ kind: "trace-watcher", watchId: granted.watchId });
      assert.equal(granted.subject, s.traceBatches(granted.watchId));
      let batches = 0;
      wbus.subscribe(granted.subject, (_s, d) => void (TraceBatch.decode(d).records.length && batches++));
      const ctl = (cancel: boolean) => TraceWatchCtl.encode({ ...cred, watchId: granted.watchId, leaseMs: 0, cancel }).finish();
      assert.equal(TraceWatchReply.decode(await wbus.request(s.traceCtl, ctl(false), 5000)).errno, 0);
      await init.makeConsole();
      await until(() => batches > 0, 5000, "a trace batch");
      assert.equal(TraceWatchReply.decode(await wbus.request(s.traceCtl, ctl(true), 5000)).errno, 0);

      assert.equal(await init.reboot(), 0);

      const crossed = buses.filter((b) => b.role).flatMap((b) => beyond(system, b));
      assert.deepEqual(crossed, []);
      // Every kind of subject the map has was used (so the check above covered them all).
      const kinds = new Set(
        buses.flatMap((b) => b.ops.map((o) => (o.subject.endsWith(".>") ? "delivery" : (parseSubject(o.subject) as ParsedSubject | null)?.kind ?? `unknown: ${o.subject}`))),
      );
      assert.deepEqual([...kinds].sort(), ["boot-claim", "delivery", "inbox", "launch", "trace-batches", "trace-ctl", "trace-watch", "trap"]);
    } finally {
      for (const t of tasks) t.abandon();
      traceBus.stop();
      claims.stop();
      traps.stop();
      kernel.close();
      for (const b of buses) await b.close();
    }
  });
});

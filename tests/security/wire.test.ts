// The red team against a hurd on NATS with authorization on (issue 15):
// each attack an attacker on the same network (or a task of the hurd turned
// hostile) would try, each refused by nats-server or the kernel, and after
// each the hurd lists the same processes in the same states and proc still
// answers. The bound a dead task's credentials live for is the README's.
// That a workload's environment and a session file hold no NATS address or
// credentials is tests/cli/nats-up.test.ts's (it needs `hurd up --nats` itself).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { errors } from "@nats-io/transport-node";
import { Errno, Notify } from "@hurdmesh/mach";
import { accountEventSubjects, inboxOf, methods, watchTraceOnBus } from "@hurdmesh/mach/internal";
import { encodeUser, NKey } from "@hurdmesh/mach/nats-auth";
import { BootClaimReply, BootClaimRequest, LaunchReply } from "@hurdmesh/proto/hurd/boot/v1/boot";
import { CallReply, DeadNameNotification, Delivery, MachDefinition, PortAllocateRequest, TaskTerminatedNotification, Trap } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { assertSubscribeRefused, assertUnchanged, BOOT_SECRET, publishRefusals, startTarget, within, WAIT_MS, type Target } from "./kit.js";

const haveNats = !process.env.HURD_TEST_BUSES || process.env.HURD_TEST_BUSES.split(",").includes("nats");
const mach = methods(MachDefinition);
const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** proc_getpids (process.defs 24016). */
const PROC_GETPIDS = 24016;

describe("red team: the wire with NATS authorization on", { skip: !haveNats && "HURD_TEST_BUSES excludes nats" }, () => {
  let t: Target;
  before(async () => {
    t = await startTarget();
  });
  after(() => t?.stop());

  it("refuses an anonymous client, and a user whose JWT the account never signed (Authorization Violation)", async () => {
    const before = await t.ps();
    await assert.rejects(t.raw(), (e: unknown) => e instanceof errors.AuthorizationError);
    const forger = NKey.create("user");
    const stranger = NKey.create("account");
    const jwt = encodeUser(forger.publicKey, stranger, { name: "forger", account: t.keys.account, permissions: { pub: [">"], sub: [">"], subs: -1 } });
    await assert.rejects(t.raw({ jwt, seed: forger.seed }), (e: unknown) => e instanceof errors.AuthorizationError);
    await assertUnchanged(t, before, { forged: 0 });
  });

  it("a task of the hurd cannot read the bus: not hurd.>, not the traps (and their tokens), not another task's deliveries or replies", async () => {
    const m = await t.newTask("mallory");
    const nc = await t.raw(m.creds, inboxOf(t.system, { kind: "task", taskId: m.id }));
    const before = await t.ps();
    const procInbox = inboxOf(t.system, { kind: "task", taskId: t.procTaskId });
    for (const s of [">", "hurd.>", `hurd.${t.system}.>`, t.s.trap, t.s.deliveries(t.procTaskId), t.s.delivery(t.procTaskId, 1), t.s.patterns.deliveries, "_INBOX.>", `${procInbox}.>`, t.s.bootClaim, t.s.patterns.launches(""), t.s.patterns.traceBatches, "$SYS.>"])
      await assertSubscribeRefused(nc, s);
    // A container's user (here proc's launch user) reads nothing but its order either.
    const launcher = await t.raw(t.roleUser({ kind: "launch", hurd: "", server: "proc" }));
    for (const s of [t.s.trap, "hurd.>", t.s.deliveries(t.procTaskId)]) await assertSubscribeRefused(launcher, s);
    await assertUnchanged(t, before, { forged: 0 });
  });

  it("a task cannot write where only the kernel does: a forged message, notification, task-terminated, KERN_TERMINATED or garbage on proc's delivery subjects is refused", async () => {
    const m = await t.newTask("mallory-writer");
    const victim = await t.newTask("victim");
    const nc = await t.raw(m.creds, inboxOf(t.system, { kind: "task", taskId: m.id }));
    const refused = publishRefusals(nc);
    const before = await t.ps();
    const forged = t.proc.stats.forgedNotifications;
    const attacks: Array<[string, Uint8Array]> = [
      ["a forged message (proc_getpids)", Delivery.encode({ message: { local: 1, reply: 0, replyType: 0, id: PROC_GETPIDS, body: new Uint8Array(0), ports: [], kernel: false, sender: victim.id, seqno: 1, code: 0, traceContext: new Uint8Array(0) }, seq: 0 }).finish()],
      ["a forged dead-name notification", Delivery.encode({ message: { local: 1, reply: 0, replyType: 0, id: Notify.DEAD_NAME, body: DeadNameNotification.encode({ name: 1 }).finish(), ports: [], kernel: true, sender: 0, seqno: 1, code: 0, traceContext: new Uint8Array(0) }, seq: 0 }).finish()],
      ["a forged task-terminated for a live task", Delivery.encode({ message: { local: 2, reply: 0, replyType: 0, id: Notify.TASK_TERMINATED, body: TaskTerminatedNotification.encode({ taskId: victim.id, reason: "forged", namespaceId: 0 }).finish(), ports: [], kernel: true, sender: 0, seqno: 1, code: 0, traceContext: new Uint8Array(0) }, seq: 0 }).finish()],
      ["a forged KERN_TERMINATED (proc's own end)", Delivery.encode({ failed: { seq: 0, code: Errno.KERN_TERMINATED, reply: 0 }, seq: 0 }).finish()],
      ["six bytes of garbage", new Uint8Array([0x12, 0x04, 0x10, 0x8e, 0x02, 0xff])],
    ];
    let port = 1;
    for (const [what, bytes] of attacks) {
      const subject = t.s.delivery(t.procTaskId, port++);
      nc.publish(subject, bytes);
      await refused.next(subject).catch((e: Error) => assert.fail(`${what}: ${e.message}`));
    }
    // And on the victim's, and on everyone's at once.
    for (const subject of [t.s.delivery(victim.id, 1), t.s.delivery(m.id, 1)]) {
      nc.publish(subject, attacks[2]![1]);
      await refused.next(subject);
    }
    await assertUnchanged(t, before, { forged });
    assert.equal(victim.task.detached, false);
  });

  it("nobody but nats-server tells the kernel a connection closed: a forged DISCONNECT (or CONNECT) advisory, even one naming the forger's own connection exactly, is refused and changes nothing", async () => {
    const m = await t.newTask("mallory-sys");
    const nc = await t.raw(m.creds, inboxOf(t.system, { kind: "task", taskId: m.id }));
    const refused = publishRefusals(nc);
    const userOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as { sub: string }).sub;
    const mallory = userOf(m.creds.jwt);
    const proc = userOf(t.credsOf(t.procTaskId)!.jwt);
    // The kernel does hear the wire's own advisories: mallory's two connections (its task's and this raw one), proc's one.
    await within((async () => {
      while (t.holders.connections(mallory) < 2) await sleep(20);
    })(), WAIT_MS, "the kernel hearing mallory's CONNECTs");
    assert.equal(t.holders.connections(proc), 1, "proc's connection, heard at the boot");
    const before = await t.ps();
    const lapsed = t.holders.lapsedByEvent;
    // As nats-server writes them (2.9's client_disconnect), for mallory's own connection (its ids are its to read) and for proc's.
    const advisory = (type: "connect" | "disconnect", user: string, server: string, client: number) =>
      enc.encode(JSON.stringify({ type: `io.nats.server.advisory.v1.client_${type}`, id: "forged", timestamp: new Date().toISOString(), server: { name: "n", host: "0.0.0.0", id: server }, client: { id: client, acc: t.keys.account, user, name: "forged" }, reason: "Client Closed" }));
    const [connectSubject, disconnectSubject] = accountEventSubjects(t.keys.account);
    const attacks: Array<[string, Uint8Array]> = [
      [disconnectSubject!, advisory("disconnect", mallory, nc.info!.server_id, nc.info!.client_id)],
      [disconnectSubject!, advisory("disconnect", proc, nc.info!.server_id, 1)],
      [connectSubject!, advisory("connect", proc, "forged-server", 99)],
    ];
    for (const [subject, bytes] of attacks) {
      nc.publish(subject, bytes);
      await refused.next(subject);
    }
    await sleep(200);
    assert.equal(t.holders.connections(mallory), 2, "mallory's raw connection still counted open");
    assert.equal(t.holders.connections(proc), 1, "proc's connections as the wire says");
    assert.equal(t.holders.lapsedByEvent, lapsed, "no task put into its restart grace");
    assert.equal(t.kernel.tasks.get(t.procTaskId)!.attached, true, "proc still holds its task");
    await assertUnchanged(t, before);
  });

  it("a trap cannot be captured; a task replaying its own trap only does again what it may do anyway; a trap asking for its answer in another's inbox is dropped", async () => {
    const m = await t.newTask("mallory-replay");
    const myInbox = inboxOf(t.system, { kind: "task", taskId: m.id });
    const nc = await t.raw(m.creds, myInbox);
    await assertSubscribeRefused(nc, t.s.trap);
    const before = await t.ps();
    const namesBefore = (await m.task.names()).names.length;
    const trap = Trap.encode({ task: m.id, token: m.token, credit: 0, seq: 0, call: { msgid: mach.byKey.get("portAllocate")!.msgid, request: PortAllocateRequest.encode({ right: 1 }).finish(), traceContext: new Uint8Array(0) } }).finish();
    for (let i = 0; i < 2; i++) assert.equal(CallReply.decode((await nc.request(t.s.trap, trap, { timeout: WAIT_MS })).data).code, 0, "its own call, again");
    assert.equal((await m.task.names()).names.length, namesBefore + 2, "two ports in its own space, nothing anywhere else");
    // Another task's id with the attacker's token: an unknown task.
    const stolen = Trap.encode({ task: t.procTaskId, token: m.token, credit: 0, seq: 0, call: { msgid: mach.byKey.get("portAllocate")!.msgid, request: PortAllocateRequest.encode({ right: 1 }).finish(), traceContext: new Uint8Array(0) } }).finish();
    assert.equal(CallReply.decode((await nc.request(t.s.trap, stolen, { timeout: WAIT_MS })).data).code, Errno.KERN_INVALID_TASK);
    // Its own trap, answer asked on proc's inbox (a confused deputy): dropped, never answered.
    const rejected = t.kernel.stats.rejectedTraps;
    nc.publish(t.s.trap, trap, { reply: `${inboxOf(t.system, { kind: "task", taskId: t.procTaskId })}.x.1` });
    await nc.flush();
    await within(
      (async () => {
        while (t.kernel.stats.rejectedTraps === rejected) await sleep(10);
      })(),
      WAIT_MS,
      "the misdirected trap dropped",
    );
    assert.equal((await m.task.names()).names.length, namesBefore + 2, "the dropped trap did nothing");
    await assertUnchanged(t, before, { forged: 0 });
  });

  it("a dead task's credentials stop working: its connection is cut and it cannot come back (within the README's bound)", async () => {
    const d = await t.newTask("doomed");
    const alive = await t.ps();
    const nc = await t.raw(d.creds, inboxOf(t.system, { kind: "task", taskId: d.id }));
    const closed = nc.closed();
    const t0 = performance.now();
    t.kernel.terminate(t.kernel.tasks.get(d.id)!, "red team");
    const why = await within(closed, 2_000, "the dead task's connection cut");
    assert.match(String(why), /revoked/i);
    const ms = performance.now() - t0;
    assert.ok(ms < 2_000, `cut in ${ms.toFixed(0)} ms`);
    await within(
      (async () => {
        while (!d.task.detached) await sleep(10);
      })(),
      WAIT_MS,
      "the task's own Task ending",
    );
    // proc hears of the death by a dead-name notice of its own, which may come after the task's
    // own ending: the listing to compare against is the one without the doomed process.
    let before = await t.ps();
    await within(
      (async () => {
        while (before.length >= alive.length) before = (await sleep(10), await t.ps());
      })(),
      WAIT_MS,
      "proc forgetting the dead task's process",
    );
    await assert.rejects(t.raw(d.creds, inboxOf(t.system, { kind: "task", taskId: d.id })), (e: unknown) => e instanceof errors.AuthorizationError);
    await assertUnchanged(t, before, { forged: 0 });
  });

  it("a launch order is taken only by the server it names, and sent only by its hurd's init", async () => {
    const m = await t.newTask("mallory-launch");
    const before = await t.ps();
    const orderSubject = t.s.launch("", "proc");
    // auth's container, and a task, try to take proc's order.
    const auth = await t.raw(t.roleUser({ kind: "launch", hurd: "", server: "auth" }));
    await assertSubscribeRefused(auth, orderSubject);
    await assertSubscribeRefused(auth, t.s.patterns.launches(""));
    const mc = await t.raw(m.creds, inboxOf(t.system, { kind: "task", taskId: m.id }));
    await assertSubscribeRefused(mc, orderSubject);
    // A task that is not init cannot send one (to make proc's container run as a task of its choosing).
    const refused = publishRefusals(mc);
    mc.publish(orderSubject, enc.encode("forged order"));
    await refused.next(orderSubject);
    // proc's container takes its order from init (a task with launches) and answers it once.
    const proc = await t.raw(t.roleUser({ kind: "launch", hurd: "", server: "proc" }));
    const procRefused = publishRefusals(proc);
    let second = "";
    proc.subscribe(orderSubject, {
      callback: (_e, msg) => {
        msg.respond(LaunchReply.encode({ errno: 0, error: "" }).finish());
        second = msg.reply ?? "";
        msg.respond(enc.encode("again"));
      },
    });
    await proc.flush();
    const initId = 999_999;
    const init = await t.raw(t.roleUser({ kind: "task", taskId: initId, launches: "" }), inboxOf(t.system, { kind: "task", taskId: initId }));
    const r = await init.request(orderSubject, enc.encode("order"), { timeout: WAIT_MS });
    assert.equal(LaunchReply.decode(r.data).errno, 0);
    await procRefused.next(second);
    // init launches only its own hurd's servers.
    const initRefused = publishRefusals(init);
    init.publish(t.s.launch("alpha", "proc"), enc.encode("order"));
    await initRefused.next(t.s.launch("alpha", "proc"));
    await assertUnchanged(t, before, { forged: 0 });
  });

  it("a boot claim with a wrong secret is refused and makes nothing; nobody else may claim; a claim answered elsewhere is dropped", async () => {
    const m = await t.newTask("mallory-claim");
    const before = await t.ps();
    const tasks = t.kernel.tasks.size;
    const claimerOf = (hurd: string) => t.raw(t.roleUser({ kind: "boot-claim", hurd }), inboxOf(t.system, { kind: "boot-claim", hurd }));
    const claimer = await claimerOf("");
    for (const hurd of ["", "evil"]) {
      const c = hurd ? await claimerOf(hurd) : claimer;
      const a = BootClaimReply.decode((await c.request(t.s.bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret: "not-the-secret", hurd })).finish(), { timeout: WAIT_MS })).data);
      assert.equal(a.errno, Errno.EPERM, hurd || "root hurd");
      assert.equal(a.token, "");
      assert.equal(a.nats, undefined);
    }
    // The root hurd's claimant claiming another hurd (its answer would land in the wrong claimant's inbox): no answer at all.
    await assert.rejects(claimer.request(t.s.bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret: BOOT_SECRET, hurd: "evil" })).finish(), { timeout: 500 }), (e: unknown) => e instanceof errors.TimeoutError);
    // With the right secret but the answer (a token and a NATS user) asked on a task's inbox: dropped.
    claimer.publish(t.s.bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret: BOOT_SECRET, hurd: "sneaky" })).finish(), { reply: `${inboxOf(t.system, { kind: "task", taskId: m.id })}.x.1` });
    await claimer.flush();
    await sleep(300);
    assert.equal(t.kernel.tasks.size, tasks, "no task made");
    // A task may not claim at all.
    const mc = await t.raw(m.creds, inboxOf(t.system, { kind: "task", taskId: m.id }));
    const refused = publishRefusals(mc);
    mc.publish(t.s.bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial({ secret: BOOT_SECRET })).finish());
    await refused.next(t.s.bootClaim);
    await assertUnchanged(t, before, { forged: 0 });
  });

  it("a trace watch is read only by its own watcher, and granted only to a holder of host_priv", async () => {
    const m = await t.newTask("mallory-trace");
    const before = await t.ps();
    const records: number[] = [];
    const watch = await watchTraceOnBus(t.initTask.bus, t.system, { taskId: t.initTask.id, token: t.initToken }, { hostPriv: t.initHostPriv, includeSelf: true }, (b) => records.push(b.records.length));
    const mc = await t.raw(m.creds, inboxOf(t.system, { kind: "task", taskId: m.id }));
    await assertSubscribeRefused(mc, watch.subject);
    await assertSubscribeRefused(mc, t.s.patterns.traceBatches);
    // Without host_priv the kernel grants no watch.
    await assert.rejects(watchTraceOnBus(m.task.bus, t.system, { taskId: m.id, token: m.token }, { hostPriv: 0 }, () => {}), (e: Error & { code?: number }) => e.code === Errno.KERN_NO_ACCESS);
    // The watcher sees the traffic it is owed.
    await t.ps();
    await within(
      (async () => {
        while (records.length === 0) await sleep(10);
      })(),
      WAIT_MS,
      "a batch for the watcher",
    );
    await watch.stop();
    assert.deepEqual(await t.ps(), before);
  });
});

// Subject permissions on a real nats-server in operator mode: who can read
// and write what (SECURITY.md's table), refused by the server itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, credsAuthenticator, errors, type NatsConnection } from "@nats-io/transport-node";
import { credsFile } from "./creds.js";
import { encodeUser } from "./jwt.js";
import { NKey } from "./nkeys.js";
import { natsWanted, startFabric, type Fabric } from "./test-server.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const WAIT_MS = 3_000;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: nothing within ${ms} ms`)), ms))).finally(() => clearTimeout(t))]);
}

/** Subscribes and expects the server to refuse it. */
async function assertSubscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject, { callback: () => {} });
  const why = await within(sub.closed, WAIT_MS, `refusal of SUB ${subject}`);
  assert.ok(why instanceof errors.PermissionViolationError, `SUB ${subject} refused with a Permissions Violation (got ${String(why)})`);
  assert.equal(why.operation, "subscription");
  assert.equal(why.subject, subject);
}

/** Publish violations the server reported to a connection. */
function publishRefusals(nc: NatsConnection): { subjects: string[]; next(subject: string): Promise<void> } {
  const subjects: string[] = [];
  const waiters = new Map<string, () => void>();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof errors.PermissionViolationError && s.error.operation === "publish") {
        subjects.push(s.error.subject);
        waiters.get(s.error.subject)?.();
      }
    }
  })();
  return {
    subjects,
    next: (subject) => within(subjects.includes(subject) ? Promise.resolve() : new Promise<void>((r) => waiters.set(subject, r)), WAIT_MS, `refusal of PUB ${subject}`),
  };
}

/** Collects what a subscription receives. */
function inbox(nc: NatsConnection, subject: string): { got: string[]; first: Promise<string> } {
  const got: string[] = [];
  let arrived!: (s: string) => void;
  const first = new Promise<string>((r) => (arrived = r));
  nc.subscribe(subject, {
    callback: (err, m) => {
      if (err) return;
      got.push(`${m.subject} ${dec.decode(m.data)}`);
      arrived(got[0]);
    },
  });
  return { got, first };
}

describe("NATS subject permissions", { skip: !natsWanted && "HURD_TEST_BUSES excludes nats" }, () => {
  let f: Fabric;
  let sys: string;
  let kernel: NatsConnection;
  before(async () => {
    f = await startFabric();
    sys = `hurd.${f.system}`;
    kernel = await f.connect(f.mint("kernel", f.roles.kernel));
    // The kernel answers traps with the task's id as it would its reply.
    kernel.subscribe(`${sys}.kernel.trap`, { callback: (_e, m) => void m.respond(enc.encode(`trap ${dec.decode(m.data)}`)) });
    kernel.subscribe(`${sys}.boot.claim`, { callback: (_e, m) => void m.respond(enc.encode("claimed")) });
    await kernel.flush();
  });
  after(() => f?.stop());

  it("refuses an anonymous client (Authorization Violation)", async () => {
    await assert.rejects(connect({ servers: f.url, reconnect: false }), (e: unknown) => e instanceof errors.AuthorizationError);
  });

  it("refuses a client with a JWT signed by a key the account does not list", async () => {
    const user = NKey.create("user");
    const stranger = NKey.create("account");
    const jwt = encodeUser(user.publicKey, stranger, { name: "forger", account: f.account.publicKey, permissions: f.roles.kernel });
    await assert.rejects(f.connect({ jwt, seed: user.seed }), (e: unknown) => e instanceof errors.AuthorizationError);
  });

  it("a task traps into the kernel and gets the answer on its own inbox prefix", async () => {
    const task = await f.connect(f.mint("task 7", f.roles.task(7)));
    const r = await task.request(`${sys}.kernel.trap`, enc.encode("7"), { timeout: WAIT_MS });
    assert.equal(dec.decode(r.data), "trap 7");
    // nats.js names a request's reply <inboxPrefix>.<nuid>.<n>: under the task's own prefix.
    const replies: string[] = [];
    kernel.subscribe(`${sys}.kernel.trap`, { callback: (_e, m) => void replies.push(m.reply ?? "") });
    await kernel.flush();
    await task.request(`${sys}.kernel.trap`, enc.encode("7"), { timeout: WAIT_MS });
    assert.equal(f.roles.taskInbox(7), `_INBOX.${f.system}.7`);
    assert.ok(replies[0].startsWith(`_INBOX.${f.system}.7.`), replies[0]);
    assert.match(replies[0].slice(`_INBOX.${f.system}.7.`.length), /^[A-Za-z0-9]+\.[A-Za-z0-9]+$/);
  });

  it("a task that does not use its inbox prefix cannot make requests", async () => {
    const u = f.mint("task 9", f.roles.task(9));
    const task = await f.connect(u, { inboxPrefix: "_INBOX" });
    // Its reply subscription (_INBOX.<nuid>.*) is refused, and with it the request.
    await assert.rejects(task.request(`${sys}.kernel.trap`, enc.encode("9"), { timeout: WAIT_MS }), (e: unknown) => {
      const why = (e as Error).cause;
      return why instanceof errors.PermissionViolationError && why.operation === "subscription" && why.subject.startsWith("_INBOX.");
    });
  });

  it("a task receives its own deliveries from the kernel, and nobody else's", async () => {
    const t7 = await f.connect(f.mint("task 7", f.roles.task(7)));
    const t8 = await f.connect(f.mint("task 8", f.roles.task(8)));
    const own = inbox(t7, `${sys}.rcv.7.>`);
    const other = inbox(t8, `${sys}.rcv.8.>`);
    await t7.flush();
    await t8.flush();
    kernel.publish(`${sys}.rcv.7.3`, enc.encode("for 7"));
    kernel.publish(`${sys}.rcv.8.1`, enc.encode("for 8"));
    assert.equal(await within(own.first, WAIT_MS, "delivery to 7"), `${sys}.rcv.7.3 for 7`);
    assert.equal(await within(other.first, WAIT_MS, "delivery to 8"), `${sys}.rcv.8.1 for 8`);
    assert.deepEqual(own.got, [`${sys}.rcv.7.3 for 7`]);
  });

  it("refuses a task's subscriptions to hurd.>, the trap subject, another task's deliveries and other inboxes", async () => {
    const task = await f.connect(f.mint("task 7", f.roles.task(7)));
    for (const s of [">", "hurd.>", `${sys}.>`, `${sys}.kernel.trap`, `${sys}.rcv.8.>`, `${sys}.rcv.*.>`, `${sys}.rcv.>`, "_INBOX.>", `_INBOX.${f.system}.>`, `_INBOX.${f.system}.8.>`, `_INBOX.${f.system}.boot.>`, `${sys}.boot.claim`, `${sys}.trace.*`, `${sys}.launch.>`])
      await assertSubscribeRefused(task, s);
  });

  it("refuses a task's publications on delivery subjects, so it cannot forge a message or a kernel notice", async () => {
    const attacker = await f.connect(f.mint("task 7", f.roles.task(7)));
    const victim = await f.connect(f.mint("task 8", f.roles.task(8)));
    const got = inbox(victim, `${sys}.rcv.8.>`);
    await victim.flush();
    const refused = publishRefusals(attacker);
    for (const s of [`${sys}.rcv.8.1`, `${sys}.rcv.7.1`, `${sys}.trace.1`, `_INBOX.${f.system}.8.x.y`, `${sys}.launch._.proc`, `${sys}.boot.claim`]) {
      attacker.publish(s, enc.encode("forged"));
      await refused.next(s);
    }
    await victim.flush();
    await attacker.flush();
    assert.deepEqual(got.got, [], "nothing forged reached the victim");
  });

  it("the kernel reads traps and boot claims, writes deliveries, trace batches and answers, and no more", async () => {
    const k = await f.connect(f.mint("kernel", f.roles.kernel));
    // What the kernel subscribes to.
    for (const s of [`${sys}.kernel.trap`, `${sys}.boot.claim`, `${sys}.trace.watch`, `${sys}.trace.ctl`]) {
      const sub = k.subscribe(s, { callback: () => {} });
      await k.flush();
      assert.equal(sub.isClosed(), false, `the kernel may subscribe to ${s}`);
    }
    // What it publishes: a watcher gets its batches; a delivery and a reply arrive.
    const watcher = await f.connect(f.mint("watcher 5", f.roles.watcher(5)));
    const batches = inbox(watcher, `${sys}.trace.5`);
    await watcher.flush();
    k.publish(`${sys}.trace.5`, enc.encode("batch"));
    assert.equal(await within(batches.first, WAIT_MS, "trace batch"), `${sys}.trace.5 batch`);
    // Not the kernel's: others' inboxes to read, launch orders to take.
    for (const s of [`${sys}.rcv.>`, `_INBOX.${f.system}.7.>`, `${sys}.launch._.proc`]) await assertSubscribeRefused(k, s);
    // It answers requests it received, and writes on no inbox it was not asked from.
    const refused = publishRefusals(k);
    k.publish(`_INBOX.${f.system}.7.x.y`, enc.encode("unasked"));
    await refused.next(`_INBOX.${f.system}.7.x.y`);
  });

  it("a boot claimer asks the kernel and reads only its own inbox", async () => {
    const u = f.mint("boot claim alpha", f.roles.bootClaim("alpha"));
    const claimer = await f.connect(u);
    const r = await claimer.request(`${sys}.boot.claim`, enc.encode("{}"), { timeout: WAIT_MS });
    assert.equal(dec.decode(r.data), "claimed");
    await assertSubscribeRefused(claimer, `_INBOX.${f.system}.boot._.>`);
    await assertSubscribeRefused(claimer, `${sys}.kernel.trap`);
    const refused = publishRefusals(claimer);
    claimer.publish(`${sys}.kernel.trap`, enc.encode("x"));
    await refused.next(`${sys}.kernel.trap`);
  });

  it("a launch order is taken only by the server it names, which answers it once and publishes nothing else", async () => {
    const init = await f.connect(f.mint("task 3", f.roles.task(3, { launches: "" })));
    const proc = await f.connect(f.mint("launch proc", f.roles.launch("", "proc")));
    const auth = await f.connect(f.mint("launch auth", f.roles.launch("", "auth")));
    await assertSubscribeRefused(auth, `${sys}.launch._.proc`);
    await assertSubscribeRefused(proc, `${sys}.launch._.*`);
    await assertSubscribeRefused(proc, `${sys}.launch.alpha.proc`);
    const refused = publishRefusals(proc);
    let second: string | undefined;
    proc.subscribe(`${sys}.launch._.proc`, {
      callback: (_e, m) => {
        m.respond(enc.encode("ok"));
        second = m.reply;
        m.respond(enc.encode("again"));
      },
    });
    await proc.flush();
    const r = await init.request(`${sys}.launch._.proc`, enc.encode("order"), { timeout: WAIT_MS });
    assert.equal(dec.decode(r.data), "ok");
    await refused.next(second!);
    proc.publish(`${sys}.kernel.trap`, enc.encode("x"));
    await refused.next(`${sys}.kernel.trap`);
    // init launches only its own hurd's servers.
    const initRefused = publishRefusals(init);
    init.publish(`${sys}.launch.alpha.proc`, enc.encode("order"));
    await initRefused.next(`${sys}.launch.alpha.proc`);
  });

  it("a trace watcher receives only its own watch and may renew it", async () => {
    const w = await f.connect(f.mint("watcher 5", f.roles.watcher(5)));
    await assertSubscribeRefused(w, `${sys}.trace.6`);
    await assertSubscribeRefused(w, `${sys}.trace.*`);
    await assertSubscribeRefused(w, `${sys}.trace.watch`);
    const ctl = inbox(kernel, `${sys}.trace.ctl`);
    await kernel.flush();
    w.publish(`${sys}.trace.ctl`, enc.encode("renew 5"));
    assert.equal(await within(ctl.first, WAIT_MS, "renewal"), `${sys}.trace.ctl renew 5`);
  });

  it("a .creds file made here is read by nats.js's credsAuthenticator", async () => {
    const u = f.mint("task 11", f.roles.task(11));
    const nc = f.track(
      await connect({ servers: f.url, reconnect: false, inboxPrefix: u.inboxPrefix, authenticator: credsAuthenticator(enc.encode(credsFile(u))) }),
    );
    const r = await nc.request(`${sys}.kernel.trap`, enc.encode("11"), { timeout: WAIT_MS });
    assert.equal(dec.decode(r.data), "trap 11");
  });
});

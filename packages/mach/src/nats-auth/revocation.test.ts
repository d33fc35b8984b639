// A dead task's credentials stop working: JWTs expire, and revoked users are
// cut off and refused (nats-server 2.9 with a MEMORY resolver, the account
// JWT pushed through the system account).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { errors } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { encodeAccount, nowSeconds } from "./jwt.js";
import { NKey } from "./nkeys.js";
import { AccountRevocations, MAX_REVOCATIONS, MAX_UPDATE_GAP_MS, MIN_UPDATE_GAP_MS, pushAccountJwt, UPDATE_RETRIES, type UpdateRequester } from "./revocation.js";
import { natsWanted, startFabric, type Fabric } from "./test-server.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** The bound revoke() states (cut off once it resolves), plus the close reaching the client over loopback. */
const CUT_OFF_MS = 1_000;

const isAuthRefusal = (e: unknown) => e instanceof errors.AuthorizationError || e instanceof errors.UserAuthenticationExpiredError;
/** nats.js has no class for this one: it is a ProtocolError with the server's words. */
const isRevoked = (e: unknown) => e instanceof Error && /user authentication revoked/i.test(e.message);

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: nothing within ${ms} ms`)), ms))).finally(() => clearTimeout(t))]);
}

/** The revocations an account JWT carries, read without verifying (signing.test.ts verifies). */
function revocationsOf(jwt: string): Record<string, number> {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).nats.revocations ?? {};
}

describe("credential expiry and revocation on nats-server", { skip: !natsWanted && "HURD_TEST_BUSES excludes nats" }, () => {
  let f: Fabric;
  let trap: string;
  before(async () => {
    f = await startFabric();
    trap = `hurd.${f.system}.kernel.trap`;
    const kernel = await f.connect(f.mint("kernel", f.roles.kernel));
    kernel.subscribe(trap, { callback: (_e, m) => void m.respond(m.data) });
    await kernel.flush();
  });
  after(() => f?.stop());

  it("refuses a user whose JWT has expired", async () => {
    const u = f.mint("task 20", f.roles.task(20), nowSeconds() - 1);
    await assert.rejects(f.connect(u), isAuthRefusal);
  });

  it("closes a connection when its JWT expires (User Authentication Expired)", async () => {
    const u = f.mint("task 21", f.roles.task(21), nowSeconds() + 2);
    const nc = await f.connect(u);
    assert.deepEqual([...(await nc.request(trap, enc.encode("21"), { timeout: 2000 })).data], [...enc.encode("21")]);
    const why = await within(nc.closed(), 5_000, "the expired connection closing");
    assert.ok(why instanceof errors.UserAuthenticationExpiredError, `closed for expiry (got ${String(why)})`);
  });

  it("cuts a revoked user off by the time revoke() resolves and refuses it after, leaving others alone", async () => {
    const dead = f.mint("task 22", f.roles.task(22), nowSeconds() + 3600);
    const alive = f.mint("task 23", f.roles.task(23), nowSeconds() + 3600);
    const a = await f.connect(dead);
    const b = await f.connect(alive);
    const closed = a.closed();
    const t0 = performance.now();
    await f.revocations.revoke(dead.publicKey, dead.exp);
    const why = await within(closed, CUT_OFF_MS, "the revoked connection closing");
    const ms = performance.now() - t0;
    assert.ok(isRevoked(why), `closed as revoked (got ${String(why)})`);
    assert.ok(ms < CUT_OFF_MS, `cut off in ${ms.toFixed(1)} ms`);
    await assert.rejects(f.connect(dead), isAuthRefusal);
    assert.equal(dec.decode((await b.request(trap, enc.encode("23"), { timeout: 2000 })).data), "23");
    assert.ok(f.revocations.accountJwt().includes(".") && dead.publicKey in revocationsOf(f.revocations.accountJwt()));
  });

  it("sends revocations made while an update is in flight together in the next one", async () => {
    let updates = 0;
    const counting: UpdateRequester = { request: (s, d, t) => (updates++, f.updater.request(s, d, t)) };
    const revs = new AccountRevocations(f.account.publicKey, f.operatorSigner, f.accountClaims, counting);
    const users = Array.from({ length: 5 }, (_, i) => f.mint(`task ${30 + i}`, f.roles.task(30 + i), nowSeconds() + 3600));
    const conns = await Promise.all(users.map((u) => f.connect(u)));
    await Promise.all(users.map((u) => revs.revoke(u.publicKey, u.exp)));
    assert.equal(updates, 2, "the first update, then one with the other four");
    for (const nc of conns) assert.ok(isRevoked(await within(nc.closed(), CUT_OFF_MS, "a revoked connection closing")));
  });

  it("spaces updates when tasks die one after another: a few updates carry them all, and every one is cut off within the stated bound", async () => {
    let updates = 0;
    const counting: UpdateRequester = { request: (s, d, t) => (updates++, f.updater.request(s, d, t)) };
    const revs = new AccountRevocations(f.account.publicKey, f.operatorSigner, f.accountClaims, counting);
    const users = Array.from({ length: 40 }, (_, i) => f.mint(`task ${50 + i}`, f.roles.task(50 + i), nowSeconds() + 3600));
    const conns = await Promise.all(users.map((u) => f.connect(u)));
    const t0 = performance.now();
    const done: Promise<void>[] = [];
    // One death every 5 ms: back to back, each would be an update of its own.
    for (const u of users) {
      done.push(revs.revoke(u.publicKey, u.exp));
      await new Promise((r) => setTimeout(r, 5));
    }
    const span = performance.now() - t0;
    await Promise.all(done);
    assert.ok(updates >= 2 && updates <= Math.ceil(span / MIN_UPDATE_GAP_MS) + 2, `${updates} updates for 40 revocations over ${span.toFixed(0)} ms`);
    for (const nc of conns) assert.ok(isRevoked(await within(nc.closed(), CUT_OFF_MS + MAX_UPDATE_GAP_MS, "a revoked connection closing")));
  });

  it("refuses an account update not signed by the operator (EIO with the server's reason)", async () => {
    const stranger = NKey.create("operator");
    await assert.rejects(
      pushAccountJwt(f.updater, f.account.publicKey, encodeAccount(f.account.publicKey, stranger, f.accountClaims)),
      (e: unknown) => e instanceof HurdError && e.code === Errno.EIO,
    );
    // The account is untouched: its users still connect.
    const u = f.mint("task 40", f.roles.task(40));
    await f.connect(u);
  });
});

describe("the revocation list", () => {
  const operatorSigner = NKey.create("operator");
  const account = NKey.create("account").publicKey;
  const accepting: UpdateRequester = { request: async () => enc.encode(JSON.stringify({ data: { code: 200, message: "jwt updated" } })) };

  it("keeps a revocation only until the revoked JWT expires (the server refuses it then anyway)", async () => {
    const revs = new AccountRevocations(account, operatorSigner, { name: "a" }, accepting);
    const expired = NKey.create("user").publicKey;
    const expiring = NKey.create("user").publicKey;
    const live = NKey.create("user").publicKey;
    const forever = NKey.create("user").publicKey;
    await revs.revoke(expired, nowSeconds() - 10);
    assert.deepEqual(revocationsOf(revs.accountJwt()), {});
    const exp = nowSeconds() + 1;
    await revs.revoke(expiring, exp);
    assert.ok(expiring in revocationsOf(revs.accountJwt()));
    while (nowSeconds() <= exp) await new Promise((r) => setTimeout(r, 100));
    await revs.revoke(live, nowSeconds() + 600);
    await revs.revoke(forever, 0);
    assert.deepEqual(Object.keys(revocationsOf(revs.accountJwt())).sort(), [live, forever].sort());
    assert.equal(revs.size, 2);
  });

  it(`holds at most ${MAX_REVOCATIONS}, dropping the oldest first`, async () => {
    const revs = new AccountRevocations(account, operatorSigner, { name: "a" }, accepting);
    const users = Array.from({ length: MAX_REVOCATIONS + 2 }, () => NKey.create("user").publicKey);
    await Promise.all(users.map((u) => revs.revoke(u, nowSeconds() + 600)));
    const kept = revocationsOf(revs.accountJwt());
    assert.equal(Object.keys(kept).length, MAX_REVOCATIONS);
    assert.ok(!(users[0] in kept) && !(users[1] in kept));
    assert.ok(users[2] in kept && users.at(-1)! in kept);
  });

  it("pushes a lost update again, whole: a revocation survives a server that timed out once", async () => {
    const pushed: string[] = [];
    let fails = 1;
    const flaky: UpdateRequester = {
      request: async (_s, data) => {
        if (fails-- > 0) throw new Error("TIMEOUT");
        pushed.push(dec.decode(data));
        return enc.encode(JSON.stringify({ data: { code: 200, message: "jwt updated" } }));
      },
    };
    const revs = new AccountRevocations(account, operatorSigner, { name: "a" }, flaky);
    const u = NKey.create("user").publicKey;
    await revs.revoke(u, 0);
    assert.equal(pushed.length, 1);
    assert.ok(u in revocationsOf(pushed[0]!), "the retry carries the revocation");
  });

  it("rejects revoke() when the server refuses the update", async () => {
    const refusing: UpdateRequester = { request: async () => enc.encode(JSON.stringify({ error: { code: 500, description: "not trusted" } })) };
    const revs = new AccountRevocations(account, operatorSigner, { name: "a" }, refusing);
    let asked = 0;
    const counting: UpdateRequester = { request: (s, d, t) => (asked++, refusing.request(s, d, t)) };
    const revs2 = new AccountRevocations(account, operatorSigner, { name: "a" }, counting);
    await assert.rejects(revs2.revoke(NKey.create("user").publicKey, 0), (e: unknown) => e instanceof HurdError && e.code === Errno.EIO && /not trusted/.test(e.message));
    assert.equal(asked, 1 + UPDATE_RETRIES, "tried again a bounded number of times, then reported");
  });
});

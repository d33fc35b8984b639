// Keys and JWTs made natively are the ones NATS's own libraries make and
// accept: @nats-io/nkeys derives the same public keys and verifies the
// signatures, @nats-io/jwt decodes and verifies the JWTs (pure JavaScript,
// slow, so only here).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode, parseCreds as natsParseCreds, type Account, type ClaimsData, type Operator, type User } from "@nats-io/jwt";
import { createUser, fromPublic, fromSeed } from "@nats-io/nkeys";
import { Errno, HurdError } from "../errors.js";
import { credsFile, mintUser, parseCreds } from "./creds.js";
import { encodeAccount, encodeOperator, encodeUser, jtiOf, nowSeconds } from "./jwt.js";
import { NKey, type NKeyKind } from "./nkeys.js";
import { natsRoles } from "./roles.js";

const enc = new TextEncoder();
const isErrno = (code: number) => (e: unknown) => e instanceof HurdError && e.code === code;

function header(jwt: string): unknown {
  return JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString());
}

describe("nkeys made with node:crypto", () => {
  for (const kind of ["operator", "account", "user"] as NKeyKind[]) {
    it(`${kind === "user" ? "a" : "an"} ${kind} key is the one @nats-io/nkeys reads from its seed, and its signatures verify there`, () => {
      const k = NKey.create(kind);
      assert.equal(k.publicKey[0], { operator: "O", account: "A", user: "U" }[kind]);
      assert.equal(k.seed.slice(0, 2), `S${k.publicKey[0]}`);
      const theirs = fromSeed(enc.encode(k.seed));
      assert.equal(theirs.getPublicKey(), k.publicKey);
      const data = enc.encode("hurd.x.kernel.trap");
      assert.ok(fromPublic(k.publicKey).verify(data, k.sign(data)));
      assert.equal(NKey.fromSeed(k.seed).publicKey, k.publicKey);
    });
  }

  it("reads a seed @nats-io/nkeys made", () => {
    const theirs = createUser();
    const k = NKey.fromSeed(new TextDecoder().decode(theirs.getSeed()), "user");
    assert.equal(k.publicKey, theirs.getPublicKey());
  });

  it("refuses a malformed seed and another role's seed (EINVAL)", () => {
    assert.throws(() => NKey.fromSeed("SUnotaseed"), isErrno(Errno.EINVAL));
    assert.throws(() => NKey.fromSeed(NKey.create("account").seed, "user"), isErrno(Errno.EINVAL));
    // A public key is no seed.
    assert.throws(() => NKey.fromSeed(NKey.create("user").publicKey), isErrno(Errno.EINVAL));
  });
});

describe("NATS JWTs signed with node:crypto", () => {
  const operator = NKey.create("operator");
  const operatorSigner = NKey.create("operator");
  const sys = NKey.create("account");
  const account = NKey.create("account");
  const accountSigner = NKey.create("account");

  it("an operator JWT verifies with @nats-io/jwt and lists its signing keys and system account", () => {
    const jwt = encodeOperator(operator, { name: "hurdmesh", signingKeys: [operatorSigner.publicKey], systemAccount: sys.publicKey });
    assert.deepEqual(header(jwt), { typ: "JWT", alg: "ed25519-nkey" });
    const c = decode<Operator>(jwt);
    assert.equal(c.iss, operator.publicKey);
    assert.equal(c.sub, operator.publicKey);
    assert.equal(c.name, "hurdmesh");
    assert.deepEqual(c.nats, { type: "operator", version: 2, signing_keys: [operatorSigner.publicKey], system_account: sys.publicKey });
    assert.equal(c.jti, jtiOf(c));
  });

  it("an account JWT signed by an operator signing key carries its signing keys, revocations and every limit", () => {
    const revoked = NKey.create("user").publicKey;
    const jwt = encodeAccount(account.publicKey, operatorSigner, { name: "hurd-x", signingKeys: [accountSigner.publicKey], revocations: { [revoked]: 1700000000 }, jetstream: true });
    const c = decode<Account>(jwt);
    assert.equal(c.iss, operatorSigner.publicKey);
    assert.equal(c.sub, account.publicKey);
    assert.equal(c.nats.type, "account");
    assert.deepEqual(c.nats.signing_keys, [accountSigner.publicKey]);
    assert.deepEqual(c.nats.revocations, { [revoked]: 1700000000 });
    // nats-server reads a missing limit as 0: every one is written.
    assert.deepEqual(c.nats.limits, {
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    });
    assert.deepEqual(c.nats.default_permissions, { pub: { deny: [">"] }, sub: { deny: [">"] } });
    assert.equal(c.jti, jtiOf(c));
  });

  it("a user JWT signed by an account signing key names its account, permissions and expiry, and is no bearer token", () => {
    const user = NKey.create("user");
    const exp = nowSeconds() + 600;
    const perms = natsRoles("x").task(7);
    const jwt = encodeUser(user.publicKey, accountSigner, { name: "task 7", account: account.publicKey, permissions: perms, exp });
    const c = decode<User>(jwt) as ClaimsData<User>;
    assert.equal(c.iss, accountSigner.publicKey);
    assert.equal(c.sub, user.publicKey);
    assert.equal(c.exp, exp);
    assert.ok(Math.abs(c.iat - nowSeconds()) <= 1);
    assert.equal(c.nats.issuer_account, account.publicKey);
    assert.deepEqual(c.nats.pub, { allow: ["hurd.x.kernel.trap", "hurd.x.trace.watch"] });
    assert.deepEqual(c.nats.sub, { allow: ["hurd.x.rcv.7.>", "_INBOX.x.7.>"] });
    assert.equal(c.nats.subs, perms.subs);
    assert.equal(c.nats.bearer_token, undefined);
    assert.deepEqual(c.nats.allowed_connection_types, ["STANDARD"]);
    assert.equal(c.jti, jtiOf(c));
    // Signed by the account's own key, it names no issuer_account.
    const direct = decode<User>(encodeUser(user.publicKey, account, { name: "u", account: account.publicKey, permissions: perms }));
    assert.equal(direct.nats.issuer_account, undefined);
    assert.equal(direct.exp, undefined);
  });

  it("a user allowed no publication is denied every one (to NATS an empty allow list allows anything), and responses are timed in nanoseconds", () => {
    const c = decode<User>(encodeUser(NKey.create("user").publicKey, accountSigner, { name: "launch", account: account.publicKey, permissions: natsRoles("x").launch("", "proc") }));
    assert.deepEqual(c.nats.pub, { deny: [">"] });
    assert.deepEqual(c.nats.sub, { allow: ["hurd.x.launch._.proc"] });
    assert.deepEqual(c.nats.resp, { max: 1, ttl: 60_000 * 1_000_000 });
  });

  it("jti is what nats-io/jwt (Go) computes: base32 of SHA-512/256 of the standard claims", () => {
    // Claims of JWTs that nsc made, with their jti.
    assert.equal(
      jtiOf({ exp: 1781632465, iat: 1623952465, iss: "OCLCKKU3KILZ6ZD4DH3V57TJBDIGJJYLZMQ4HJQOC4REQQ2VATUM5JP5", name: "ISecL-operator", sub: "OCLCKKU3KILZ6ZD4DH3V57TJBDIGJJYLZMQ4HJQOC4REQQ2VATUM5JP5" }),
      "BVAVTBG53MZ2AZI5XR4E5YOKLGNNYLN4JYXWE7OR53EPH2NSJEHA",
    );
    assert.equal(
      jtiOf({ iat: 1624885730, iss: "AAYJDVLZGWN7Y3FBPCVXCRVQZDFMYGHU4YXLGSXX7U254KH5SC3R5QKM", name: "user", sub: "UD3BGWIBPU3CWL4HOUU4VJEQWTUASAEG6OJ3XHM3EEJNA2PA3UVNYTZN" }),
      "DLTF4ZKUWM4TOFEMBJ4PE3MQEVXHRBI7LY47Y4C353LZRJINBRBQ",
    );
  });

  it("refuses to sign with a key of the wrong role (EINVAL)", () => {
    const perms = natsRoles("x").task(1);
    assert.throws(() => encodeOperator(account, { name: "o" }), isErrno(Errno.EINVAL));
    assert.throws(() => encodeAccount(account.publicKey, account, { name: "a" }), isErrno(Errno.EINVAL));
    assert.throws(() => encodeUser(NKey.create("user").publicKey, operator, { name: "u", account: account.publicKey, permissions: perms }), isErrno(Errno.EINVAL));
  });

  it("a minted user's .creds file reads back here and in @nats-io/jwt", async () => {
    const u = mintUser(accountSigner, account.publicKey, "task 3", natsRoles("x").task(3), nowSeconds() + 60);
    assert.equal(u.inboxPrefix, "_INBOX.x.3");
    const text = credsFile(u);
    assert.deepEqual(parseCreds(text), { jwt: u.jwt, seed: u.seed });
    const theirs = await natsParseCreds(enc.encode(text));
    assert.equal(theirs.jwt, u.jwt);
    assert.equal(theirs.key, u.seed);
    assert.equal(theirs.aid, account.publicKey);
    assert.equal(theirs.uc.sub, u.publicKey);
    assert.throws(() => parseCreds(`-----BEGIN NATS USER JWT-----\n${u.jwt}\n------END NATS USER JWT------\n`), isErrno(Errno.EINVAL));
  });
});

describe("role permissions", () => {
  it("refuse names that are not one subject token, which would widen a permission", () => {
    assert.throws(() => natsRoles("a.b"), isErrno(Errno.EINVAL));
    assert.throws(() => natsRoles("*"), isErrno(Errno.EINVAL));
    const r = natsRoles("x");
    assert.throws(() => r.task(-1), isErrno(Errno.EINVAL));
    assert.throws(() => r.task(1.5), isErrno(Errno.EINVAL));
    assert.throws(() => r.launch("", ">"), isErrno(Errno.EINVAL));
    assert.throws(() => r.launch("a.b", "proc"), isErrno(Errno.EINVAL));
    assert.throws(() => r.bootClaim("x y"), isErrno(Errno.EINVAL));
    assert.throws(() => r.task(2, { launches: "*" }), isErrno(Errno.EINVAL));
  });

  it("give every role that makes requests an inbox of its own under _INBOX.<system>., which the kernel answers through NATS's allow_responses", () => {
    const r = natsRoles("x");
    const prefixes = [r.kernel, r.task(1), r.task(12), r.bootClaim(""), r.bootClaim("alpha"), r.watcher(1), r.accountUpdater(NKey.create("account").publicKey)].map((p) => p.inboxPrefix!);
    assert.equal(new Set(prefixes).size, prefixes.length);
    for (const p of prefixes) assert.match(p, /^_INBOX\.x\.[^.]+(\.[^.]+)?$/);
    // The kernel's own requests are its log's (--journal): answered on its inbox; it publishes on no inbox but the reply subjects of what it was asked.
    assert.equal(r.kernel.inboxPrefix, "_INBOX.x.kernel");
    assert.ok(!r.kernel.pub.some((p) => p.startsWith("_INBOX")));
    assert.deepEqual(r.kernel.resp, { max: 1, ttlMs: 60_000 });
    assert.equal(r.launch("", "proc").inboxPrefix, undefined);
  });
});

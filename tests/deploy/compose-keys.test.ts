// `hurd keys compose --dir DIR`: what docker compose's one-shot keys service
// makes on the first `up`, run as that service runs it (the CLI as a
// process). Each consumer's folder holds only its files, secrets 0600; the
// nats-server configuration runs a real nats-server that refuses anonymous
// clients and takes each role's user; each role user carries exactly its
// role's permissions; the edge's certificate chains to the CA and names the
// hosts it is dialled by; each hurd's init gets its own boot secret, derived
// from the kernel's boot key; a second run keeps everything; HURD_BOOT_KEY
// overrides the generated boot key and never reaches the output; bad
// input is refused.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { acceptsAnonymous, natsConnectOptions, parseCreds, permissionsFor, readFabricKeys, startNatsServer } from "@hurdmesh/mach/nats-auth";
import { hurdBootSecret } from "@hurdmesh/kernel";

const repo = join(import.meta.dirname, "../..");
const cli = join(repo, "packages/cli/src/main.ts");
const keysCompose = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["--import", "tsx", cli, "keys", "compose", ...args], { encoding: "utf8", timeout: 60000, env: { ...process.env, HURD_BOOT_SECRET: "", HURD_BOOT_KEY: "", ...env } });
const mode = (p: string) => statSync(p).mode & 0o777;
/** A user JWT's claims (its payload; the signature is checked by nats-server below). */
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as { nats: { pub: { allow?: string[] }; sub: { allow?: string[] } } };

const base = mkdtempSync(join(tmpdir(), "hurd-compose-keys-"));
const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const s of stops) await s();
});

describe("hurd keys compose", () => {
  const dir = join(base, "keys");
  const first = keysCompose(["--dir", dir, "--system", "hurd", "--subhurds", "second", "--edge-hosts", "hurd.example.org,192.0.2.7", "--jetstream", join(base, "js")]);

  test("one folder per reader, each with only its files; secrets 0600", () => {
    assert.equal(first.status, 0, first.stderr);
    const want: Record<string, string[]> = {
      nats: ["nats.conf", "nats.crt", "nats.key"],
      ca: ["ca.crt"],
      kernel: ["boot-key", "ca.crt", "complete", "edge.crt", "edge.key", "generated-boot-key", "nats-keys.json"],
      init: ["boot-secret", "ca.crt", "nats.creds"],
      proc: ["nats.creds"],
      auth: ["nats.creds"],
      "second-init": ["boot-secret", "ca.crt", "nats.creds"],
      "second-proc": ["nats.creds"],
      "second-auth": ["nats.creds"],
    };
    assert.deepEqual(readdirSync(dir).sort(), Object.keys(want).sort());
    for (const [d, files] of Object.entries(want)) assert.deepEqual(readdirSync(join(dir, d)).sort(), files, d);
    for (const p of ["nats/nats.key", "kernel/edge.key", "kernel/nats-keys.json", "kernel/generated-boot-key", "kernel/boot-key", "init/boot-secret", "second-init/boot-secret", "init/nats.creds", "proc/nats.creds", "second-auth/nats.creds"])
      assert.equal(mode(join(dir, p)), 0o600, p);
    const key = readFileSync(join(dir, "kernel/boot-key"), "utf8");
    assert.match(key, /^[A-Za-z0-9_-]{43}$/);
    // Each init holds its own hurd's secret, the one the kernel derives from its key for that hurd: not the key, not another hurd's.
    assert.equal(readFileSync(join(dir, "init/boot-secret"), "utf8"), hurdBootSecret(key, ""));
    assert.equal(readFileSync(join(dir, "second-init/boot-secret"), "utf8"), hurdBootSecret(key, "second"));
    assert.notEqual(hurdBootSecret(key, ""), hurdBootSecret(key, "second"));
    // The kernel's keys file is what hurd-kernel reads (readFabricKeys refuses one others may read).
    assert.equal(readFabricKeys(join(dir, "kernel/nats-keys.json")).system, "hurd");
  });

  test("nats.conf runs a nats-server, TLS only, that refuses anonymous clients and takes each role's user", async () => {
    const conf = readFileSync(join(dir, "nats/nats.conf"), "utf8");
    assert.match(conf, /^host: "0\.0\.0\.0"$/m, "the compose network reaches it");
    assert.match(conf, /^port: 4222$/m);
    // Where compose's nats service mounts keys-nats.
    assert.match(conf, /cert_file: "\/etc\/hurdmesh\/nats\/nats\.crt"/);
    // NATS's certificate chains to the CA every server is given and names the host they dial.
    const ca = new X509Certificate(readFileSync(join(dir, "ca/ca.crt")));
    const natsCert = new X509Certificate(readFileSync(join(dir, "nats/nats.crt")));
    assert.ok(natsCert.verify(ca.publicKey));
    assert.ok(natsCert.checkHost("nats") && natsCert.checkIP("127.0.0.1"));
    assert.equal(readFileSync(join(dir, "ca/ca.crt"), "utf8"), readFileSync(join(dir, "kernel/ca.crt"), "utf8"), "one CA for NATS and the edge");
    // The same configuration on a free loopback port.
    const local = join(base, "nats-local.conf");
    writeFileSync(local, conf.replace(/^host: .*$/m, 'host: "127.0.0.1"').replace(/^port: .*$/m, "port: -1").replaceAll("/etc/hurdmesh/nats/", `${dir}/nats/`));
    const server = await startNatsServer(local);
    stops.push(() => server.stop());
    const tls = { caPem: ca.toString() };
    assert.equal(await acceptsAnonymous(server.url, 3000, tls), false, "an anonymous client got in");
    for (const role of ["init", "proc", "auth", "second-init", "second-proc", "second-auth"]) {
      const creds = parseCreds(readFileSync(join(dir, role, "nats.creds"), "utf8"));
      const nc = await connect({ servers: server.url, reconnect: false, timeout: 5000, ...natsConnectOptions(creds, { tls }) });
      await nc.flush();
      await nc.close();
    }
  });

  test("each role user may do its one thing: init claims its hurd's boot, proc and auth take their own launch order", () => {
    const roles: Array<[string, Parameters<typeof permissionsFor>[1]]> = [
      ["init", { kind: "boot-claim", hurd: "" }],
      ["second-init", { kind: "boot-claim", hurd: "second" }],
      ["proc", { kind: "launch", hurd: "", server: "proc" }],
      ["auth", { kind: "launch", hurd: "", server: "auth" }],
      ["second-proc", { kind: "launch", hurd: "second", server: "proc" }],
      ["second-auth", { kind: "launch", hurd: "second", server: "auth" }],
    ];
    for (const [folder, role] of roles) {
      const { nats } = claimsOf(parseCreds(readFileSync(join(dir, folder, "nats.creds"), "utf8")).jwt);
      const want = permissionsFor("hurd", role);
      assert.deepEqual(nats.sub.allow ?? [], want.sub, `${folder}: subscribe`);
      assert.deepEqual(nats.pub.allow ?? [], want.pub, `${folder}: publish`);
      assert.ok(!(nats.sub.allow ?? []).some((s) => s === ">" || s.startsWith("hurd.>") || s === "hurd.hurd.>"), `${folder} may subscribe widely`);
    }
  });

  test("the edge's certificate chains to the CA and names kernel, localhost, 127.0.0.1 and the --edge-hosts", () => {
    const ca = new X509Certificate(readFileSync(join(dir, "kernel/ca.crt")));
    const cert = new X509Certificate(readFileSync(join(dir, "kernel/edge.crt")));
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), "not issued by the CA");
    for (const h of ["kernel", "localhost", "hurd.example.org"]) assert.equal(cert.checkHost(h), h);
    for (const ip of ["127.0.0.1", "192.0.2.7"]) assert.equal(cert.checkIP(ip), ip);
    assert.equal(cert.checkHost("nats"), undefined, "valid for a name it was not issued for");
    // The inits put the same CA in the session files.
    assert.equal(readFileSync(join(dir, "init/ca.crt"), "utf8"), ca.toString());
    // The CA's private key is nowhere: nothing can issue another certificate.
    // (edge.key and nats.key are the certificates' own keys, which sign nothing.)
    for (const d of readdirSync(dir)) for (const f of readdirSync(join(dir, d))) if (f !== "edge.key" && f !== "nats.key") assert.doesNotMatch(readFileSync(join(dir, d, f), "utf8"), /PRIVATE KEY/, `${d}/${f}`);
  });

  test("a second run keeps the set; HURD_BOOT_KEY overrides the boot key (every hurd's secret follows), unset brings the generated one back, never printed", () => {
    const before = Object.fromEntries(["kernel/nats-keys.json", "kernel/edge.crt", "proc/nats.creds", "nats/nats.conf"].map((p) => [p, readFileSync(join(dir, p), "utf8")]));
    const generated = readFileSync(join(dir, "kernel/boot-key"), "utf8");
    const secrets = ["init", "second-init"].map((d) => readFileSync(join(dir, d, "boot-secret"), "utf8"));
    const override = "e2e-override-0123456789";
    // Fewer subhurds named than the set has: the second's secret follows the key all the same.
    const r = keysCompose(["--dir", dir], { HURD_BOOT_KEY: override });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /kept/);
    for (const [p, text] of Object.entries(before)) assert.equal(readFileSync(join(dir, p), "utf8"), text, `${p} changed`);
    assert.equal(readFileSync(join(dir, "kernel/boot-key"), "utf8"), override);
    assert.equal(readFileSync(join(dir, "init/boot-secret"), "utf8"), hurdBootSecret(override, ""));
    assert.equal(readFileSync(join(dir, "second-init/boot-secret"), "utf8"), hurdBootSecret(override, "second"));
    for (const out of [r.stdout, r.stderr, first.stdout, first.stderr]) {
      for (const s of [override, generated, ...secrets]) assert.ok(!out.includes(s), "a boot key or secret in the output");
    }
    const back = keysCompose(["--dir", dir]);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(readFileSync(join(dir, "kernel/boot-key"), "utf8"), generated);
    assert.deepEqual(["init", "second-init"].map((d) => readFileSync(join(dir, d, "boot-secret"), "utf8")), secrets);
  });

  test("the shared boot secret it replaced is refused, not ignored (HURD_BOOT_SECRET in an old .env)", () => {
    const r = keysCompose(["--dir", dir], { HURD_BOOT_SECRET: "an-old-dotenv-secret-0123" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /HURD_BOOT_SECRET is no longer read.*HURD_BOOT_KEY/);
    assert.ok(!r.stderr.includes("an-old-dotenv-secret-0123"));
  });

  test("a set made before per-hurd secrets (no boot key) is made again whole", () => {
    const d = join(base, "old");
    assert.equal(keysCompose(["--dir", d]).status, 0);
    const old = readFileSync(join(d, "kernel/nats-keys.json"), "utf8");
    rmSync(join(d, "kernel/generated-boot-key"));
    const r = keysCompose(["--dir", d]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /new/);
    assert.notEqual(readFileSync(join(d, "kernel/nats-keys.json"), "utf8"), old);
    assert.equal(readFileSync(join(d, "init/boot-secret"), "utf8"), hurdBootSecret(readFileSync(join(d, "kernel/boot-key"), "utf8"), ""));
  });

  test("a set left half made (no complete marker) is made again whole", () => {
    const d = join(base, "half");
    assert.equal(keysCompose(["--dir", d]).status, 0);
    const old = readFileSync(join(d, "kernel/nats-keys.json"), "utf8");
    rmSync(join(d, "kernel/complete"));
    // --owner, as the keys service runs it (as root, giving all to the image's user): here, to this user.
    const r = keysCompose(["--dir", d, "--owner", `${process.getuid!()}:${process.getgid!()}`]);
    assert.equal(r.status, 0, r.stderr);
    for (const p of ["kernel", "kernel/nats-keys.json", "kernel/boot-key", "init/boot-secret"]) assert.equal(statSync(join(d, p)).uid, process.getuid!(), p);
    assert.equal(mode(join(d, "kernel")), 0o700);
    assert.notEqual(readFileSync(join(d, "kernel/nats-keys.json"), "utf8"), old);
    assert.ok(statSync(join(d, "kernel/complete")).isFile());
  });

  test("bad input is refused with one line and nothing made", () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["--system", "a.b"], {}, /not a hurdmesh system name/],
      [["--subhurds", "Second"], {}, /not a subhurd name/],
      [["--edge-hosts", "bad host"], {}, /not a host name or IP address/],
      [["--owner", "hurd"], {}, /--owner takes UID:GID/],
      [[], { HURD_BOOT_KEY: "short" }, /shorter than 16/],
    ];
    for (const [args, env, err] of cases) {
      const d = join(base, `bad-${Math.random().toString(36).slice(2)}`);
      const r = keysCompose(["--dir", d, ...args], env);
      assert.notEqual(r.status, 0, `accepted ${JSON.stringify(args)} ${JSON.stringify(env)}`);
      assert.match(r.stderr, err);
      assert.throws(() => readdirSync(join(d, "kernel")), /ENOENT/, "made keys anyway");
    }
  });
});

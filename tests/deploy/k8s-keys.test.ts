// `hurd keys k8s`: every Secret the manifests in k8s/ need, printed for
// `kubectl apply -f -`, since no secret is committed in k8s/. Run as the
// user runs it (the CLI as a process): Secrets that pass Kubernetes' schema,
// exactly the names and keys the validator lets the manifests mount; a
// nats.conf that runs a real nats-server with TLS that refuses anonymous
// and plaintext clients and takes each server's user; certificates that
// chain to the CA and name the Services; the kernel's boot key and each
// hurd's own boot secret derived from it, new on every run, never on stderr;
// --external-certs and --add-subhurds; bad input refused.
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { Secret } from "kubernetes-models/v1/Secret";
import { connect } from "@nats-io/transport-node";
import { acceptsAnonymous, natsConnectOptions, parseCreds, permissionsFor, readFabricKeys, startNatsServer } from "@hurdmesh/mach/nats-auth";
import { hurdBootSecret } from "@hurdmesh/kernel";
// @ts-expect-error: a plain .mjs script without type declarations
import { USER_SECRETS } from "../../scripts/k8s/validate.mjs";

const repo = join(import.meta.dirname, "../..");
const cli = join(repo, "packages/cli/src/main.ts");
const keysK8s = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["--import", "tsx", cli, "keys", "k8s", ...args], { encoding: "utf8", timeout: 60000, env: { ...process.env, ...env } });

const base = mkdtempSync(join(tmpdir(), "hurd-k8s-keys-"));
const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const s of stops) await s();
  rmSync(base, { recursive: true, force: true });
});

type Doc = { name: string; namespace: string; type: string; data: Record<string, string> };
/** The Secrets of a run's stdout, each checked against Kubernetes' schema, values decoded. */
function secretsOf(out: string): Doc[] {
  return parseAllDocuments(out).map((d) => {
    assert.deepEqual(d.errors, []);
    const obj = d.toJS() as Record<string, any>;
    new Secret(obj as ConstructorParameters<typeof Secret>[0]).validate();
    assert.equal(obj.kind, "Secret");
    assert.equal(obj.metadata.labels["app.kubernetes.io/part-of"], "hurdmesh");
    const data = Object.fromEntries(Object.entries(obj.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
    return { name: obj.metadata.name, namespace: obj.metadata.namespace, type: obj.type, data };
  });
}
const find = (docs: Doc[], ns: string, name: string) => {
  const d = docs.find((x) => x.namespace === ns && x.name === name);
  assert.ok(d, `no Secret ${ns}/${name}`);
  return d;
};
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8"));

const HURD = ["hurd-boot", "hurd-ca", "hurd-nats-init", "hurd-nats-proc", "hurd-nats-auth"];

describe("hurd keys k8s", () => {
  const first = keysK8s(["--subhurds", "subhurd-a,subhurd-b"]);
  const docs = first.status === 0 ? secretsOf(first.stdout) : [];

  test("every Secret the manifests mount, in the right namespaces, with exactly the validator's keys", () => {
    assert.equal(first.status, 0, first.stderr);
    const want = [
      ...["nats-config", "nats-tls", "kernel-tls", "hurd-nats-keys", "hurd-boot-key"].map((n) => `hurdmesh/${n}`),
      ...["hurdmesh", "hurd-subhurd-a", "hurd-subhurd-b"].flatMap((ns) => HURD.map((n) => `${ns}/${n}`)),
    ];
    assert.deepEqual(docs.map((d) => `${d.namespace}/${d.name}`).sort(), want.sort());
    // The validator's list is what the manifests may mount: the two must agree.
    assert.deepEqual(new Set(docs.map((d) => d.name)), new Set(Object.keys(USER_SECRETS)));
    for (const d of docs) assert.deepEqual(Object.keys(d.data).sort(), [...USER_SECRETS[d.name]].sort(), d.name);
    for (const n of ["nats-tls", "kernel-tls"]) assert.equal(find(docs, "hurdmesh", n).type, "kubernetes.io/tls", "cert-manager's shape");
    // The kernel's keys as it reads them.
    const keysFile = join(base, "nats-keys.json");
    writeFileSync(keysFile, find(docs, "hurdmesh", "hurd-nats-keys").data["nats-keys.json"]!, { mode: 0o600 });
    assert.equal(readFabricKeys(keysFile).system, "hurd");
    // Kubernetes mounts a Secret group-readable under fsGroup: accepted; readable by others: refused.
    chmodSync(keysFile, 0o440);
    assert.equal(readFabricKeys(keysFile).jetstream, true);
    chmodSync(keysFile, 0o644);
    assert.throws(() => readFabricKeys(keysFile), /read by others/);
  });

  test("every Secret key a pod of k8s/ mounts or reads is in this output, in that pod's namespace", { skip: spawnSync("kubectl", ["version", "--client"]).status !== 0 && "kubectl is not installed" }, () => {
    const r = spawnSync("kubectl", ["kustomize", join(repo, "k8s")], { encoding: "utf8", maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const have = new Set(docs.flatMap((d) => Object.keys(d.data).map((k) => `${d.namespace}/${d.name}/${k}`)));
    const wanted: string[] = [];
    for (const d of parseAllDocuments(r.stdout)) {
      const o = d.toJS() as Record<string, any>;
      const spec = o?.spec?.template?.spec;
      if (!spec) continue;
      const ns = o.metadata.namespace;
      for (const v of spec.volumes ?? []) if (v.secret) for (const it of v.secret.items ?? [{ key: "*" }]) wanted.push(`${ns}/${v.secret.secretName}/${it.key}`);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers])
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) wanted.push(`${ns}/${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`);
    }
    assert.ok(wanted.length >= 20, `only ${wanted.length} Secret references found in k8s/`);
    const missing = wanted.filter((w) => (w.endsWith("/*") ? ![...have].some((h) => h.startsWith(w.slice(0, -1))) : !have.has(w)));
    assert.deepEqual([...new Set(missing)], [], "Secret keys the manifests need that hurd keys k8s does not make");
  });

  test("each hurd its own boot secret, derived from the kernel's boot key; new on every run, never on stderr", () => {
    const key = find(docs, "hurdmesh", "hurd-boot-key").data.key!;
    assert.match(key, /^[A-Za-z0-9_-]{43}$/);
    const boots = [["hurdmesh", ""], ["hurd-subhurd-a", "subhurd-a"], ["hurd-subhurd-b", "subhurd-b"]].map(([ns, hurd]) => {
      const s = find(docs, ns!, "hurd-boot").data.secret!;
      // What the kernel checks that hurd's claim against (BootClaims with perHurd).
      assert.equal(s, hurdBootSecret(key, hurd!), `${ns}'s boot secret is not its hurd's`);
      return s;
    });
    assert.equal(new Set([...boots, key]).size, 4, "two hurds share a boot secret, or an init holds the key");
    const again = secretsOf(keysK8s([]).stdout);
    assert.notEqual(find(again, "hurdmesh", "hurd-boot-key").data.key, key);
    assert.notEqual(find(again, "hurdmesh", "hurd-nats-keys").data["nats-keys.json"], find(docs, "hurdmesh", "hurd-nats-keys").data["nats-keys.json"]);
    for (const d of docs) for (const v of Object.values(d.data)) if (!v.includes("CERTIFICATE-----") || v.includes("PRIVATE")) assert.ok(!first.stderr.includes(v.slice(0, 40)), `${d.name} on stderr`);
  });

  test("the certificates chain to the CA in hurd-ca and name the Services and 127.0.0.1", () => {
    const ca = new X509Certificate(find(docs, "hurdmesh", "hurd-ca").data["ca.crt"]!);
    for (const ns of ["hurd-subhurd-a", "hurd-subhurd-b"]) assert.equal(find(docs, ns, "hurd-ca").data["ca.crt"], ca.toString());
    for (const [name, svc] of [["nats-tls", "nats"], ["kernel-tls", "kernel"]] as const) {
      const s = find(docs, "hurdmesh", name);
      const cert = new X509Certificate(s.data["tls.crt"]!);
      assert.ok(cert.verify(ca.publicKey), `${name} is not signed by the CA`);
      assert.equal(s.data["ca.crt"], ca.toString());
      for (const n of [svc, `${svc}.hurdmesh.svc`, `${svc}.hurdmesh.svc.cluster.local`]) assert.ok(cert.checkHost(n), `${name} does not name ${n}`);
      assert.ok(cert.checkIP("127.0.0.1"), `${name} does not name 127.0.0.1 (the kernel's probe dials it)`);
    }
  });

  test("nats.conf runs a nats-server with TLS that refuses anonymous and plaintext clients and takes each server's user", async () => {
    const d = (n: string, k: string, file: string) => {
      const p = join(base, file);
      writeFileSync(p, find(docs, "hurdmesh", n).data[k]!, { mode: 0o600 });
      return p;
    };
    const cert = d("nats-tls", "tls.crt", "nats.crt");
    const key = d("nats-tls", "tls.key", "nats.key");
    const caPem = find(docs, "hurdmesh", "hurd-ca").data["ca.crt"]!;
    const conf = find(docs, "hurdmesh", "nats-config").data["nats.conf"]!;
    assert.match(conf, /^host: "0\.0\.0\.0"$/m);
    assert.match(conf, /store_dir: "\/data"/);
    assert.match(conf, /cert_file: "\/etc\/nats\/tls\/tls\.crt"/, "where k8s/base/nats.yaml mounts nats-tls");
    const local = join(base, "nats.conf");
    writeFileSync(
      local,
      conf
        .replace(/^host: .*$/m, 'host: "127.0.0.1"')
        .replace(/^port: .*$/m, "port: -1")
        .replace('"/data"', JSON.stringify(join(base, "js")))
        .replace('"/etc/nats/tls/tls.crt"', JSON.stringify(cert))
        .replace('"/etc/nats/tls/tls.key"', JSON.stringify(key)),
    );
    const server = await startNatsServer(local);
    stops.push(() => server.stop());
    assert.equal(await acceptsAnonymous(server.url, 3000, { caPem }), false, "an anonymous client got in");
    const alice = parseCreds(find(docs, "hurdmesh", "hurd-nats-proc").data["nats.creds"]!);
    // A client that will not speak TLS is refused whatever its credentials.
    await assert.rejects(connect({ servers: server.url, reconnect: false, timeout: 3000, ...natsConnectOptions(alice) }));
    for (const ns of ["hurdmesh", "hurd-subhurd-a", "hurd-subhurd-b"])
      for (const server_ of ["init", "proc", "auth"]) {
        const creds = parseCreds(find(docs, ns, `hurd-nats-${server_}`).data["nats.creds"]!);
        const nc = await connect({ servers: server.url, reconnect: false, timeout: 5000, ...natsConnectOptions(creds, { tls: { caPem } }) });
        await nc.flush();
        await nc.close();
      }
  });

  test("each server's user may do its one thing, for its own hurd", () => {
    for (const [ns, hurd] of [["hurdmesh", ""], ["hurd-subhurd-a", "subhurd-a"], ["hurd-subhurd-b", "subhurd-b"]] as const) {
      const perms = (server: string) => claimsOf(parseCreds(find(docs, ns, `hurd-nats-${server}`).data["nats.creds"]!).jwt).nats;
      const want = (role: Parameters<typeof permissionsFor>[1]) => permissionsFor("hurd", role);
      assert.deepEqual(perms("init").pub.allow ?? [], want({ kind: "boot-claim", hurd }).pub);
      assert.deepEqual(perms("init").sub.allow ?? [], want({ kind: "boot-claim", hurd }).sub);
      for (const server of ["proc", "auth"]) {
        assert.deepEqual(perms(server).sub.allow ?? [], want({ kind: "launch", hurd, server }).sub, `${ns} ${server}`);
        assert.deepEqual(perms(server).pub.allow ?? [], want({ kind: "launch", hurd, server }).pub, `${ns} ${server}`);
      }
    }
  });

  test("--external-certs: no nats-tls or kernel-tls, and hurd-ca holds the CA given with --ca", () => {
    const caFile = join(base, "external-ca.crt");
    writeFileSync(caFile, find(docs, "hurdmesh", "hurd-ca").data["ca.crt"]!);
    const r = keysK8s(["--external-certs", "--ca", caFile, "--subhurds", "subhurd-a"]);
    assert.equal(r.status, 0, r.stderr);
    const ext = secretsOf(r.stdout);
    assert.ok(!ext.some((d) => d.name === "nats-tls" || d.name === "kernel-tls"));
    assert.equal(find(ext, "hurd-subhurd-a", "hurd-ca").data["ca.crt"], find(docs, "hurdmesh", "hurd-ca").data["ca.crt"]);
    assert.match(find(ext, "hurdmesh", "nats-config").data["nats.conf"]!, /cert_file/);
    const none = keysK8s(["--external-certs"]);
    assert.notEqual(none.status, 0);
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /--external-certs needs --ca/);
  });

  test("--add-subhurds: a new subhurd's Secrets from the install's keys, CA and boot key", () => {
    const keysFile = join(base, "install-keys.json");
    writeFileSync(keysFile, find(docs, "hurdmesh", "hurd-nats-keys").data["nats-keys.json"]!, { mode: 0o600 });
    const caFile = join(base, "install-ca.crt");
    writeFileSync(caFile, find(docs, "hurdmesh", "hurd-ca").data["ca.crt"]!);
    const key = find(docs, "hurdmesh", "hurd-boot-key").data.key!;
    const keyFile = join(base, "boot-key");
    writeFileSync(keyFile, key, { mode: 0o600 });
    const r = keysK8s(["--add-subhurds", "gamma", "--nats-keys", keysFile, "--ca", caFile, "--boot-key-file", keyFile]);
    assert.equal(r.status, 0, r.stderr);
    const add = secretsOf(r.stdout);
    assert.deepEqual(add.map((d) => `${d.namespace}/${d.name}`).sort(), HURD.map((n) => `hurd-gamma/${n}`).sort());
    assert.equal(find(add, "hurd-gamma", "hurd-boot").data.secret, hurdBootSecret(key, "gamma"), "the install's kernel would refuse gamma's claim");
    assert.ok(!r.stderr.includes(key));
    // The key from the environment instead of a file.
    const env = keysK8s(["--add-subhurds", "gamma", "--nats-keys", keysFile, "--ca", caFile], { HURD_BOOT_KEY: key });
    assert.equal(env.status, 0, env.stderr);
    assert.equal(find(secretsOf(env.stdout), "hurd-gamma", "hurd-boot").data.secret, hurdBootSecret(key, "gamma"));
    // Signed by the install's account signing key: the install's nats-server takes it.
    const keys = readFabricKeys(keysFile);
    const jwt = parseCreds(find(add, "hurd-gamma", "hurd-nats-init").data["nats.creds"]!).jwt;
    assert.equal(claimsOf(jwt).nats.issuer_account, keys.account);
    assert.deepEqual(claimsOf(jwt).nats.sub.allow, permissionsFor("hurd", { kind: "boot-claim", hurd: "gamma" }).sub);
    const noBoot = keysK8s(["--add-subhurds", "gamma", "--nats-keys", keysFile, "--ca", caFile], { HURD_BOOT_KEY: "" });
    assert.notEqual(noBoot.status, 0);
    assert.equal(noBoot.stdout, "");
    assert.match(noBoot.stderr, /the boot key .* is missing/);
  });

  test("bad input is refused with one line and nothing on stdout", () => {
    const caFile = join(base, "not-a-ca.crt");
    writeFileSync(caFile, "hello");
    for (const [args, err] of [
      [["--namespace", "Hurd_Mesh"], /not a Kubernetes namespace/],
      [["--namespace", "a\nkind: ConfigMap"], /not a Kubernetes namespace/],
      [["--subhurds", "Sub_A"], /not a subhurd name/],
      // A Kubernetes label, but no hurd name the kernel takes (a letter first, at most 32).
      [["--subhurds", "9lives"], /not a subhurd name/],
      [["--subhurds", `s${"x".repeat(32)}`], /not a subhurd name/],
      [["--subhurds", "a,a"], /named twice/],
      [["--add-subhurds", "gamma"], /needs --nats-keys FILE and --ca FILE/],
      [["--add-subhurds", "gamma", "--nats-keys", join(base, "absent.json"), "--ca", caFile], /holds no PEM certificate/],
      [["--ca", caFile, "--external-certs"], /holds no PEM certificate/],
    ] as const) {
      const r = keysK8s([...args]);
      assert.notEqual(r.status, 0, `accepted ${JSON.stringify(args)}`);
      assert.equal(r.stdout, "", JSON.stringify(args));
      assert.match(r.stderr, err, JSON.stringify(args));
    }
  });
});

// `hurd keys k8s --nats-cluster 3`: the nats.conf of components/nats-cluster
// (overlays/root-cluster, issue 18: "R3 and sync in the Kubernetes cluster
// overlay"), run by real nats-servers. The configuration names every pod's
// stable DNS name as a route, over TLS verified both ways, with a route
// password, server_name from the pod ($POD_NAME) and sync_interval: always;
// the certificate names those pods. Debian bookworm's nats-server 2.9.10
// and trixie's 2.10 (the image's line, nats:2.10-alpine; fetched by
// scripts/nats-server-trixie.sh) check it (`-t`); three local nats-servers
// started from it, with only the addresses, ports, paths and pod names
// rewritten for one machine, form a cluster, refuse a route without the
// password or with a certificate from another CA, and keep the kernel's log
// at R3 (made by a kernel user minted with hurd-nats-keys) writable with
// the node leading it killed.
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { issueCert, makeCA, mintUser, NKey, permissionsFor, readFabricKeys, startNatsServer, type NatsServerProcess } from "@hurdmesh/mach/nats-auth";
import { JetStreamLog, NatsBus } from "@hurdmesh/mach/nats";
import { inboxOf, kernelLogSubjectsOf } from "@hurdmesh/mach/internal";
import { until } from "../harness.js";
import { freePort } from "../nats/kit.js";

const repo = join(import.meta.dirname, "../..");
const cli = join(repo, "packages/cli/src/main.ts");
const keysK8s = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", cli, "keys", "k8s", ...args], { encoding: "utf8", timeout: 60000 });

const base = mkdtempSync(join(tmpdir(), "hurd-k8s-nats-cluster-"));
const servers: NatsServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.stop();
  rmSync(base, { recursive: true, force: true });
});

/** Whether a nats-server binary takes `sync_interval: always` (2.10 does; 2.9.10 says "unknown field"). */
function takesSync(bin: string): boolean {
  const d = mkdtempSync(join(base, "sync-"));
  writeFileSync(join(d, "c.conf"), `jetstream { store_dir: ${JSON.stringify(join(d, "js"))}, sync_interval: always }\n`);
  return spawnSync(bin, ["-t", "-c", join(d, "c.conf")]).status === 0;
}

/** The nats-servers to run the configuration with: Debian's (bookworm's 2.9.10 here) and a 2.10, each or why it is not here. */
function natsServers(): { name: string; bin: string | null; skip: string | false; sync: boolean }[] {
  const which = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  const debian = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : which.status === 0 ? which.stdout.trim() : null;
  // HURD_NATS_SERVER names one that takes sync_interval (scripts/test.mjs), else trixie's from the script's cache (downloaded once).
  let newer: string | null = null;
  let why = "";
  if (process.env.HURD_NATS_SERVER && takesSync(process.env.HURD_NATS_SERVER)) newer = process.env.HURD_NATS_SERVER;
  else {
    const r = spawnSync(join(repo, "scripts/nats-server-trixie.sh"), { encoding: "utf8", timeout: 180_000 });
    if (r.status === 0 && existsSync(r.stdout.trim())) newer = r.stdout.trim();
    else why = `scripts/nats-server-trixie.sh could not provide a nats-server 2.10 (${(r.stderr || r.error?.message || "").trim().split("\n").at(-1)})`;
  }
  const version = (bin: string) => spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.trim();
  return [
    { name: debian ? version(debian) : "Debian's nats-server", bin: debian, skip: debian ? false : "nats-server is not installed (Debian: apt-get install nats-server)", sync: !!debian && takesSync(debian) },
    { name: newer ? version(newer) : "nats-server 2.10", bin: newer, skip: newer ? false : why, sync: true },
  ];
}

type Doc = { name: string; data: Record<string, string> };
function secretsOf(out: string): Doc[] {
  return parseAllDocuments(out).map((d) => {
    const o = d.toJS() as { metadata: { name: string }; data: Record<string, string> };
    return { name: o.metadata.name, data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")])) };
  });
}
const get = (docs: Doc[], name: string, key: string) => {
  const v = docs.find((d) => d.name === name)?.data[key];
  assert.ok(v !== undefined, `no ${name}/${key}`);
  return v;
};
const pod = (i: number, ns = "hurdmesh", domain = "cluster.local") => `nats-${i}.nats-headless.${ns}.svc.${domain}`;

/** Exactly `n` occurrences of `from` replaced: a change of the configuration's shape breaks the test instead of leaving a line unrewritten. */
function rewrite(text: string, from: string | RegExp, to: string, n = 1): string {
  const re = typeof from === "string" ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gm") : new RegExp(from.source, "gm");
  assert.equal((text.match(re) ?? []).length, n, `${from} occurs ${(text.match(re) ?? []).length} times, not ${n}, in the generated nats.conf`);
  return text.replace(re, to);
}

interface Files {
  cert: string;
  key: string;
  ca: string;
}
/** Writes nats-tls's files as the pod mounts them. */
function tlsFiles(docs: Doc[], dir: string): Files {
  mkdirSync(dir, { recursive: true });
  const f = (k: string) => {
    const p = join(dir, k);
    writeFileSync(p, get(docs, "nats-tls", k), { mode: 0o600 });
    return p;
  };
  return { cert: f("tls.crt"), key: f("tls.key"), ca: f("ca.crt") };
}

/** The generated nats.conf for one local node: only the addresses, ports, files and store directory changed; server_name stays $POD_NAME. */
function localConfig(conf: string, o: { nodes: number; client: number; route: number; routes: number[]; http: number; dir: string; files: Files }): string {
  let c = conf;
  c = rewrite(c, /^host: "0\.0\.0\.0"$/, 'host: "127.0.0.1"');
  c = rewrite(c, /^port: 4222$/, `port: ${o.client}`);
  c = rewrite(c, /^ {2}host: "0\.0\.0\.0"$/, '  host: "127.0.0.1"');
  c = rewrite(c, /^ {2}port: 6222$/, `  port: ${o.route}`);
  c = rewrite(c, '"/data"', JSON.stringify(join(o.dir, "js")));
  c = rewrite(c, '"/etc/nats/tls/tls.crt"', JSON.stringify(o.files.cert), 2);
  c = rewrite(c, '"/etc/nats/tls/tls.key"', JSON.stringify(o.files.key), 2);
  c = rewrite(c, '"/etc/nats/tls/ca.crt"', JSON.stringify(o.files.ca));
  for (let i = 0; i < o.nodes; i++) c = rewrite(c, `@${pod(i)}:6222"`, `@127.0.0.1:${o.routes[i]}"`);
  // The pod's -m 8222, here in the file.
  return `${c}http: "127.0.0.1:${o.http}"\n`;
}

const monitor = async (http: number, path: string) => (await (await fetch(`http://127.0.0.1:${http}${path}`)).json()) as Record<string, any>;

describe("hurd keys k8s --nats-cluster", () => {
  const run = keysK8s(["--nats-cluster", "3"]);
  const docs = run.status === 0 ? secretsOf(run.stdout) : [];
  const conf = docs.length ? get(docs, "nats-config", "nats.conf") : "";
  const kinds = natsServers();

  test("nats.conf routes to every pod's stable name over TLS verified both ways with a route password, names each server after its pod, and syncs every JetStream write", () => {
    assert.equal(run.status, 0, run.stderr);
    assert.match(conf, /^server_name: \$POD_NAME$/m, "each server named by components/nats-cluster's POD_NAME (the downward API)");
    assert.match(conf, /^jetstream: \{ store_dir: "\/data", sync_interval: always \}$/m);
    assert.match(conf, /^system_account: "A[A-Z0-9]{55}"$/m, "JetStream in a cluster in operator mode needs the system account");
    const cluster = /^cluster: \{\n([\s\S]*?)^\}$/m.exec(conf)?.[1] ?? "";
    assert.match(cluster, /^ {2}name: "hurdmesh"\n {2}host: "0\.0\.0\.0"\n {2}port: 6222$/m);
    const password = /^ {4}user: "route"\n {4}password: "([A-Za-z0-9_-]+)"$/m.exec(cluster)?.[1] ?? "";
    assert.ok(password.length >= 32, "a random route password");
    assert.match(cluster, /^ {2}tls: \{\n {4}cert_file: "\/etc\/nats\/tls\/tls\.crt"\n {4}key_file: "\/etc\/nats\/tls\/tls\.key"\n {4}ca_file: "\/etc\/nats\/tls\/ca\.crt"\n {4}verify: true\n/m);
    const routes = [...cluster.matchAll(/"nats-route:\/\/route:([^@]+)@([^:]+):6222"/g)];
    assert.deepEqual(routes.map((m) => m[2]), [0, 1, 2].map((i) => pod(i)));
    for (const m of routes) assert.equal(m[1], password);
    // A new password on every run, and the one-node configuration is as it was.
    const again = secretsOf(keysK8s(["--nats-cluster", "3"]).stdout);
    assert.ok(!get(again, "nats-config", "nats.conf").includes(password));
  });

  test("nats-tls names the headless Service and every pod the routes dial, and chains to the CA it carries", () => {
    const cert = new X509Certificate(get(docs, "nats-tls", "tls.crt"));
    const ca = new X509Certificate(get(docs, "nats-tls", "ca.crt"));
    assert.ok(cert.verify(ca.publicKey));
    assert.equal(ca.toString(), get(docs, "hurd-ca", "ca.crt"));
    for (const n of [...[0, 1, 2].map((i) => pod(i)), "nats-headless.hurdmesh.svc.cluster.local", "nats-headless", "nats.hurdmesh.svc.cluster.local", "nats"])
      assert.ok(cert.checkHost(n), `nats-tls does not name ${n}`);
    assert.ok(!cert.checkHost(pod(3)), "a fourth pod nobody runs");
    // Another namespace and cluster domain: the routes and the names follow.
    const other = secretsOf(keysK8s(["--nats-cluster", "5", "--namespace", "mesh", "--cluster-domain", "k8s.example"]).stdout);
    const oconf = get(other, "nats-config", "nats.conf");
    assert.deepEqual([...oconf.matchAll(/@([^:]+):6222"/g)].map((m) => m[1]), [0, 1, 2, 3, 4].map((i) => pod(i, "mesh", "k8s.example")));
    const ocert = new X509Certificate(get(other, "nats-tls", "tls.crt"));
    for (let i = 0; i < 5; i++) assert.ok(ocert.checkHost(pod(i, "mesh", "k8s.example")));
  });

  test("without --nats-cluster (1): one node as before, no routes, no server_name, no sync_interval, no pod names in nats-tls", () => {
    const one = secretsOf(keysK8s([]).stdout);
    const c = get(one, "nats-config", "nats.conf");
    assert.doesNotMatch(c, /cluster|server_name|sync_interval|nats-route/);
    assert.match(c, /^jetstream: \{ store_dir: "\/data" \}$/m);
    assert.equal(new X509Certificate(get(one, "nats-tls", "tls.crt")).checkHost(pod(0)), undefined);
    assert.equal(get(secretsOf(keysK8s(["--nats-cluster", "1"]).stdout), "nats-config", "nats.conf").replace(/"eyJ[^"]+"|A[A-Z0-9]{55}/g, ""), c.replace(/"eyJ[^"]+"|A[A-Z0-9]{55}/g, ""));
  });

  test("a cluster of 2, 4 or 7, a size that is no number, and --nats-cluster with --add-subhurds are refused", () => {
    for (const n of ["2", "4", "7", "0", "three", "3.0"]) {
      const r = keysK8s(["--nats-cluster", n]);
      assert.notEqual(r.status, 0, `accepted --nats-cluster ${n}`);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /--nats-cluster/);
    }
    const r = keysK8s(["--add-subhurds", "gamma", "--nats-cluster", "3"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not with --subhurds, --external-certs or --nats-cluster/);
  });

  test("every file nats.conf names is where overlays/root-cluster mounts it", { skip: spawnSync("kubectl", ["version", "--client"]).status !== 0 && "kubectl is not installed" }, () => {
    const r = spawnSync("kubectl", ["kustomize", join(repo, "k8s/overlays/root-cluster")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const nats = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, any>).find((o) => o.kind === "StatefulSet" && o.metadata.name === "nats")!;
    const spec = nats.spec.template.spec;
    const files = new Set<string>();
    for (const m of spec.containers[0].volumeMounts) {
      const v = spec.volumes.find((x: any) => x.name === m.name);
      if (v?.secret) for (const it of v.secret.items) files.add(`${m.mountPath}/${it.path}`);
    }
    const named = [...conf.matchAll(/(?:cert_file|key_file|ca_file): "([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(named.length >= 5);
    for (const f of named) assert.ok(files.has(f), `${f} is mounted by no volume of the NATS pods`);
    assert.ok(files.has(spec.containers[0].args[1]), "the config file itself");
    assert.ok(spec.containers[0].volumeMounts.some((m: any) => m.name === "data" && m.mountPath === "/data"), "JetStream's store_dir");
    assert.equal(nats.spec.replicas, [...conf.matchAll(/nats-route:\/\//g)].length, "as many routes as pods");
  });

  for (const k of kinds)
    test(`${k.name}: nats-server -t takes it${k.sync ? "" : " without sync_interval, which it refuses"}, with the pod's name in POD_NAME and not without`, { skip: k.skip }, () => {
      const dir = join(base, `t-${k.name.replace(/\W+/g, "-")}`);
      const files = tlsFiles(docs, dir);
      let c = rewrite(conf, '"/data"', JSON.stringify(join(dir, "js")));
      c = rewrite(c, '"/etc/nats/tls/tls.crt"', JSON.stringify(files.cert), 2);
      c = rewrite(c, '"/etc/nats/tls/tls.key"', JSON.stringify(files.key), 2);
      c = rewrite(c, '"/etc/nats/tls/ca.crt"', JSON.stringify(files.ca));
      const check = (text: string, env: Record<string, string>) => {
        const f = join(dir, "nats.conf");
        writeFileSync(f, text, { mode: 0o600 });
        const r = spawnSync(k.bin!, ["-t", "-c", f], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...env } });
        return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
      };
      if (!k.sync) {
        const as = check(c, { POD_NAME: "nats-0" });
        assert.ok(!as.ok);
        assert.match(as.out, /unknown field "sync_interval"/);
        c = rewrite(c, ", sync_interval: always", "");
      }
      const ok = check(c, { POD_NAME: "nats-0" });
      assert.ok(ok.ok, ok.out);
      const noName = check(c, {});
      assert.ok(!noName.ok, "started without its pod's name");
      assert.match(noName.out, /variable reference for 'POD_NAME'/);
    });

  // Three nats-servers and their JetStream meta group start in a few seconds (measured: see the diagnostics).
  for (const k of kinds)
    // Three nats-servers electing on 2 cores beside the whole default suite
    // took over 30 s once in about 30 runs: a load run of its own, with
    // tests/restart/cluster-log.test.ts (npm run test:cluster).
    describe(`three ${k.name} from it`, { skip: k.skip || (process.env.HURD_TEST_CLUSTER !== "1" && "a 3-node cluster: npm run test:cluster (HURD_TEST_CLUSTER=1)") }, () => {
      test(`form a cluster, refuse a route without the password or with another CA's certificate, and keep the kernel's log at R3 writable with its leader's node killed`, { timeout: 120_000 }, async (t) => {
        const dir = join(base, `cluster-${k.name.replace(/\W+/g, "-")}`);
        const files = tlsFiles(docs, join(dir, "tls"));
        const text = k.sync ? conf : rewrite(conf, ", sync_interval: always", "");
        const ports = async () => Promise.all([0, 1, 2].map(() => freePort()));
        const [client, route, http] = [await ports(), await ports(), await ports()];
        const env = (name: string) => ({ ...process.env, POD_NAME: name, PATH: `${dirname(k.bin!)}:${process.env.PATH}` });
        const start = async (name: string, c: string) => {
          const d = join(dir, name);
          mkdirSync(d, { recursive: true });
          writeFileSync(join(d, "nats.conf"), c, { mode: 0o600 });
          const s = await startNatsServer(join(d, "nats.conf"), { env: env(name) });
          servers.push(s);
          return s;
        };
        const t0 = Date.now();
        const nodes = await Promise.all(
          [0, 1, 2].map((i) => start(`nats-${i}`, localConfig(text, { nodes: 3, client: client[i]!, route: route[i]!, routes: route, http: http[i]!, dir: join(dir, `nats-${i}`), files }))),
        );
        // Each node routes to the two others (2.10 pools several connections a peer: counted by peer).
        await until(async () => {
          const r = await Promise.all(http.map((h) => monitor(h, "/routez")));
          return r.every((z) => new Set((z.routes ?? []).map((x: any) => x.remote_id)).size === 2);
        }, 30_000, "routes between the three").catch((e: Error) => {
          throw new Error(`${e.message}:\n${nodes.map((n) => n.log().slice(-1500)).join("\n")}`);
        });
        // JetStream's meta group: three peers, one leader they agree on.
        let metas: unknown[] = [];
        await until(async () => {
          const m = await Promise.all(http.map((h) => monitor(h, "/jsz")));
          metas = m.map((j) => j.meta_cluster);
          const leaders = new Set(m.map((j) => j.meta_cluster?.leader));
          return m.every((j) => j.meta_cluster?.cluster_size === 3) && leaders.size === 1 && !leaders.has(undefined) && !leaders.has("");
        }, 30_000, "a JetStream meta leader").catch((e: Error) => {
          throw new Error(`${e.message}: ${JSON.stringify(metas)}\n${nodes.map((n) => n.log().slice(-2000)).join("\n")}`);
        });
        const servers_ = (await Promise.all(http.map((h) => monitor(h, "/varz")))).map((v) => v.server_name);
        assert.deepEqual(servers_, ["nats-0", "nats-1", "nats-2"], "server_name from POD_NAME");
        t.diagnostic(`${k.name}: cluster and meta leader in ${Date.now() - t0} ms`);

        // The kernel's own user, as it mints it with hurd-nats-keys, makes its log at R3 (JetStreamLog.open, --log-replicas 3).
        const keysFile = join(dir, "nats-keys.json");
        writeFileSync(keysFile, get(docs, "hurd-nats-keys", "nats-keys.json"), { mode: 0o600 });
        const keys = readFabricKeys(keysFile);
        const user = mintUser(NKey.fromSeed(keys.accountSigningSeed, "account"), keys.account, "test kernel", permissionsFor(keys.system, { kind: "kernel" }));
        const inboxPrefix = inboxOf(keys.system, { kind: "kernel" });
        const bus = await NatsBus.connect(nodes.map((n) => `tls://127.0.0.1:${n.port}`).join(","), { name: "test kernel", credentials: { jwt: user.jwt, seed: user.seed }, inboxPrefix, tls: { caPem: get(docs, "hurd-ca", "ca.crt") } });
        t.after(() => bus.close());
        let opened: Error | null = null;
        const open = (timeoutMs: number) => JetStreamLog.open(bus.nc, keys.system, { replicas: 3, inboxPrefix, timeoutMs });
        await until(() => open(5000).then(() => true, (e: Error) => ((opened = e), false)), 30_000, "the kernel's log at R3").catch((e: Error) => {
          throw new Error(`${e.message}: ${opened?.message}`);
        });
        // The stream made, a short timeout for each append: the election after a node's loss is measured in its steps.
        const log = await open(1000);
        const stream = kernelLogSubjectsOf(keys.system);
        const info = async () => JSON.parse(new TextDecoder().decode((await bus.nc.request(stream.streamInfo, new Uint8Array(), { timeout: 3000 })).data)) as Record<string, any>;
        const seq1 = await log.append(new TextEncoder().encode("entry 1"), 0);
        let i0 = await info();
        await until(async () => ((i0 = await info()), (i0.cluster?.replicas ?? []).filter((r: any) => r.current).length === 2), 15_000, "two current replicas").catch((e: Error) => {
          throw new Error(`${e.message}: ${JSON.stringify(i0.cluster)}`);
        });
        assert.equal(i0.config.num_replicas, 3);

        // The node leading the log lost (SIGKILL: no leadership handed over): the two left elect another and take the next entry.
        const leader = i0.cluster.leader as string;
        const lost = nodes[Number(leader.slice("nats-".length))]!;
        process.kill(lost.pid, "SIGKILL");
        await lost.exited;
        const t1 = Date.now();
        let seq2 = 0;
        // An append that timed out may have been stored: the log's end says so (as Journal.appendLeading reads it back).
        const append = async () => {
          try {
            seq2 = await log.append(new TextEncoder().encode("entry 2"), seq1);
          } catch {
            const s = await log.state().catch(() => null);
            if (s?.last === seq1 + 1) seq2 = s.last;
          }
          return seq2 > 0;
        };
        await until(append, 30_000, "an append with the log's leader killed");
        t.diagnostic(`${k.name}: the log's leader ${leader} killed: the next append stored after ${Date.now() - t1} ms`);
        assert.equal(seq2, seq1 + 1);
        const i1 = await info();
        assert.notEqual(i1.cluster.leader, leader);
        assert.equal(i1.state.messages, 2);

        // A route without the password, and one with a certificate from another CA, are refused by the nodes left.
        // (Go's TLS client sends no certificate the server's CA did not sign: the node finds none.)
        const live = [0, 1, 2].filter((i) => `nats-${i}` !== leader);
        const intruder = async (name: string, c: (base: string) => string, refused: RegExp) => {
          const [cp, rp, hp] = [await freePort(), await freePort(), await freePort()];
          const mark = nodes.map((n) => n.log().length);
          const s = await start(name, c(localConfig(text, { nodes: 3, client: cp, route: rp, routes: route, http: hp, dir: join(dir, name), files })));
          // Said on either side: the intruder's (its route answered with an error) or a node's (its handshake refused).
          await until(() => refused.test(s.log()) || live.some((i) => refused.test(nodes[i]!.log().slice(mark[i]))), 15_000, `${name} refused`).catch((e: Error) => {
            throw new Error(`${e.message}:\n${[s, ...live.map((i) => nodes[i]!)].map((n) => n.log().slice(-1500)).join("\n")}`);
          });
          for (const i of live) assert.equal(new Set((await monitor(http[i]!, "/routez")).routes.map((r: any) => r.remote_id)).size, 1, `nats-${i} routes to another than the node left`);
          await s.stop();
        };
        await intruder("nats-8", (c) => c.replace(/route:[A-Za-z0-9_-]+@/g, "route:not-the-password@"), /Authorization Violation/);
        const other = await makeCA({ name: "another CA" });
        const foreign = await issueCert(other, { dns: ["localhost"], ip: ["127.0.0.1"] });
        const fdir = join(dir, "foreign");
        mkdirSync(fdir, { recursive: true });
        writeFileSync(join(fdir, "tls.crt"), foreign.certPem);
        writeFileSync(join(fdir, "tls.key"), foreign.keyPem, { mode: 0o600 });
        await intruder("nats-9", (c) => c.replaceAll(JSON.stringify(files.cert), JSON.stringify(join(fdir, "tls.crt"))).replaceAll(JSON.stringify(files.key), JSON.stringify(join(fdir, "tls.key"))), /TLS route handshake error/);
      });
    });
});

// Kubernetes' Secrets boot a hurd, without a cluster (issue 15): `hurd keys
// k8s`'s own output, each Secret's keys written as files where the
// manifests mount them (the kernel's keys group-readable, as a Secret
// mounted under fsGroup is), runs a real nats-server (nats-config,
// nats-tls: TLS only, nobody anonymous), and the container roles (the
// compiled programs the image runs) boot the root hurd and subhurd-a on it,
// each with only what its pod mounts. Each hurd's init claims with its own
// boot secret: subhurd-a's init holding the root hurd's secret is refused.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { startNatsServer, type NatsServerProcess } from "@hurdmesh/mach/nats-auth";
import { compiledEnv } from "../build.js";
import { until } from "../harness.js";

const root = new URL("../../", import.meta.url).pathname;
const service = join(root, "bin/hurdmesh-service.mjs");
const cli = join(root, "packages/cli/src/main.ts");
const haveNats = spawnSync("sh", ["-c", "command -v nats-server"]).status === 0;

interface Role {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number>;
}

describe("Kubernetes' Secrets boot a hurd on a real nats-server, TLS and authorization on", { skip: !haveNats && "nats-server is not installed" }, () => {
  const base = mkdtempSync(join(tmpdir(), "hurd-k8s-boot-"));
  const state = join(base, "state");
  const system = `k8s${process.pid}`;
  const running: Role[] = [];
  /** Secret namespace/name/key -> the file it is mounted as. */
  const file = new Map<string, string>();
  const at = (ns: string, name: string, key: string) => {
    const f = file.get(`${ns}/${name}/${key}`);
    assert.ok(f, `no Secret ${ns}/${name} key ${key}`);
    return f;
  };
  const texts = new Map<string, string>();
  let server: NatsServerProcess;
  let url = "";
  let edge = "";
  let healthPort = 18700 + (process.pid % 300) * 10;

  function start(role: string, env: NodeJS.ProcessEnv): Role {
    const full: NodeJS.ProcessEnv = { ...compiledEnv(), NATS_URL: url, HURD_SYSTEM: system, HURD_STATE_DIR: state, HURD_HEALTH_ADDR: `127.0.0.1:${healthPort++}`, ...env };
    for (const k of Object.keys(full)) if (k.startsWith("OTEL_") || k === "HURD_NATS_CREDS" || (k === "HURD_BOOT_SECRET" && !env[k])) delete full[k];
    const proc = spawn(process.execPath, [service, role], { env: full, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number>((r) => proc.on("exit", (c, s) => r(c ?? (s ? 128 : 1))));
    const r = { proc, out: () => out, exited };
    running.push(r);
    return r;
  }

  /** One hurd's server pod as k8s/hurd/*.yaml has it: the CA, its own NATS user; init its hurd's boot secret (env from the Secret). */
  function server_(ns: string, role: "init" | "proc" | "auth", hurd: string, extra: NodeJS.ProcessEnv = {}): Role {
    const env: NodeJS.ProcessEnv = { HURD_NATS_CA_FILE: at(ns, "hurd-ca", "ca.crt"), HURD_NATS_CREDS_FILE: at(ns, `hurd-nats-${role}`, "nats.creds"), HURD_SUBHURD: hurd };
    if (role === "init") Object.assign(env, { HURD_BOOT_SECRET: texts.get(`${ns}/hurd-boot/secret`), HURD_EDGE_CA_FILE: at(ns, "hurd-ca", "ca.crt"), HURD_PUBLIC_EDGE: edge });
    return start(role, { ...env, ...extra });
  }

  before(async () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", cli, "keys", "k8s", "--system", system, "--subhurds", "subhurd-a"], { encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    for (const d of parseAllDocuments(r.stdout)) {
      const o = d.toJS() as { metadata: { name: string; namespace: string }; data: Record<string, string> };
      const dir = join(base, o.metadata.namespace, o.metadata.name);
      mkdirSync(dir, { recursive: true });
      for (const [k, v] of Object.entries(o.data)) {
        const text = Buffer.from(v, "base64").toString("utf8");
        const p = join(dir, k);
        writeFileSync(p, text);
        // As the kubelet mounts a Secret with defaultMode 0440 under fsGroup.
        chmodSync(p, 0o440);
        file.set(`${o.metadata.namespace}/${o.metadata.name}/${k}`, p);
        texts.set(`${o.metadata.namespace}/${o.metadata.name}/${k}`, text);
      }
    }
    // nats-config as k8s/base/nats.yaml runs it, on a free loopback port, its mounts where this test keeps them.
    const conf = texts
      .get("hurdmesh/nats-config/nats.conf")!
      .replace(/^host: .*$/m, 'host: "127.0.0.1"')
      .replace(/^port: .*$/m, "port: -1")
      .replace('"/data"', JSON.stringify(join(base, "js")))
      .replace('"/etc/nats/tls/tls.crt"', JSON.stringify(at("hurdmesh", "nats-tls", "tls.crt")))
      .replace('"/etc/nats/tls/tls.key"', JSON.stringify(at("hurdmesh", "nats-tls", "tls.key")));
    writeFileSync(join(base, "nats.conf"), conf);
    server = await startNatsServer(join(base, "nats.conf"));
    url = `tls://127.0.0.1:${server.port}`;
  });

  after(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
    await Promise.all(running.map((r) => r.exited));
    await server?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it("boots the root hurd: the kernel with its boot key and group-readable signing keys, each server its own user", async () => {
    const procR = server_("hurdmesh", "proc", "");
    const authR = server_("hurdmesh", "auth", "");
    // k8s/base/kernel.yaml's settings.
    const kernel = start("kernel", {
      HURD_NATS_CA_FILE: at("hurdmesh", "hurd-ca", "ca.crt"),
      HURD_NATS_KEYS: at("hurdmesh", "hurd-nats-keys", "nats-keys.json"),
      HURD_BOOT_KEY_FILE: at("hurdmesh", "hurd-boot-key", "key"),
      HURD_GRPC: "127.0.0.1:0",
      HURD_GRPC_CERT: at("hurdmesh", "kernel-tls", "tls.crt"),
      HURD_GRPC_KEY: at("hurdmesh", "kernel-tls", "tls.key"),
      HURD_BOOT_SECRET: "",
    });
    await until(() => /gRPC edge on/.test(kernel.out()) || kernel.proc.exitCode !== null, 30000, "kernel edge");
    assert.match(kernel.out(), /tls:\/\/127\.0\.0\.1:\d+ \(authorization on\).*\(TLS\)/, kernel.out());
    edge = `127.0.0.1:${/gRPC edge on [\d.]+:(\d+)/.exec(kernel.out())![1]}`;
    await until(() => /waiting for init's launch order/.test(procR.out()) && /waiting for init's launch order/.test(authR.out()), 30000, "proc and auth");
    const initR = server_("hurdmesh", "init", "");
    await until(() => /ready: session/.test(initR.out()) || initR.proc.exitCode !== null, 60000, "init ready");
    assert.match(initR.out(), /ready: session/, initR.out());
    const ps = spawnSync(process.execPath, ["--import", "tsx", cli, "ps"], { env: { ...process.env, HURD_STATE_DIR: state }, encoding: "utf8", timeout: 60000 });
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /\/hurd\/proc/);
  });

  it("subhurd-a's init holding the root hurd's boot secret is refused; with its own it boots subhurd-a", async () => {
    const stolen = server_("hurd-subhurd-a", "init", "subhurd-a", { HURD_BOOT_SECRET: texts.get("hurdmesh/hurd-boot/secret") });
    const code = await Promise.race([stolen.exited, new Promise<number>((r) => setTimeout(() => r(-1), 30000))]);
    assert.notEqual(code, -1, `init with another hurd's secret did not stop:\n${stolen.out()}`);
    assert.notEqual(code, 0);
    assert.match(stolen.out(), /wrong boot secret for subhurd subhurd-a/);
    server_("hurd-subhurd-a", "proc", "subhurd-a");
    server_("hurd-subhurd-a", "auth", "subhurd-a");
    const initA = server_("hurd-subhurd-a", "init", "subhurd-a");
    await until(() => /ready: session/.test(initA.out()) || initA.proc.exitCode !== null, 60000, "subhurd-a's init ready");
    assert.match(initA.out(), /ready: session/, initA.out());
    const ps = spawnSync(process.execPath, ["--import", "tsx", cli, "ps", "--hurd", "subhurd-a"], { env: { ...process.env, HURD_STATE_DIR: state }, encoding: "utf8", timeout: 60000 });
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /\/hurd\/proc/);
  });
});

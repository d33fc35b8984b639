// TLS on NATS as docker compose runs it (issue 15), without docker: the
// keys service's own output (`hurd keys compose`) runs a real nats-server,
// and the container roles (bin/hurdmesh-service.mjs kernel|init|proc|auth,
// the compiled programs the image runs) boot a hurd on it over TLS, each
// with only what its compose service mounts. Attacks: a client that will
// not speak TLS, an anonymous TLS client, a client trusting another CA, a
// kernel given no CA or a file that is not one.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { acceptsAnonymous, makeCA, natsConnectOptions, parseCreds, startNatsServer, type NatsServerProcess } from "@hurdmesh/mach/nats-auth";
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

describe("compose's NATS over TLS, on a real nats-server", { skip: !haveNats && "nats-server is not installed" }, () => {
  const base = mkdtempSync(join(tmpdir(), "hurd-compose-tls-"));
  const keys = join(base, "keys");
  const state = join(base, "state");
  const system = `ctls${process.pid}`;
  const running: Role[] = [];
  let server: NatsServerProcess;
  let url = "";
  let edge = "";
  let healthPort = 18400 + (process.pid % 300) * 10;

  /** A container role as compose runs it: compose's environment for it, the files of the volumes it mounts. */
  function start(role: string, extra: NodeJS.ProcessEnv = {}): Role {
    const k = (p: string) => join(keys, p);
    const byRole: Record<string, NodeJS.ProcessEnv> = {
      kernel: { HURD_NATS_KEYS: k("kernel/nats-keys.json"), HURD_BOOT_KEY_FILE: k("kernel/boot-key"), HURD_GRPC: "127.0.0.1:0", HURD_GRPC_CERT: k("kernel/edge.crt"), HURD_GRPC_KEY: k("kernel/edge.key") },
      init: { HURD_NATS_CREDS_FILE: k("init/nats.creds"), HURD_BOOT_SECRET_FILE: k("init/boot-secret"), HURD_EDGE_CA_FILE: k("init/ca.crt"), HURD_PUBLIC_EDGE: edge },
      proc: { HURD_NATS_CREDS_FILE: k("proc/nats.creds") },
      auth: { HURD_NATS_CREDS_FILE: k("auth/nats.creds") },
    };
    const env: NodeJS.ProcessEnv = {
      ...compiledEnv(),
      NATS_URL: url,
      HURD_NATS_CA_FILE: k("ca/ca.crt"),
      HURD_SYSTEM: system,
      HURD_STATE_DIR: state,
      HURD_HEALTH_ADDR: `127.0.0.1:${healthPort++}`,
      ...byRole[role],
      ...extra,
    };
    for (const name of Object.keys(env)) if (name.startsWith("OTEL_") || name === "HURD_BOOT_SECRET" || name === "HURD_BOOT_KEY" || name === "HURD_NATS_CREDS") delete env[name];
    const proc = spawn(process.execPath, [service, role], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number>((r) => proc.on("exit", (c, s) => r(c ?? (s ? 128 : 1))));
    const r = { proc, out: () => out, exited };
    running.push(r);
    return r;
  }

  before(async () => {
    const made = spawnSync(process.execPath, ["--import", "tsx", cli, "keys", "compose", "--dir", keys, "--system", system], {
      encoding: "utf8",
      timeout: 60000,
      env: { ...process.env, HURD_BOOT_SECRET: "", HURD_BOOT_KEY: "" },
    });
    assert.equal(made.status, 0, made.stderr);
    // The keys service's nats.conf, on a free loopback port, its certificate where this test keeps it.
    const conf = readFileSync(join(keys, "nats/nats.conf"), "utf8");
    assert.match(conf, /cert_file: "\/etc\/hurdmesh\/nats\/nats\.crt"/, "where compose's nats service mounts keys-nats");
    const local = join(base, "nats.conf");
    writeFileSync(local, conf.replace(/^host: .*$/m, 'host: "127.0.0.1"').replace(/^port: .*$/m, "port: -1").replaceAll("/etc/hurdmesh/nats/", `${keys}/nats/`));
    server = await startNatsServer(local);
    url = `tls://127.0.0.1:${server.port}`;
  });

  after(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
    await Promise.all(running.map((r) => r.exited));
    await server?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it("refuses a client that will not speak TLS, an anonymous one, and one trusting another CA; takes a role user with the CA", async () => {
    const caPem = readFileSync(join(keys, "ca/ca.crt"), "utf8");
    const proc = parseCreds(readFileSync(join(keys, "proc/nats.creds"), "utf8"));
    const plain = `nats://127.0.0.1:${server.port}`;
    // nats.js upgrades to TLS when the server requires it: a client with no CA fails the handshake (a private CA).
    await assert.rejects(connect({ servers: plain, reconnect: false, timeout: 3000, ...natsConnectOptions(proc) }), /certificate|TLS|self.signed/i);
    const other = await makeCA({ name: "not the hurd's CA" });
    await assert.rejects(connect({ servers: url, reconnect: false, timeout: 3000, ...natsConnectOptions(proc, { tls: { caPem: other.certPem } }) }), /certificate|self.signed/i);
    assert.equal(await acceptsAnonymous(url, 3000, { caPem }), false, "an anonymous client got in over TLS");
    const nc = await connect({ servers: url, reconnect: false, timeout: 5000, ...natsConnectOptions(proc, { tls: { caPem } }) });
    await nc.flush();
    assert.equal(nc.info?.tls_required, true);
    await nc.close();
  });

  it("a raw TCP client sending plaintext CONNECT is cut off", async () => {
    const { createConnection } = await import("node:net");
    const got = await new Promise<string>((resolve) => {
      let buf = "";
      const s = createConnection({ host: "127.0.0.1", port: server.port }, () => s.write('CONNECT {"verbose":false}\r\nSUB hurd.> 1\r\nPING\r\n'));
      s.setEncoding("utf8");
      s.on("data", (d) => (buf += d));
      s.on("close", () => resolve(buf));
      s.on("error", () => resolve(buf));
      setTimeout(() => s.destroy(), 5000);
    });
    assert.match(got, /"tls_required":true/);
    assert.doesNotMatch(got, /PONG/, "the server answered a plaintext client");
  });

  it("the container roles boot a hurd over TLS with only their compose mounts: pids 1-4", async () => {
    const procR = start("proc");
    const authR = start("auth");
    await until(() => /waiting for init's launch order/.test(procR.out()) && /waiting for init's launch order/.test(authR.out()), 30000, "proc and auth on NATS over TLS");
    const kernel = start("kernel");
    await until(() => /gRPC edge on/.test(kernel.out()) || kernel.proc.exitCode !== null, 30000, "kernel edge");
    assert.match(kernel.out(), /tls:\/\/127\.0\.0\.1:\d+ \(authorization on\)/, kernel.out());
    edge = `127.0.0.1:${/gRPC edge on [\d.]+:(\d+)/.exec(kernel.out())![1]}`;
    const initR = start("init", { HURD_PUBLIC_EDGE: edge });
    await until(() => /ready: session/.test(initR.out()) || initR.proc.exitCode !== null, 60000, "init ready");
    assert.match(initR.out(), /ready: session/, initR.out());
    const ps = spawnSync(process.execPath, ["--import", "tsx", cli, "ps", "--json"], { env: { ...process.env, HURD_STATE_DIR: state }, encoding: "utf8", timeout: 60000 });
    assert.equal(ps.status, 0, ps.stderr);
    const byPid = new Map(ps.stdout.trim().split("\n").map((l) => JSON.parse(l) as { pid: number; command: string }).map((p) => [p.pid, p.command]));
    assert.equal(byPid.get(1), "/libexec/runsystem");
    assert.equal(byPid.get(4), "/hurd/proc");
  });

  it("a kernel whose CA file is missing, not a certificate, or another CA's stops with one clear line", async () => {
    const notCa = join(base, "not-a-ca.crt");
    writeFileSync(notCa, "hello\n");
    const other = join(base, "other-ca.crt");
    writeFileSync(other, (await makeCA({ name: "another" })).certPem);
    for (const [file, want] of [
      [join(base, "absent.crt"), /cannot read NATS's CA \(HURD_NATS_CA_FILE=/],
      [notCa, /holds no PEM certificate/],
      [other, /cannot reach NATS at tls:.*certificate/i],
    ] as const) {
      const k = start("kernel", { HURD_NATS_CA_FILE: file, HURD_BOOT_SECRET_FILE: "" });
      const code = await Promise.race([k.exited, new Promise<number>((r) => setTimeout(() => r(-1), 30000))]);
      assert.notEqual(code, 0, `the kernel ran with ${file}`);
      assert.notEqual(code, -1, `the kernel did not stop with ${file}:\n${k.out()}`);
      assert.match(k.out(), want);
    }
  });
});

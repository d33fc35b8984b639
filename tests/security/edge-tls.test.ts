// TLS at the kernel's gRPC edge (issue 15): tokens cross the edge in every
// call's metadata, the console's root-equivalent one among them. Off
// loopback the edge will not serve plaintext unless told to; `hurd up` on a
// non-loopback address makes a private CA and serves TLS, its session
// carries the CA and the `hurd` command verifies the edge against it; a
// plaintext client, or one trusting another CA, gets nothing.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Edge, Kernel } from "@hurdmesh/kernel";
import { createLogger, HurdError } from "@hurdmesh/mach";
import { edgeChannelCredentials, edgeTlsFromFiles, grpcClientOf } from "@hurdmesh/mach/edge";
import { issueCert, makeCA } from "@hurdmesh/mach/nats-auth";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { until } from "../harness.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;
const kmain = new URL("../../services/kernel/src/main.ts", import.meta.url).pathname;
const MachClient = grpcClientOf(MachDefinition);

/** A task_info call as the console (the session's task and token): answers the gRPC status code, 0 when it went through. */
function consoleCall(edge: string, creds: grpc.ChannelCredentials, console_: { taskId: number; token: string }): Promise<number> {
  const c = new MachClient(edge, creds);
  const md = new grpc.Metadata();
  md.set("hurd-task", String(console_.taskId));
  md.set("hurd-token", console_.token);
  return new Promise((resolve) =>
    (c as unknown as { taskInfo: Function }).taskInfo({ task: 0 }, md, { deadline: Date.now() + 5000 }, (e: grpc.ServiceError | null) => {
      c.close();
      resolve(e ? e.code : 0);
    }),
  );
}

describe("TLS at the gRPC edge", () => {
  const started: ChildProcess[] = [];
  const dirs: string[] = [];
  after(() => {
    for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("an edge off loopback refuses to serve plaintext (EINVAL), in the kernel and in hurd-kernel; on loopback it may", async () => {
    const k = new Kernel({ system: `tls${process.pid}` });
    try {
      await assert.rejects(new Edge(k).listen("0.0.0.0:0"), (e: unknown) => e instanceof HurdError && e.errno === "EINVAL" && /needs TLS/.test(e.message));
      const lo = new Edge(k);
      assert.ok((await lo.listen("127.0.0.1:0")) > 0);
      await lo.close();
    } finally {
      k.close();
    }
    const r = spawnSync(process.execPath, ["--import", "tsx", kmain, "--grpc", "0.0.0.0:0", "--system", `tlsk${process.pid}`], { encoding: "utf8", timeout: 60_000, env: { ...process.env, HURD_GRPC_INSECURE: "" } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /not a loopback address: it needs TLS/);
  });

  it("hurd-kernel takes a renewed certificate without a restart (cert-manager's rewrite), refuses a half-written or mismatched one and keeps serving the old, and will not start on a bad pair", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hurd-edgerenew-"));
    dirs.push(dir);
    const ca = await makeCA({ name: "renewal test CA" });
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => issueCert(ca, { dns: ["localhost"], ip: ["127.0.0.1"] })));
    const certFile = join(dir, "tls.crt");
    const keyFile = join(dir, "tls.key");
    // As Kubernetes swaps a Secret's files: whole files, renamed into place.
    const put = (file: string, pem: string) => {
      writeFileSync(`${file}.new`, pem);
      renameSync(`${file}.new`, file);
    };
    put(certFile, a!.certPem);
    put(keyFile, a!.keyPem);
    const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
    const k = spawn(process.execPath, ["--import", "tsx", kmain, "--grpc", "127.0.0.1:0", "--grpc-cert", certFile, "--grpc-key", keyFile, "--system", `renew${process.pid}`], {
      env: { ...process.env, HURD_TLS_RELOAD_MS: "100" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.push(k);
    let out = "";
    k.stdout!.on("data", (d) => (out += d));
    k.stderr!.on("data", (d) => (out += d));
    await until(() => /gRPC edge on 127\.0\.0\.1:\d+ \(TLS\)/.test(out) || k.exitCode !== null, 60_000, "hurd-kernel's edge");
    const port = Number(/gRPC edge on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    /** The certificate a new connection is served, checked against the CA. */
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const sock = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: ca.certPem, ALPNProtocols: ["h2"] }, () => {
          resolve(sock.getPeerX509Certificate()!.fingerprint256);
          sock.end();
        });
        sock.once("error", reject);
      });
    assert.equal(await served(), fingerprint(a!.certPem));
    // The renewal: certificate first, key a moment later, as two file writes land.
    put(certFile, b!.certPem);
    await until(() => /were refused \(.*the key is not the certificate's\)/.test(out), 10_000, "the half-written renewal to be refused");
    assert.equal(await served(), fingerprint(a!.certPem), "a half-written renewal replaced the served certificate");
    put(keyFile, b!.keyPem);
    await until(async () => (await served()) === fingerprint(b!.certPem), 10_000, "the renewed certificate to be served");
    assert.match(out, /the edge's certificate was renewed: serial/);
    // A key that is not the certificate's, and a file that is not PEM: refused, the renewed one kept, the kernel up.
    put(keyFile, c!.keyPem);
    put(certFile, "not a certificate");
    await until(() => /were refused \(.*not a PEM certificate/.test(out), 10_000, "the garbage to be refused");
    assert.equal(await served(), fingerprint(b!.certPem));
    assert.equal(k.exitCode, null, "the kernel died of a bad renewal");
    k.kill("SIGTERM");
    // A reload interval that is not a number of milliseconds: EINVAL, naming the setting.
    for (const bad of ["abc", "0", "-5"])
      assert.throws(() => edgeTlsFromFiles(certFile, join(dir, "tls.key"), createLogger("test"), { HURD_TLS_RELOAD_MS: bad }), (e: unknown) => e instanceof HurdError && e.errno === "EINVAL" && /HURD_TLS_RELOAD_MS/.test(e.message));
    // At start a bad pair is an error, saying which files and why.
    put(certFile, a!.certPem);
    const r = spawnSync(process.execPath, ["--import", "tsx", kmain, "--grpc", "127.0.0.1:0", "--grpc-cert", certFile, "--grpc-key", keyFile, "--system", `renewbad${process.pid}`], { encoding: "utf8", timeout: 60_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /the edge's certificate \(--grpc-cert .*tls\.crt, --grpc-key .*tls\.key\): .*the key is not the certificate's/);
  });

  it("hurd up on 0.0.0.0 serves TLS from a private CA: hurd ps verifies it with the session's CA; plaintext and another CA get nothing", async () => {
    const state = mkdtempSync(join(tmpdir(), "hurd-edgetls-"));
    dirs.push(state);
    const name = `tls${process.pid}`;
    const env = { ...process.env, HURD_STATE_DIR: state };
    const up = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "0.0.0.0:0", "--hurd", name], { env, stdio: ["ignore", "pipe", "pipe"] });
    started.push(up);
    let out = "";
    up.stdout!.on("data", (d) => (out += d));
    up.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || up.exitCode !== null, 60_000, "hurd up");
    assert.match(out, /TLS, a private CA of its own/);
    const session = JSON.parse(readFileSync(join(state, `${name}.json`), "utf8")) as { edge: string; edgeCa?: string; console: { taskId: number; token: string } };
    assert.match(session.edgeCa ?? "", /BEGIN CERTIFICATE/);
    // The command, as a user runs it: verifies the edge against the session's CA.
    const ps = spawnSync(process.execPath, ["--import", "tsx", main, "ps", "--hurd", name], { env, encoding: "utf8", timeout: 60_000 });
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /\b1\b/);
    assert.doesNotMatch(ps.stderr, /Warning/);
    // The edge with the CA: the console's call goes through.
    assert.equal(await consoleCall(session.edge, edgeChannelCredentials(session.edgeCa), session.console), 0);
    // Plaintext: the token never reaches a handler.
    assert.equal(await consoleCall(session.edge, grpc.credentials.createInsecure(), session.console), grpc.status.UNAVAILABLE);
    // TLS trusting another CA (a server impersonating the edge would be refused the same way).
    const other = await makeCA({ name: "not the hurd's" });
    assert.equal(await consoleCall(session.edge, edgeChannelCredentials(other.certPem), session.console), grpc.status.UNAVAILABLE);
    up.kill("SIGINT");
    await until(() => up.exitCode !== null, 20_000, "hurd up to exit");
    assert.equal(up.exitCode, 0);
  });

  it("hurd up --nats on 0.0.0.0: the kernel serves TLS, and pid 1's program gets the edge and its CA, never the bus", { skip: spawnSync("sh", ["-c", "command -v nats-server"]).status !== 0 && "nats-server is not installed" }, async () => {
    const state = mkdtempSync(join(tmpdir(), "hurd-edgetls-nats-"));
    dirs.push(state);
    const name = `tlsn${process.pid}`;
    const envFile = join(state, "workload.env");
    // HURD_NATS_KEYS empty: this hurd makes its own keys, whatever npm test's are.
    const env = { ...process.env, HURD_STATE_DIR: state, HURD_NATS_KEYS: "" };
    const up = spawn(process.execPath, ["--import", "tsx", main, "up", "--nats", "--grpc", "0.0.0.0:0", "--hurd", name, "--", "sh", "-c", `env > ${envFile}; exec sleep 300`], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    started.push(up);
    let out = "";
    up.stdout!.on("data", (d) => (out += d));
    up.stderr!.on("data", (d) => (out += d));
    try {
      await until(() => / is up in /.test(out) || up.exitCode !== null, 60_000, "hurd up --nats");
      assert.match(out, /TLS, a private CA of its own/);
      const session = JSON.parse(readFileSync(join(state, `${name}.json`), "utf8")) as { edge: string; edgeCa?: string; console: { taskId: number; token: string } };
      assert.match(session.edgeCa ?? "", /BEGIN CERTIFICATE/);
      assert.equal(await consoleCall(session.edge, grpc.credentials.createInsecure(), session.console), grpc.status.UNAVAILABLE);
      await until(() => existsSync(envFile) && readFileSync(envFile, "utf8").includes("HURD_EDGE_CA"), 20_000, "pid 1's program's environment");
      const ps = spawnSync(process.execPath, ["--import", "tsx", main, "ps", "--hurd", name], { env, encoding: "utf8", timeout: 60_000 });
      assert.equal(ps.status, 0, ps.stderr);
      assert.match(ps.stdout, /sleep 300/);
      const wenv = readFileSync(envFile, "utf8");
      assert.match(wenv, new RegExp(`^HURD_EDGE=${session.edge.replace(/[.]/g, "\\.")}$`, "m"));
      assert.match(wenv, /^HURD_EDGE_CA=-----BEGIN CERTIFICATE-----/m);
      assert.doesNotMatch(wenv, /NATS|nats:\/\//);
    } finally {
      up.kill("SIGINT");
      await until(() => up.exitCode !== null, 20_000, "hurd up --nats to exit").catch(() => up.kill("SIGKILL"));
    }
  });
});

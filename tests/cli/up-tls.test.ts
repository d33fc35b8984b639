// `hurd up --tls-cert/--tls-key/--tls-ca` (HURD_TLS_CERT/KEY/CA): a
// certificate of the user's, not a private CA made by `hurd up`. Every way
// the files can be wrong is refused before anything starts, naming the
// file; embedded, the edge serves it and the session carries the user's CA;
// with --nats, the nats-server of its own speaks TLS only with it, every
// server checks it against the CA, and pid 1's program gets neither the
// certificate's files nor the bus.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { issueCert, makeCA } from "@hurdmesh/mach/nats-auth";
import { until } from "../harness.js";
import { processesWith } from "./kit.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;
const haveNats = spawnSync("sh", ["-c", "command -v nats-server"]).status === 0;
const base = mkdtempSync(join(tmpdir(), "hurd-up-tls-"));
const f = (name: string, text: string) => {
  const p = join(base, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
};


describe("hurd up with the user's certificate", () => {
  const files: Record<string, string> = {};
  const started: ChildProcess[] = [];
  before(async () => {
    const ca = await makeCA({ name: "the user's CA" });
    const other = await makeCA({ name: "another CA" });
    const good = await issueCert(ca, { dns: ["localhost"], ip: ["127.0.0.1"] });
    const elsewhere = await issueCert(ca, { dns: ["hurd.example.org"] });
    const foreign = await issueCert(other, { dns: ["localhost"], ip: ["127.0.0.1"] });
    const ipOnly = await issueCert(ca, { ip: ["127.0.0.1"] });
    Object.assign(files, {
      ca: f("ca.crt", ca.certPem),
      cert: f("edge.crt", good.certPem),
      key: f("edge.key", good.keyPem),
      elsewhereCert: f("elsewhere.crt", elsewhere.certPem),
      elsewhereKey: f("elsewhere.key", elsewhere.keyPem),
      foreignCert: f("foreign.crt", foreign.certPem),
      foreignKey: f("foreign.key", foreign.keyPem),
      garbage: f("garbage.pem", "not a certificate\n"),
      ipOnlyCert: f("iponly.crt", ipOnly.certPem),
      ipOnlyKey: f("iponly.key", ipOnly.keyPem),
    });
  });
  after(async () => {
    for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
    rmSync(base, { recursive: true, force: true });
  });

  it("refuses files that are missing, not PEM, mismatched or from another CA, before anything starts, naming the file", () => {
    const state = mkdtempSync(join(base, "state-"));
    const up = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", `bad${process.pid}`, ...args], {
        env: { ...process.env, HURD_STATE_DIR: state, HURD_TLS_CERT: "", HURD_TLS_KEY: "", HURD_TLS_CA: "", ...env },
        encoding: "utf8",
        timeout: 60_000,
      });
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["--tls-cert", files.cert!], {}, /--tls-cert, --tls-key and --tls-ca go together .*--tls-key and --tls-ca missing/],
      [[], { HURD_TLS_CERT: files.cert!, HURD_TLS_KEY: files.key! }, /go together .*--tls-ca missing/],
      [["--tls-cert", files.cert!, "--tls-key", join(base, "absent.key"), "--tls-ca", files.ca!], {}, /--tls-key \S+absent\.key: no such file/],
      [["--tls-cert", files.garbage!, "--tls-key", files.key!, "--tls-ca", files.ca!], {}, /--tls-cert \S+garbage\.pem: not a PEM certificate/],
      [["--tls-cert", files.cert!, "--tls-key", files.garbage!, "--tls-ca", files.ca!], {}, /--tls-key \S+garbage\.pem: not a PEM private key/],
      [["--tls-cert", files.cert!, "--tls-key", files.foreignKey!, "--tls-ca", files.ca!], {}, /--tls-key \S+foreign\.key is not the key of the certificate in \S+edge\.crt/],
      [["--tls-cert", files.foreignCert!, "--tls-key", files.foreignKey!, "--tls-ca", files.ca!], {}, /the certificate in \S+foreign\.crt is not signed by the CA in \S+ca\.crt/],
      [["--tls-cert", files.elsewhereCert!, "--tls-key", files.elsewhereKey!, "--tls-ca", files.ca!], {}, /does not name 127\.0\.0\.1, which the edge is dialled by/],
      // Its own nats-server is dialled at 127.0.0.1, which nats.js checks against the name localhost.
      [["--nats", "--tls-cert", files.ipOnlyCert!, "--tls-key", files.ipOnlyKey!, "--tls-ca", files.ca!], {}, /does not name localhost, which NATS of its own/],
    ];
    for (const [args, env, want] of cases) {
      const r = up(args, env);
      assert.notEqual(r.status, 0, `accepted ${JSON.stringify({ args, env })}`);
      assert.match(r.stderr, want, JSON.stringify({ args, env }));
      assert.doesNotMatch(r.stderr, /is up in/);
    }
    assert.deepEqual(readdirSync(state), [], "a session was written");
  });

  it("embedded: the edge serves the user's certificate and the session carries the user's CA (HURD_TLS_*)", async () => {
    const state = mkdtempSync(join(base, "state-"));
    const name = `emb${process.pid}`;
    const u = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", name], {
      env: { ...process.env, HURD_STATE_DIR: state, HURD_TLS_CERT: files.cert, HURD_TLS_KEY: files.key, HURD_TLS_CA: files.ca },
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.push(u);
    let out = "";
    u.stdout!.on("data", (d) => (out += d));
    u.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || u.exitCode !== null, 60_000, "hurd up");
    assert.match(out, /gRPC edge on 127\.0\.0\.1:\d+ \(TLS, the certificate given\)/, out);
    const session = JSON.parse(readFileSync(join(state, `${name}.json`), "utf8")) as { edgeCa?: string };
    assert.equal(session.edgeCa, readFileSync(files.ca!, "utf8"));
    const ps = spawnSync(process.execPath, ["--import", "tsx", main, "ps", "--hurd", name], { env: { ...process.env, HURD_STATE_DIR: state }, encoding: "utf8", timeout: 60_000 });
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /\/hurd\/proc/);
    u.kill("SIGTERM");
    await until(() => u.exitCode !== null, 30_000, "hurd up to shut down");
  });

  it("--nats: its own nats-server speaks TLS only with the user's certificate; the hurd boots on it; pid 1 gets no certificate files, no bus", { skip: !haveNats && "nats-server is not installed" }, async () => {
    const state = mkdtempSync(join(base, "state-"));
    const envFile = join(state, "workload.env");
    const name = `ntls${process.pid}`;
    const u = spawn(
      process.execPath,
      ["--import", "tsx", main, "up", "--nats", "--grpc", "127.0.0.1:0", "--hurd", name, "--tls-cert", files.cert!, "--tls-key", files.key!, "--tls-ca", files.ca!, "--", "sh", "-c", `env > ${envFile}; exec sleep 300`],
      { env: { ...process.env, HURD_STATE_DIR: state, HURD_NATS_KEYS: "", HURD_TLS_CERT: files.cert }, stdio: ["ignore", "pipe", "pipe"] },
    );
    started.push(u);
    let out = "";
    u.stdout!.on("data", (d) => (out += d));
    u.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || u.exitCode !== null, 120_000, "hurd up --nats");
    assert.match(out, /\(TLS, the certificate given\) \(each server its own process on tls:\/\/127\.0\.0\.1:\d+, a nats-server of its own, NATS authorization on/, out);
    const port = Number(/on tls:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    // A plaintext client is told TLS is required and gets no answer to its PING.
    const said = await new Promise<string>((resolve) => {
      let buf = "";
      const s = createConnection({ host: "127.0.0.1", port }, () => s.write('CONNECT {"verbose":false}\r\nPING\r\n'));
      s.setEncoding("utf8");
      s.on("data", (d) => (buf += d));
      s.on("close", () => resolve(buf));
      s.on("error", () => resolve(buf));
      setTimeout(() => s.destroy(), 5000);
    });
    assert.match(said, /"tls_required":true/);
    assert.doesNotMatch(said, /PONG/);
    const ps = spawnSync(process.execPath, ["--import", "tsx", main, "ps", "--hurd", name], { env: { ...process.env, HURD_STATE_DIR: state }, encoding: "utf8", timeout: 60_000 });
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /\/hurd\/proc/);
    await until(() => existsSync(envFile) && readFileSync(envFile, "utf8").includes("HURD_EDGE="), 30_000, "pid 1's program");
    const workload = readFileSync(envFile, "utf8");
    assert.doesNotMatch(workload, /NATS|tls:\/\/|HURD_TLS_|edge\.key/, "the bus or the certificate's files in the workload's environment");
    u.kill("SIGTERM");
    await until(() => u.exitCode !== null, 30_000, "hurd up to shut down");
    await until(() => processesWith(state).length === 0, 20_000, "every process of the hurd to end");
  });
});

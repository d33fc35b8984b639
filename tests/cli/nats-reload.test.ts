// `hurd nats-reload`, the NATS pod's sidecar (k8s/components/
// nats-cert-reload), against a real nats-server it did not start: the
// certificate files laid out as the kubelet mounts Secret nats-tls and
// renewed as it does it (`..data` flipped to a new timestamped directory).
// The renewal is served to new connections within a bound; a wrong key and
// another CA's certificate are refused with one line each, nats-server is
// not signalled and keeps serving the certificate before; with no
// nats-server to signal the command ends at once with one line.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { issueCert, makeCA, servedCertificate } from "@hurdmesh/mach/nats-auth";
import { until } from "../harness.js";
import { main, SecretVolume } from "./kit.js";
import { findNatsServer } from "../../packages/cli/src/nats-reload.js";

const haveNats = spawnSync("sh", ["-c", "command -v nats-server"]).status === 0;
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().once("error", reject).listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe("hurd nats-reload", () => {
  const started: ChildProcess[] = [];
  const base = mkdtempSync(join(tmpdir(), "hurd-nats-reload-"));
  after(() => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    rmSync(base, { recursive: true, force: true });
  });

  /** `hurd nats-reload ARGS` in the background, its output (pino's lines on stdout, the error line on stderr) collected. */
  function sidecar(args: string[]): { proc: ChildProcess; out: () => string; done: Promise<number | null> } {
    const proc = spawn(process.execPath, ["--import", "tsx", main, "nats-reload", ...args], { env: { ...process.env, HURD_LOG_FORMAT: "text", HURD_TLS_RELOAD_MS: "" }, stdio: ["ignore", "pipe", "pipe"] });
    started.push(proc);
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const done = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    return { proc, out: () => out, done };
  }

  /** A nats-server serving TLS with the volume's files, its configuration file in `dir` (the path tells it from the machine's others). */
  async function natsServer(dir: string, vol: SecretVolume): Promise<{ config: string; port: number; proc: ChildProcess; log: () => string }> {
    const config = join(dir, "nats.conf");
    writeFileSync(config, `listen: "127.0.0.1:-1"\ntls {\n  cert_file: "${vol.certFile}"\n  key_file: "${vol.keyFile}"\n}\n`);
    const proc = spawn("nats-server", ["-c", config], { stdio: ["ignore", "ignore", "pipe"] });
    started.push(proc);
    let log = "";
    proc.stderr!.on("data", (d) => (log += d));
    await until(() => /Server is ready/.test(log) || proc.exitCode !== null, 10_000, "nats-server to start");
    const port = Number(/Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(log)?.[1]);
    assert.ok(port > 0, log);
    return { config, port, proc, log: () => log };
  }

  it("signals the pod's nats-server on a kubelet-style renewal, which then serves the new certificate; a wrong key and another CA's certificate are refused once each", { skip: !haveNats && "nats-server is not installed", timeout: 90_000 }, async () => {
    const ca = await makeCA({ name: "nats-tls CA" });
    const other = await makeCA({ name: "another CA" });
    const names = { dns: ["localhost", "nats"], ip: ["127.0.0.1"] };
    const [a, b, c, foreign] = await Promise.all([issueCert(ca, names), issueCert(ca, names), issueCert(ca, names), issueCert(other, names)]);
    const vol = new SecretVolume(join(base, "nats-tls"));
    mkdirSync(vol.dir);
    vol.write(a!.certPem, a!.keyPem);
    const caFile = join(base, "ca.crt");
    writeFileSync(caFile, ca.certPem);
    let r: ReturnType<typeof sidecar> | null = null;
    let natsLog = () => "";
    try {
      const nats = await natsServer(base, vol);
      natsLog = nats.log;
      const { config, port } = nats;
      const sc = sidecar(["--cert", vol.certFile, "--key", vol.keyFile, "--ca", caFile, "--config", config, "--server", `127.0.0.1:${port}`, "--wait", "10"]);
      r = sc;
      await until(() => /watching NATS's certificate for renewals: nats-server \(pid \d+\)/.test(sc.out()), 20_000, "the sidecar to start");
      assert.match(sc.out(), new RegExp(`pid ${nats.proc.pid}\\)`), "the sidecar found another nats-server");
      assert.equal((await servedCertificate("127.0.0.1", port)).fingerprint256, fingerprint(a!.certPem));

      const t0 = performance.now();
      vol.write(b!.certPem, b!.keyPem);
      await until(async () => (await servedCertificate("127.0.0.1", port)).fingerprint256 === fingerprint(b!.certPem), 5_000, "nats-server to serve the renewed certificate");
      const servedMs = performance.now() - t0;
      await until(() => /NATS's certificate was renewed: nats-server reloaded it/.test(sc.out()), 5_000, "the sidecar to say the reload took");
      console.log(`# renewal served to new connections after ${Math.round(servedMs)} ms, confirmed by the sidecar after ${Math.round(performance.now() - t0)} ms`);

      // A wrong key: c's certificate with b's key.
      vol.write(c!.certPem, b!.keyPem);
      await until(() => /NATS's certificate files changed but were refused \(the key is not the certificate's\)/.test(sc.out()), 5_000, "the wrong key to be refused");
      // Another CA's valid pair: clients checking the CA would be cut off.
      vol.write(foreign!.certPem, foreign!.keyPem);
      await until(() => /NATS's certificate files changed but were refused \(the certificate is not signed by the CA/.test(sc.out()), 5_000, "another CA's certificate to be refused");
      assert.equal((await servedCertificate("127.0.0.1", port)).fingerprint256, fingerprint(b!.certPem));
      assert.equal((sc.out().match(/refused \(the key is not the certificate's\)/g) ?? []).length, 1, "a refusal said more than once");
      assert.equal((sc.out().match(/refused \(the certificate is not signed by the CA/g) ?? []).length, 1, "a refusal said more than once");
      assert.equal((sc.out().match(/nats-server reloaded it/g) ?? []).length, 1, "a reload said for a refused renewal");
      assert.equal((nats.log().match(/Reloaded server configuration/g) ?? []).length, 1, "nats-server was signalled for a refused renewal");

      sc.proc.kill("SIGTERM");
      assert.equal(await sc.done, 0, sc.out());
    } catch (e) {
      console.log(`${r?.out() ?? ""}${natsLog()}`.replace(/^/gm, "# "));
      throw e;
    } finally {
      for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
  });

  it("started after a renewal it missed, tells nats-server to reload at once; answers the kubelet's probes on --health", { skip: !haveNats && "nats-server is not installed", timeout: 60_000 }, async () => {
    const ca = await makeCA();
    const [a, b] = await Promise.all([issueCert(ca, { ip: ["127.0.0.1"] }), issueCert(ca, { ip: ["127.0.0.1"] })]);
    const dir = join(base, "missed");
    const vol = new SecretVolume(join(dir, "nats-tls"));
    mkdirSync(vol.dir, { recursive: true });
    vol.write(a.certPem, a.keyPem);
    const nats = await natsServer(dir, vol);
    vol.write(b.certPem, b.keyPem);
    const healthPort = await freePort();
    const r = sidecar(["--cert", vol.certFile, "--key", vol.keyFile, "--config", nats.config, "--server", `127.0.0.1:${nats.port}`, "--health", `127.0.0.1:${healthPort}`]);
    try {
      await until(async () => (await servedCertificate("127.0.0.1", nats.port)).fingerprint256 === fingerprint(b.certPem), 20_000, "nats-server to serve the certificate renewed before the sidecar started");
      assert.match(r.out(), /a renewal was missed, it is told to reload/);
      await until(() => /nats-server reloaded it/.test(r.out()), 5_000, "the sidecar to say the reload took");
      const res = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "ok 1\n");
      r.proc.kill("SIGTERM");
      assert.equal(await r.done, 0, r.out());
    } catch (e) {
      console.log(`${r.out()}${nats.log()}`.replace(/^/gm, "# "));
      throw e;
    } finally {
      for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
  });

  it("with no nats-server in the PID namespace: one line naming what is missing, ESRCH, status 1", { timeout: 30_000 }, async () => {
    const vol = new SecretVolume(join(base, "nats-tls-alone"));
    mkdirSync(vol.dir);
    const ca = await makeCA();
    const a = await issueCert(ca, { dns: ["nats"] });
    vol.write(a.certPem, a.keyPem);
    const r = sidecar(["--cert", vol.certFile, "--key", vol.keyFile, "--name", "no-such-nats-server", "--wait", "0.5"]);
    assert.equal(await r.done, 1);
    assert.equal(r.out(), "hurd: ESRCH (no such process): no no-such-nats-server process in this PID namespace (/proc): in Kubernetes the pod needs shareProcessNamespace: true\n");
  });

  it("bad input: a --server that is no HOST:PORT is a usage error (status 2); certificate files that are not a pair, one line at once (EINVAL, status 1)", { timeout: 30_000 }, async () => {
    const r = sidecar(["--cert", "/nonexistent/tls.crt", "--key", "/nonexistent/tls.key", "--server", "nats"]);
    assert.equal(await r.done, 2);
    assert.equal(r.out(), `hurd: --server must be HOST:PORT, not "nats"\nTry 'hurd nats-reload --help' for more information.\n`);
    const t0 = performance.now();
    // --wait 20: the files are looked at before nats-server is waited for.
    const m = sidecar(["--cert", "/nonexistent/tls.crt", "--key", "/nonexistent/tls.key", "--name", "no-such-nats-server", "--wait", "20"]);
    assert.equal(await m.done, 1);
    assert.ok(performance.now() - t0 < 15_000, "the bad files were said only after the wait for nats-server");
    assert.match(m.out(), /^hurd: EINVAL \(invalid argument\): NATS's certificate \(\/nonexistent\/tls\.crt, \/nonexistent\/tls\.key\): ENOENT: no such file or directory, open '\/nonexistent\/tls\.crt'\n$/);
  });

  it("finds the one nats-server by its program's name, told apart by --config among several; EINVAL for several, ESRCH for none", () => {
    // A /proc of its own: command lines as the kernel keeps them, NUL-separated.
    const proc = join(base, "proc");
    const cmdline = (pid: number, ...argv: string[]) => {
      mkdirSync(join(proc, String(pid)), { recursive: true });
      writeFileSync(join(proc, String(pid), "cmdline"), argv.join("\0") + "\0");
    };
    cmdline(1, "/pause");
    cmdline(7, "nats-server", "-c", "/etc/nats/config/nats.conf", "-m", "8222");
    // Its watchdog's shell names nats-server in its script, not as its program: not it.
    cmdline(8, "sh", "-c", "exec nats-server -c /etc/nats/config/nats.conf");
    cmdline(9, "node", "/opt/hurdmesh/bin/hurdmesh-service.mjs", "hurd", "nats-reload", "--name", "nats-server");
    mkdirSync(join(proc, "self"), { recursive: true });
    assert.equal(findNatsServer("nats-server", undefined, proc), 7);
    cmdline(12, "/usr/sbin/nats-server", "-c", "/tmp/other.conf");
    assert.throws(() => findNatsServer("nats-server", undefined, proc), /^HurdError: EINVAL \(invalid argument\): several nats-server processes \((?:pids 12, 7|pids 7, 12)\): say which with --config$/);
    assert.equal(findNatsServer("nats-server", "/etc/nats/config/nats.conf", proc), 7);
    assert.equal(findNatsServer("nats-server", "/tmp/other.conf", proc), 12);
    assert.throws(() => findNatsServer("nats-server", "/tmp/none.conf", proc), /ESRCH .*no nats-server started with \/tmp\/none\.conf process/);
  });
});

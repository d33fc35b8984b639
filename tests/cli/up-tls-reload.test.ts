// `hurd up --nats --tls-cert/--tls-key/--tls-ca` takes a renewed
// certificate without a restart: the files are laid out as Kubernetes
// mounts a Secret (tls.crt and tls.key symlinks through `..data`, flipped
// to a new directory at once, as the kubelet does when cert-manager renews
// it). Within a bound, a new connection to the kernel's edge and to the
// nats-server `hurd up` started is served the new certificate; an HTTP/2
// connection to the edge opened before keeps working on the old one; the
// hurd keeps working over NATS (nats-server 2.9's reload disconnects its
// JWT clients, which reconnect: nats-auth/server-reload.ts). A renewal that
// is garbage, or from another CA, is refused with one line each and the
// certificate before it is still served.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as http2Connect, type ClientHttp2Session } from "node:http2";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { issueCert, makeCA } from "@hurdmesh/mach/nats-auth";
import { until } from "../harness.js";
import { processesWith, SecretVolume } from "./kit.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;
const haveNats = spawnSync("sh", ["-c", "command -v nats-server"]).status === 0;

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The certificate the edge serves a new connection (checked against `caPem`). */
function edgeServes(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: caPem, ALPNProtocols: ["h2"] }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.destroy();
    });
    s.once("error", reject);
  });
}

/** The certificate nats-server serves a new connection: its INFO in plaintext, then the TLS upgrade (checked against `caPem`). */
function natsServes(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = createConnection({ host: "127.0.0.1", port });
    raw.once("error", reject);
    raw.once("data", () => {
      const s = tlsConnect({ socket: raw, servername: "localhost", ca: caPem }, () => {
        resolve(s.getPeerX509Certificate()!.fingerprint256);
        s.destroy();
      });
      s.once("error", reject);
    });
  });
}

/** A gRPC call on an HTTP/2 connection already open (an unauthenticated task_info: what matters is that the connection answers). */
function callOn(session: ClientHttp2Session): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": "/hurd.mach.v1.Mach/TaskInfo", "content-type": "application/grpc", te: "trailers" });
    let status = "";
    req.on("response", (h) => (status = String(h["grpc-status"] ?? "")));
    req.on("trailers", (t) => (status = String(t["grpc-status"] ?? status)));
    req.on("close", () => resolve(status));
    req.on("error", reject);
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

describe("hurd up --nats takes a renewed certificate without a restart", () => {
  const started: ChildProcess[] = [];
  const base = mkdtempSync(join(tmpdir(), "hurd-up-tls-reload-"));
  after(async () => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    // Whatever the hurd started and is still there (its children are process groups of their own): by pid.
    for (const pid of processesWith(base)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    rmSync(base, { recursive: true, force: true });
  });

  it("the edge and its own nats-server serve the new certificate to new connections, open ones keep working, garbage and another CA's are refused", { skip: !haveNats && "nats-server is not installed", timeout: 120_000 }, async () => {
    const ca = await makeCA({ name: "the user's CA" });
    const other = await makeCA({ name: "another CA" });
    const names = { dns: ["localhost"], ip: ["127.0.0.1"] };
    const [a, b, foreign] = await Promise.all([issueCert(ca, names), issueCert(ca, names), issueCert(other, names)]);
    const vol = new SecretVolume(join(base, "kernel-tls"));
    mkdirSync(vol.dir);
    vol.write(a!.certPem, a!.keyPem);
    const caFile = join(base, "ca.crt");
    writeFileSync(caFile, ca.certPem);
    const state = join(base, "state");
    mkdirSync(state);
    const name = `reload${process.pid}`;
    // HURD_TLS_RELOAD_MS left at its 60 s: what this test times is the directory watch.
    const u = spawn(process.execPath, ["--import", "tsx", main, "up", "--nats", "--grpc", "127.0.0.1:0", "--hurd", name, "--tls-cert", vol.certFile, "--tls-key", vol.keyFile, "--tls-ca", caFile, "--", "sleep", "300"], {
      env: { ...process.env, HURD_STATE_DIR: state, HURD_NATS_KEYS: "", HURD_TLS_RELOAD_MS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.push(u);
    let out = "";
    u.stdout!.on("data", (d) => (out += d));
    u.stderr!.on("data", (d) => (out += d));
    let h2: ClientHttp2Session | null = null;
    try {
      await until(() => / is up in /.test(out) || u.exitCode !== null, 60_000, "hurd up --nats");
      assert.match(out, / is up in /, out);
      const natsPort = Number(/on tls:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
      const session = JSON.parse(readFileSync(join(state, `${name}.json`), "utf8")) as { edge: string };
      const edgePort = Number(/:(\d+)$/.exec(session.edge)![1]);
      assert.equal(await edgeServes(edgePort, ca.certPem), fingerprint(a!.certPem));
      assert.equal(await natsServes(natsPort, ca.certPem), fingerprint(a!.certPem));

      // An HTTP/2 connection to the edge, open across the renewal.
      h2 = http2Connect(`https://localhost:${edgePort}`, { ca: ca.certPem });
      assert.notEqual(await callOn(h2), "", "no gRPC status on the open connection");
      const h2Cert = (h2.socket as unknown as import("node:tls").TLSSocket).getPeerX509Certificate()!.fingerprint256;

      // The renewal, as the kubelet lands it.
      const t0 = performance.now();
      vol.write(b!.certPem, b!.keyPem);
      let edgeMs = 0;
      let natsMs = 0;
      await until(
        async () => {
          if (!edgeMs && (await edgeServes(edgePort, ca.certPem)) === fingerprint(b!.certPem)) edgeMs = performance.now() - t0;
          if (!natsMs && (await natsServes(natsPort, ca.certPem)) === fingerprint(b!.certPem)) natsMs = performance.now() - t0;
          return edgeMs > 0 && natsMs > 0;
        },
        5_000,
        "the renewed certificate on new connections to the edge and NATS",
      );
      console.log(`# renewal served to new connections: edge after ${Math.round(edgeMs)} ms, NATS after ${Math.round(natsMs)} ms`);
      await until(() => /NATS's certificate was renewed: nats-server reloaded it/.test(out), 5_000, "hurd up to say nats-server reloaded");
      assert.match(out, /the edge's certificate was renewed: serial/);
      // The connection opened before: still answering, still on the old certificate.
      assert.notEqual(await callOn(h2), "", "the open connection stopped answering");
      // (Node 22's HTTP/2 session may no longer hand out the peer's certificate by now: compared where it does.)
      const still = (h2.socket as unknown as import("node:tls").TLSSocket).getPeerX509Certificate()?.fingerprint256;
      if (still !== undefined) assert.equal(still, h2Cert);
      // The hurd over NATS after the reload (its servers reconnected): hurd ps lists the servers.
      const ps = spawnSync(process.execPath, ["--import", "tsx", main, "ps", "--hurd", name], { env: { ...process.env, HURD_STATE_DIR: state }, encoding: "utf8", timeout: 30_000 });
      assert.equal(ps.status, 0, ps.stderr);
      assert.match(ps.stdout, /\/hurd\/proc/);

      // Garbage: refused by the edge and by hurd up for NATS, one line each; the renewed certificate still served.
      vol.write("not a certificate\n", b!.keyPem);
      await until(() => /the edge's certificate files changed but were refused \(not a PEM certificate/.test(out) && /NATS's certificate files changed but were refused \(not a PEM certificate/.test(out), 5_000, "the garbage to be refused");
      // Another CA's certificate, a valid pair: refused for NATS by hurd up and by the kernel (given --grpc-ca) for the edge: their clients would be cut off.
      vol.write(foreign!.certPem, foreign!.keyPem);
      await until(
        () => /NATS's certificate files changed but were refused \(the certificate is not signed by the CA/.test(out) && /the edge's certificate files changed but were refused \(the certificate is not signed by the CA/.test(out),
        5_000,
        "another CA's certificate to be refused for NATS and the edge",
      );
      assert.equal(await natsServes(natsPort, ca.certPem), fingerprint(b!.certPem));
      assert.equal(await edgeServes(edgePort, ca.certPem), fingerprint(b!.certPem));
      assert.equal((out.match(/NATS's certificate files changed but were refused \(not a PEM/g) ?? []).length, 1, "a refusal said more than once");
      assert.equal((out.match(/nats-server reloaded it/g) ?? []).length, 1, "nats-server reloaded for a refused renewal");
      assert.equal(u.exitCode, null, "hurd up ended on a bad renewal");
    } catch (e) {
      // What hurd up and its servers said, to see why.
      console.log(out.replace(/^/gm, "# "));
      throw e;
    } finally {
      h2?.destroy();
      u.kill("SIGTERM");
      await until(() => u.exitCode !== null || u.signalCode !== null, 30_000, "hurd up to shut down").catch(() => u.kill("SIGKILL"));
    }
    await until(() => processesWith(base).length === 0, 20_000, "every process of the hurd to end");
  });
});

// A private CA made in process, and nats-server requiring TLS with its
// certificate: a client that trusts the CA connects, a plaintext one and
// one that does not trust the CA are refused.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { connect } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";
import { natsConnectOptions } from "./creds.js";
import { natsWanted, startFabric, type Fabric } from "./test-server.js";
import { issueCert, makeCA } from "./tls.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("a private CA", () => {
  it("issues certificates for the names and addresses asked, which verify against it", async () => {
    const ca = await makeCA({ name: "hurd test CA" });
    const caCert = new X509Certificate(ca.certPem);
    assert.ok(caCert.ca);
    assert.match(caCert.subject, /CN=hurd test CA/);
    const pair = await issueCert(ca, { dns: ["nats", "localhost"], ip: ["127.0.0.1", "::1"] });
    const cert = new X509Certificate(pair.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey));
    assert.equal(cert.checkHost("nats"), "nats");
    assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(cert.checkHost("other"), undefined);
    assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    // Another CA's certificate does not verify against this one.
    const other = new X509Certificate((await issueCert(await makeCA(), { dns: ["nats"] })).certPem);
    assert.equal(other.verify(caCert.publicKey), false);
  });

  it("refuses a certificate for no name, or for an address that is none (EINVAL)", async () => {
    const ca = await makeCA();
    await assert.rejects(issueCert(ca, {}), (e: unknown) => e instanceof HurdError && e.code === Errno.EINVAL);
    await assert.rejects(issueCert(ca, { ip: ["localhost"] }), (e: unknown) => e instanceof HurdError && e.code === Errno.EINVAL);
  });
});

describe("nats-server with TLS required", { skip: !natsWanted && "HURD_TEST_BUSES excludes nats" }, () => {
  let f: Fabric;
  before(async () => {
    f = await startFabric({ tls: true });
  });
  after(() => f?.stop());

  it("takes a client that trusts the hurd's CA, over TLS", async () => {
    const kernel = await f.connect(f.mint("kernel", f.roles.kernel));
    const trap = `hurd.${f.system}.kernel.trap`;
    kernel.subscribe(trap, { callback: (_e, m) => void m.respond(m.data) });
    await kernel.flush();
    const task = await f.connect(f.mint("task 7", f.roles.task(7)));
    assert.equal(dec.decode((await task.request(trap, enc.encode("over tls"), { timeout: 3000 })).data), "over tls");
    assert.equal(task.info?.tls_required, true);
  });

  it("refuses a plaintext client: it is hung up on without an answer", async () => {
    const u = f.mint("task 8", f.roles.task(8));
    const port = Number(new URL(f.url).port);
    // A raw client that answers the server's INFO with a plaintext CONNECT.
    const said = await new Promise<string>((resolve, reject) => {
      const s = tcpConnect(port, "127.0.0.1");
      let got = "";
      s.on("data", (d) => {
        got += d;
        if (got.startsWith("INFO ") && got.includes("\r\n") && !got.includes("CONNECT_SENT")) {
          got += "CONNECT_SENT";
          s.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, jwt: u.jwt, lang: "raw", version: "0", protocol: 1 })}\r\nPING\r\n`);
        }
      });
      s.on("close", () => resolve(got));
      s.on("error", (e) => (got ? resolve(got) : reject(e)));
      setTimeout(() => s.destroy(), 3000);
    });
    // The server reads the plaintext as a failed TLS handshake and hangs up: no PONG, no +OK.
    assert.match(said, /"tls_required":true/);
    assert.doesNotMatch(said, /PONG|\+OK/);
    // nats.js, told not to use TLS, refuses the server itself.
    await assert.rejects(connect({ servers: f.url, reconnect: false, tls: null, ...natsConnectOptions(u, { inboxPrefix: u.inboxPrefix }) }));
  });

  it("refuses a client that does not trust the hurd's CA", async () => {
    const u = f.mint("task 9", f.roles.task(9));
    const stranger = await makeCA();
    await assert.rejects(f.connect(u, { tls: { caPem: stranger.certPem } }));
    await assert.rejects(connect({ servers: f.url, reconnect: false, ...natsConnectOptions(u, { inboxPrefix: u.inboxPrefix }) }));
  });
});

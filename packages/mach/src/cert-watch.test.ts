// CertWatch on real files: a renewal written in place in pieces is read
// once, settled, and taken without a refusal in between; what cannot be
// served (a missing key, garbage, an expired certificate, a failed check of
// the caller's) is refused once per change and the pair before it kept.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertWatch, certReloadInterval, checkCertPair, type WatchedPair } from "./cert-watch.js";
import { HurdError } from "./errors.js";
import { issueCert, makeCA } from "./nats-auth/tls.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("CertWatch", () => {
  const dir = mkdtempSync(join(tmpdir(), "hurd-cert-watch-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("takes a renewal written in place in pieces once it has settled, and refuses what cannot be served, keeping the pair before", async () => {
    const ca = await makeCA({ name: "cert-watch test CA" });
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => issueCert(ca, { dns: ["localhost"] })));
    const certFile = join(dir, "tls.crt");
    const keyFile = join(dir, "tls.key");
    writeFileSync(certFile, a!.certPem);
    writeFileSync(keyFile, a!.keyPem);
    const taken: WatchedPair[] = [];
    const refused: string[] = [];
    let refuseSerial = "";
    const w = new CertWatch(certFile, keyFile, {
      intervalMs: 60_000,
      settleMs: 200,
      verify: (cert) => (cert.serialNumber === refuseSerial ? "refused by the caller's check" : null),
      onChange: (p) => taken.push(p),
      onRefused: (why) => refused.push(why),
    });
    assert.equal(w.current.certPem, a!.certPem);
    w.start();
    try {
      // In place, as `cp` writes: the certificate in two pieces, then the key; each gap under the settle time.
      const fd = openSync(certFile, "w");
      writeSync(fd, b!.certPem.slice(0, 100));
      await sleep(60);
      writeSync(fd, b!.certPem.slice(100));
      closeSync(fd);
      await sleep(60);
      writeFileSync(keyFile, b!.keyPem);
      await until(() => taken.length > 0, 5_000, "the renewal to be taken");
      assert.equal(taken.length, 1);
      assert.equal(taken[0]!.certPem, b!.certPem);
      assert.deepEqual(refused, [], "a write in progress was read and refused");
      assert.equal(w.current.keyPem, b!.keyPem);

      // The key gone: refused, said once, the renewed pair kept.
      unlinkSync(keyFile);
      await until(() => refused.length > 0, 5_000, "a missing key to be refused");
      assert.match(refused[0]!, /a file is missing: .*tls\.key/);
      await sleep(400);
      assert.equal(refused.length, 1, "a refusal said more than once");
      // Garbage in place of the certificate, the key back: refused, no errno name in front.
      writeFileSync(certFile, "not a certificate\n");
      writeFileSync(keyFile, b!.keyPem);
      await until(() => refused.length > 1, 5_000, "garbage to be refused");
      assert.match(refused[1]!, /^not a PEM certificate/);
      // A valid pair the caller refuses.
      refuseSerial = new X509Certificate(c!.certPem).serialNumber;
      writeFileSync(certFile, c!.certPem);
      writeFileSync(keyFile, c!.keyPem);
      await until(() => refused.length > 2, 5_000, "the caller's check to refuse");
      assert.equal(refused[2], "refused by the caller's check");
      assert.equal(taken.length, 1);
      assert.equal(w.current.certPem, b!.certPem);
      // Once the caller's check passes, the same files are taken at the next change.
      refuseSerial = "";
      writeFileSync(keyFile, c!.keyPem);
      await until(() => taken.length === 2, 5_000, "the pair to be taken once allowed");
      assert.equal(w.current.certPem, c!.certPem);
    } finally {
      w.stop();
    }
    // Stopped: nothing heard any more.
    writeFileSync(certFile, a!.certPem);
    writeFileSync(keyFile, a!.keyPem);
    await sleep(400);
    assert.equal(taken.length, 2);
  });

  it("checkCertPair refuses an expired certificate and one not valid yet; a bad pair at start and a bad interval are EINVAL", async () => {
    const ca = await makeCA({ name: "cert-watch test CA" });
    const a = await issueCert(ca, { dns: ["localhost"], days: 1 });
    assert.throws(() => checkCertPair(a.certPem, a.keyPem, Date.now() + 3 * 86_400_000), /the certificate expired on/);
    assert.throws(() => checkCertPair(a.certPem, a.keyPem, Date.now() - 3 * 86_400_000), /not valid before/);
    const certFile = join(dir, "start.crt");
    writeFileSync(certFile, a.certPem);
    writeFileSync(join(dir, "start.key"), "garbage");
    assert.throws(() => new CertWatch(certFile, join(dir, "start.key"), { intervalMs: 1000, onChange: () => {} }), (e: unknown) => e instanceof HurdError && e.errno === "EINVAL" && /not a PEM private key/.test(e.message));
    assert.equal(certReloadInterval({}), 60_000);
    assert.equal(certReloadInterval({ HURD_TLS_RELOAD_MS: "250" }), 250);
    for (const bad of ["abc", "0", "-5", "9"]) assert.throws(() => certReloadInterval({ HURD_TLS_RELOAD_MS: bad }), /HURD_TLS_RELOAD_MS must be a number of milliseconds/);
  });
});

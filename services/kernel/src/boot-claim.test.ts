// Boot claims over a real bus: an init in a container asks the kernel for
// its boot task with the secret; wrong secrets, junk, a second claim, a
// subhurd before its parent are refused with their errno; a claim's hurd
// ends when its startup task ends.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errno, LocalHub, Task, type Bus } from "@hurdmesh/mach";
import { subjectsOf } from "@hurdmesh/mach/internal";
import { busKinds, natsBus, until } from "../../../tests/harness.js";
import { BootClaimReply, BootClaimRequest } from "@hurdmesh/proto/hurd/boot/v1/boot";
import { BootClaims, hurdBootSecret } from "./boot-claim.js";
import { Kernel } from "./kernel.js";
import { TrapServer } from "./trap.js";

let n = 0;

for (const kind of busKinds) {
  describe(`boot claims (${kind} bus)`, () => {
    let kernel: Kernel;
    let kbus: Bus;
    let cbus: Bus;
    let claims: BootClaims;
    let traps: TrapServer;
    const system = `claim${process.pid}x${++n}`;
    /** A claim, or raw bytes for junk; the answer decoded. */
    const ask = async (req: Partial<BootClaimRequest> | Uint8Array): Promise<BootClaimReply> =>
      BootClaimReply.decode(await cbus.request(subjectsOf(system).bootClaim, req instanceof Uint8Array ? req : BootClaimRequest.encode(BootClaimRequest.fromPartial(req)).finish(), 3000));
    const errno = (r: BootClaimReply) => r.errno;
    const granted = (r: BootClaimReply) => r.errno === 0 && r.taskId > 0;

    before(async () => {
      kernel = new Kernel({ system }, { log: () => {} });
      const hub = new LocalHub();
      kbus = kind === "local" ? hub.connect() : await natsBus(system);
      cbus = kind === "local" ? hub.connect() : await natsBus(system);
      traps = new TrapServer(kernel, kbus);
      traps.start();
      claims = new BootClaims(kernel, kbus, "a-long-secret", { pollMs: 20 });
      claims.start();
      await kbus.flush();
    });
    after(async () => {
      claims.stop();
      traps.stop();
      kernel.close();
      await cbus.close();
      await kbus.close();
    });

    it("refuses a wrong secret with EPERM and makes no task", async () => {
      const before = kernel.tasks.size;
      assert.equal(errno(await ask({ secret: "a-long-secreT" })), Errno.EPERM);
      assert.equal(kernel.tasks.size, before);
    });

    it("refuses junk with EINVAL: not a BootClaimRequest, no secret, a bad name, a root hurd with a parent", async () => {
      // A length-delimited field 1 whose length runs past the end; then JSON, as claims were once sent.
      assert.equal(errno(await ask(new Uint8Array([0x0a, 0x7f, 0x61]))), Errno.EINVAL);
      assert.equal(errno(await ask(new TextEncoder().encode('{"secret":"a-long-secret"}'))), Errno.EINVAL);
      assert.equal(errno(await ask({ hurd: "x" })), Errno.EINVAL);
      assert.equal(errno(await ask({ secret: "a-long-secret", hurd: "1bad" })), Errno.EINVAL);
      assert.equal(errno(await ask({ secret: "a-long-secret", hurd: "ok", parent: "no.dots" })), Errno.EINVAL);
      assert.equal(errno(await ask({ secret: "a-long-secret", parent: "p" })), Errno.EINVAL);
      // secret (field 1) as a varint, not a string: skipped as unknown, so there is no secret.
      assert.equal(errno(await ask(new Uint8Array([0x08, 42]))), Errno.EINVAL);
    });

    it("refuses a secret shorter than 8 characters at start", () => {
      assert.throws(() => new BootClaims(kernel, kbus, "short"), /at least 8/);
    });

    it("gives the root hurd a boot task with the host port, once while it lives, and a clean hurd after it dies", async () => {
      const r = await ask({ secret: "a-long-secret" });
      assert.ok(granted(r), JSON.stringify(r));
      assert.equal(r.namespaceId, kernel.root.id);
      assert.ok(r.hostPriv > 0);
      const t = await Task.attach({ bus: cbus, system, taskId: r.taskId, token: r.token, timeoutMs: 3000 });
      const child = await t.taskCreate("child");
      assert.equal(errno(await ask({ secret: "a-long-secret" })), Errno.EBUSY);
      await t.taskTerminate(0).catch(() => {});
      // The root hurd's tasks end with its startup, then a new claim succeeds.
      await until(() => !kernel.tasks.has(child.taskId), 3000);
      const again = await ask({ secret: "a-long-secret" });
      assert.ok(granted(again), JSON.stringify(again));
      assert.notEqual(again.taskId, r.taskId);
      kernel.tasks.get(again.taskId)!.active && kernel.terminate(kernel.tasks.get(again.taskId)!, "test done");
    });

    it("nests a subhurd in its parent's namespace, EAGAIN until the parent is claimed, and destroys it with its startup", async () => {
      assert.equal(errno(await ask({ secret: "a-long-secret", hurd: "inner", parent: "outer" })), Errno.EAGAIN);
      const outer = await ask({ secret: "a-long-secret", hurd: "outer" });
      assert.ok(granted(outer), JSON.stringify(outer));
      const inner = await ask({ secret: "a-long-secret", hurd: "inner", parent: "outer" });
      assert.ok(granted(inner), JSON.stringify(inner));
      const outerNs = kernel.tasks.get(outer.taskId)!.ns;
      const innerNs = kernel.tasks.get(inner.taskId)!.ns;
      assert.equal(outerNs.parent, kernel.root);
      assert.equal(innerNs.parent, outerNs);
      assert.notEqual(outer.hostPriv, 0);
      // The outer startup dies: its namespace goes, and the inner one nested in it.
      kernel.terminate(kernel.tasks.get(outer.taskId)!, "test");
      await until(() => !kernel.tasks.has(inner.taskId), 3000);
      assert.equal(innerNs.active, false);
      assert.equal(outerNs.active, false);
      // Both names are free again.
      const fresh = await ask({ secret: "a-long-secret", hurd: "outer" });
      assert.ok(granted(fresh), JSON.stringify(fresh));
    });
  });
}

// Each hurd its own secret (hurd-kernel --boot-key-file, Kubernetes): an
// init holding one hurd's secret claims that hurd and no other, and the key
// itself claims nothing.
describe("boot claims with a secret per hurd (local bus)", () => {
  const system = `claimkey${process.pid}`;
  const key = "the-kernel's-boot-key-0123456789";
  const hub = new LocalHub();
  const kernel = new Kernel({ system }, { log: () => {} });
  const kbus = hub.connect();
  const cbus = hub.connect();
  const traps = new TrapServer(kernel, kbus);
  const claims = new BootClaims(kernel, kbus, key, { pollMs: 20, perHurd: true });
  const ask = async (req: Partial<BootClaimRequest>): Promise<BootClaimReply> =>
    BootClaimReply.decode(await cbus.request(subjectsOf(system).bootClaim, BootClaimRequest.encode(BootClaimRequest.fromPartial(req)).finish(), 3000));
  before(() => {
    traps.start();
    claims.start();
  });
  after(async () => {
    claims.stop();
    traps.stop();
    kernel.close();
    await cbus.close();
    await kbus.close();
  });

  it("derives a different secret for every hurd, from the key alone", () => {
    const s = ["", "a", "b"].map((h) => hurdBootSecret(key, h));
    assert.equal(new Set(s).size, 3);
    assert.equal(hurdBootSecret(key, "a"), s[1], "the same key and name give the same secret");
    assert.notEqual(hurdBootSecret(`${key}x`, "a"), s[1]);
    assert.match(s[0]!, /^[A-Za-z0-9_-]{43}$/);
  });

  it("takes each hurd's own secret, refuses another hurd's and the key itself with EPERM", async () => {
    const root = hurdBootSecret(key, "");
    const a = hurdBootSecret(key, "a");
    const tasks = kernel.tasks.size;
    for (const [req, what] of [
      [{ secret: a }, "subhurd a's secret for the root hurd"],
      [{ secret: root, hurd: "a" }, "the root's secret for subhurd a"],
      [{ secret: hurdBootSecret(key, "b"), hurd: "a" }, "b's secret for a"],
      [{ secret: key }, "the key for the root hurd"],
      [{ secret: key, hurd: "a" }, "the key for subhurd a"],
    ] as const) {
      const r = await ask(req);
      assert.equal(r.errno, Errno.EPERM, what);
      assert.match(r.error, /wrong boot secret for (the root hurd|subhurd a)/);
    }
    assert.equal(kernel.tasks.size, tasks, "a refused claim made a task");
    const r0 = await ask({ secret: root });
    assert.equal(r0.errno, 0, r0.error);
    const ra = await ask({ secret: a, hurd: "a" });
    assert.equal(ra.errno, 0, ra.error);
    assert.ok(ra.taskId > 0 && ra.taskId !== r0.taskId);
  });
});

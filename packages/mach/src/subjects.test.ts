// The subject map: every subject as the wire has it, read back, refused
// when a name would reach other subjects; and the roles' permissions, which
// the NATS authorization is derived from (nats-auth/roles.ts): each subject
// has exactly the publishers and subscribers it should, no task reaches
// another's, and every requester reads its own replies and nobody else's.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { matches } from "./bus/local.js";
import { accountEventSubjects, accountUpdateSubject, inboxOf, parseSubject, permissionsOf, subjectsOf, type Role } from "./subjects.js";

describe("bus subjects", () => {
  it("builds every subject of a system as the wire has it", () => {
    const s = subjectsOf("hurd");
    assert.equal(s.trap, "hurd.hurd.kernel.trap");
    assert.equal(s.delivery(7, 4096), "hurd.hurd.rcv.7.4096");
    assert.equal(s.deliveries(7), "hurd.hurd.rcv.7.>");
    assert.equal(s.deliveryPrefix(7) + 4096, s.delivery(7, 4096));
    assert.equal(s.bootClaim, "hurd.hurd.boot.claim");
    assert.equal(s.launch("", "proc"), "hurd.hurd.launch._.proc");
    assert.equal(s.launch("alpha", "auth"), "hurd.hurd.launch.alpha.auth");
    assert.equal(s.traceWatch, "hurd.hurd.trace.watch");
    assert.equal(s.traceCtl, "hurd.hurd.trace.ctl");
    assert.equal(s.traceBatches(42), "hurd.hurd.trace.42");
  });

  it("reads back what it builds, and nothing that is not one of its subjects", () => {
    const s = subjectsOf("t1");
    assert.deepEqual(parseSubject(s.trap), { kind: "trap", system: "t1" });
    assert.deepEqual(parseSubject(s.delivery(7, 4096)), { kind: "delivery", system: "t1", taskId: 7, port: 4096 });
    assert.deepEqual(parseSubject(s.bootClaim), { kind: "boot-claim", system: "t1" });
    assert.deepEqual(parseSubject(s.launch("", "proc")), { kind: "launch", system: "t1", hurd: "", server: "proc" });
    assert.deepEqual(parseSubject(s.launch("alpha", "auth")), { kind: "launch", system: "t1", hurd: "alpha", server: "auth" });
    assert.deepEqual(parseSubject(s.traceWatch), { kind: "trace-watch", system: "t1" });
    assert.deepEqual(parseSubject(s.traceCtl), { kind: "trace-ctl", system: "t1" });
    assert.deepEqual(parseSubject(s.traceBatches(42)), { kind: "trace-batches", system: "t1", watchId: 42 });
    assert.deepEqual(parseSubject("_INBOX.local3.17"), { kind: "inbox" });
    for (const junk of ["", "hurd", "hurd.t1", "hurd.t1.kernel", "hurd.t1.kernel.trap.x", "nats.t1.kernel.trap", "hurd.t1.rcv.7", "hurd.t1.rcv.7.x", "hurd.t1.rcv.07.1", "hurd.t1.rcv.7.>", "hurd.t1.trace.-1", "hurd.t1.trace.*", "hurd..kernel.trap", "_INBOX", "_INBOX..x"])
      assert.equal(parseSubject(junk), null, junk);
  });

  it("refuses a system, hurd or server name that would reach other subjects", () => {
    for (const bad of ["", "a.b", "*", ">", "a b", "x\ty"]) {
      assert.throws(() => subjectsOf(bad), RangeError, `system ${JSON.stringify(bad)}`);
      if (bad) assert.throws(() => subjectsOf("hurd").launch(bad, "proc"), RangeError, `hurd ${JSON.stringify(bad)}`);
      assert.throws(() => subjectsOf("hurd").launch("", bad), RangeError, `server ${JSON.stringify(bad)}`);
    }
  });
});

describe("who may publish and subscribe what", () => {
  const system = "s";
  const s = subjectsOf(system);
  const roles: Array<[string, Role]> = [
    ["kernel", { kind: "kernel" }],
    ["task 7", { kind: "task", taskId: 7 }],
    ["task 8", { kind: "task", taskId: 8 }],
    ["init of the root hurd", { kind: "task", taskId: 3, launches: "" }],
    ["init of alpha", { kind: "task", taskId: 5, launches: "alpha" }],
    ["boot claim of the root hurd", { kind: "boot-claim", hurd: "" }],
    ["boot claim of alpha", { kind: "boot-claim", hurd: "alpha" }],
    ["proc's container (root hurd)", { kind: "launch", hurd: "", server: "proc" }],
    ["auth's container (alpha)", { kind: "launch", hurd: "alpha", server: "auth" }],
    ["watcher of watch 42", { kind: "trace-watcher", watchId: 42 }],
    ["updater of account A1", { kind: "account-updater", account: "A1" }],
  ];
  const tasks = ["task 7", "task 8", "init of the root hurd", "init of alpha"];
  /** The roles the permissions let do `op` on `subject` (NATS: allowed and not denied). */
  const who = (op: "publish" | "subscribe", subject: string) =>
    roles
      .filter(([, r]) => {
        const p = permissionsOf(system, r);
        return p[op].some((x) => matches(x, subject)) && !(op === "publish" && p.denyPublish.some((x) => matches(x, subject)));
      })
      .map(([n]) => n);

  // Every concrete subject, with who must be able to publish it and who to subscribe to it.
  const expected: Array<[string, string[], string[]]> = [
    [s.trap, tasks, ["kernel"]],
    [s.delivery(7, 4096), ["kernel"], ["task 7"]],
    [s.delivery(8, 4096), ["kernel"], ["task 8"]],
    [s.bootClaim, ["boot claim of the root hurd", "boot claim of alpha"], ["kernel"]],
    [s.launch("", "proc"), ["init of the root hurd"], ["proc's container (root hurd)"]],
    [s.launch("alpha", "auth"), ["init of alpha"], ["auth's container (alpha)"]],
    // Any task may ask; the kernel grants a watch only for a host_priv right.
    [s.traceWatch, tasks, ["kernel"]],
    [s.traceCtl, ["watcher of watch 42"], ["kernel"]],
    [s.traceBatches(42), ["kernel"], ["watcher of watch 42"]],
    [accountUpdateSubject("A1"), ["updater of account A1"], []],
  ];

  for (const [subject, publishers, subscribers] of expected) {
    it(`${subject}: published by ${publishers.join(", ")}; read by ${subscribers.join(", ")} only`, () => {
      assert.deepEqual(who("publish", subject), publishers);
      assert.deepEqual(who("subscribe", subject), subscribers);
    });
  }

  it("no task reads another's deliveries or forges the kernel's, and no container takes another's launch", () => {
    assert.deepEqual(who("subscribe", s.delivery(9, 1)), []);
    assert.deepEqual(who("publish", s.delivery(9, 1)), ["kernel"]);
    assert.deepEqual(who("subscribe", s.launch("", "auth")), []);
    assert.deepEqual(who("subscribe", s.launch("beta", "proc")), []);
    assert.deepEqual(who("publish", s.launch("beta", "proc")), []);
    assert.deepEqual(who("subscribe", s.traceBatches(43)), []);
  });

  it("answers go to inboxes: whoever makes requests reads its own and no other's, whoever serves requests may answer", () => {
    const requesters = roles.filter(([, r]) => permissionsOf(system, r).inbox);
    assert.deepEqual(
      requesters.map(([n]) => n),
      ["kernel", "task 7", "task 8", "init of the root hurd", "init of alpha", "boot claim of the root hurd", "boot claim of alpha", "watcher of watch 42", "updater of account A1"],
    );
    for (const [name, r] of requesters) {
      const inbox = `${inboxOf(system, r)}.abc.1`;
      assert.deepEqual(who("subscribe", inbox), [name], inbox);
      assert.deepEqual(who("publish", inbox), [], inbox);
    }
    // Inboxes are the system's: another system's task 7 has another.
    assert.notEqual(inboxOf("other", { kind: "task", taskId: 7 }), inboxOf(system, { kind: "task", taskId: 7 }));
    const responders = roles.filter(([, r]) => permissionsOf(system, r).respond).map(([n]) => n);
    assert.deepEqual(responders, ["kernel", "proc's container (root hurd)", "auth's container (alpha)"]);
  });

  it("lets only the account updater hear the account's connections come and go", () => {
    const hearers = roles.filter(([, r]) => permissionsOf(system, r).subscribe.some((x) => x.startsWith("$SYS."))).map(([n]) => n);
    assert.deepEqual(hearers, ["updater of account A1"]);
    assert.deepEqual(accountEventSubjects("A1"), ["$SYS.ACCOUNT.A1.CONNECT", "$SYS.ACCOUNT.A1.DISCONNECT"]);
    assert.throws(() => accountEventSubjects("A1.>"), RangeError);
  });

  it("never grants another system's subjects", () => {
    for (const [, r] of roles) {
      const p = permissionsOf(system, r);
      // JetStream subjects name this system's stream or bucket (the kernel's log, its snapshots and leadership key, a server's store).
      const ownJetStream = (x: string) => x.startsWith(`$HURDLOG.${system}.`) || x.endsWith(`.HURD_${system}_KERNEL_LOG`) || x.endsWith(`.HURD_${system}_KERNEL_LOG.*`) || x.endsWith(`.HURD_${system}_KERNEL_SNAP`) || x.startsWith(`$KV.hurd_${system}_`) || x.includes(`.KV_hurd_${system}_`);
      for (const x of [...p.publish, ...p.subscribe]) assert.ok(x.startsWith(`hurd.${system}.`) || x.startsWith(`_INBOX.${system}.`) || x === accountUpdateSubject("A1") || accountEventSubjects("A1").includes(x) || ownJetStream(x), x);
    }
  });
});

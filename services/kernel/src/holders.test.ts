// What the kernel reads of nats-server's connection advisories (holders.ts).
// The advisories' shape is nats-server 2.9.10's, as it sent them to a
// system-account user in operator mode (MEMORY resolver); the event path
// end to end is tests/restart/daemons.test.ts (a SIGKILLed proc attaches
// again well before its lease would have lapsed).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { makeFabricKeys, mintUser, NKey } from "@hurdmesh/mach/nats-auth";
import { hearsDisconnects, parseConnectionEvent } from "./holders.js";

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const USER = "UCU5FKMBRD3DKR35BOYYFX5XVZWSSG5BIIHDPF3V3L2X4ISIBRZKZVHK";

describe("holders: nats-server's connection events", () => {
  it("reads the user and the connection of a connect and a disconnect advisory", () => {
    const server = { name: "NA5P", id: "NA5P", ver: "2.9.10" };
    const client = { id: 5, acc: "ABUE", user: USER, name: "hurd-task-3", name_tag: "task 3", kind: "Client" };
    assert.deepEqual(parseConnectionEvent(enc({ type: "io.nats.server.advisory.v1.client_connect", server, client })), { type: "connect", user: USER, conn: "NA5P/5" });
    assert.deepEqual(parseConnectionEvent(enc({ type: "io.nats.server.advisory.v1.client_disconnect", server, client, reason: "Client Closed" })), { type: "disconnect", user: USER, conn: "NA5P/5" });
  });

  it("drops what is no connection advisory of a user", () => {
    for (const bad of ["not json", JSON.stringify({ type: "io.nats.server.advisory.v1.auth_error", client: { user: USER } }), JSON.stringify({ type: "io.nats.server.advisory.v1.client_disconnect", client: {} }), JSON.stringify({ type: "io.nats.server.advisory.v1.client_disconnect", client: { user: "ABUE" } })])
      assert.equal(parseConnectionEvent(new TextEncoder().encode(bad)), null, bad);
  });

  it("tells a keys file whose account updater may read the DISCONNECT events from one made before", () => {
    const k = makeFabricKeys("holders");
    assert.equal(hearsDisconnects(k.updater.jwt, k.account), true);
    assert.equal(hearsDisconnects(k.updater.jwt, NKey.create("account").publicKey), false);
    const sys = NKey.create("account");
    const old = mintUser(sys, sys.publicKey, "an updater of before", { pub: [`$SYS.REQ.ACCOUNT.${k.account}.CLAIMS.UPDATE`], sub: ["_INBOX.holders.updater.>"], subs: 4 });
    assert.equal(hearsDisconnects(old.jwt, k.account), false);
    assert.equal(hearsDisconnects("garbage", k.account), false);
  });
});

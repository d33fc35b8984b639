// nats-server's configuration: what it says, and that Debian's nats-server
// 2.9 runs it with JetStream for the hurd's account when asked.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { natsServerConfig } from "./server-config.js";
import { natsWanted, startFabric, type Fabric } from "./test-server.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("nats-server configuration", () => {
  it("is operator mode with the accounts preloaded in a MEMORY resolver, JetStream and TLS only when asked", () => {
    const bare = natsServerConfig({ operatorJwt: "eyJop", accounts: { AAA: "eyJa", ASYS: "eyJs" }, systemAccount: "ASYS", port: 4333 });
    assert.equal(
      bare,
      [
        'host: "127.0.0.1"',
        "port: 4333",
        'operator: "eyJop"',
        'system_account: "ASYS"',
        "resolver: MEMORY",
        "resolver_preload: {",
        '  AAA: "eyJa"',
        '  ASYS: "eyJs"',
        "}",
        "",
      ].join("\n"),
    );
    const full = natsServerConfig({
      operatorJwt: "eyJop",
      accounts: { AAA: "eyJa" },
      host: "0.0.0.0",
      jetstreamDir: '/var/lib/nats "js"',
      tls: { certFile: "/c.pem", keyFile: "/k.pem", caFile: "/ca.pem", verify: true },
    });
    assert.match(full, /^host: "0\.0\.0\.0"\nport: 4222\n/);
    assert.match(full, /\njetstream: \{ store_dir: "\/var\/lib\/nats \\"js\\"" \}\n/);
    assert.match(full, /\ntls: \{\n {2}cert_file: "\/c\.pem"\n {2}key_file: "\/k\.pem"\n {2}ca_file: "\/ca\.pem"\n {2}verify: true\n {2}timeout: 2\n\}\n$/);
    assert.doesNotMatch(full, /system_account/);
  });
});

describe("nats-server with JetStream", { skip: !natsWanted && "HURD_TEST_BUSES excludes nats" }, () => {
  let f: Fabric;
  before(async () => {
    f = await startFabric({ jetstream: true });
  });
  after(() => f?.stop());

  it("gives the hurd's account JetStream, to a user allowed its API", async () => {
    const u = f.mint("durability", { pub: ["$JS.API.>"], sub: ["_INBOX.js.>"], inboxPrefix: "_INBOX.js", subs: 4 });
    const nc = await f.connect(u);
    const info = JSON.parse(dec.decode((await nc.request("$JS.API.INFO", enc.encode(""), { timeout: 3000 })).data)) as { type?: string; error?: unknown };
    assert.equal(info.error, undefined, JSON.stringify(info));
    assert.equal(info.type, "io.nats.jetstream.api.v1.account_info_response");
  });
});

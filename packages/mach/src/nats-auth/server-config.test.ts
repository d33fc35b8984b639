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
    assert.doesNotMatch(full, /server_name|cluster|sync_interval/);
  });

  it("names a cluster's server from the environment, routes to every peer with the route's password over TLS verified both ways, and syncs JetStream only when asked", () => {
    const c = natsServerConfig({
      operatorJwt: "eyJop",
      accounts: { AAA: "eyJa" },
      jetstreamDir: "/data",
      syncInterval: "always",
      serverNameEnv: "POD_NAME",
      cluster: { name: "mesh", port: 6222, user: "route", password: "pw", routes: ["nats-route://route:pw@n-0:6222", "nats-route://route:pw@n-1:6222"], tls: { certFile: "/c", keyFile: "/k", caFile: "/ca" } },
    });
    // Unquoted: nats-server substitutes $VAR only outside quotes.
    assert.match(c, /^server_name: \$POD_NAME\nhost: /);
    assert.match(c, /\njetstream: \{ store_dir: "\/data", sync_interval: always \}\n/);
    assert.match(
      c,
      /\ncluster: \{\n {2}name: "mesh"\n {2}host: "0\.0\.0\.0"\n {2}port: 6222\n {2}authorization: \{\n {4}user: "route"\n {4}password: "pw"\n {4}timeout: 2\n {2}\}\n {2}tls: \{\n {4}cert_file: "\/c"\n {4}key_file: "\/k"\n {4}ca_file: "\/ca"\n {4}verify: true\n {4}timeout: 2\n {2}\}\n {2}routes: \[\n {4}"nats-route:\/\/route:pw@n-0:6222"\n {4}"nats-route:\/\/route:pw@n-1:6222"\n {2}\]\n\}\n$/,
    );
    assert.throws(() => natsServerConfig({ operatorJwt: "eyJop", accounts: {}, serverNameEnv: "POD NAME\nport: 1" }), /not an environment variable's name/);
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

// docker compose by the book, checked where CI can check it (the file
// itself: no engine needed): every container has rotated logs and resource
// limits, every setting the file reads is in .env.example with the same
// default, the second hurd's servers have service names of their own, the
// stand-in base images never take the real images' names, and no secret is
// committed or handed to a service that does not need it (issue 15): NATS
// authorization on, the edge on TLS, every key from the keys service's
// volumes, each mounted read-only where it is read.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { isPair, parse, parseDocument, visit, YAMLSeq, type Pair, type Scalar } from "yaml";

const root = new URL("../../", import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), "utf8");
const text = read("docker-compose.yml");
const compose = parse(text, { merge: true }) as Record<string, any>;
const services = compose.services as Record<string, any>;

describe("docker-compose.yml conventions", () => {
  it("every service logs to rotated json-file logs and has CPU and memory limits", () => {
    assert.ok(Object.keys(services).length >= 9, Object.keys(services).join(" "));
    for (const [name, s] of Object.entries(services)) {
      assert.equal(s.logging?.driver, "json-file", `${name}: logging`);
      assert.ok(s.logging.options?.["max-size"] && s.logging.options?.["max-file"], `${name}: max-size and max-file`);
      const lim = s.deploy?.resources?.limits;
      assert.ok(lim?.cpus && lim?.memory, `${name}: deploy.resources.limits cpus and memory`);
    }
  });

  it("every ${VAR:-default} it reads is in .env.example, with the same default", () => {
    const example = new Map<string, string>();
    for (const l of read(".env.example").split("\n")) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l);
      if (m) example.set(m[1]!, m[2]!);
    }
    const used = [...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}/g)];
    assert.ok(used.length > 10);
    for (const [, name, def] of used) {
      // The boot key stays out of a file meant to be copied as is (the README says how to set it).
      if (name === "HURD_BOOT_KEY") continue;
      assert.ok(example.has(name!), `${name} is not in .env.example`);
      assert.equal(example.get(name!), def, `${name}: .env.example says ${example.get(name!)}, the compose file ${def}`);
    }
    assert.ok(!example.has("HURD_BOOT_SECRET"));
  });

  it("the second hurd's servers name their own services and hurd", () => {
    const names = new Set<string>();
    for (const [name, s] of Object.entries(services)) {
      const svc = s.environment?.OTEL_SERVICE_NAME;
      if (!svc) continue;
      assert.ok(!names.has(svc), `${name}: ${svc} is another service's name too`);
      names.add(svc);
      if (name.startsWith("second-")) assert.equal(s.environment.HURD_SUBHURD, "second", name);
    }
    assert.ok(names.has("hurd-proc.second") && names.has("hurd-proc"));
  });

  it("no anonymous NATS, no plaintext edge, no committed boot secret anywhere in the compose files", () => {
    for (const f of ["docker-compose.yml", "docker-compose.ci.yml", ".env.example"]) {
      const t = read(f);
      assert.doesNotMatch(t, /HURD_NATS_AUTH/, `${f} turns NATS authorization off`);
      assert.doesNotMatch(t, /HURD_GRPC_INSECURE/, `${f} asks for a plaintext edge`);
      assert.doesNotMatch(t, /hurdmesh-compose-secret/, `${f} commits the old default secret`);
      // A boot key is only ever the .env override (no default after :-) or a file; a boot secret only a file.
      for (const m of t.matchAll(/^\s*-?\s*HURD_BOOT_KEY\s*[:=][ \t]*(.*)$/gm))
        assert.match(m[1]!, /^(["']?\$\{HURD_BOOT_KEY(:-)?\}["']?)?\s*(#.*)?$/, `${f}: ${m[0].trim()} sets a value`);
      assert.doesNotMatch(t, /^\s*-?\s*HURD_BOOT_SECRET\s*[:=]/m, `${f} sets a boot secret (each hurd's is derived from the boot key, in a file)`);
    }
    for (const [name, s] of Object.entries(services)) {
      assert.ok(!s.environment?.HURD_BOOT_SECRET, `${name}: a boot secret in its environment (docker inspect shows it): use HURD_BOOT_SECRET_FILE`);
      assert.ok(!s.environment?.HURD_BOOT_KEY || name === "keys", `${name}: the boot key in its environment (docker inspect shows it): use HURD_BOOT_KEY_FILE`);
      assert.ok(!s.environment?.HURD_NATS_CREDS, `${name}: NATS credentials in its environment`);
    }
    // hurd web is a process of the hurd: the edge and its session, never the fabric's address.
    assert.equal(services.web.environment.NATS_URL, undefined, "web is given the NATS address");
    assert.equal(services.web.environment.HURD_EDGE, "kernel:7400");
    // NATS over TLS, its certificate checked against the keys service's CA, mounted by every server.
    for (const name of ["kernel", "init", "proc", "auth", "second-init", "second-proc", "second-auth"]) {
      assert.equal(services[name].environment.NATS_URL, "tls://nats:4222", name);
      assert.equal(services[name].environment.HURD_NATS_CA_FILE, "/etc/hurdmesh/ca/ca.crt", name);
    }
    assert.ok(services.nats.command.includes("-c"), "nats-server runs from the keys service's configuration (operator mode)");
    assert.equal(services.kernel.environment.HURD_GRPC_CERT?.startsWith("/etc/hurdmesh/kernel/"), true, "the edge's certificate");
    // A renewed edge certificate is checked against the CA the edge's clients and its health probe check it with.
    assert.equal(services.kernel.environment.HURD_GRPC_CA, services.kernel.environment.HURD_HEALTH_CA_FILE, "the edge's renewals are checked against its CA");
    assert.equal(services.init.environment.HURD_EDGE_CA_FILE?.startsWith("/etc/hurdmesh/init/"), true, "init puts the edge's CA in the session");
  });

  it("the keys service runs first, once, and each secret volume is mounted read-only by its readers only", () => {
    const keys = services.keys;
    assert.deepEqual(keys.command.slice(0, 3), ["hurd", "keys", "compose"]);
    assert.equal(keys.restart, "no");
    const volumeOf = (v: string | { source: string; target: string; read_only?: boolean }) => {
      if (typeof v !== "string") return { source: v.source, readOnly: !!v.read_only };
      const [source, , mode] = v.split(":");
      return { source: source!, readOnly: mode === "ro" };
    };
    const keyVolumes = Object.keys(compose.volumes).filter((v) => v.startsWith("keys-"));
    assert.deepEqual(keys.volumes.map((v: string) => volumeOf(v).source).sort(), [...keyVolumes].sort(), "the keys service writes every keys volume");
    // Who may read what: the signing keys and the boot key are the kernel's alone, each hurd's boot secret its init's.
    const readers: Record<string, string[]> = {
      "keys-nats": ["nats"],
      // The CA's certificate (public): every server checks NATS's certificate against it.
      "keys-ca": ["auth", "init", "kernel", "proc", "second-auth", "second-init", "second-proc"],
      "keys-kernel": ["kernel"],
      "keys-init": ["init"],
      "keys-proc": ["proc"],
      "keys-auth": ["auth"],
      "keys-second-init": ["second-init"],
      "keys-second-proc": ["second-proc"],
      "keys-second-auth": ["second-auth"],
    };
    assert.deepEqual(Object.keys(readers).sort(), [...keyVolumes].sort());
    for (const [vol, want] of Object.entries(readers)) {
      const got: string[] = [];
      for (const [name, s] of Object.entries(services)) {
        if (name === "keys") continue;
        for (const v of (s.volumes ?? []) as string[]) {
          const m = volumeOf(v);
          if (m.source !== vol) continue;
          assert.ok(m.readOnly, `${name} mounts ${vol} writable`);
          got.push(name);
        }
      }
      assert.deepEqual(got.sort(), want, `${vol} is mounted by ${got.join(", ")}`);
    }
    // Whoever reads a keys volume starts after the keys service has completed (directly or through nats).
    const after = (name: string, seen = new Set<string>()): boolean => {
      if (seen.has(name)) return false;
      seen.add(name);
      const d = services[name]?.depends_on ?? {};
      if (d.keys?.condition === "service_completed_successfully") return true;
      return Object.keys(d).some((n) => after(n, seen));
    };
    for (const name of Object.values(readers).flat()) assert.ok(after(name), `${name} may start before the keys exist`);
  });

  it("the stand-in base images have private names, never node:… or nats:…", () => {
    const script = read("scripts/docker/base-images.sh");
    const tags = [...script.matchAll(/^(NODE|NATS)_TAG="\$\{[A-Z_]+:-([^}]+)\}"/gm)].map((m) => m[2]!);
    assert.equal(tags.length, 2, "NODE_TAG and NATS_TAG defaults");
    for (const t of tags) assert.match(t, /^hurdmesh-base\//, t);
  });
});

// docker-compose.ha.yml, the kernel's log and its standby, as compose would
// merge it over docker-compose.yml: mappings merge, and a sequence the
// override sets replaces the base's, which is compose's rule for the only
// sequences it sets on an existing service (command, healthcheck.test,
// profiles; ports only through `!reset`, checked below).
describe("docker-compose.ha.yml (a logged kernel and its standby)", () => {
  const haText = read("docker-compose.ha.yml");
  const resetTag = { tag: "!reset", collection: "seq" as const, nodeClass: YAMLSeq, resolve: (s: YAMLSeq) => s };
  const haDoc = parseDocument(haText, { customTags: [resetTag], merge: true });
  const ha = haDoc.toJS() as Record<string, any>;
  /** Paths ("services.kernel.ports") the override resets with `!reset`. */
  const resets = new Set<string>();
  visit(haDoc, {
    Seq(_k, node, path) {
      if (node.tag !== "!reset") return;
      const keys = path.filter((p): p is Pair => isPair(p)).map((p) => String((p.key as Scalar).value));
      resets.add(keys.join("."));
    },
  });
  const merge = (a: any, b: any): any => {
    if (b && typeof b === "object" && !Array.isArray(b) && a && typeof a === "object" && !Array.isArray(a)) {
      const out = { ...a };
      for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
      return out;
    }
    return b;
  };
  const merged = merge(compose, ha) as Record<string, any>;
  const all = merged.services as Record<string, any>;
  const published = (s: any) => ((s.ports ?? []) as string[]).filter((p) => /:7400$/.test(String(p)));

  it("parses, and sets on an existing service no sequence compose would append to instead of replacing", () => {
    assert.deepEqual(haDoc.errors, []);
    assert.deepEqual(haDoc.warnings, []);
    for (const [name, s] of Object.entries(ha.services as Record<string, any>)) {
      if (!services[name]) continue;
      for (const [k, v] of Object.entries(s)) {
        if (!Array.isArray(v)) continue;
        assert.ok(["command", "profiles"].includes(k) || resets.has(`services.${name}.${k}`), `services.${name}.${k}: compose appends to the base's ${k}; use !reset`);
      }
    }
    assert.ok(resets.has("services.kernel.ports"));
  });

  it("every service it adds has rotated logs and limits, and every ${VAR:-default} is in .env.example with the same default", () => {
    for (const name of ["kernel-net", "kernel-standby"]) {
      const s = all[name];
      assert.equal(s.logging?.driver, "json-file", name);
      assert.ok(s.logging.options["max-size"] && s.logging.options["max-file"], name);
      assert.ok(s.deploy?.resources?.limits?.cpus && s.deploy.resources.limits.memory, name);
    }
    const example = new Map<string, string>();
    for (const l of read(".env.example").split("\n")) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l);
      if (m) example.set(m[1]!, m[2]!);
    }
    for (const [, name, def] of haText.matchAll(/\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}/g)) assert.equal(example.get(name!), def, `${name} in .env.example`);
  });

  it("runs the kernel with --journal and kernel-standby with --standby, on NATS with JetStream", () => {
    assert.deepEqual(all.kernel.command, ["kernel", "--journal"]);
    assert.deepEqual(all["kernel-standby"].command, ["kernel", "--standby"]);
    // The log and the leadership key are JetStream's: the keys service's nats.conf turns it on, the healthcheck insists.
    assert.ok(all.keys.command.includes("--jetstream"));
    assert.match(all.nats.healthcheck.test.join(" "), /js-enabled-only=true/);
    for (const k of ["kernel", "kernel-standby"]) {
      assert.equal(all[k].environment.HURD_LEAD_LEASE_MS, "${HURD_LEAD_LEASE_MS:-5000}", k);
      assert.equal(all[k].depends_on.nats.condition, "service_healthy", k);
      assert.equal(all[k].restart, "unless-stopped", `${k}: a deposed leader exits and comes back as a standby`);
    }
  });

  it("one edge address for whichever kernel leads: both in kernel-net's network namespace, which alone publishes 7400", () => {
    for (const k of ["kernel", "kernel-standby"]) {
      assert.equal(all[k].network_mode, "service:kernel-net", k);
      assert.deepEqual(all[k].ports ?? [], [], `${k} publishes a port beside network_mode`);
      assert.equal(all[k].environment.HURD_GRPC, "0.0.0.0:7400", k);
    }
    const publishers = Object.entries(all).filter(([, s]) => published(s).length).map(([n]) => n);
    assert.deepEqual(publishers, ["kernel-net"], "exactly one service publishes the edge");
    assert.deepEqual(published(all["kernel-net"]), ["${HURDMESH_BIND:-127.0.0.1}:${HURD_EDGE_PORT:-7400}:7400"]);
    assert.ok(all["kernel-net"].networks.default.aliases.includes("kernel"), "kernel:7400 and kernel:9464 still resolve in the compose network");
    // A healthcheck of its own, not disabled: `docker compose up --wait` refuses a service with none.
    assert.ok(Array.isArray(all["kernel-net"].healthcheck.test) && !all["kernel-net"].healthcheck.disable, "kernel-net has a healthcheck");
    // The default stack is unchanged: one kernel, without the log, publishing the edge itself.
    assert.deepEqual(services.kernel.command, ["kernel"]);
    assert.equal(services["kernel-standby"], undefined);
    assert.equal(published(services.kernel).length, 1);
  });

  it("the standby's settings, keys and limits are the kernel's, but its metrics port and its resource", () => {
    const env = (k: string) => Object.fromEntries(Object.entries(all[k].environment as Record<string, string>).filter(([n]) => !["HURD_METRICS_ADDR", "OTEL_RESOURCE_ATTRIBUTES"].includes(n)));
    // A standby with other limits, keys or system would diverge from the log it replays.
    assert.deepEqual(env("kernel-standby"), env("kernel"));
    assert.deepEqual(all["kernel-standby"].volumes, all.kernel.volumes);
    assert.deepEqual(all["kernel-standby"].deploy, all.kernel.deploy);
    assert.equal(all["kernel-standby"].image, all.kernel.image);
    // One service name for Jaeger and the dashboards whichever leads; the resource tells the containers apart.
    assert.equal(all.kernel.environment.OTEL_SERVICE_NAME, "hurd-kernel");
    assert.equal(all["kernel-standby"].environment.OTEL_SERVICE_NAME, "hurd-kernel");
    assert.notEqual(all.kernel.environment.OTEL_RESOURCE_ATTRIBUTES, all["kernel-standby"].environment.OTEL_RESOURCE_ATTRIBUTES);
    // One namespace, two metrics pages; each healthcheck asks its own, which a standby serves (the edge is the leader's alone).
    const port = (k: string) => all[k].environment.HURD_METRICS_ADDR.split(":").pop();
    assert.deepEqual([port("kernel"), port("kernel-standby")], ["9464", "9465"]);
    for (const k of ["kernel", "kernel-standby"]) {
      const test = all[k].healthcheck.test.join(" ");
      assert.doesNotMatch(test, /grpc-health/, `${k}: a standby has no edge`);
      assert.match(test, new RegExp(`127\\.0\\.0\\.1:${port(k)}/metrics`), k);
    }
    assert.ok(parse(read("deploy/dashboards/prometheus.yml")).scrape_configs[0].static_configs.some((c: any) => c.targets.includes("kernel:9465")), "Prometheus scrapes the standby too");
  });

  it("leaves hurd web out (a logged kernel does not serve its trace stream) and nothing depends on it", () => {
    assert.deepEqual(all.web.profiles, ["web-needs-unlogged-kernel"]);
    for (const [name, s] of Object.entries(all)) assert.equal(s.depends_on?.web, undefined, `${name} depends on web`);
  });
});

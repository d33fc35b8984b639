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
import { parse } from "yaml";

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

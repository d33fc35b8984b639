// docker compose by the book, checked where CI can check it (the file
// itself: no engine needed): every container has rotated logs and resource
// limits, every setting the file reads is in .env.example with the same
// default, the second hurd's servers have service names of their own, and
// the stand-in base images never take the real images' names.
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
      // The boot secret stays out of a file meant to be copied as is (the README says how to set it).
      if (name === "HURD_BOOT_SECRET") continue;
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

  it("the stand-in base images have private names, never node:… or nats:…", () => {
    const script = read("scripts/docker/base-images.sh");
    const tags = [...script.matchAll(/^(NODE|NATS)_TAG="\$\{[A-Z_]+:-([^}]+)\}"/gm)].map((m) => m[2]!);
    assert.equal(tags.length, 2, "NODE_TAG and NATS_TAG defaults");
    for (const t of tags) assert.match(t, /^hurdmesh-base\//, t);
  });
});

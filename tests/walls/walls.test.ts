// The walls check (scripts/check-walls.mjs): it holds on the repository,
// and fails, naming file, line and wall, on each kind of crossing, whether
// the import is static, dynamic, a re-export, a type or a relative path
// into another package.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkWalls, importsOf, WALLS } from "../../scripts/check-walls.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const script = join(root, "scripts/check-walls.mjs");
const wall = (start: string) => {
  const w = WALLS.find((x) => x.wall.startsWith(start));
  assert.ok(w, `a wall starting "${start}"`);
  return w.wall;
};

/** A tree of files crossing one wall each, and one that crosses none. */
const crossed: Record<string, string> = {
  "services/kernel/src/policy.ts": `// the kernel asks proc\nconst { startProc } = await import("@hurdmesh/proc");\n`,
  "services/init/src/launch.ts": `import { bootAuth } from "@hurdmesh/auth/boot";\n`,
  "services/auth/src/peek.ts": `export { pids } from "../../proc/src/pids.js";\n`,
  "services/proc/src/bus.ts": `import type { NatsConnection } from "@nats-io/transport-node";\ntype C = import("@grpc/grpc-js").Client;\n`,
  "services/init/src/console.ts": `import { Process } from "@hurdmesh/libhurd";\n`,
  "packages/mach/src/kernel-bits.ts": `import type { Kernel } from "@hurdmesh/kernel";\n`,
  "packages/libhurd/src/up.ts": `import { InProcessLauncher } from "@hurdmesh/boot";\n`,
  "services/proc/src/spans.ts": `import { createTelemetry } from "@hurdmesh/telemetry-sdk";\n`,
  "services/kernel/src/tracer.ts": `import { LightSpan } from "@hurdmesh/telemetry-sdk";\nimport { hooks } from "../../../packages/telemetry/src/hooks.js";\n`,
  "services/proc/src/fine.ts": `import { Task } from "@hurdmesh/mach";\nimport { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";\nimport { x } from "./mgt.js";\nimport { readFileSync } from "node:fs";\n`,
};

describe("check:walls", () => {
  it("finds every kind of import: static, dynamic, re-export, type, require, with its line", () => {
    const src = `import a from "a";\nimport type { B } from "b";\nexport * from "c";\nconst d = await import("d");\ntype E = import("e").E;\nconst f = require("f");\nimport g = require("g");\n`;
    assert.deepEqual(
      importsOf("x.ts", src).map((i) => `${i.spec}:${i.line}`),
      ["a:1", "b:2", "c:3", "d:4", "e:5", "f:6", "g:7"],
    );
  });

  it("names file, line, import and wall for each crossing, and passes what crosses none", () => {
    const got = checkWalls(root, crossed).map((c) => `${c.file}:${c.line} ${c.import} | ${c.wall}`);
    assert.deepEqual(got.sort(), [
      `packages/libhurd/src/up.ts:1 @hurdmesh/boot | ${wall("only the composition roots")}`,
      `packages/mach/src/kernel-bits.ts:1 @hurdmesh/kernel | ${wall("the runtime imports no service")}`,
      `services/auth/src/peek.ts:1 ../../proc/src/pids.js | ${wall("no service imports another")}`,
      `services/auth/src/peek.ts:1 ../../proc/src/pids.js | a package is imported by its name, never by a path into its files`,
      `services/kernel/src/tracer.ts:2 ../../../packages/telemetry/src/hooks.js | a package is imported by its name, never by a path into its files`,
      `services/proc/src/spans.ts:1 @hurdmesh/telemetry-sdk | ${wall("instrumented code imports the telemetry API")}`,
      `services/init/src/console.ts:1 @hurdmesh/libhurd | ${wall("init depends only")}`,
      `services/init/src/launch.ts:1 @hurdmesh/auth/boot | ${wall("init depends only")}`,
      `services/init/src/launch.ts:1 @hurdmesh/auth/boot | ${wall("no service imports another")}`,
      `services/kernel/src/policy.ts:2 @hurdmesh/proc | ${wall("no service imports another")}`,
      `services/kernel/src/policy.ts:2 @hurdmesh/proc | ${wall("the kernel holds no Hurd policy")}`,
      `services/proc/src/bus.ts:1 @nats-io/transport-node | ${wall("proc, auth and init never import NATS")}`,
      `services/proc/src/bus.ts:2 @grpc/grpc-js | ${wall("proc, auth and init never import NATS")}`,
    ].sort());
  });

  it("as a command: exits 1 printing file:line and the wall on a crossed tree", () => {
    const dir = mkdtempSync(join(tmpdir(), "hurd-walls-"));
    try {
      for (const [f, text] of Object.entries(crossed)) {
        mkdirSync(join(dir, dirname(f)), { recursive: true });
        writeFileSync(join(dir, f), text);
      }
      const r = spawnSync(process.execPath, [script, dir], { encoding: "utf8" });
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /^services\/kernel\/src\/policy\.ts:2: kernel imports @hurdmesh\/proc: crosses "the kernel holds no Hurd policy and imports no server"$/m);
      assert.match(r.stderr, /13 crossings/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("holds on this repository", () => {
    assert.deepEqual(checkWalls(root), []);
    const r = spawnSync(process.execPath, [script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /no wall crossed/);
  });
});

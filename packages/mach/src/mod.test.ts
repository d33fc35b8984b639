// The runtime's public face loads no transport: a program on the in-process
// bus (the embedded hurd, tests) never loads NATS's client or grpc-js. Each
// import runs in a child process whose module resolution is recorded by a
// module.register hook; the transports' own paths are the control that the
// recording sees them when they are loaded.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));

// Appends every URL a specifier resolves to, and at exit whatever CommonJS
// loaded behind the hooks' back (grpc-js is CommonJS), to HURD_LOAD_LOG.
const HOOKS = `
import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.HURD_LOAD_LOG, r.url + "\\n");
  return r;
}
`;
const RECORDER = `
import { register, createRequire } from "node:module";
import { appendFileSync } from "node:fs";
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});
const require = createRequire(import.meta.url);
process.on("exit", () => appendFileSync(process.env.HURD_LOAD_LOG, Object.keys(require.cache).join("\\n") + "\\n"));
`;

/** Runs `body` (an ES module) in a child with tsx; answers every module it loaded. */
function loaded(body: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), "hurd-load-"));
  try {
    const log = join(dir, "loaded.txt");
    writeFileSync(join(dir, "recorder.mjs"), RECORDER);
    writeFileSync(log, "");
    // The program sits in the repository so that it resolves the workspace's packages.
    const program = join(root, "packages/mach", `.load-check-${process.pid}-${Math.random().toString(36).slice(2)}.mts`);
    writeFileSync(program, body);
    try {
      const r = spawnSync(process.execPath, ["--conditions=@hurdmesh/source", "--import", "tsx", "--import", pathToFileURL(join(dir, "recorder.mjs")).href, program], {
        cwd: root,
        env: { ...process.env, HURD_LOAD_LOG: log, NODE_OPTIONS: "" },
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /ok/);
    } finally {
      rmSync(program, { force: true });
    }
    return readFileSync(log, "utf8").split("\n").filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const nats = (m: string[]) => m.filter((u) => u.includes("/node_modules/@nats-io/"));
const grpcJs = (m: string[]) => m.filter((u) => u.includes("/node_modules/@grpc/grpc-js/"));

describe("what loading the runtime loads", () => {
  it("@hurdmesh/mach on the in-process bus loads neither @nats-io/* nor @grpc/grpc-js", () => {
    const m = loaded(`
      import { LocalHub } from "@hurdmesh/mach";
      const hub = new LocalHub();
      const a = hub.connect();
      const got = new Promise((r) => a.subscribe("x.y", (_s, d) => r(d)));
      hub.connect().publish("x.y", new Uint8Array([1]));
      await got;
      console.log("ok");
    `);
    assert.ok(m.some((u) => u.includes("/packages/mach/src/mod.ts")), "the recording saw the runtime load");
    assert.deepEqual(nats(m), []);
    assert.deepEqual(grpcJs(m), []);
  });

  it("@hurdmesh/mach/internal loads neither either", () => {
    const m = loaded(`import "@hurdmesh/mach/internal"; console.log("ok");`);
    assert.deepEqual(nats(m), []);
    assert.deepEqual(grpcJs(m), []);
  });

  it("the transports load only with their own paths: NATS with @hurdmesh/mach/nats, grpc-js with @hurdmesh/mach/edge", () => {
    const withNats = loaded(`import "@hurdmesh/mach/nats"; console.log("ok");`);
    assert.notDeepEqual(nats(withNats), []);
    assert.deepEqual(grpcJs(withNats), []);
    const withEdge = loaded(`import "@hurdmesh/mach/edge"; console.log("ok");`);
    assert.notDeepEqual(grpcJs(withEdge), []);
    assert.deepEqual(nats(withEdge), []);
  });
});

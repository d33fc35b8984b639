// The `hurd` command as users and images run it: the compiled JavaScript
// (dist/, built by `npm ci`) under plain node, with no tsx anywhere and no
// second Node process, loading only what the subcommand needs; stack traces
// of compiled code name the TypeScript lines.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url).pathname;
const hurd = join(root, "packages/cli/bin/hurd.mjs");
const recorder = new URL("./fixtures/loaded.mjs", import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), "hurd-built-"));

/** A clean environment: no NODE_OPTIONS (so no source condition and no tsx), a state folder with no hurd. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _, ...rest } = process.env;
  return { ...rest, HURD_STATE_DIR: scratch, ...extra };
}

/** Runs the built `hurd` with the module recorder; answers its result and the URLs it resolved. */
function run(...args: string[]) {
  const out = join(scratch, `loaded-${args.join("-")}.txt`);
  const r = spawnSync(process.execPath, ["--import", recorder, hurd, ...args], { env: env({ HURD_LOADED_OUT: out }), encoding: "utf8", timeout: 60000 });
  return { ...r, loaded: readFileSync(out, "utf8").split("\n") };
}

describe("the built hurd command", () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("runs compiled JavaScript without tsx: --help loads commander and dist/ only", () => {
    const r = run("--help");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: hurd/);
    assert.deepEqual(r.loaded.filter((u) => /\/node_modules\/tsx\/|\.ts$/.test(u)), []);
    // Recorded in this process: the program ran in it, not in a second node.
    assert.ok(r.loaded.some((u) => u.endsWith("/packages/cli/dist/main.js")), r.loaded.join("\n"));
    // Lazy subcommands: no gRPC, OpenTelemetry, NATS or table code for the help text.
    assert.deepEqual(r.loaded.filter((u) => /@grpc|@opentelemetry|@nats-io|cli-table3|\/(services|packages\/(mach|proto|telemetry))\//.test(u)), []);
  });

  it("a subcommand runs compiled too, in this process: hurd ps with no hurd up fails with one line", () => {
    const r = run("ps");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^hurd: no hurd called hurd is up/);
    assert.deepEqual(r.loaded.filter((u) => /\/node_modules\/tsx\/|\.ts$/.test(u)), []);
    // The recorder sees only this process: the subcommand ran in it, not in a second node.
    for (const m of ["main", "ps", "session"]) assert.ok(r.loaded.some((u) => u.endsWith(`/packages/cli/dist/${m}.js`)), `${m}.js in this process`);
  });

  it("stack traces of compiled code name the .ts source and line", () => {
    // As the bins enable them: our maps, not dependencies'.
    const src = `import m from "node:module"; if (m.setSourceMapsSupport) m.setSourceMapsSupport(true, { nodeModules: false }); else process.setSourceMapsEnabled(true); const { HurdError } = await import("@hurdmesh/mach"); console.log(HurdError.from("x").stack);`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", src], { cwd: root, env: env(), encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /packages\/mach\/src\/errors\.ts:\d+:\d+/);
  });
});

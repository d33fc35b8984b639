#!/usr/bin/env node
// The test command: starts a nats-server on a free loopback port (the NATS
// suites need a real one), runs every *.test.ts under node's test runner
// with tsx, and stops the server. `npm test -- path/to/file.test.ts` runs some.
// The suites run the TypeScript sources: NODE_OPTIONS carries the
// @hurdmesh/source export condition to every node they start, so workspace
// packages resolve to src/ (tests/build.ts's compiledEnv takes it out for
// the tests of the compiled programs, which this first brings up to date).
// Without nats-server on PATH the NATS suites cannot run: in CI that is a
// failure; elsewhere HURD_TEST_BUSES=local runs the in-process suites alone.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const SOURCE_CONDITION = "--conditions=@hurdmesh/source";
const args = process.argv.slice(2);

function find(dir, out) {
  for (const e of readdirSync(dir)) {
    if (e === "node_modules" || e.startsWith(".") || e === "gen" || e === "scratch") continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) find(p, out);
    else if (e.endsWith(".test.ts")) out.push(relative(root, p));
  }
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startNats() {
  const which = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  if (which.status !== 0) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-nats-"));
  const proc = spawn(which.stdout.trim(), ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => (log += d));
  const url = `nats://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (log.includes("Server is ready")) return { url, proc, dir };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error(`nats-server did not start:\n${log}`);
}

const files = args.filter((a) => !a.startsWith("-"));
const flags = args.filter((a) => a.startsWith("-"));
const tests = files.length ? files : find(root, []).sort();
const env = { ...process.env };
let nats = null;
const wantsNats = !env.HURD_TEST_BUSES || env.HURD_TEST_BUSES.split(",").includes("nats");
if (wantsNats && !env.NATS_URL) {
  nats = await startNats();
  if (!nats) {
    console.error("nats-server is not installed (Debian: apt-get install nats-server). The NATS suites need it.");
    console.error("To run only the in-process suites: HURD_TEST_BUSES=local npm test");
    process.exit(1);
  }
  env.NATS_URL = nats.url;
  console.log(`# nats-server on ${nats.url}`);
}
const build = spawnSync(process.execPath, [join(root, "scripts/build.mjs"), "--if-stale"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);
env.NODE_OPTIONS = [env.NODE_OPTIONS, SOURCE_CONDITION].filter(Boolean).join(" ");
const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...flags, ...tests], { stdio: "inherit", env, cwd: root });
// Stopped from outside (Ctrl-C, a CI timeout): the runner goes first (it
// stops the test files it runs), then the server; nothing is left behind.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    child.kill(sig);
    setTimeout(() => {
      child.kill("SIGKILL");
      nats?.proc.kill("SIGKILL");
      if (nats) rmSync(nats.dir, { recursive: true, force: true });
      process.exit(130);
    }, 3000).unref();
  });
}
const code = await new Promise((r) => child.on("exit", (c, s) => r(c ?? (s ? 1 : 0))));
if (nats) {
  nats.proc.kill();
  rmSync(nats.dir, { recursive: true, force: true });
}
process.exit(code);

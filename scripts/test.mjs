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
//
// The nats-server runs with NATS authorization on, as every deployment
// does: operator mode with fresh keys (the compiled @hurdmesh/mach/nats-auth
// makes them), no anonymous client. The suites find the keys file in
// HURD_NATS_KEYS (tests/harness.ts mints their users from it).
// HURD_NATS_AUTH=off runs an anonymous server instead.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
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

// HURD_NATS_SERVER names another nats-server binary: one that takes
// `sync_interval` (scripts/nats-server-trixie.sh fetches Debian trixie's
// 2.10.27) runs with `sync_interval: always`, so JetStream fsyncs every
// write before acknowledging it (README, "What survives a crash").
async function startNats() {
  const which = env.HURD_NATS_SERVER ? { status: 0, stdout: env.HURD_NATS_SERVER } : spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  if (which.status !== 0) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-nats-"));
  if (process.env.HURD_NATS_AUTH !== "off") {
    const auth = await import("@hurdmesh/mach/nats-auth");
    const keys = auth.makeFabricKeys("hurdtest", { jetstream: true, operatorName: "hurdmesh-tests" });
    const keysFile = join(dir, "nats-keys.json");
    auth.writeFabricKeys(keysFile, keys);
    writeFileSync(join(dir, "nats.conf"), auth.fabricServerConfig(keys, { port, jetstreamDir: join(dir, "js") }), { mode: 0o600 });
    const server = await auth.startNatsServer(join(dir, "nats.conf"));
    return { url: server.url, stop: () => server.stop(), dir, keysFile };
  }
  const conf = join(dir, "nats.conf");
  writeFileSync(conf, `jetstream { store_dir: ${JSON.stringify(join(dir, "js"))}, sync_interval: always }\n`);
  const durable = spawnSync(which.stdout.trim(), ["-t", "-c", conf]).status === 0;
  const storage = durable ? ["-c", conf] : ["-js", "-sd", dir];
  if (durable) console.log("# JetStream with sync_interval: always");
  const proc = spawn(which.stdout.trim(), ["-a", "127.0.0.1", "-p", String(port), ...storage], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => (log += d));
  const url = `nats://127.0.0.1:${port}`;
  const stop = async () => void proc.kill();
  for (let i = 0; i < 100; i++) {
    if (log.includes("Server is ready")) return { url, stop, dir, keysFile: null };
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
// First: the nats-server's keys are made by the compiled nats-auth.
const build = spawnSync(process.execPath, [join(root, "scripts/build.mjs"), "--if-stale"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);
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
  if (nats.keysFile) env.HURD_NATS_KEYS = nats.keysFile;
  else delete env.HURD_NATS_KEYS;
  console.log(`# nats-server on ${nats.url}, NATS authorization ${nats.keysFile ? "on" : "OFF (HURD_NATS_AUTH=off)"}`);
}
env.NODE_OPTIONS = [env.NODE_OPTIONS, SOURCE_CONDITION].filter(Boolean).join(" ");
// No test and no file may hold the run (node --test has no limit of its
// own): a test fails after HURD_TEST_TIMEOUT_MS (10 min), a file whose
// tests are done exits even if a handle it forgot keeps its loop alive
// (its exit handlers still run, so what it started is still ended), and
// the whole run fails after HURD_TEST_RUN_LIMIT_MS (45 min).
const limits = [
  ...(flags.some((f) => f.startsWith("--test-timeout")) ? [] : [`--test-timeout=${Number(env.HURD_TEST_TIMEOUT_MS) || 600_000}`]),
  ...(flags.includes("--test-force-exit") ? [] : ["--test-force-exit"]),
];
const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...limits, ...flags, ...tests], { stdio: "inherit", env, cwd: root });
let stopping = false;
/** Ends the runner (it stops the test files it runs), then the server; nothing is left behind. */
function stop(sig, code) {
  if (stopping) return;
  stopping = true;
  child.kill(sig);
  setTimeout(() => {
    child.kill("SIGKILL");
    void nats?.stop();
    if (nats) rmSync(nats.dir, { recursive: true, force: true });
    process.exit(code);
  }, 3000).unref();
}
// Stopped from outside (Ctrl-C, a CI timeout).
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => stop(sig, 130));
const runLimitMs = Number(env.HURD_TEST_RUN_LIMIT_MS) || 45 * 60_000;
const watchdog = setTimeout(() => {
  console.error(`# the test run took longer than ${runLimitMs / 60_000} min (HURD_TEST_RUN_LIMIT_MS): stopped, failed`);
  stop("SIGTERM", 1);
}, runLimitMs);
const code = await new Promise((r) => child.on("exit", (c, s) => r(c ?? (s ? 1 : 0))));
clearTimeout(watchdog);
if (nats) {
  await nats.stop();
  rmSync(nats.dir, { recursive: true, force: true });
}
process.exit(code);

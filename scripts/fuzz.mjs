#!/usr/bin/env node
// `npm run fuzz -- --target kernel|proc|auth|startup|edge|all --messages N
// [--seed S] [--path P] [--bus local|nats]`: the long fuzz runs (issue 22).
// Starts its own nats-server on a free loopback port for --bus nats, as
// scripts/test.mjs does, runs tests/fuzz/main.ts on the TypeScript sources
// (with --expose-gc, so memory is sampled after a collection), and stops
// the server. The exit status is 0 only with no crash and no violation.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const bus = args[args.indexOf("--bus") + 1];
const wantsNats = args.includes("--bus") && bus === "nats";

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
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-fuzz-nats-"));
  const proc = spawn(which.stdout.trim(), ["-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: ["ignore", "ignore", "pipe"] });
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

const env = { ...process.env };
let nats = null;
if (wantsNats && !env.NATS_URL) {
  nats = await startNats();
  if (!nats) {
    console.error("nats-server is not installed (Debian: apt-get install nats-server); --bus local needs none.");
    process.exit(1);
  }
  env.NATS_URL = nats.url;
  console.log(`# nats-server on ${nats.url}`);
}
env.NODE_OPTIONS = [env.NODE_OPTIONS, "--conditions=@hurdmesh/source"].filter(Boolean).join(" ");
const child = spawn(process.execPath, ["--import", "tsx", "--expose-gc", "--max-old-space-size=4096", join(root, "tests/fuzz/main.ts"), ...args], { stdio: "inherit", env, cwd: root });
const stop = () => child.kill("SIGINT");
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
const code = await new Promise((r) => child.on("exit", (c, s) => r(c ?? (s ? 1 : 0))));
if (nats) {
  nats.proc.kill();
  rmSync(nats.dir, { recursive: true, force: true });
}
process.exit(code);

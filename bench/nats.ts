// A private nats-server for one bench run: a free loopback port, a scratch
// JetStream directory, stopped (and the directory removed) by `stop()`.
// The same recipe as scripts/test.mjs, kept here so the bench does not reach
// into the test runner.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServer {
  url: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Starts nats-server from PATH; throws with a hint when it is not installed. */
export async function startNats(): Promise<NatsServer> {
  const which = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" });
  if (which.status !== 0) throw new Error("nats-server is not installed (Debian: apt-get install nats-server)");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-bench-nats-"));
  const proc: ChildProcess = spawn(which.stdout.trim(), ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  proc.stderr!.on("data", (d) => (log += d));
  // A run that fails or is interrupted does not leave its server behind.
  const onExit = () => proc.kill("SIGKILL");
  process.on("exit", onExit);
  const stop = async (): Promise<void> => {
    process.off("exit", onExit);
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (log.includes("Server is ready")) return { url: `nats://127.0.0.1:${port}`, stop };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`nats-server did not start:\n${log}`);
}

// Private nats-servers for one bench run: a free loopback port, a scratch
// JetStream directory, stopped (and the directory removed) by `stop()`.
// The same recipe as scripts/test.mjs, kept here so the bench does not reach
// into the test runner. Two of them: an anonymous one (raw NATS, and the
// "auth off" rows) and one with NATS authorization on as `hurd up --nats`
// runs it (operator mode, fresh keys), which the brokered rows use.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerChild, unregisterChild } from "./cpu.js";
import { fabricServerConfig, issueCert, makeCA, makeFabricKeys, startNatsServer, type ClientTls, type FabricKeys } from "@hurdmesh/mach/nats-auth";

export interface NatsServer {
  url: string;
  stop(): Promise<void>;
}

/** A nats-server with NATS authorization on, and the keys its kernels mint users with. */
export interface SecuredNatsServer extends NatsServer {
  keys: FabricKeys;
  /** With `tls`: the CA of the server's certificate, which clients dial with. */
  tls?: ClientTls;
}

/**
 * Starts nats-server from PATH in operator mode with fresh keys: no
 * anonymous client. `tls`: TLS only, with a certificate for 127.0.0.1 from a
 * private CA made now, as compose and Kubernetes run it; `jetstream`: with
 * JetStream (in the run's directory), for servers that write through.
 */
export async function startSecuredNats(o: { tls?: boolean; jetstream?: boolean } = {}): Promise<SecuredNatsServer> {
  const dir = mkdtempSync(join(tmpdir(), "hurdmesh-bench-nats-auth-"));
  try {
    const keys = makeFabricKeys("bench", { operatorName: "hurdmesh-bench", jetstream: o.jetstream });
    const conf = join(dir, "nats.conf");
    let tls: ClientTls | undefined;
    let files: { certFile: string; keyFile: string } | undefined;
    if (o.tls) {
      const ca = await makeCA({ name: "hurdmesh bench CA" });
      // localhost too: nats.js checks a certificate dialled by address against the name localhost (an upgraded socket has no servername).
      const cert = await issueCert(ca, { dns: ["localhost"], ip: ["127.0.0.1"] });
      files = { certFile: join(dir, "nats.crt"), keyFile: join(dir, "nats.key") };
      writeFileSync(files.certFile, cert.certPem, { mode: 0o600 });
      writeFileSync(files.keyFile, cert.keyPem, { mode: 0o600 });
      tls = { caPem: ca.certPem };
    }
    writeFileSync(conf, fabricServerConfig(keys, { port: -1, tls: files, jetstreamDir: o.jetstream ? join(dir, "js") : undefined }), { mode: 0o600 });
    const server = await startNatsServer(conf);
    registerChild(server.pid);
    return {
      url: tls ? `tls://127.0.0.1:${server.port}` : server.url,
      keys,
      tls,
      async stop() {
        unregisterChild(server.pid);
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
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
  registerChild(proc.pid);
  // A run that fails or is interrupted does not leave its server behind.
  const onExit = () => proc.kill("SIGKILL");
  process.on("exit", onExit);
  const stop = async (): Promise<void> => {
    process.off("exit", onExit);
    unregisterChild(proc.pid);
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

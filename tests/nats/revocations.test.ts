// A restarted nats-server forgets the account updates pushed to it (the
// MEMORY resolver keeps only its preloaded account JWT): the kernel's
// updater pushes the whole revocation list again once it reconnects, so a
// dead task's user stays out across a NATS restart, or a reload (SIGHUP,
// as hurd up sends for a renewed certificate), instead of being let back
// in until its JWT expires. A hurd-kernel process with NATS
// authorization on a nats-server and keys of this suite's own.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Task } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { fabricServerConfig, makeFabricKeys, startNatsServer, writeFabricKeys, type NatsServerProcess } from "@hurdmesh/mach/nats-auth";
import { busKinds, natsKeys } from "../harness.js";
import { waitFor, type KernelProc } from "../restart/kernel-proc.js";
import { freePort } from "./kit.js";

const MAIN = new URL("../../services/kernel/src/main.ts", import.meta.url).pathname;

if (busKinds.includes("nats") && natsKeys()) {
  describe("revocations across a NATS restart or reload", () => {
    const dir = mkdtempSync(join(tmpdir(), "hurd-revoke-"));
    let server: NatsServerProcess | null = null;
    let k: KernelProc | null = null;
    const closers: { close(): Promise<unknown> }[] = [];
    after(async () => {
      for (const c of closers) await c.close().catch(() => {});
      if (k && k.p.exitCode === null) k.p.kill("SIGKILL");
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    // A restart forgets the updates; so does a reload (SIGHUP: hurd up's on a
    // renewed certificate, nats-auth/server-reload.ts), which loads the
    // account again from resolver_preload and, on nats-server 2.9, drops
    // every JWT client, the kernel's included, which reconnect.
    const cases: Array<[string, string, () => Promise<void>]> = [
      [
        "restarts",
        "r",
        async () => {
          await server!.stop();
          const before = server!.url;
          server = await startNatsServer(join(dir, "r", "nats.conf"));
          assert.equal(server.url, before);
        },
      ],
      ["reloads its configuration (SIGHUP)", "h", async () => void process.kill(server!.pid, "SIGHUP")],
    ];
    for (const [what, sub, bounce] of cases) {
      it(`a dead task's user is still refused after the nats-server ${what}`, async () => {
        const system = `rv${sub}${process.pid}`;
        const dir_ = join(dir, sub);
        mkdirSync(dir_);
        const keys = makeFabricKeys(system, { jetstream: true });
        const keysFile = join(dir_, "keys.json");
        writeFabricKeys(keysFile, keys);
        const conf = join(dir_, "nats.conf");
        writeFileSync(conf, fabricServerConfig(keys, { port: await freePort(), jetstreamDir: join(dir_, "js") }), { mode: 0o600 });
        server = await startNatsServer(conf);
        const url = server.url;
        const bootFile = join(dir_, "boot.json");
        const p = spawn(process.execPath, ["--import", "tsx", MAIN, "--nats", url, "--nats-keys", keysFile, "--system", system, "--grpc", "127.0.0.1:0", "--boot", "client", "--boot-file", bootFile], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        k = { p, out: "" };
        const kp = k;
        p.stdout!.on("data", (d) => (kp.out += d));
        p.stderr!.on("data", (d) => (kp.out += d));
        await waitFor(k, /gRPC edge on/, 30_000);
        const boot = JSON.parse(readFileSync(bootFile, "utf8")) as { tasks: { client: { taskId: number; token: string; nats: { jwt: string; seed: string; expires: number } } } };
        const client: Task = await attachOverNats(url, { system, taskId: boot.tasks.client.taskId, token: boot.tasks.client.token, credentials: boot.tasks.client.nats, timeoutMs: 5000 });
        closers.push(client.bus);
        const doomed = await client.taskCreate("doomed");
        const creds = (await client.natsCredentials(doomed.taskId, doomed.token))!;
        const connectAsDoomed = () =>
          NatsBus.connect(url, { name: "doomed user", credentials: { jwt: creds.jwt, seed: creds.seed }, inboxPrefix: inboxOf(system, { kind: "task", taskId: doomed.taskId }) }).then(
            async (b) => (await b.close(), "let in"),
            (e: Error) => String(e),
          );
        assert.equal(await connectAsDoomed(), "let in", "its user connects while the task lives");
        await client.taskTerminate(doomed.task);
        /** Polls a connection of the dead task's user until refused; what the last try said. */
        const refusedWithin = async (ms: number) => {
          const end = Date.now() + ms;
          let said = "";
          while (Date.now() < end) {
            said = await connectAsDoomed();
            if (/authoriz/i.test(said)) return said;
            await new Promise((r) => setTimeout(r, 200));
          }
          return said;
        };
        assert.match(await refusedWithin(10_000), /authoriz/i, `revoked before the restart; kernel:\n${k.out}`);

        if (k.out.includes("the bus is back")) throw new Error(`the bus was down before the ${what}: ${k.out}`);
        await bounce();
        // Back: the kernel's updater reconnects and pushes the list again.
        await waitFor(k, /the bus is back/, 15_000);
        await waitFor(k, /reconnected: pushing the account's 1 revocations again/, 15_000);
        assert.match(await refusedWithin(10_000), /authoriz/i, `revoked after the restart too; kernel:\n${k.out}`);
        // Stays refused (not a lucky moment between reconnects).
        await new Promise((r) => setTimeout(r, 1000));
        assert.match(await connectAsDoomed(), /authoriz/i);
        // The client rode the restart out.
        await client.allocate();
        // This case's kernel and server go; the next case starts its own.
        await client.bus.close().catch(() => {});
        k.p.kill("SIGTERM");
        await new Promise((r) => k!.p.once("exit", r));
        await server.stop();
        server = null;
      });
    }
  });
}

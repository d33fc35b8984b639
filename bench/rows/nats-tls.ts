// What NATS's TLS costs (issue 15): the brokered Ping and the process
// lifecycle on a nats-server with authorization and TLS (as compose and
// Kubernetes run it: operator mode, TLS only, every connection checking the
// certificate against a private CA), with authorization and no TLS (as
// `hurd up --nats` runs it on loopback), and with neither, interleaved in
// one run so that the ratios hold on a noisy machine. Its TLS nats-server
// is its own, started here and stopped with the group.
//
// Beside them: the physics floor, plain nats.js request-reply (16 bytes)
// with its users on the TLS server and on the same server kind without TLS
// ("raw NATS ... | auth+TLS" / "| auth, no TLS"); and the Ping with the
// kernel in a process of its own, as deployed (bench/kernel-proc.ts), so
// that this process pays only the client's and the server task's
// connections (their CPU per call; the kernel's is in the row's
// children_cpu_us_per_call, with the nats-servers').
import { WNOHANG } from "@hurdmesh/libhurd";
import { client, MsgType, serve, type Task } from "@hurdmesh/mach";
import { attachOverNats } from "@hurdmesh/mach/nats";
import { mintUser, natsConnectOptions, NKey, type ClientTls, type FabricKeys } from "@hurdmesh/mach/nats-auth";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { fileURLToPath } from "node:url";
import { killGroup, spawnGroup } from "../children.js";
import { startSecuredNats } from "../nats.js";
import { bootRig, NATS_AUTH_OFF, type RigKind } from "../rig.js";
import { PING, rig } from "./kernel.js";
import { LIFECYCLE, lifecycle } from "./proc.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

/** The bus labels of this group's rows. */
export const AUTH_TLS = "nats, auth+TLS";
export const AUTH_NO_TLS = "nats, auth, no TLS";
export const NEITHER = "nats, no auth, no TLS";
export const RAW_TLS = "raw NATS request-reply 16B (users, same servers)";
export const PING_KERNEL_PROC = `${PING}, kernel in its own process`;

/** nats.js request-reply as the bench's raw row, with users of the fabric's account allowed only the echo subject and their inboxes. */
async function rawOn(url: string, keys: FabricKeys, tls?: ClientTls): Promise<{ call(): Promise<unknown>; close(): Promise<void> }> {
  const subject = "bench.raw.echo";
  const signer = NKey.fromSeed(keys.accountSigningSeed, "account");
  // The responder answers on the requester's inbox: both may publish on both inboxes.
  const inboxes = ["_INBOX_bench_responder", "_INBOX_bench_requester"].map((i) => `${i}.>`);
  const user = (name: string, inbox: string) => mintUser(signer, keys.account, name, { pub: [subject, ...inboxes], sub: [subject, `${inbox}.>`], subs: -1, inboxPrefix: inbox });
  const conns: NatsConnection[] = [];
  for (const who of ["responder", "requester"]) {
    const inbox = `_INBOX_bench_${who}`;
    conns.push(await connect({ servers: url, name: `bench-raw-${who}`, ...natsConnectOptions(user(who, inbox), { inboxPrefix: inbox, tls }) }));
  }
  const [responder, requester] = conns as [NatsConnection, NatsConnection];
  responder.subscribe(subject, { callback: (_e, m) => void m.respond(m.data) });
  await responder.flush();
  const payload = new Uint8Array(16);
  return { call: () => requester.request(subject, payload, { timeout: 5000 }), close: async () => void (await Promise.all(conns.map((c) => c.close()))) };
}

/** The Ping of rows/kernel.ts with its kernel in a child process (bench/kernel-proc.ts) on the same server. */
async function pingKernelProc(kind: RigKind, url: string, natsAuth: { url: string; keys: FabricKeys } | null, natsUrl: string, tls: ClientTls | undefined, log: (l: string) => void) {
  const script = fileURLToPath(new URL("../kernel-proc.ts", import.meta.url));
  const p = spawnGroup(process.execPath, ["--conditions=@hurdmesh/source", "--import", "tsx", script], { stdio: ["pipe", "pipe", "pipe"] });
  const tasks: Task[] = [];
  const close = async () => {
    for (const t of tasks) t.abandon();
    for (const t of tasks) await t.bus.close().catch(() => {});
    p.stdin!.end();
    await Promise.race([new Promise((r) => p.once("exit", r)), new Promise((r) => setTimeout(r, 3000))]);
    killGroup(p);
  };
  try {
    let err = "";
    p.stderr!.on("data", (d) => (err += d));
    p.stdin!.write(JSON.stringify({ kind, natsUrl, natsAuth, tls }) + "\n");
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      p.stdout!.on("data", (d) => {
        out += d;
        const i = out.indexOf("\n");
        if (i >= 0) resolve(out.slice(0, i));
      });
      p.once("exit", (c) => reject(new Error(`bench/kernel-proc.ts exited (${c}): ${err}`)));
      setTimeout(() => reject(new Error(`bench/kernel-proc.ts did not answer in 30 s: ${err}`)), 30_000);
    });
    const b = JSON.parse(line) as { system: string; taskId: number; token: string; credentials?: Parameters<typeof attachOverNats>[1]["credentials"] };
    log(`nats-tls: kernel in process ${p.pid} (${kind})`);
    const srv = await attachOverNats(url, { system: b.system, taskId: b.taskId, token: b.token, tls, credentials: b.credentials, timeoutMs: 30_000 });
    tasks.push(srv);
    const port = await srv.allocate();
    serve(srv, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(port, {});
    const child = await srv.taskCreate("bench-client");
    await srv.insertRight(child.task, 0x1000, port, MsgType.MSG_TYPE_MAKE_SEND);
    // As a creator hands a task its NATS user: asked of the kernel.
    const creds = natsAuth ? await srv.natsCredentials(child.taskId, child.token) : undefined;
    const cli = await attachOverNats(url, { system: b.system, taskId: child.taskId, token: child.token, tls, credentials: creds as never, timeoutMs: 30_000 });
    tasks.push(cli);
    const ping = client(cli, PingDefinition, 0x1000);
    const payload = new Uint8Array(16);
    await ping.ping({ payload });
    return { ping: () => ping.ping({ payload }), close };
  } catch (e) {
    await close();
    throw e;
  }
}

export const natsTls: RowGroup = {
  name: "nats-tls",
  async open(ctx: BenchContext): Promise<Opened> {
    const server = await startSecuredNats({ tls: true });
    const tlsCtx = { ...ctx, natsAuth: { url: server.url, keys: server.keys } };
    const opened: Array<{ close(): Promise<void> }> = [];
    try {
      const pingTls = await rig("nats", tlsCtx, { tls: server.tls });
      opened.push(pingTls);
      const pingAuth = await rig("nats", ctx);
      opened.push(pingAuth);
      const pingOff = await rig(NATS_AUTH_OFF, ctx);
      opened.push(pingOff);
      if (!ctx.natsAuth) throw new Error("the bench's nats-server with authorization is not running");
      const rawTls = await rawOn(server.url, server.keys, server.tls);
      opened.push(rawTls);
      const rawAuth = await rawOn(ctx.natsAuth.url, ctx.natsAuth.keys);
      opened.push(rawAuth);
      const procTls = await pingKernelProc("nats", server.url, tlsCtx.natsAuth, ctx.natsUrl, server.tls, ctx.log);
      opened.push(procTls);
      const procOff = await pingKernelProc(NATS_AUTH_OFF, ctx.natsUrl, null, ctx.natsUrl, undefined, ctx.log);
      opened.push(procOff);
      const lifeTls = await bootRig("nats", tlsCtx, ctx.log, { tls: server.tls });
      const lifeAuth = await bootRig("nats", ctx, ctx.log);
      const lifeOff = await bootRig(NATS_AUTH_OFF, ctx, ctx.log);
      for (const r of [lifeTls, lifeAuth, lifeOff])
        opened.push({
          async close() {
            // Reap what the last turns left behind, then stop.
            while (await r.parent.wait(-1, WNOHANG).catch(() => null));
            await r.close();
          },
        });
      return {
        subjects: [
          { name: RAW_TLS, bus: AUTH_TLS, call: rawTls.call },
          { name: RAW_TLS, bus: AUTH_NO_TLS, call: rawAuth.call },
          { name: PING_KERNEL_PROC, bus: AUTH_TLS, call: procTls.ping },
          { name: PING_KERNEL_PROC, bus: NEITHER, call: procOff.ping },
          { name: PING, bus: AUTH_TLS, call: pingTls.ping },
          { name: PING, bus: AUTH_NO_TLS, call: pingAuth.ping },
          { name: PING, bus: NEITHER, call: pingOff.ping },
          { name: LIFECYCLE, bus: AUTH_TLS, call: lifecycle(lifeTls) },
          { name: LIFECYCLE, bus: AUTH_NO_TLS, call: lifecycle(lifeAuth) },
          { name: LIFECYCLE, bus: NEITHER, call: lifecycle(lifeOff) },
        ],
        async close() {
          for (const o of opened) await o.close().catch(() => {});
          await server.stop();
        },
      };
    } catch (e) {
      for (const o of opened) await o.close().catch(() => {});
      await server.stop();
      throw e;
    }
  },
};

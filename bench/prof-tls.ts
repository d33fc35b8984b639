// Profiling driver (not part of the bench): where the time of NATS's TLS
// goes for the brokered Ping (kernel, server and client in this process, as
// the nats-tls group's "brokered Ping RPC" rows) at IN_FLIGHT in flight, on
// a nats-server with authorization and TLS or with authorization only.
// Prints the throughput, the TLS cipher each connection negotiated, this
// process's CPU per call, and each part's share of busy time (self time of
// the CPU profile's samples; native TLS work shows as its own functions or
// as "(program)").
// `off`: an anonymous server, no TLS (the "neither" rows); `lifecycle`: the
// process lifecycle of a booted hurd instead of the Ping.
//   node --conditions=@hurdmesh/source --import tsx bench/prof-tls.ts [tls|plain|off] [ms] [in flight] [ping|lifecycle]
import { Session } from "node:inspector/promises";
import { Socket } from "node:net";
import tls, { TLSSocket } from "node:tls";
import { WNOHANG } from "@hurdmesh/libhurd";
import { startNats, startSecuredNats } from "./nats.js";
import { bootRig, NATS_AUTH_OFF } from "./rig.js";
import { rig } from "./rows/kernel.js";
import { lifecycle } from "./rows/proc.js";

const mode = process.argv[2] ?? "tls";
const tlsOn = mode === "tls";
const ms = Number(process.argv[3] ?? 4000);
const IN_FLIGHT = Number(process.argv[4] ?? 64);
const workload = process.argv[5] ?? "ping";
const server = mode === "off" ? { ...(await startNats()), keys: null, tls: undefined } : await startSecuredNats({ tls: tlsOn });
const ciphers = new Map<string, number>();
// Every TLS socket nats.js opens (it calls node:tls's connect through the module object), for its cipher.
const sockets: TLSSocket[] = [];
const tlsConnect = tls.connect;
(tls as { connect: typeof tls.connect }).connect = ((...a: Parameters<typeof tls.connect>) => {
  const s = tlsConnect(...a);
  sockets.push(s);
  return s;
}) as typeof tls.connect;
// Writes nats.js makes (one TLS record each with TLS): how well it coalesces.
let writes = 0;
let written = 0;
const write = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
  writes++;
  written += (chunk as Uint8Array).length ?? 0;
  return (write as (...x: unknown[]) => boolean).call(this, chunk, ...rest);
} as typeof write;
try {
  const ctx = { natsUrl: server.url, natsAuth: server.keys ? { url: server.url, keys: server.keys } : null, durationMs: ms, inFlight: [IN_FLIGHT], log: (l: string) => console.error(`# ${l}`) };
  const kind = mode === "off" ? NATS_AUTH_OFF : "nats";
  let r: { ping(): Promise<unknown>; close(): Promise<void> };
  if (workload === "ping") r = await rig(kind, ctx, { tls: server.tls });
  else {
    const life = await bootRig(kind, ctx, ctx.log, { tls: server.tls });
    r = {
      ping: lifecycle(life),
      async close() {
        while (await life.parent.wait(-1, WNOHANG).catch(() => null));
        await life.close();
      },
    };
  }
  const run = async (forMs: number) => {
    const end = performance.now() + forMs;
    let n = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await r.ping();
          n++;
        }
      }),
    );
    return n;
  };
  await run(1000);
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 1000 });
  await session.post("Profiler.start");
  const w0 = writes;
  const b0 = written;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await run(ms);
  const took = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const nw = writes - w0;
  const nb = written - b0;
  const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: { nodes: { id: number; callFrame: { functionName: string; url: string } }[]; samples: number[]; timeDeltas: number[] } };
  session.disconnect();
  // Which cipher the connections negotiated (every socket this process holds).
  for (const h of sockets) {
    const k = `${h.getProtocol()} ${h.getCipher()?.name}`;
    ciphers.set(k, (ciphers.get(k) ?? 0) + 1);
  }
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const { url, functionName } = byId.get(profile.samples[i]!)!.callFrame;
    let p: string;
    if (url === "") p = `native:${functionName}`;
    else if (url.startsWith("node:")) p = `node:${url.slice(5)}`;
    else if (url.includes("@nats-io")) p = "nats.js";
    else if (url.includes("/packages/mach/src/nats-auth/")) p = `nats-auth:${url.split("/").pop()}:${functionName}`;
    else if (url.includes("/services/kernel/src/nats-users")) p = `kernel nats-users:${functionName}`;
    else if (url.includes("/services/kernel/")) p = "kernel";
    else if (/\/services\/(proc|auth|init)\//.test(url)) p = "proc/auth/init";
    else if (url.includes("/packages/libhurd/")) p = "libhurd";
    else if (url.includes("/packages/mach/")) p = "mach runtime";
    else if (url.includes("/packages/proto/")) p = "proto codecs";
    else p = url.replace(/^.*node_modules\//, "nm:").split("/").slice(0, 2).join("/");
    self.set(p, (self.get(p) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const notBusy = (p: string) => p === "native:(idle)" || p === "node:inspector";
  const busy = [...self].filter(([p]) => !notBusy(p)).reduce((a, [, t]) => a + t, 0);
  console.log(`${workload} | ${mode === "off" ? "no auth, no TLS" : tlsOn ? "auth+TLS" : "auth, no TLS"} | ${IN_FLIGHT} in flight: ${Math.round((n / took) * 1000)} calls/s, this process ${Math.round((cpu.user + cpu.system) / n)} µs CPU per call, ${(nw / n).toFixed(2)} socket writes per call of ${Math.round(nb / nw)} B each; ciphers: ${[...ciphers].map(([k, v]) => `${k} ×${v}`).join(", ") || "none"}`);
  for (const [p, t] of [...self].filter(([x]) => !notBusy(x)).sort((a, b) => b[1] - a[1]).slice(0, 22)) console.log(`    ${p.padEnd(40)} ${((t / busy) * 100).toFixed(1).padStart(5)} %`);
  await r.close();
} finally {
  await server.stop();
}
process.exit(0);

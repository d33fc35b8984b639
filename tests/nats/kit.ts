// What the NATS-outage suites share: nats-servers of their own (anonymous,
// on fixed loopback ports so that one can be stopped and started again at
// the same address), and a kernel in this process with a Ping server task
// and client tasks, each on its own NATS connection, as separate programs
// would be. Also a TCP relay to a nats-server whose server-to-client way
// can be held or made to lag.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { client, errnoName, HurdError, MsgType, serve, type Client, type Task } from "@hurdmesh/mach";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { startNatsServer, type NatsServerProcess } from "@hurdmesh/mach/nats-auth";
import { Kernel, TrapServer, type KernelConfig } from "@hurdmesh/kernel";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";

export const PING = 0x5000;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A nats-server of the suite's own, anonymous, at a fixed port: start() again after stop() comes back at the same URL. */
export class OwnNats {
  private proc: NatsServerProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), "hurd-nats-"));
  constructor(
    readonly port: number,
    /** More configuration (a cluster block). */
    private readonly extra = "",
    readonly name = `n${port}`,
  ) {}
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  get running(): boolean {
    return this.proc !== null;
  }
  async start(): Promise<void> {
    const conf = join(this.dir, "nats.conf");
    writeFileSync(conf, `server_name: ${this.name}\nhost: 127.0.0.1\nport: ${this.port}\n${this.extra}\n`);
    this.proc = await startNatsServer(conf);
  }
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    await p?.stop();
  }
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Rig {
  kernel: Kernel;
  /** The kernel's connection. */
  kbus: NatsBus;
  logs: string[];
  server: Task;
  clients: { task: Task; ping: Client<typeof PingDefinition> }[];
  /** Boots a task and attaches it over NATS (busLostMs for it alone). */
  task(name: string, o?: { busLostMs?: number; timeoutMs?: number }): Promise<Task>;
  close(): Promise<void>;
}

/** A kernel on `url` (its own connection), a Ping server and `n` clients holding a send right to it. */
export async function startRig(url: string, n: number, config: Partial<KernelConfig>, rpcTimeoutMs: number): Promise<Rig> {
  const system = `nr${process.pid}x${Math.floor(Math.random() * 1e6)}`;
  const logs: string[] = [];
  const kernel = new Kernel({ system, ...config }, { log: (l) => logs.push(l) });
  const kbus = await NatsBus.connect(url, { name: `kernel ${system}` });
  const traps = new TrapServer(kernel, kbus);
  traps.start();
  await kbus.flush();
  const tasks: Task[] = [];
  const task = async (name: string, o: { busLostMs?: number; timeoutMs?: number } = {}) => {
    const b = kernel.bootTask({ name });
    const t = await attachOverNats(url, { system, taskId: b.task.id, token: b.token, timeoutMs: o.timeoutMs ?? rpcTimeoutMs, busLostMs: o.busLostMs });
    tasks.push(t);
    return t;
  };
  const server = await task("ping-server");
  const port = await server.allocate();
  serve(server, PingDefinition, {
    ping: (req, ctx) => ({ payload: req.payload, sender: ctx.msg.sender }),
    echo: (req) => ({ payload: req.payload }),
  }).add(port, {});
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = await server.taskCreate(`ping-client-${i}`);
    await server.insertRight(c.task, PING, port, MsgType.MSG_TYPE_MAKE_SEND);
    const t = await attachOverNats(url, { system, taskId: c.taskId, token: c.token, timeoutMs: rpcTimeoutMs });
    tasks.push(t);
    clients.push({ task: t, ping: client(t, PingDefinition, PING) });
  }
  return {
    kernel,
    kbus,
    logs,
    server,
    clients,
    task,
    async close() {
      for (const t of tasks) t.abandon();
      traps.stop();
      kernel.close();
      for (const t of tasks) await t.bus.close().catch(() => {});
      await kbus.close();
    },
  };
}

/** Calls Ping from every client in a loop until stopped: how many completed, and every failure's errno. */
export function load(rig: Rig) {
  const s = { started: 0, ok: 0, failed: new Map<number, number>(), okAfter: 0, mark: 0, stop: false, messages: new Set<string>() };
  const loops = rig.clients.map(async (c, i) => {
    while (!s.stop) {
      s.started++;
      try {
        await c.ping.ping({ payload: new Uint8Array([i]) });
        s.ok++;
        if (s.mark) s.okAfter++;
      } catch (e) {
        const err = HurdError.from(e);
        s.failed.set(err.code, (s.failed.get(err.code) ?? 0) + 1);
        if (s.messages.size < 5) s.messages.add(`${errnoName(err.code)}: ${err.message}`);
        // No busy loop on an error that comes at once.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
  return {
    stats: s,
    /** Counts the calls that complete from now on (okAfter). */
    mark: () => (s.mark = Date.now()),
    async stop() {
      s.stop = true;
      await Promise.all(loops);
      return s;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP relay between clients and the nats-server at `to`. What the server
 * sends can be held (hold, then release: a congested link, a reader behind
 * on its input) and, per connection, come late (`lagMs(n)` for the n-th
 * connection made, from 0: a slower route); in order either way.
 */
export async function natsRelay(to: string, o: { lagMs?: (n: number) => number } = {}) {
  const target = new URL(to);
  const socks: Socket[] = [];
  let held: Array<[Socket, Buffer]> | null = null;
  let n = 0;
  const server = createServer((c) => {
    const lag = o.lagMs?.(n++) ?? 0;
    const s = connect(Number(target.port), target.hostname);
    socks.push(c, s);
    const pass = (d: Buffer) => (lag ? setTimeout(() => c.writable && c.write(d), lag) : c.write(d));
    c.on("data", (d) => s.write(d));
    s.on("data", (d: Buffer) => (held !== null ? held.push([c, d]) : pass(d)));
    const end = () => (c.destroy(), s.destroy());
    c.on("error", end).on("close", end);
    s.on("error", end).on("close", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: () => void (held ??= []),
    release() {
      const h = held ?? [];
      held = null;
      for (const [c, d] of h) c.write(d);
    },
    async close() {
      for (const x of socks) x.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

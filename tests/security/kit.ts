// The red team's target: a whole hurd on a nats-server of its own with NATS
// authorization on, as `hurd up --nats` runs it (fresh keys, every task its
// own NATS user minted by the kernel, boot claims and trace watches served),
// with the servers in this process so that the suite can look at proc's
// counters; and the attacker's tools: raw nats.js connections, anonymous or
// as a user of a role, and the checks that a refusal came from the server.
// A nats-server per file: revocations and permissions here are nobody
// else's (npm test's shared server serves every other suite at once).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { InProcessLauncher } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { BootClaims, Kernel, TraceBus, TrapServer, watchHolders, type Holders } from "@hurdmesh/kernel";
import { Process } from "@hurdmesh/libhurd";
import type { Task } from "@hurdmesh/mach";
import { inboxOf, subjectsOf, type Role, type SystemSubjects } from "@hurdmesh/mach/internal";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import {
  accountClaimsOf,
  AccountRevocations,
  fabricServerConfig,
  makeFabricKeys,
  mintUser,
  natsConnectOptions,
  NKey,
  permissionsFor,
  startNatsServer,
  type FabricKeys,
  type NatsServerProcess,
  type UserCredentials,
} from "@hurdmesh/mach/nats-auth";
import type { ProcServer } from "@hurdmesh/proc";

export const WAIT_MS = 3_000;
export const BOOT_SECRET = "red-team-boot-secret";

/** What `hurd ps` would list: enough of each process to see any change. */
export type Listing = string[];

export interface Target {
  system: string;
  s: SystemSubjects;
  url: string;
  keys: FabricKeys;
  kernel: Kernel;
  init: Init;
  initTask: Task;
  /** init's token and host_priv name (it holds host_priv: it may watch the trace stream). */
  initToken: string;
  initHostPriv: number;
  proc: ProcServer;
  /** proc's task id (its delivery subjects are hurd.<system>.rcv.<it>.*). */
  procTaskId: number;
  /** `hurd ps`, as pid 2 asks proc. */
  ps(): Promise<Listing>;
  /** What the kernel heard of connections on the wire (nats-server's CONNECT/DISCONNECT events, holders.ts). */
  holders: Holders;
  /** The NATS user each task attached here connects as (boot servers included). */
  credsOf(taskId: number): UserCredentials | undefined;
  /** The token of each task attached here (boot servers included). */
  tokenOf(taskId: number): string | undefined;
  /** A task of the hurd (a process, child of init) attached over NATS as its own user: the attacker's foothold. */
  newTask(name: string): Promise<{ task: Task; id: number; token: string; creds: UserCredentials }>;
  /** A user of `role` minted with the deployment's keys (a container's credentials). */
  roleUser(role: Role): UserCredentials;
  /** A raw nats.js connection, anonymous or as `creds` (closed by stop()). */
  raw(creds?: UserCredentials, inboxPrefix?: string): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export async function startTarget(): Promise<Target> {
  const system = `red${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), "hurd-redteam-"));
  const keys = makeFabricKeys(system);
  writeFileSync(join(dir, "nats.conf"), fabricServerConfig(keys, { port: -1 }), { mode: 0o600 });
  let server: NatsServerProcess | null = null;
  const conns = new Set<NatsConnection>();
  const buses: NatsBus[] = [];
  const closers: Array<() => unknown> = [];
  // Every task attached here, its NATS connection (and its renewal timer) closed by stop().
  const tasks: Task[] = [];
  const stop = async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    for (const task of tasks) task.abandon();
    for (const task of tasks) await task.bus.close().catch(() => {});
    for (const nc of conns) await nc.close().catch(() => {});
    for (const b of buses) await b.close().catch(() => {});
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    server = await startNatsServer(join(dir, "nats.conf"));
    const url = server.url;
    const updater = await NatsBus.connect(url, { credentials: keys.updater, inboxPrefix: inboxOf(system, { kind: "account-updater", account: keys.account }) });
    buses.push(updater);
    const revoker = new AccountRevocations(keys.account, NKey.fromSeed(keys.operatorSigningSeed, "operator"), accountClaimsOf(keys), updater);
    const logs: string[] = [];
    const kernel = new Kernel({ system }, { log: (l) => logs.push(l), nats: { account: keys.account, signer: NKey.fromSeed(keys.accountSigningSeed, "account"), revoker } });
    const kbus = await NatsBus.connect(url, { credentials: kernel.natsUsers!.kernel() });
    buses.push(kbus);
    const traps = new TrapServer(kernel, kbus);
    traps.start();
    const claims = new BootClaims(kernel, kbus, BOOT_SECRET, { pollMs: 50 });
    claims.start();
    const traceBus = new TraceBus(kernel, kbus);
    traceBus.start();
    // As hurd-kernel does: it hears a server's connection close from nats-server (before the boot, so every CONNECT is heard).
    const watch = await watchHolders(kernel, updater, keys.account);
    closers.push(() => claims.stop(), () => traceBus.stop(), () => watch.stop(), () => traps.stop(), () => kernel.close());
    await kbus.flush();
    const b = kernel.bootTask({ name: "init", hostPriv: true });
    const kept = (task: Task) => (tasks.push(task), task);
    const initTask = kept(await attachOverNats(url, { system, taskId: b.task.id, token: b.token, credentials: kernel.natsUsers!.task(b.task), window: 1024, timeoutMs: 20_000 }));
    const creds = new Map<number, UserCredentials>();
    const tokens = new Map<number, string>();
    const attach = async (taskId: number, token: string) => {
      const c = (await initTask.natsCredentials(taskId, token))!;
      creds.set(taskId, c);
      tokens.set(taskId, token);
      return kept(await attachOverNats(url, { system, taskId, token, credentials: c, window: 1024, timeoutMs: 20_000 }));
    };
    const launcher = new InProcessLauncher(attach);
    const init = new Init({ task: initTask, hostPriv: b.hostPriv, launcher, log: (l) => logs.push(l) });
    const booted = await init.boot();
    const me = await Process.attach(initTask, booted.proc, booted.auth, { msgport: false });
    const procTaskId = (await initTask.taskInfo(booted.procTask)).taskId;
    const ps = async (): Promise<Listing> => {
      const page = await me.proc.getallprocinfo({ startPid: 1, max: 4096, flags: 0 });
      return page.procs.map((p) => `${p.pid} ${p.ppid} ${p.state} ${p.serial} ${p.command}`);
    };
    const raw = async (creds?: UserCredentials, inboxPrefix?: string) => {
      const nc = await connect({ servers: url, reconnect: false, name: "red team", ...(creds ? natsConnectOptions(creds, { inboxPrefix }) : {}) });
      conns.add(nc);
      return nc;
    };
    const signer = NKey.fromSeed(keys.accountSigningSeed, "account");
    return {
      system,
      s: subjectsOf(system),
      url,
      keys,
      kernel,
      init,
      initTask,
      initToken: b.token,
      initHostPriv: b.hostPriv,
      proc: launcher.started.proc as ProcServer,
      procTaskId,
      ps,
      holders: watch.holders,
      credsOf: (taskId) => creds.get(taskId),
      tokenOf: (taskId) => tokens.get(taskId),
      async newTask(name) {
        const c = await initTask.taskCreate(name);
        const creds = (await initTask.natsCredentials(c.taskId, c.token))!;
        const task = kept(await attachOverNats(url, { system, taskId: c.taskId, token: c.token, credentials: creds, timeoutMs: 5_000 }));
        return { task, id: c.taskId, token: c.token, creds };
      },
      roleUser(role) {
        const u = mintUser(signer, keys.account, `red team ${role.kind}`, permissionsFor(system, role));
        return { jwt: u.jwt, seed: u.seed };
      },
      raw,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: nothing within ${ms} ms`)), ms))).finally(() => clearTimeout(t))]);
}

/** Subscribes and expects nats-server to refuse it (Permissions Violation). */
export async function assertSubscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const got: string[] = [];
  // nats.js calls back with (error, {}) when the server refuses the subscription.
  const sub = nc.subscribe(subject, { callback: (e, m) => void (!e && got.push(m.subject)) });
  const why = await within(sub.closed, WAIT_MS, `refusal of SUB ${subject}`);
  assert.ok(why instanceof errors.PermissionViolationError, `SUB ${subject} refused with a Permissions Violation (got ${String(why)})`);
  assert.equal(why.operation, "subscription");
  assert.deepEqual(got, [], `nothing read on ${subject}`);
}

/** Publish refusals nats-server reported to a connection, awaited by subject. */
export function publishRefusals(nc: NatsConnection): { next(subject: string): Promise<void> } {
  const subjects: string[] = [];
  const waiters = new Map<string, () => void>();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof errors.PermissionViolationError && s.error.operation === "publish") {
        subjects.push(s.error.subject);
        waiters.get(s.error.subject)?.();
      }
    }
  })();
  return {
    next: (subject) => within(subjects.includes(subject) ? Promise.resolve() : new Promise<void>((r) => waiters.set(subject, r)), WAIT_MS, `refusal of PUB ${subject}`),
  };
}

/** The hurd did not notice: the same processes in the same states, and proc answers. */
export async function assertUnchanged(t: Target, before: Listing, o: { forged?: number } = {}): Promise<void> {
  // A round trip through the kernel and proc after the attack: anything it caused has happened by now.
  assert.deepEqual(await t.ps(), before);
  assert.equal((await t.initTask.taskInfo()).taskId, t.initTask.id, "the kernel answers");
  if (o.forged !== undefined) assert.equal(t.proc.stats.forgedNotifications, o.forged, "nothing forged reached proc");
  assert.equal(t.init.booted !== null, true);
}

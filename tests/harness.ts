// Starts a kernel on a bus of the requested kind and attaches tasks to it.
// The NATS flavour talks to the real nats-server that `npm test` started
// (NATS_URL), with NATS authorization on as every deployment runs it: the
// kernel mints each task's NATS user from the keys `npm test` made
// (HURD_NATS_KEYS) and every task connects as its own. The local flavour
// uses the in-process hub. Suites that build a kernel of their own get
// their connections from natsBus (a role of the subject map, or, for what
// is not about authorization, any subject of their system).
import { LocalHub, Task, type Bus } from "@hurdmesh/mach";
import { inboxOf, type Role } from "@hurdmesh/mach/internal";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { accountClaimsOf, AccountRevocations, credsFile, mintUser, NKey, permissionsFor, readFabricKeys, type FabricKeys, type SubjectPermissions, type UserCredentials } from "@hurdmesh/mach/nats-auth";
import { Kernel, TrapServer, type KernelConfig } from "@hurdmesh/kernel";
import { globalTelemetry, installTracingHooks, setGlobalTelemetry } from "@hurdmesh/telemetry";
import { telemetryFromEnv } from "@hurdmesh/telemetry-sdk";
import { idsBefore, journalOn, recordKernel } from "./replay-check.js";

export type BusKind = "local" | "nats";

export const busKinds: BusKind[] = process.env.HURD_TEST_BUSES ? (process.env.HURD_TEST_BUSES.split(",") as BusKind[]) : ["local", "nats"];

let systems = 0;

export interface Hurd {
  kind: BusKind;
  kernel: Kernel;
  /** Creates a boot task and attaches to it over its own bus connection. */
  task(name: string, o?: { hostPriv?: boolean; window?: number; timeoutMs?: number }): Promise<Task & { hostPriv: number }>;
  /** Attaches to an existing task id with a token (e.g. from taskCreate), as the task's own NATS user. */
  attach(taskId: number, token: string, o?: { window?: number; timeoutMs?: number; hold?: boolean }): Promise<Task>;
  /** The NATS user the kernel mints for a task (null on the local bus or with authorization off). */
  natsCredentials(taskId: number): UserCredentials | null;
  /**
   * A bare connection to the hurd's bus, as a party with no task would have
   * (on NATS a user allowed any subject of the system: what anyone on a
   * fabric without authorization is). Closed by close().
   */
  connect(): Promise<Bus>;
  /**
   * A bare connection as task `taskId`'s own NATS user (its inbox, its
   * deliveries, the trap), as the process holding that task's credentials
   * has: for raw traps a task could send. An attached task's own bus; on
   * the local bus, any connection. Closed by close().
   */
  taskBus(taskId: number): Promise<Bus>;
  close(): Promise<void>;
}

export function natsUrl(): string {
  const u = process.env.NATS_URL;
  if (!u) throw new Error("NATS_URL is not set: run the suites with `npm test`, which starts a nats-server");
  return u;
}

let keys: FabricKeys | null | undefined;
/** The keys of `npm test`'s nats-server; null when it runs without authorization (HURD_NATS_AUTH=off). */
export function natsKeys(): FabricKeys | null {
  if (keys === undefined) keys = process.env.HURD_NATS_KEYS ? readFabricKeys(process.env.HURD_NATS_KEYS) : null;
  return keys;
}

/** A user of the test account with these permissions (no expiry); null with authorization off. */
export function mintTestUser(name: string, permissions: SubjectPermissions): UserCredentials | null {
  const k = natsKeys();
  if (!k) return null;
  const u = mintUser(NKey.fromSeed(k.accountSigningSeed, "account"), k.account, name, permissions);
  return { jwt: u.jwt, seed: u.seed };
}

/** A role's credentials as a .creds file's text (for a container's HURD_NATS_CREDS); "" with authorization off. */
export function roleCredsFile(system: string, role: Role): string {
  const c = mintTestUser(`test ${role.kind}`, permissionsFor(system, role));
  return c ? credsFile(c) : "";
}

/**
 * A connection to `npm test`'s nats-server as one role of `system`'s
 * subject map; "any": every subject of that system (for suites that test
 * something else than authorization and play several parties on one
 * connection). Anonymous when authorization is off.
 */
export async function natsBus(system: string, role: Role | "any" = "any"): Promise<NatsBus> {
  const perms: SubjectPermissions =
    role === "any"
      ? { pub: [`hurd.${system}.>`], sub: [`hurd.${system}.>`, `_INBOX.${system}.any.>`], resp: { max: 1, ttlMs: 60_000 }, inboxPrefix: `_INBOX.${system}.any`, subs: -1 }
      : permissionsFor(system, role);
  const creds = mintTestUser(`test ${role === "any" ? "any" : role.kind}`, perms);
  return NatsBus.connect(natsUrl(), { name: `test ${system}`, credentials: creds ?? undefined, inboxPrefix: creds ? perms.inboxPrefix : undefined });
}

/** The kernel options that turn NATS authorization on with the test keys, and what must be closed after (null: authorization off). */
export async function kernelNats(system: string, ttlS?: number): Promise<{ options: NonNullable<ConstructorParameters<typeof Kernel>[1]>["nats"]; close(): Promise<void> } | null> {
  const k = natsKeys();
  if (!k) return null;
  // Each hurd pushes its account's revocations through an updater of its own (test files run side by side).
  const updater = await NatsBus.connect(natsUrl(), { name: `test updater ${system}`, credentials: k.updater, inboxPrefix: inboxOf(k.system, { kind: "account-updater", account: k.account }) });
  const revoker = new AccountRevocations(k.account, NKey.fromSeed(k.operatorSigningSeed, "operator"), accountClaimsOf(k), updater);
  return { options: { account: k.account, signer: NKey.fromSeed(k.accountSigningSeed, "account"), revoker, ttlS }, close: () => updater.close() };
}

export interface HurdOptions {
  /** NATS users' JWT lifetime, s (the kernel's default otherwise): short, to see them renewed. */
  natsUserTtlS?: number;
}

export async function startHurd(kind: BusKind, config: Partial<KernelConfig> = {}, o: HurdOptions = {}): Promise<Hurd> {
  const system = `t${process.pid}x${++systems}`;
  const logs: string[] = [];
  // As hurd-kernel does: spans when the environment asks (tests/tracing runs
  // suites so), and the servers in this process trace their handlers too.
  const telemetry = telemetryFromEnv("hurd-kernel", process.env, { bus: config.bus ?? "local" });
  if (telemetry && !globalTelemetry()) {
    setGlobalTelemetry(telemetry);
    installTracingHooks(telemetry);
  }
  const nats = kind === "nats" ? await kernelNats(system, o.natsUserTtlS) : null;
  const ids0 = idsBefore();
  const kernel = new Kernel({ system, ...config }, { log: (l) => logs.push(l), telemetry, nats: nats?.options });
  const hub = new LocalHub();
  const buses: Bus[] = [];
  const kbus = kind === "local" ? hub.connect() : await NatsBus.connect(natsUrl(), { name: `test kernel ${system}`, credentials: kernel.natsUsers?.kernel() });
  buses.push(kbus);
  // HURD_TEST_JOURNAL=1: the kernel's log is on, and replayed at close (replay-check.ts).
  const recorded = journalOn && kind === "local" ? recordKernel(kernel, config, kbus, ids0) : null;
  const trap = new TrapServer(kernel, recorded?.bus ?? kbus);
  trap.start();
  await kbus.flush();
  let tasks: Task[] = [];
  const natsCredentials = (taskId: number): UserCredentials | null => {
    const t = kernel.tasks.get(taskId);
    if (!kernel.natsUsers) return null;
    if (t) return kernel.natsUsers.task(t);
    // No such task: a user for it all the same, so that attaching fails as it would, at the kernel.
    return mintTestUser(`task ${taskId}`, permissionsFor(system, { kind: "task", taskId }));
  };
  const connect = async (): Promise<Bus> => {
    const b = kind === "local" ? hub.connect() : await natsBus(system);
    buses.push(b);
    return b;
  };
  /** taskBus's connections, one per task. */
  const rawBuses = new Map<number, Bus>();
  /** Each attached task's own connection, closed once the task is gone (long fuzz runs attach tens of thousands). */
  const connections = new Map<Task, Bus>();
  const attach = async (taskId: number, token: string, ao: { window?: number; timeoutMs?: number; hold?: boolean } = {}) => {
    let t: Task;
    if (kind === "local") {
      const b = hub.connect();
      buses.push(b);
      t = await Task.attach({ bus: b, system, taskId, token, window: ao.window, timeoutMs: ao.timeoutMs ?? 5000, hold: ao.hold });
    } else
      t = await attachOverNats(natsUrl(), { name: `test task ${taskId}`, system, taskId, token, credentials: natsCredentials(taskId), window: ao.window, timeoutMs: ao.timeoutMs ?? 5000, hold: ao.hold });
    const bus = t.bus;
    tasks.push(t);
    connections.set(t, bus);
    if (tasks.length % 256 === 0) {
      tasks = tasks.filter((x) => !x.detached);
      for (const [x, b] of connections)
        if (x.detached) {
          connections.delete(x);
          const i = buses.indexOf(b);
          if (i >= 0) buses.splice(i, 1);
          await b.close();
        }
    }
    return t;
  };
  return {
    kind,
    kernel,
    attach,
    natsCredentials,
    connect,
    async taskBus(taskId) {
      // An attached task's own connection: minting its user again would revoke the one it holds.
      const own = tasks.find((x) => x.id === taskId && !x.detached);
      if (own) return own.bus;
      const had = rawBuses.get(taskId);
      if (had && !had.closed) return had;
      if (kind === "local") {
        const l = await connect();
        rawBuses.set(taskId, l);
        return l;
      }
      const creds = natsCredentials(taskId);
      const b = await NatsBus.connect(natsUrl(), { name: `test task ${taskId} (raw)`, credentials: creds ?? undefined, inboxPrefix: creds ? inboxOf(system, { kind: "task", taskId }) : undefined });
      buses.push(b);
      rawBuses.set(taskId, b);
      return b;
    },
    async task(name, to = {}) {
      const b = kernel.bootTask({ name, hostPriv: to.hostPriv });
      const t = (await attach(b.task.id, b.token, to)) as Task & { hostPriv: number };
      t.hostPriv = b.hostPriv;
      return t;
    },
    async close() {
      const replayed = recorded?.check();
      // Whatever the check says, the hurd is closed; then the check's failure fails the suite.
      await replayed?.catch(() => {});
      for (const t of tasks) t.abandon();
      trap.stop();
      kernel.close();
      for (const t of tasks) await t.bus.close().catch(() => {});
      for (const b of buses) await b.close();
      await nats?.close();
      if (replayed) console.log(`replay check (${system}): ${JSON.stringify(await replayed)}`);
    },
  };
}

/** Resolves when `cond` holds, polling; rejects after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// A booted hurd for the bench: kernel, then init booting auth, proc and pid 1
// exactly as `hurd up` does, on the in-process hub or with every task on its
// own NATS connection. `parent` is init's task acting through libhurd.
// On NATS, as deployed: NATS authorization on, the kernel minting each
// task's user and every task connecting as its own ("nats"); and, to show
// what that costs, the same on an anonymous server ("nats, auth off").
import { InProcessLauncher } from "@hurdmesh/boot";
import { Init } from "@hurdmesh/init";
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { Process } from "@hurdmesh/libhurd";
import { LocalHub, Task, type Bus } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { attachOverNats, NatsBus } from "@hurdmesh/mach/nats";
import { AccountRevocations, accountClaimsOf, NKey, type ClientTls } from "@hurdmesh/mach/nats-auth";
import type { ProcServer, ProcStore } from "@hurdmesh/proc";
import type { BenchContext } from "./rows/types.js";

/** The bus label of rows on NATS with authorization off (rows labelled "nats" have it on, the default). */
export const NATS_AUTH_OFF = "nats, auth off";
export type RigKind = "local" | "nats" | typeof NATS_AUTH_OFF;
/** Where a rig finds its nats-servers (a BenchContext has both). */
export type RigNats = Pick<BenchContext, "natsUrl" | "natsAuth">;

/** A kernel on a bus of its own, for the bench: every task on its own connection (as separate processes would be). */
export interface KernelRig {
  kernel: Kernel;
  system: string;
  connect(): Promise<Bus>;
  attach(taskId: number, token: string, o?: { window?: number; timeoutMs?: number }): Promise<Task>;
  close(): Promise<void>;
}

/**
 * How a rig's kernel runs: `journal`, with its log on JetStream, leading at
 * once (hurd-kernel --journal; NATS only); `benchOnlyNoAccounting`, with
 * resource accounting off (the accounting group's baseline).
 */
export interface KernelRigOptions {
  journal?: boolean;
  benchOnlyNoAccounting?: boolean;
  /** The secured nats-server speaks TLS with a certificate of this CA: every connection dials with it (the nats-tls rows). */
  tls?: ClientTls;
}

export async function kernelRig(kind: RigKind, nats: RigNats, log: (l: string) => void = () => {}, ko: KernelRigOptions = {}): Promise<KernelRig> {
  const system = `bench${process.pid}x${++n}`;
  const hub = new LocalHub();
  const buses: Bus[] = [];
  const secured = kind === "nats" ? nats.natsAuth : null;
  if (kind === "nats" && !secured) throw new Error("the bench's nats-server with authorization is not running");
  // As hurd-kernel does with --nats-keys: revocations pushed through the account's updater.
  const updater = secured ? await NatsBus.connect(secured.url, { name: `bench updater ${system}`, tls: ko.tls, credentials: secured.keys.updater, inboxPrefix: inboxOf(secured.keys.system, { kind: "account-updater", account: secured.keys.account }) }) : null;
  if (updater) buses.push(updater);
  const kernel = new Kernel(
    { system },
    {
      log,
      benchOnlyNoAccounting: ko.benchOnlyNoAccounting,
      nats: secured
        ? {
            account: secured.keys.account,
            signer: NKey.fromSeed(secured.keys.accountSigningSeed, "account"),
            revoker: new AccountRevocations(secured.keys.account, NKey.fromSeed(secured.keys.operatorSigningSeed, "operator"), accountClaimsOf(secured.keys), updater!),
          }
        : undefined,
    },
  );
  const connect = async (): Promise<Bus> => {
    if (kind === "nats") throw new Error("with NATS authorization every connection is a task's own: attach()");
    const b = kind === "local" ? hub.connect() : await NatsBus.connect(nats.natsUrl, `bench-${system}`);
    buses.push(b);
    return b;
  };
  const kb = secured ? await NatsBus.connect(secured.url, { name: `bench kernel ${system}`, tls: ko.tls, credentials: kernel.natsUsers!.kernel() }) : await connect();
  if (secured) buses.push(kb);
  let traps: { stop(): void };
  if (ko.journal) {
    if (kind === "local") throw new Error("the kernel's log is a JetStream stream: a journal rig runs on NATS");
    // As hurd-kernel --journal with no kernel before it: it leads at once, on a log of its own system.
    const { Failover } = await import("@hurdmesh/kernel/failover");
    const f = await Failover.start(kernel, kb as NatsBus, { id: `bench:${process.pid}`, leaseMs: 5000, standby: false, inboxPrefix: secured ? inboxOf(system, { kind: "kernel" }) : undefined, log });
    const t0 = Date.now();
    while (f.traps === null) {
      if (Date.now() - t0 > 10_000) throw new Error("the bench's logged kernel did not lead within 10 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    traps = { stop: () => void f.stop(true) };
  } else {
    const t = new TrapServer(kernel, kb);
    t.start();
    traps = t;
  }
  await kb.flush();
  const tasks: Task[] = [];
  return {
    kernel,
    system,
    connect,
    async attach(taskId, token, o = {}) {
      const t = secured
        ? // The user the kernel mints for the task, as its creator would get it (TaskNatsCredentials).
          await attachOverNats(secured.url, { system, taskId, token, tls: ko.tls, credentials: kernel.natsUsers!.task(kernel.tasks.get(taskId)!), window: o.window, timeoutMs: o.timeoutMs })
        : await Task.attach({ bus: await connect(), system, taskId, token, window: o.window, timeoutMs: o.timeoutMs });
      tasks.push(t);
      return t;
    },
    async close() {
      for (const t of tasks) t.abandon();
      traps.stop();
      kernel.close();
      for (const t of tasks) if (secured) await t.bus.close().catch(() => {});
      for (const x of buses) await x.close();
    },
  };
}

export interface Rig {
  kernel: Kernel;
  /** The system name its tasks attach with. */
  system: string;
  init: Init;
  parent: Process;
  proc: ProcServer;
  attach(taskId: number, token: string, o?: { window?: number }): Promise<Task>;
  close(): Promise<void>;
}

let n = 0;

/** `ko`: the kernel's options (kernelRig); procStore: proc writes through to the store it makes for the rig's system (issue 17's rows). */
export async function bootRig(kind: RigKind, nats: RigNats, log: (l: string) => void = () => {}, ko: KernelRigOptions & { procStore?: (system: string) => Promise<ProcStore> } = {}): Promise<Rig> {
  const k = await kernelRig(kind, nats, log, { journal: ko.journal, benchOnlyNoAccounting: ko.benchOnlyNoAccounting, tls: ko.tls });
  const attach = (taskId: number, token: string, o: { window?: number } = {}) => k.attach(taskId, token, { window: 1024, timeoutMs: 30_000, ...o });
  const b = k.kernel.bootTask({ name: "init", hostPriv: true });
  const initTask = await attach(b.task.id, b.token);
  const launcher = new InProcessLauncher(attach, { procStore: ko.procStore ? await ko.procStore(k.system) : undefined });
  const init = new Init({ task: initTask, hostPriv: b.hostPriv, launcher, log });
  const booted = await init.boot();
  const parent = await Process.attach(initTask, booted.proc, booted.auth, { msgport: false });
  return { kernel: k.kernel, system: k.system, init, parent, proc: launcher.started.proc as ProcServer, attach, close: () => k.close() };
}

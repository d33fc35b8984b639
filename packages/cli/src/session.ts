// How a `hurd` command reaches a running hurd: the session file `hurd up`
// wrote (edge address and the console's token), then a task of its own,
// created from the console, that becomes a child process of pid 1 with root
// ids, attached over the kernel's gRPC edge.
import { mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Process } from "@hurdmesh/libhurd";
import { MsgType, Rights, Task, client, portAt } from "@hurdmesh/mach";
import { EdgeBus, edgeChannelCredentials, grpcClientOf, type GrpcClient } from "@hurdmesh/mach/edge";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import * as grpc from "@grpc/grpc-js";
import { CliError } from "./errors.js";

/** What `hurd up` writes for the `hurd` command: the edge and the console's token, never the bus. */
export interface Session {
  system: string;
  edge: string;
  /** The CA (PEM) the edge's certificate chains to, when the edge speaks TLS (off loopback). */
  edgeCa?: string;
  console: { taskId: number; token: string };
}

/** Names the console (and so every command's task) holds its ports under (init's BOOT_NAMES). */
export const NAMES = { pid1: 0x101, auth: 0x102, startup: 0x103, subhurds: 0x104 } as const;

export function stateDir(): string {
  return process.env.HURD_STATE_DIR ?? join(homedir(), ".hurdmesh");
}

/** `hurd keys nats-config`'s keys for a hurd on a nats-server of the user's (0600). */
export function natsKeysPath(hurd = "hurd"): string {
  const d = stateDir();
  mkdirSync(d, { recursive: true, mode: 0o700 });
  return join(d, `${hurd}.nats-keys.json`);
}

export function sessionPath(hurd = "hurd"): string {
  const d = stateDir();
  mkdirSync(d, { recursive: true, mode: 0o700 });
  return join(d, `${hurd}.json`);
}

export { CliError };

export function readSession(hurd = "hurd"): Session {
  const p = sessionPath(hurd);
  try {
    const s = JSON.parse(readFileSync(p, "utf8")) as Session;
    // The edge as seen from here, when it differs from what init wrote
    // (a container's published port on another address).
    if (process.env.HURD_EDGE) s.edge = process.env.HURD_EDGE;
    if (process.env.HURD_EDGE_CA) s.edgeCa = process.env.HURD_EDGE_CA;
    return s;
  } catch {
    throw new CliError(`no hurd called ${hurd} is up (no ${p}): start one with \`hurd up\``);
  }
}

const MachClient = grpcClientOf(MachDefinition);
type MachClient = GrpcClient<typeof MachDefinition>;

function unary<T>(c: MachClient, method: string, req: object, md: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) =>
    (c as unknown as Record<string, Function>)[method]!.call(c, req, md, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: T) =>
      e ? reject(new CliError(`${e.metadata?.get("hurd-errno")?.[0] ?? "error"}: ${e.details}`)) : resolve(r),
    ),
  );
}

export interface Connected {
  session: Session;
  task: Task;
  /** The command task's token (to call the kernel's edge as this task). */
  token: string;
  me: Process;
  /** Attaches another new task of the console's (for programs run by spawn). */
  attach(taskId: number, token: string): Promise<Task>;
  close(): Promise<void>;
}

/** Becomes a process of the hurd: a fresh task, child of pid 1, root ids. */
export async function connect(hurd = "hurd", name = "hurd"): Promise<Connected> {
  const s = readSession(hurd);
  const mc = new MachClient(s.edge, edgeChannelCredentials(s.edgeCa));
  const md = new grpc.Metadata();
  md.set("hurd-task", String(s.console.taskId));
  md.set("hurd-token", s.console.token);
  let created: { task: number; taskId: number; token: string };
  try {
    created = await unary(mc, "taskCreate", { parent: 0, name, newNamespace: false }, md);
    // One round trip for all of them (each is a call of its own on the edge).
    const insert = (n: number) => unary(mc, "portInsertRight", { task: created.task, name: n, right: n, disposition: MsgType.MSG_TYPE_COPY_SEND }, md);
    await Promise.all([
      insert(NAMES.pid1),
      insert(NAMES.auth),
      insert(NAMES.startup),
      // Only the root hurd's console holds the subhurd manager.
      insert(NAMES.subhurds).catch(() => {}),
    ]);
    // The console needs no right to the command's task once it has handed the ports over.
    await unary(mc, "portDeallocate", { name: created.task }, md);
  } catch (e) {
    mc.close();
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot reach the hurd at ${s.edge}: ${(e as Error).message}`);
  }
  const attach = async (taskId: number, token: string) => Task.attach({ bus: new EdgeBus(s.edge, taskId, token, s.edgeCa), system: s.system, taskId, token, timeoutMs: 10_000 });
  // mc closes only once the task's own channel is up: while it is open, that
  // channel takes over its connection to the edge (grpc-js shares one per
  // address) instead of opening another.
  const task = await attach(created.taskId, created.token).finally(() => mc.close());
  // Holding pid 1's process port is acting as pid 1: adopt this task, then take our own port.
  const pid1 = client(task, ProcessDefinition, NAMES.pid1);
  const r = new Rights();
  await pid1.child({ child: r.copySend(task.self) }, { rights: r });
  const r2 = new Rights();
  const t2p = await pid1.task2proc({ task: r2.copySend(task.self) }, { rights: r2 });
  const me = await Process.attach(task, portAt(t2p, t2p.proc), NAMES.auth);
  await me.setArgs(["hurd", ...process.argv.slice(2)]);
  return {
    session: s,
    task,
    token: created.token,
    me,
    attach,
    async close() {
      await me.exit(0).catch(() => {});
    },
  };
}

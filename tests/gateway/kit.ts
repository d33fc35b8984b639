// A booted hurd with its kernel's edge, for calling the Hurd's servers
// through the gateway as a client outside the bus would: the console's
// task (what `hurd up` writes to the session file) is the caller, and
// gRPC clients of every interface are made from the generated definitions.
import * as grpc from "@grpc/grpc-js";
import { Edge } from "@hurdmesh/kernel";
import { Process } from "@hurdmesh/libhurd";
import { client, MsgType, portAt, Rights, type Task } from "@hurdmesh/mach";
import { grpcServiceOf, type GrpcClient } from "@hurdmesh/mach/edge";
import type { ServiceDef } from "@hurdmesh/mach/internal";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { MsgDefinition } from "@hurdmesh/proto/hurd/msg/v1/msg";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition, StartupNotifyDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import type { BusKind } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";

/** Names the console holds its ports under (init's BOOT_NAMES). */
export const CONSOLE_NAMES = { pid1: 0x101, auth: 0x102, startup: 0x103 } as const;

export interface Caller {
  taskId: number;
  token: string;
}

export interface GatewayWorld {
  b: BootedHurd;
  edge: Edge;
  address: string;
  console: Caller;
  process: GrpcClient<typeof ProcessDefinition>;
  auth: GrpcClient<typeof AuthDefinition>;
  msg: GrpcClient<typeof MsgDefinition>;
  startup: GrpcClient<typeof StartupDefinition>;
  startupNotify: GrpcClient<typeof StartupNotifyDefinition>;
  subhurd: GrpcClient<typeof SubhurdDefinition>;
  mach: GrpcClient<typeof MachDefinition>;
  /** A task of the console's holding pid 1's process port and the root auth handle, attached on the bus: a process of its own. */
  spawn(name: string): Promise<{ task: Task; me: Process; taskName: number }>;
  close(): Promise<void>;
}

/** The metadata of a call as `who`, with extra headers. */
export function md(who: Caller, extra: Record<string, string> = {}): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set("hurd-task", String(who.taskId));
  m.set("hurd-token", who.token);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}

/** One unary call: its reply, or the ServiceError it failed with (status, details, hurd-errno trailer). */
export function call<T = Record<string, unknown>>(c: grpc.Client, method: string, req: object, meta: grpc.Metadata, deadlineMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) =>
    (c as unknown as Record<string, Function>)[method]!.call(c, req, meta, { deadline: Date.now() + deadlineMs }, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))),
  );
}

/** The hurd-errno trailer of a failed call. */
export function errnoOf(e: unknown): string | undefined {
  return (e as grpc.ServiceError).metadata?.get("hurd-errno")?.[0] as string | undefined;
}

/** A grpc-js client constructor of `def` whose requests may leave fields out (ts-proto's fromPartial fills them). */
export function clientOf<D extends ServiceDef>(def: D): new (address: string, c: grpc.ChannelCredentials) => GrpcClient<D> {
  const svc = { ...grpcServiceOf(def) } as Record<string, grpc.MethodDefinition<object, unknown>>;
  for (const [key, m] of Object.entries(def.methods)) {
    const partial = m.requestType;
    svc[key] = { ...svc[key]!, requestSerialize: (v: object) => Buffer.from(partial.encode(partial.fromPartial(v)).finish()) };
  }
  return grpc.makeGenericClientConstructor(svc as grpc.ServiceDefinition, def.name) as unknown as new (address: string, c: grpc.ChannelCredentials) => GrpcClient<D>;
}

export async function gatewayWorld(kind: BusKind): Promise<GatewayWorld> {
  const b = await bootHurd(kind);
  const con = await b.init.makeConsole();
  const edge = new Edge(b.h.kernel);
  await edge.listen("127.0.0.1:0");
  const address = `127.0.0.1:${edge.port}`;
  const make = <D extends ServiceDef>(def: D) => new (clientOf(def))(address, grpc.credentials.createInsecure());
  const w: GatewayWorld = {
    b,
    edge,
    address,
    console: { taskId: con.taskId, token: con.token },
    process: make(ProcessDefinition),
    auth: make(AuthDefinition),
    msg: make(MsgDefinition),
    startup: make(StartupDefinition),
    startupNotify: make(StartupNotifyDefinition),
    subhurd: make(SubhurdDefinition),
    mach: make(MachDefinition),
    async spawn(name) {
      const conMd = md(w.console);
      const c = await call<{ task: number; taskId: number; token: string }>(w.mach, "taskCreate", { parent: 0, name, newNamespace: false }, conMd);
      for (const n of [CONSOLE_NAMES.pid1, CONSOLE_NAMES.auth]) await call(w.mach, "portInsertRight", { task: c.task, name: n, right: n, disposition: MsgType.MSG_TYPE_COPY_SEND }, conMd);
      const task = await b.h.attach(c.taskId, c.token, { timeoutMs: 10_000 });
      // Holding pid 1's process port is acting as pid 1: adopt the task, then take its own port (as `hurd` does).
      const pid1 = client(task, ProcessDefinition, CONSOLE_NAMES.pid1);
      const r = new Rights();
      await pid1.child({ child: r.copySend(task.self) }, { rights: r });
      const r2 = new Rights();
      const t2p = await pid1.task2proc({ task: r2.copySend(task.self) }, { rights: r2 });
      const me = await Process.attach(task, portAt(t2p, t2p.proc), CONSOLE_NAMES.auth);
      return { task, me, taskName: c.task };
    },
    async close() {
      for (const c of [w.process, w.auth, w.msg, w.startup, w.startupNotify, w.subhurd, w.mach]) c.close();
      await edge.close();
      await b.close();
    },
  };
  return w;
}

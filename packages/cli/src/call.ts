// hurd call SERVICE/METHOD [JSON]: one RPC of a Hurd server, made through
// the kernel's gRPC edge as any gRPC client makes it (grpcurl, Python, Go):
// the gateway turns it into the Mach message the Hurd's stub would send
// (services/kernel/src/gateway.ts). The request is proto3 JSON; the reply
// is printed as JSON. Port fields are names in the calling task's space.
//
// The call runs as a task of the console's made for it (as every `hurd`
// command runs as one), holding the console's ports under the names every
// process of the hurd holds them: pid 1's process port, the root auth
// handle, the startup port, the subhurd manager. So `Process/Getpids`
// answers for pid 1, and `--pid N Msg/SigPost` signals N as pid 1 may. The
// task ends with the command, and the rights a reply brought with it.
//
//   hurd call --list                     every method and its MIG id
//   hurd call Process/Getpids
//   hurd call Auth/GetIds
//   hurd call --pid 105 Msg/SigPost '{"signal":15}'
//   hurd call --port 0x10a Process/Getpids
import * as grpc from "@grpc/grpc-js";
import { MsgType } from "@hurdmesh/mach";
import { edgeChannelCredentials, grpcClientOf } from "@hurdmesh/mach/edge";
import { methods, type MethodInfo, type ServiceDef } from "@hurdmesh/mach/internal";
import { INTERFACES } from "@hurdmesh/mach/registry";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { CliError, UsageError } from "./errors.js";
import { NAMES, readSession } from "./session.js";

export interface CallOptions {
  list?: boolean;
  pid?: string;
  port?: string;
  timeout?: string;
  hurd?: string;
}

interface JsonCodec {
  fromJSON(o: unknown): object;
  toJSON(m: object): unknown;
  fromPartial(o: object): object;
  encode(m: object): { finish(): Uint8Array };
  decode(b: Uint8Array): object;
}

export async function call(target: string | undefined, json: string | undefined, o: CallOptions): Promise<number> {
  // A command line it cannot take is a UsageError: main.ts prints it with
  // where help is, and exits 2, as for every other command.
  if (o.list) {
    if (target !== undefined) throw new UsageError("--list takes no method");
    list();
    return 0;
  }
  if (target === undefined) throw new UsageError("usage: hurd call SERVICE/METHOD [JSON] (hurd call --list names them)");
  const info = resolve(target);
  const request = requestOf(info, json);
  const headers = headersOf(o);
  const timeoutMs = o.timeout === undefined ? 10_000 : Number(o.timeout);
  if (!(timeoutMs > 0)) throw new UsageError(`not a timeout in ms: ${o.timeout}`);
  const reply = await invoke(info, request, headers, timeoutMs, o.hurd);
  console.log(JSON.stringify(reply, null, 2));
  return 0;
}

/** Every method of every interface the edge serves, with its MIG id. */
function list(): void {
  const rows: string[][] = [];
  for (const def of INTERFACES)
    for (const info of methods(def).byKey.values()) rows.push([`${def.name}/${info.def.name}`, String(info.msgid), info.simple ? "simpleroutine" : "", def.fullName]);
  const w = rows.reduce((m, r) => Math.max(m, r[0]!.length), 0);
  for (const r of rows) console.log(`${r[0]!.padEnd(w)}  ${r[1]}  ${r[3]}${r[2] ? `  ${r[2]}` : ""}`);
}

/** SERVICE/METHOD, by short or full service name, method names in any case. */
function resolve(target: string): MethodInfo & { service: ServiceDef } {
  const slash = target.lastIndexOf("/");
  if (slash <= 0 || slash === target.length - 1) throw new UsageError(`${target}: expected SERVICE/METHOD, as Process/Getpids`);
  const s = target.slice(0, slash).replace(/^\//, "").toLowerCase();
  const m = target.slice(slash + 1).toLowerCase();
  const service = INTERFACES.find((d) => d.name.toLowerCase() === s || d.fullName.toLowerCase() === s);
  if (!service) throw new UsageError(`no service ${target.slice(0, slash)} (${INTERFACES.map((d) => d.name).join(", ")})`);
  for (const info of methods(service).byKey.values()) if (info.def.name.toLowerCase() === m) return { ...info, service };
  throw new UsageError(`${service.name} has no method ${target.slice(slash + 1)} (hurd call --list names them)`);
}

/** The request from proto3 JSON; a field the message does not have is a mistake, not ignored. */
function requestOf(info: MethodInfo & { service: ServiceDef }, json: string | undefined): object {
  const codec = info.def.requestType as unknown as JsonCodec;
  if (json === undefined) return codec.fromPartial({});
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch (e) {
    throw new UsageError(`the request is not JSON: ${(e as Error).message}`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new UsageError("the request is a JSON object");
  const known = new Set(Object.keys(codec.fromPartial({})));
  const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const k of Object.keys(o)) if (!known.has(camel(k))) throw new UsageError(`${info.service.name}/${info.def.name} takes no field ${k} (${[...known].join(", ") || "no fields"})`);
  try {
    return codec.fromJSON(o);
  } catch (e) {
    throw new UsageError(`bad request: ${(e as Error).message}`);
  }
}

function headersOf(o: CallOptions): Record<string, string> {
  const h: Record<string, string> = {};
  if (o.pid !== undefined && o.port !== undefined) throw new UsageError("--pid and --port both name where the call goes: give one");
  if (o.pid !== undefined) {
    if (!/^[1-9][0-9]*$/.test(o.pid)) throw new UsageError(`not a pid: ${o.pid}`);
    h["hurd-pid"] = o.pid;
  }
  if (o.port !== undefined) {
    if (!/^(0x[0-9a-f]+|[1-9][0-9]*)$/i.test(o.port)) throw new UsageError(`not a port name: ${o.port}`);
    h["hurd-port"] = o.port;
  }
  return h;
}

type Unary = (req: unknown, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: never) => void) => void;

/** The call, as a task of the console's made for it and ended after it. */
async function invoke(info: MethodInfo & { service: ServiceDef }, request: object, headers: Record<string, string>, timeoutMs: number, hurd?: string): Promise<unknown> {
  const s = readSession(hurd);
  const mach = new (grpcClientOf(MachDefinition))(s.edge, edgeChannelCredentials(s.edgeCa));
  const unary = <T>(c: grpc.Client, method: string, req: unknown, md: grpc.Metadata): Promise<T> =>
    new Promise((res, rej) => ((c as unknown as Record<string, Unary>)[method]!).call(c, req, md, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? rej(e) : res(r))));
  const consoleMd = metadata(s.console.taskId, s.console.token, {});
  let task: { task: number; taskId: number; token: string } | null = null;
  try {
    const t = await unary<{ task: number; taskId: number; token: string }>(mach, "taskCreate", { parent: 0, name: "call", newNamespace: false }, consoleMd);
    task = t;
    const insert = (n: number) => unary(mach, "portInsertRight", { task: t.task, name: n, right: n, disposition: MsgType.MSG_TYPE_COPY_SEND }, consoleMd);
    // Only the root hurd's console holds the subhurd manager.
    await Promise.all([insert(NAMES.pid1), insert(NAMES.auth), insert(NAMES.startup), insert(NAMES.subhurds).catch(() => {})]);
    const svc = new (grpcClientOf(info.service))(s.edge, edgeChannelCredentials(s.edgeCa));
    try {
      const rep = await unary<object>(svc, info.key, request, metadata(t.taskId, t.token, headers));
      return (info.def.responseType as unknown as JsonCodec).toJSON(rep);
    } finally {
      svc.close();
    }
  } catch (e) {
    const ge = e as grpc.ServiceError;
    if (typeof ge.code !== "number") throw e;
    if (ge.code === grpc.status.UNAVAILABLE && !ge.metadata?.get("hurd-errno").length) throw new CliError(`cannot reach the hurd at ${s.edge}: ${ge.details}`);
    throw new CliError(ge.details || ge.message);
  } finally {
    if (task) await unary(mach, "taskTerminate", { task: task.task }, consoleMd).catch(() => {});
    mach.close();
  }
}

function metadata(taskId: number, token: string, headers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("hurd-task", String(taskId));
  md.set("hurd-token", token);
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return md;
}

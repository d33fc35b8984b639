// The gateway: the Hurd's servers as gRPC services at the kernel's edge.
// For every interface in the registry's INTERFACES (proc, auth, msg,
// startup, ...) the edge serves the same service as real gRPC; a unary call
// becomes the Mach message its MIG stub would send, from the caller's own
// space, and its reply the gRPC response:
//
//   - the caller is the task named by the call's hurd-task/hurd-token
//     metadata, checked as every edge call is (edge.ts's who): the message
//     is sent as that task, with that task's rights, so the gateway adds no
//     authority of its own;
//   - it goes to the port named by a hurd-port header (any send right in
//     the caller's space), else to the interface's default port, declared in
//     the proto ((hurd.mig.v1.default_port)): the caller's proc port, auth
//     handle, startup port or subhurd manager under the names hurdmesh
//     hands every process, or for msg the message port of the process a
//     hurd-pid header names, asked of the caller's proc (proc_getmsgport);
//   - port fields of the request ((hurd.mig.v1.port)) are names in the
//     caller's space, moved or copied with the disposition the field
//     declares; those of the reply arrive as names in the caller's space;
//   - the reply comes back on a reply port of the kernel's (a send-once
//     right made for the message): an error reply, the server's death
//     (send-once notification: MIG_SERVER_DIED), the deadline (ETIMEDOUT)
//     or a send that fails end the call with the mapped gRPC status and the
//     errno in the hurd-errno trailer, as the Mach edge answers.
//
// Why this is no Hurd policy in the kernel: the gateway decides nothing.
// Where a call goes by default is data of the interface (the proto says it,
// as glibc's stubs say it by the port they use), the names are the
// caller's own, and every question of permission is answered by the server
// that receives the message, from the rights the caller put in it, exactly
// as if the caller had sent the message itself. What the kernel adds is
// the carrying: a reply port, the translation of names, the deadline.
//
// Which fields are rights is read from the proto files themselves (ts-proto
// keeps no field options), parsed on the first call, not at start
// (protos.ts): the edge's start stays cheap for a service a person calls
// now and then.
import type * as grpc from "@grpc/grpc-js";
import type * as Protobuf from "protobufjs";
import { Errno, HurdError, MsgType, PortRight, type MsgPort, type Message, type Received } from "@hurdmesh/mach";
import { grpcServiceOf } from "@hurdmesh/mach/edge";
import { Deadlines, encode, methods, NO_TRACE_CONTEXT, traceContextOf, type MethodInfo } from "@hurdmesh/mach/internal";
import { INTERFACES } from "@hurdmesh/mach/registry";
import { DefaultPort } from "@hurdmesh/proto/hurd/mig/v1/mig";
import { Empty, GetmsgportReply, PidRequest, ProcessDefinition, SidportReply, TaskReply } from "@hurdmesh/proto/hurd/process/v1/process";
import type { Kernel } from "./kernel.js";
import { portModRefs } from "./mach-port.js";
import { copyoutRight } from "./message.js";
import { send } from "./mqueue.js";
import { MACH_NOTIFY_SEND_ONCE } from "./notify.js";
import { MACH_PORT_DEAD, Port, R_DEAD, R_NAME, R_SEND, R_SEND_ONCE, TYPE_RECEIVE, TYPE_SEND, TYPE_SEND_ONCE, type KernelReply, type KMsg, type KTask } from "./objects.js";
import { destroyPort, destroySendOnce, releaseRight, releaseSend } from "./port.js";
import type { Protos } from "./protos.js";
import { err } from "./state.js";

/** Metadata naming where a call goes instead of its interface's default port. */
export const PORT_HEADER = "hurd-port";
/** Metadata naming the process whose message port a msg call goes to. */
export const PID_HEADER = "hurd-pid";

/**
 * The names under which hurdmesh hands a process its servers' ports (the
 * Hurd's _hurd_ports), by default port: init's BOOT_NAMES, libhurd's
 * CHILD_NAMES and the `hurd` command's NAMES are these (a test holds them
 * together). The kernel cannot import those packages; the numbers are the
 * interface's convention, as the proto's DefaultPort documents them.
 */
export const INIT_PORT_NAMES: Readonly<Partial<Record<DefaultPort, number>>> = {
  [DefaultPort.DEFAULT_PORT_PROC]: 0x101,
  [DefaultPort.DEFAULT_PORT_AUTH]: 0x102,
  [DefaultPort.DEFAULT_PORT_STARTUP]: 0x103,
  [DefaultPort.DEFAULT_PORT_SUBHURDS]: 0x104,
};

/** Reply ports kept for reuse once their call is answered (each is one Port object). */
const REPLY_PORT_POOL = 256;

/** A port field of a message: its key on the decoded object (ts-proto's camelCase). */
interface PortField {
  key: string;
  repeated: boolean;
  disposition: MsgType;
  refport: boolean;
}

/** What the gateway knows of one routine, read from the proto files on first use. */
interface Route {
  info: MethodInfo;
  target: DefaultPort;
  /** Port fields of the request; none: the request's bytes are the message body as they are. */
  request: readonly PortField[];
  /** Port fields of the reply; none: the reply's body is the response as it is. */
  reply: readonly PortField[];
}

/** How the edge proves a caller and words an error (edge.ts): the gateway's calls are edge calls. */
export interface EdgeHooks {
  who(md: grpc.Metadata): KTask;
  status(e: unknown): grpc.ServiceError;
}

type Done = (code: number, m: KMsg | null, detail: string) => void;

const NO_PORTS: MsgPort[] = Object.freeze([]) as unknown as MsgPort[];
const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder();
const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const procRoutines = methods(ProcessDefinition).byKey;
const GETMSGPORT = procRoutines.get("getmsgport")!;
const PID2TASK = procRoutines.get("pid2task")!;
const GETSIDPORT = procRoutines.get("getsidport")!;

/**
 * One call awaiting its reply: the reply port's kernel object. It is kept
 * with its port and reused for the next call once answered, so a call
 * costs the kernel its message and little else.
 */
class Call implements KernelReply {
  readonly kind = "reply";
  caller!: KTask;
  msgid = 0;
  settled = true;
  /** Which call it is now: it is reused, and a gRPC call's late events must not end the next one. */
  generation = 0;
  /** Handle of its entry in the gateway's Deadlines. */
  due = 0;
  done: Done | null = null;
  constructor(
    private readonly gw: Gateway,
    readonly port: Port,
  ) {}
  received(m: KMsg): void {
    this.gw.received(this, m);
  }
  sendFailed(code: number): void {
    this.gw.settle(this, code, null, "");
  }
}

export class Gateway {
  /** The gRPC services, one per interface, each method taking and answering raw bytes. */
  readonly services: ReadonlyArray<{ name: string; definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }>;
  private routes: Map<string, Route> | null = null;
  private readonly pool: Call[] = [];
  /** Calls awaiting their replies. */
  private readonly live = new Set<Call>();
  private readonly deadlines = new Deadlines<Call>((c) => this.settle(c, Errno.ETIMEDOUT, null, `no reply within the call's deadline`));

  constructor(
    private readonly kernel: Kernel,
    private readonly edge: EdgeHooks,
    private readonly protos: Protos,
  ) {
    const services = [];
    for (const def of INTERFACES) {
      const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
      const implementation: grpc.UntypedServiceImplementation = {};
      const generic = grpcServiceOf(def) as grpc.ServiceDefinition;
      for (const [key, info] of methods(def).byKey) {
        // MIG routines are unary: a streaming method has no message form.
        if (info.def.requestStream || info.def.responseStream) continue;
        definition[key] = { ...(generic[key] as grpc.MethodDefinition<Buffer, Buffer>), requestDeserialize: (b: Buffer) => b, responseSerialize: asBuffer };
        implementation[key] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => this.unary(info, call, cb);
      }
      services.push({ name: def.fullName, definition: definition as grpc.ServiceDefinition, implementation });
    }
    this.services = services;
  }

  /**
   * The edge is closing: every call still waiting ends now (UNAVAILABLE),
   * rather than holding its reply port, and the process, until its deadline.
   */
  close(): void {
    for (const c of [...this.live]) this.settle(c, Errno.MIG_SERVER_DIED, null, "the kernel's edge is closing");
    this.deadlines.clear();
  }

  /** Calls awaiting their replies (for tests). */
  get inFlight(): number {
    return this.live.size;
  }

  // ------------------------------------------------------------ a gRPC call

  private unary(info: MethodInfo, call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
    const k = this.kernel;
    try {
      const t = this.edge.who(call.metadata);
      const route = this.route(info);
      const md = call.metadata;
      const d = call.getDeadline();
      const deadline = d === Infinity ? Date.now() + k.config.gatewayTimeoutMs : d instanceof Date ? d.getTime() : Number(d);
      const tc = traceContextOf(headerOf(md, "traceparent"));
      const port = headerOf(md, PORT_HEADER);
      if (port !== undefined || route.target !== DefaultPort.DEFAULT_PORT_MSGPORT) {
        const dest = port !== undefined ? nameOf(port) : this.defaultPort(route);
        let body: Uint8Array = call.request;
        let ports = NO_PORTS;
        if (route.request.length > 0) {
          const req = decodeRequest(route, call.request);
          ports = portsOf(route.request, req);
          body = encode(info.def.requestType, req);
        }
        this.request(t, dest, route, body, ports, deadline, tc, call, cb);
        return;
      }
      const pid = headerOf(md, PID_HEADER);
      if (pid === undefined) throw new HurdError(Errno.EINVAL, `${info.path} goes to a process's message port: name the process (${PID_HEADER}) or the port (${PORT_HEADER})`);
      this.byPid(t, route, pidOf(pid), call.request, deadline, tc, call).then(
        (b) => cb(null, b),
        (e) => cb(this.edge.status(e)),
      );
    } catch (e) {
      cb(this.edge.status(e));
    }
  }

  /** Where a call goes when it names no port: its interface's default (Hurd data, see the top). */
  private defaultPort(route: Route): number {
    const name = INIT_PORT_NAMES[route.target];
    if (name === undefined) throw new HurdError(Errno.EINVAL, `${route.info.path} has no default port: name one (${PORT_HEADER})`);
    return name;
  }

  /** Sends the call and answers the gRPC call with its reply. */
  private request(t: KTask, dest: number, route: Route, body: Uint8Array, ports: MsgPort[], deadline: number, tc: Uint8Array, call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
    const c = this.send(t, dest, route.info, body, ports, deadline, tc, (code, m, detail) => {
      if (code !== 0) return cb(this.edge.status(errorOf(code, detail)));
      if (m === null) return cb(null, EMPTY);
      try {
        cb(null, this.replyOf(t, route, m));
      } catch (e) {
        cb(this.edge.status(e));
      }
    });
    // A client that gives up (or whose deadline grpc-js enforces first) frees the call at once.
    if (c !== null) this.onCancel(call, c);
  }

  /** Ends `c` when its gRPC call is cancelled, as long as `c` still stands for that call. */
  private onCancel(call: grpc.ServerUnaryCall<Buffer, Buffer>, c: Call): void {
    const generation = c.generation;
    call.once("cancelled", () => {
      if (c.generation === generation) this.settle(c, Errno.EINTR, null, "cancelled by the client");
    });
  }

  /**
   * A msg call by pid, as glibc's kill makes it: the process's message
   * port from the caller's proc (proc_getmsgport), and, where the request's
   * refport is left null, the target's task port (proc_pid2task, which proc
   * grants only to its owner) or else the caller's session port
   * (proc_getsidport). Every one of these is a call of the caller's, to its
   * own proc; the rights they bring are released once the call is over.
   */
  private async byPid(t: KTask, route: Route, pid: number, raw: Buffer, deadline: number, tc: Uint8Array, call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Buffer> {
    const proc = INIT_PORT_NAMES[DefaultPort.DEFAULT_PORT_PROC]!;
    const taken: number[] = [];
    const req = route.request.length > 0 ? decodeRequest(route, raw) : null;
    try {
      const msgport = await this.ask(t, proc, GETMSGPORT, PidRequest.encode({ pid }).finish(), deadline, tc, (b) => GetmsgportReply.decode(b).msgport);
      if (msgport === 0 || msgport === MACH_PORT_DEAD) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, `process ${pid} has no message port`);
      taken.push(msgport);
      for (const f of route.request) {
        if (!f.refport || f.repeated || req![f.key] !== 0) continue;
        let ref = await this.ask(t, proc, PID2TASK, PidRequest.encode({ pid }).finish(), deadline, tc, (b) => TaskReply.decode(b).task).catch(() => 0);
        if (ref === 0) ref = await this.ask(t, proc, GETSIDPORT, Empty.encode({}).finish(), deadline, tc, (b) => SidportReply.decode(b).sessport).catch(() => 0);
        if (ref !== 0 && ref !== MACH_PORT_DEAD) taken.push(ref);
        req![f.key] = ref;
      }
      const info = route.info;
      const ports = req ? portsOf(route.request, req) : NO_PORTS;
      const body = req ? encode(info.def.requestType, req) : raw;
      return await new Promise<Buffer>((resolve, reject) => {
        const c = this.send(t, msgport, info, body, ports, deadline, tc, (code, m, detail) => {
          if (code !== 0) return reject(errorOf(code, detail));
          if (m === null) return resolve(EMPTY);
          try {
            resolve(this.replyOf(t, route, m));
          } catch (e) {
            reject(e);
          }
        });
        if (c !== null) this.onCancel(call, c);
      });
    } finally {
      // As glibc's kill deallocates what it looked up.
      for (const n of taken) {
        try {
          portModRefs(this.kernel, t, n, PortRight.PORT_RIGHT_SEND, -1);
        } catch {
          // The right is already gone (the task, or the caller released it).
        }
      }
    }
  }

  /** A call the gateway makes for its caller and reads one port field of, as a name in the caller's space. */
  private ask(t: KTask, dest: number, info: MethodInfo, body: Uint8Array, deadline: number, tc: Uint8Array, field: (body: Uint8Array) => number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.send(t, dest, info, body, NO_PORTS, deadline, tc, (code, m, detail) => {
        if (code !== 0) return reject(errorOf(code, detail));
        try {
          const out = this.namesOf(t, m!, [field(m!.body)]);
          resolve(out[0]!);
        } catch (e) {
          releaseRights(this.kernel, m!);
          reject(new HurdError(Errno.MIG_TYPE_ERROR, `${info.path}: malformed reply`, { cause: e }));
        }
      });
    });
  }

  // ------------------------------------------------------------ the message

  /**
   * Sends one message as `t` to its name `dest`, with a send-once right to
   * a reply port of the kernel's (none for a simpleroutine). `done` runs
   * once: with the reply (code 0), or with the code the call ended with.
   * Answers the call while it waits (null when it is over already).
   */
  private send(t: KTask, dest: number, info: MethodInfo, body: Uint8Array, ports: MsgPort[], deadline: number, tc: Uint8Array, done: Done): Call | null {
    const k = this.kernel;
    if (!t.active) {
      done(Errno.KERN_INVALID_TASK, null, "the calling task is gone");
      return null;
    }
    let dd: MsgType;
    try {
      dd = destinationDisposition(t, dest);
    } catch (e) {
      const he = HurdError.from(e);
      done(he.code, null, he.message);
      return null;
    }
    const timeoutMs = Math.max(1, deadline - Date.now());
    const m: Message = {
      destination: dest,
      destinationDisposition: dd,
      reply: 0,
      replyDisposition: MsgType.MSG_TYPE_UNSPECIFIED,
      id: info.msgid,
      body,
      ports,
      timeoutMs,
      seq: 0,
      traceContext: tc,
      code: 0,
    };
    const tracer = k.tracer;
    if (info.simple) {
      try {
        if (tracer !== null) tracer.cause = tc;
        send(k, t, m);
      } catch (e) {
        const he = HurdError.from(e);
        done(he.code, null, he.message);
        return null;
      } finally {
        if (tracer !== null) tracer.cause = NO_TRACE_CONTEXT;
      }
      done(0, null, "");
      return null;
    }
    if (this.live.size >= k.config.maxGatewayCalls) {
      done(Errno.KERN_RESOURCE_SHORTAGE, null, `${k.config.maxGatewayCalls} gateway calls already await their replies`);
      return null;
    }
    const c = this.pool.pop() ?? this.newCall();
    c.caller = t;
    c.msgid = info.msgid;
    c.done = done;
    c.settled = false;
    c.generation++;
    this.live.add(c);
    c.due = this.deadlines.add(c, timeoutMs);
    // The send-once right the message carries (ipc_port_make_sonce); the
    // reply may even arrive before send returns (a kernel object answers at once).
    c.port.sorights++;
    try {
      if (tracer !== null) tracer.cause = tc;
      send(k, t, m, c.port);
    } catch (e) {
      // Refused outright: the right was never handed out.
      c.port.sorights--;
      const he = HurdError.from(e);
      this.settle(c, he.code, null, he.message);
      return null;
    } finally {
      if (tracer !== null) tracer.cause = NO_TRACE_CONTEXT;
    }
    return c.settled ? null : c;
  }

  private newCall(): Call {
    const p = new Port(1);
    const c = new Call(this, p);
    p.kobject = c;
    return c;
  }

  /** A message arrived on a call's reply port (mqueue.ts's enqueue, for a kernel reply port). */
  received(c: Call, m: KMsg): void {
    const k = this.kernel;
    // The send-once right it came through is used up (as a delivery's is).
    if (m.destType === R_SEND_ONCE) c.port.sorights--;
    if (k.tracer !== null) k.tracer.delivered(m, c.caller, receivedOf(m));
    if (c.settled) {
      releaseRights(k, m);
      return;
    }
    if (m.kernel) {
      releaseRights(k, m);
      // The send-once right died unused: the server, or its port with the request queued, is gone.
      return this.settle(c, Errno.MIG_SERVER_DIED, null, m.id === MACH_NOTIFY_SEND_ONCE ? "the server died before it replied" : `kernel message ${m.id} on a reply port`);
    }
    if (m.code !== 0) {
      releaseRights(k, m);
      return this.settle(c, m.code, null, m.body.length > 0 ? utf8.decode(m.body) : "");
    }
    if (m.id !== c.msgid + 100) {
      releaseRights(k, m);
      return this.settle(c, Errno.MIG_REPLY_MISMATCH, null, `reply id ${m.id}, expected ${c.msgid + 100}`);
    }
    this.settle(c, 0, m, "");
  }

  /** Ends a call once: its port goes back to the pool when no right to it is left, else it dies. */
  settle(c: Call, code: number, m: KMsg | null, detail: string): void {
    if (c.settled) return;
    c.settled = true;
    this.live.delete(c);
    this.deadlines.cancel(c, c.due);
    const done = c.done!;
    c.done = null;
    const p = c.port;
    if (p.sorights === 0 && p.active) {
      if (this.pool.length < REPLY_PORT_POOL) this.pool.push(c);
    } else {
      // A right to it is still out (the server holds the request): its
      // reply, should it come, finds a dead port and is destroyed.
      destroyPort(this.kernel, p);
    }
    done(code, m, detail);
  }

  /** The response of a reply: its body, with port fields turned into names in the caller's space. */
  private replyOf(t: KTask, route: Route, m: KMsg): Buffer {
    if (route.reply.length === 0) {
      releaseRights(this.kernel, m);
      return asBuffer(m.body);
    }
    const type = route.info.def.responseType;
    let rep: Record<string, unknown>;
    try {
      rep = type.decode(m.body);
    } catch (e) {
      releaseRights(this.kernel, m);
      throw new HurdError(Errno.MIG_TYPE_ERROR, `${route.info.path}: malformed reply`, { cause: e });
    }
    const at: number[] = [];
    for (const f of route.reply) {
      const v = rep[f.key];
      if (f.repeated) at.push(...(v as number[]));
      else at.push(v as number);
    }
    const names = this.namesOf(t, m, at);
    let i = 0;
    for (const f of route.reply) {
      if (f.repeated) rep[f.key] = (rep[f.key] as number[]).map(() => names[i++]!);
      else rep[f.key] = names[i++]!;
    }
    return asBuffer(encode(type, rep));
  }

  /**
   * The names in the caller's space of the rights at these indexes of a
   * reply (ipc_kmsg_copyout, into the caller rather than a receiver): each
   * right is copied out once; rights no field names are released.
   */
  private namesOf(t: KTask, m: KMsg, indexes: readonly number[]): number[] {
    const k = this.kernel;
    const rights = m.rights ?? [];
    const names = new Array<number>(rights.length).fill(-1);
    const out = indexes.map((i) => {
      const r = rights[i];
      if (!r) return 0;
      if (names[i] === -1) names[i] = r.type === R_NAME ? r.value : r.type === R_DEAD ? MACH_PORT_DEAD : copyoutRight(k, t, r.type, r.port);
      return names[i]!;
    });
    for (let i = 0; i < rights.length; i++) if (names[i] === -1 && rights[i]!.type !== R_NAME) releaseRight(k, rights[i]!);
    if (m.reply) releaseReply(k, m);
    return out;
  }

  // ------------------------------------------------------------ the interfaces' facts

  private route(info: MethodInfo): Route {
    const routes = (this.routes ??= routesOf(this.protos.parsedRoot));
    const r = routes.get(info.path);
    if (!r) throw new HurdError(Errno.MIG_BAD_ID, `${info.path} is not in the proto files`);
    return r;
  }
}

/**
 * Reads the interfaces' MIG facts out of their proto files: each service's
 * default port, each message's port fields (top-level uint32 fields, single
 * or repeated; a port field in a nested message is refused here, where it
 * would otherwise be carried as a bare number).
 */
function routesOf(root: Protobuf.Root): Map<string, Route> {
  const shapes = new Map<Protobuf.Type, PortField[]>();
  const shapeOf = (type: Protobuf.Type): PortField[] => {
    let s = shapes.get(type);
    if (s) return s;
    s = [];
    for (const f of type.fieldsArray) {
      const disposition = f.options?.["(hurd.mig.v1.port)"] as string | undefined;
      if (disposition === undefined) {
        if (f.resolvedType !== null && "fieldsArray" in f.resolvedType && f.resolvedType !== type && shapeOf(f.resolvedType as Protobuf.Type).length > 0)
          throw new Error(`${type.fullName}.${f.name}: port fields in a nested message are not carried by the gateway`);
        continue;
      }
      const d = MsgType[disposition.replace("DISPOSITION_", "MSG_TYPE_") as keyof typeof MsgType];
      if (f.type !== "uint32" || d === undefined) throw new Error(`${type.fullName}.${f.name}: a port field is a uint32 with a disposition (${disposition})`);
      // ts-proto's key for the field: its name in lowerCamelCase.
      s.push({ key: f.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), repeated: f.repeated, disposition: d, refport: f.options?.["(hurd.mig.v1.refport)"] === true });
    }
    shapes.set(type, s);
    return s;
  };
  const routes = new Map<string, Route>();
  for (const def of INTERFACES) {
    const svc = root.lookupService(def.fullName);
    const dp = svc.options?.["(hurd.mig.v1.default_port)"] as string | undefined;
    const target = dp === undefined ? DefaultPort.DEFAULT_PORT_UNSPECIFIED : DefaultPort[dp as keyof typeof DefaultPort];
    for (const info of methods(def).byKey.values()) {
      const m = svc.methods[info.def.name]!;
      routes.set(info.path, { info, target, request: shapeOf(m.resolvedRequestType!), reply: shapeOf(m.resolvedResponseType!) });
    }
  }
  return routes;
}

// ------------------------------------------------------------ helpers

/**
 * The error a call ended with. `detail` may be a HurdError's whole message
 * (an error reply's text, as serve.ts sends it; a refused send's): its
 * errno is named once.
 */
function errorOf(code: number, detail: string): HurdError {
  const prefix = new HurdError(code).message;
  const d = detail === prefix ? "" : detail.startsWith(`${prefix}: `) ? detail.slice(prefix.length + 2) : detail;
  return new HurdError(code, d || undefined);
}

function headerOf(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return v === undefined ? undefined : String(v);
}

/** A port name from a header: decimal or 0x hex, never MACH_PORT_NULL. */
function nameOf(s: string): number {
  const n = /^(0x[0-9a-f]{1,8}|[0-9]{1,10})$/i.test(s.trim()) ? Number(s.trim()) : NaN;
  if (!(n > 0 && n <= 0xffffffff)) throw new HurdError(Errno.EINVAL, `${PORT_HEADER} ${JSON.stringify(s)} is not a port name`);
  return n;
}

function pidOf(s: string): number {
  const n = /^[0-9]{1,10}$/.test(s.trim()) ? Number(s.trim()) : NaN;
  if (!(n > 0 && n <= 0x7fffffff)) throw new HurdError(Errno.EINVAL, `${PID_HEADER} ${JSON.stringify(s)} is not a pid`);
  return n;
}

function decodeRequest(route: Route, raw: Uint8Array): Record<string, unknown> {
  try {
    return route.info.def.requestType.decode(raw);
  } catch (e) {
    throw new HurdError(Errno.MIG_BAD_ARGUMENTS, `malformed ${route.info.def.name} request`, { cause: e });
  }
}

/**
 * The message's rights from the request's port fields, each field set to
 * its right's index. A null name (0) is carried as MACH_PORT_NULL, so
 * that the index still names "no right" rather than another field's.
 */
function portsOf(fields: readonly PortField[], req: Record<string, unknown>): MsgPort[] {
  const ports: MsgPort[] = [];
  const add = (name: unknown, disposition: MsgType): number => {
    const n = Number(name) >>> 0;
    ports.push({ name: n, disposition: n === 0 ? MsgType.MSG_TYPE_PORT_NAME : disposition });
    return ports.length - 1;
  };
  for (const f of fields) {
    if (f.repeated) req[f.key] = (req[f.key] as unknown[]).map((n) => add(n, f.disposition));
    else req[f.key] = add(req[f.key], f.disposition);
  }
  return ports;
}

/**
 * How the destination right is copied in from the caller's space: a send
 * right is copied (the caller keeps it, as a MIG stub's mach_port_t
 * destination); a send-once right is used; from a receive right alone a
 * send right is made. A name the caller does not hold is KERN_INVALID_NAME;
 * a dead name is refused by the send (MACH_SEND_INVALID_DEST).
 */
function destinationDisposition(t: KTask, name: number): MsgType {
  const e = t.space.lookup(name);
  if (!e) throw err("KERN_INVALID_NAME", `the caller holds no right named ${name}`);
  if (e.bits & TYPE_SEND) return MsgType.MSG_TYPE_COPY_SEND;
  if (e.bits & TYPE_SEND_ONCE) return MsgType.MSG_TYPE_MOVE_SEND_ONCE;
  if (e.bits & TYPE_RECEIVE) return MsgType.MSG_TYPE_MAKE_SEND;
  return MsgType.MSG_TYPE_COPY_SEND;
}

/** Releases every right a message taken by the kernel carries (its destination right is accounted already). */
function releaseRights(k: Kernel, m: KMsg): void {
  if (m.reply) releaseReply(k, m);
  if (m.rights) for (const r of m.rights) releaseRight(k, r);
  m.rights = null;
}

function releaseReply(k: Kernel, m: KMsg): void {
  if (m.replyType === R_SEND) releaseSend(k, m.reply!);
  else if (m.replyType === R_SEND_ONCE) destroySendOnce(k, m.reply!);
  m.reply = null;
}

/** What the tracer learns of a reply the kernel takes (it reads names and sets the context). */
function receivedOf(m: KMsg): Received {
  return { local: 0, reply: 0, replyType: MsgType.MSG_TYPE_UNSPECIFIED, id: m.id, body: m.body, ports: [], kernel: m.kernel, sender: m.sender ? m.sender.id : 0, seqno: 0, traceContext: m.traceContext, code: m.code };
}

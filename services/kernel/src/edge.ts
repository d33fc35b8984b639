import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { HurdError, errnoName, Errno } from "@hurdmesh/mach";
import { edgeServerCredentials, grpcServiceOf, grpcStatusOf, type EdgeTls } from "@hurdmesh/mach/edge";
import { methods, NO_TRACE_CONTEXT } from "@hurdmesh/mach/internal";
import { INTERFACES } from "@hurdmesh/mach/registry";
import { AttachRequest, CallReply, MachDefinition, Trap } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { TraceDefinition, type TraceBatch, type WatchRequest } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { handlers } from "./calls.js";
import { Gateway } from "./gateway.js";
import { EdgeOp } from "./log-format.js";
import { protoFilesOf, Protos } from "./protos.js";
import { serveReflectionLazily } from "./reflection.js";
import type { Kernel } from "./kernel.js";
import { attach, authenticate, lostSink, touch, type KTask, type Sink } from "./task.js";
import { attachReply, handleTrap } from "./trap.js";

/** Metadata keys a client proves itself with on every call. */
export const TASK_HEADER = "hurd-task";
export const TOKEN_HEADER = "hurd-token";
/** On the Receive stream: how many messages the kernel may push ahead of credit. */
export const WINDOW_HEADER = "hurd-window";

const MachService = grpcServiceOf(MachDefinition);
const TraceService = grpcServiceOf(TraceDefinition);

const protoRoot = fileURLToPath(new URL("../../../proto", import.meta.url));

/** The W3C traceparent a caller sent as gRPC metadata ("" when none). */
function traceparentOf(md: grpc.Metadata): string {
  const v = md.get("traceparent")[0];
  return typeof v === "string" ? v : "";
}

/** Turns any failure into a gRPC error whose trailer names the Hurd errno. */
function toStatus(e: unknown): grpc.ServiceError {
  const he = HurdError.from(e);
  const md = new grpc.Metadata();
  md.set("hurd-errno", errnoName(he.code));
  md.set("hurd-code", String(he.code));
  return Object.assign(new Error(he.message), { code: grpcStatusOf(he.code), details: he.message, metadata: md }) as grpc.ServiceError;
}

/**
 * The kernel's gRPC edge: the Mach interface for clients outside the bus
 * (the CLI, workloads, other languages). Every call carries the task id and
 * token in metadata; the Receive stream is the task's delivery subject. The
 * Hurd's servers are served beside it as gRPC services, each call a message
 * sent as its caller (gateway.ts), and the standard health service and
 * server reflection.
 */
export class Edge {
  readonly server = new grpc.Server({ "grpc.max_receive_message_length": 8 * 1024 * 1024 });
  readonly health = new HealthImplementation({ "": "NOT_SERVING", "hurd.mach.v1.Mach": "NOT_SERVING" });
  readonly gateway: Gateway;
  port = 0;

  constructor(private readonly kernel: Kernel) {
    this.server.addService(EdgeService, this.implementation());
    this.server.addService(TraceService, { watch: (call: grpc.ServerWritableStream<WatchRequest, TraceBatch>) => this.watch(call) });
    // The files are read when first needed (protos.ts).
    const protos = new Protos(protoRoot, () => ["hurd/mach/v1/mach.proto", "hurd/trace/v1/trace.proto", ...protoFilesOf(protoRoot, INTERFACES)]);
    this.gateway = new Gateway(kernel, { who: (md) => this.who(md), status: toStatus }, protos);
    for (const s of this.gateway.services) this.server.addService(s.definition, unlogged(kernel, s.implementation, "the gateway's calls"));
    this.health.addToServer(this.server);
    // Built when reflection is first asked for (reflection.ts says why).
    serveReflectionLazily(this.server, () => protos.reflectionPackage());
  }

  /**
   * Listens on `address` (host:port; port 0 picks one) and reports SERVING:
   * with TLS when given a certificate; in plaintext only on a loopback
   * address or when `insecure` (EINVAL otherwise: tokens travel in every
   * call's metadata).
   */
  async listen(address: string, tls?: EdgeTls | null, insecure = false): Promise<number> {
    const creds = edgeServerCredentials(address, tls, insecure);
    this.port = await new Promise<number>((resolve, reject) => this.server.bindAsync(address, creds, (e, port) => (e ? reject(e) : resolve(port))));
    this.health.setStatus("", "SERVING");
    this.health.setStatus("hurd.mach.v1.Mach", "SERVING");
    for (const s of this.gateway.services) this.health.setStatus(s.name, "SERVING");
    return this.port;
  }

  async close(): Promise<void> {
    this.health.setStatus("", "NOT_SERVING");
    this.health.setStatus("hurd.mach.v1.Mach", "NOT_SERVING");
    for (const s of this.gateway.services) this.health.setStatus(s.name, "NOT_SERVING");
    this.gateway.close();
    // Streams of tasks that are gone would hold a graceful shutdown forever.
    await new Promise<void>((r) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        r();
      }, 500);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  private who(md: grpc.Metadata): KTask {
    const id = Number(md.get(TASK_HEADER)[0] ?? 0);
    const token = String(md.get(TOKEN_HEADER)[0] ?? "");
    const t = Number.isSafeInteger(id) ? authenticate(this.kernel, id, token) : null;
    if (!t) {
      this.kernel.stats.rejectedTraps++;
      this.kernel.log(`edge call for task ${md.get(TASK_HEADER)[0]} with a missing or wrong token rejected`);
      throw new HurdError(Errno.KERN_INVALID_TASK, "unknown task or wrong token");
    }
    touch(this.kernel, t);
    return t;
  }

  /** The task a call's metadata names and proves, without touching it. */
  private authenticated(md: grpc.Metadata): KTask {
    const id = Number(md.get(TASK_HEADER)[0] ?? 0);
    const t = Number.isSafeInteger(id) ? authenticate(this.kernel, id, String(md.get(TOKEN_HEADER)[0] ?? "")) : null;
    if (!t) {
      this.kernel.stats.rejectedTraps++;
      throw new HurdError(Errno.KERN_INVALID_TASK, "unknown task or wrong token");
    }
    return t;
  }

  /**
   * A unary Mach call with the kernel's log on: made into the trap the
   * runtime would send for it (the same bytes as on the bus), so that it is
   * applied, logged and replayed by a standby exactly as a bus trap is; its
   * answer leaves once that trap's record is written.
   */
  private callAsTrap(info: { msgid: number; def: { requestType: { encode(m: never): { finish(): Uint8Array } }; responseType: { decode(b: Uint8Array): unknown } } }, call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    const k = this.kernel;
    const j = k.journal!;
    const id = Number(call.metadata.get(TASK_HEADER)[0] ?? 0);
    let trap: Uint8Array;
    try {
      const request = info.def.requestType.encode(call.request as never).finish();
      trap = Trap.encode({ task: Number.isSafeInteger(id) && id > 0 ? id : 0, token: String(call.metadata.get(TOKEN_HEADER)[0] ?? ""), credit: 0, seq: 0, call: { msgid: info.msgid, request, traceContext: NO_TRACE_CONTEXT } }).finish();
    } catch (e) {
      return cb(toStatus(new HurdError(Errno.MIG_BAD_ARGUMENTS, "malformed request", { cause: e })));
    }
    handleTrap(
      k,
      trap,
      (code, reply, detail) =>
        j.after(() => {
          if (code !== 0) return cb(toStatus(new HurdError(code, detail)));
          try {
            cb(null, info.def.responseType.decode(reply));
          } catch (e) {
            cb(toStatus(e));
          }
        }),
      true,
      k.tracer !== null ? traceparentOf(call.metadata) : undefined,
    );
  }

  /**
   * hurd.trace.v1.Trace/Watch: the kernel's trace records while the call is
   * open, for the caller's namespace and those nested in it. A watcher that
   * cannot keep up loses records (counted in the next batch), never slows routing.
   */
  private watch(call: grpc.ServerWritableStream<WatchRequest, TraceBatch>): void {
    let t: KTask;
    try {
      if (this.kernel.journal !== null) throw notLogged("the trace stream");
      t = this.who(call.metadata);
    } catch (e) {
      // grpc-js ends a server stream with a status when it emits 'error' (destroy() ends it without one).
      call.emit("error", toStatus(e));
      return;
    }
    const q = call.request;
    // Watching needs host_priv: a trace shows every message's rights and
    // contents. The watch covers the namespace of that host port.
    let ns: KTask["ns"];
    try {
      if (!q.hostPriv) throw new HurdError(Errno.KERN_NO_ACCESS, "watching the trace stream needs a host_priv send right (host_priv in WatchRequest)");
      ns = this.kernel.namespaceFromHost(t, q.hostPriv);
    } catch (e) {
      call.emit("error", toStatus(e));
      return;
    }
    let congested = false;
    let lost = 0;
    const stop = this.kernel.trace.watch(
      { ns, tasks: q.tasks, follow: q.follow, bodies: q.bodies, recordsPerSecond: q.recordsPerSecond, exclude: q.includeSelf ? q.exclude : [t.id, ...q.exclude] },
      (records, dropped, counts) => {
        if (congested) {
          lost += records.length + dropped;
          for (const c of counts) lost += c.count;
          return;
        }
        if (call.writableEnded || call.destroyed) return;
        congested = !call.write({ records, dropped: dropped + lost, ended: 0, counts });
        lost = 0;
      },
    );
    call.on("drain", () => (congested = false));
    // The stream holds the watcher's lease: watching is being connected.
    const beat = setInterval(() => touch(this.kernel, t), Math.max(50, this.kernel.config.leaseMs / 3));
    beat.unref();
    const end = () => {
      clearInterval(beat);
      stop();
    };
    call.on("cancelled", end);
    call.on("close", end);
    call.on("error", end);
  }

  private implementation(): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    const k = this.kernel;
    for (const [key, info] of methods(MachDefinition).byKey) {
      if (key === "receive" || key === "attach" || key === "sendTrap") continue;
      const h = handlers[key];
      impl[key] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (k.journal !== null) return this.callAsTrap(info, call, cb);
        // The caller's W3C trace context (gRPC metadata) is the cause of what the call makes the kernel do.
        const tracer = k.tracer;
        if (tracer !== null) tracer.causeText = traceparentOf(call.metadata);
        try {
          const t = this.who(call.metadata);
          const rep = h ? h(k, t, call.request) : (() => { throw new HurdError(Errno.MIG_BAD_ID, info.path); })();
          cb(null, info.def.responseType.fromPartial(rep as object));
        } catch (e) {
          // A hurd that kills on a limit ends the caller now that its call is undone (quota.ts).
          if (k.offender !== null) k.killOffender();
          cb(toStatus(e));
        } finally {
          if (tracer !== null) tracer.causeText = "";
        }
      };
    }
    // attach (hurdmesh, 4902): an edge client learns its task; delivery opens with Receive.
    impl.attach = (call: grpc.ServerUnaryCall<AttachRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const j = k.journal;
      try {
        const t = authenticate(k, call.request.taskId, call.request.token);
        if (!t) throw new HurdError(Errno.KERN_INVALID_TASK, "unknown task or wrong token");
        const rep = attachReply(k, t);
        if (j === null) return cb(null, rep);
        // Naming the bootstrap port is a change to the task's space: logged, answered once written.
        j.edge(EdgeOp.ATTACHED, t.id, 0);
        j.after(() => cb(null, rep));
      } catch (e) {
        if (j === null) cb(toStatus(e));
        else j.after(() => cb(toStatus(e)));
      }
    };
    // send_trap (hurdmesh, 4907): the runtime's edge transport, bus traps byte for byte over gRPC.
    impl.sendTrap = (call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const j = k.journal;
      // With the log on the trap is recorded by handleTrap; its answer leaves once that record is written.
      const answer = j === null ? (code: number, reply: Uint8Array, detail: string) => cb(null, { code, reply, detail, applied: 0 }) : (code: number, reply: Uint8Array, detail: string) => j.after(() => cb(null, { code, reply, detail, applied: 0 }));
      handleTrap(k, call.request, answer, true, k.tracer !== null ? traceparentOf(call.metadata) : undefined);
    };
    // receive (hurdmesh, 4906): mach_msg's receive side, the task's deliveries as a stream.
    impl.receive = (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const j = k.journal;
      let t: KTask;
      try {
        // With the log on, the stream's attach below is the one logged change (who's touch would be another).
        t = j === null ? this.who(call.metadata) : this.authenticated(call.metadata);
      } catch (e) {
        call.destroy(toStatus(e));
        return;
      }
      // Deliveries are already encoded Delivery messages: write the bytes as they are.
      // A stream the client has just ended may still be handed a delivery
      // before its 'cancelled' or 'close' detaches the sink: writing then
      // would throw (write after end) outside any call. It is dropped, as
      // it would have been lost had it gone out just before the end.
      const w = call as unknown as { write(b: Uint8Array): boolean; writableEnded: boolean; destroyed: boolean };
      const write = (bytes: Uint8Array) => {
        if (!w.writableEnded && !w.destroyed) w.write(bytes);
      };
      // With the log on, a delivery leaves once the burst that made it is written (journal.ts).
      const sink: Sink = j === null ? write : (bytes) => j.after(() => write(bytes));
      const window = Number(call.metadata.get(WINDOW_HEADER)[0] ?? 256) || 256;
      attach(k, t, sink, window);
      j?.edge(EdgeOp.SINK, t.id, window);
      // Headers at once: the client learns the stream is up before any delivery (EdgeBus.disconnectedSince).
      if (j === null) call.sendMetadata(new grpc.Metadata());
      else j.after(() => !w.destroyed && call.sendMetadata(new grpc.Metadata()));
      // An open stream is a live connection: keep the lease fresh while it lasts.
      const beat = setInterval(() => {
        touch(k, t);
        if (j !== null && t.active) j.edge(EdgeOp.TOUCH, t.id, 0);
      }, Math.max(50, k.config.leaseMs / 3));
      beat.unref();
      const end = () => {
        clearInterval(beat);
        if (t.sink !== sink) return;
        lostSink(t, sink);
        j?.edge(EdgeOp.UNSINK, t.id, 0);
      };
      call.on("cancelled", end);
      call.on("close", end);
      call.on("error", end);
    };
    return impl;
  }
}

/** What a kernel with its log on does not serve yet: its effects are not logged, so a standby could not replay them. */
function notLogged(what: string): HurdError {
  return new HurdError(Errno.EOPNOTSUPP, `${what} is not served by a kernel with its log on (hurd-kernel --journal/--standby; docs/kernel-log.md)`);
}

/** A service's unary methods refused while the kernel has its log on. */
function unlogged(k: Kernel, impl: grpc.UntypedServiceImplementation, what: string): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [key, f] of Object.entries(impl)) {
    const h = f as (call: unknown, cb: grpc.sendUnaryData<unknown>) => void;
    out[key] = ((call: unknown, cb: grpc.sendUnaryData<unknown>) => (k.journal !== null ? cb(toStatus(notLogged(what))) : h(call, cb))) as grpc.UntypedHandleCall;
  }
  return out;
}

// The Receive stream writes pre-encoded Delivery bytes (the kernel encodes a
// delivery once, whichever carrier takes it); every other method uses
// ts-proto's serializers as generated.
const EdgeService: grpc.ServiceDefinition = {
  ...(MachService as unknown as grpc.ServiceDefinition),
  receive: {
    ...(MachService.receive as unknown as grpc.MethodDefinition<unknown, unknown>),
    responseSerialize: (v: unknown) =>
      Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.alloc(0),
  },
  sendTrap: {
    ...(MachService.sendTrap as unknown as grpc.MethodDefinition<unknown, unknown>),
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (v: unknown) => Buffer.from(CallReply.encode(v as CallReply).finish()),
  },
};

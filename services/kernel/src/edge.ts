import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { HurdError, errnoName, Errno } from "@hurdmesh/mach";
import { edgeServerCredentials, grpcServiceOf, grpcStatusOf, type EdgeTls } from "@hurdmesh/mach/edge";
import { methods } from "@hurdmesh/mach/internal";
import { INTERFACES } from "@hurdmesh/mach/registry";
import { AttachRequest, CallReply, MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { TraceDefinition, type TraceBatch, type WatchRequest } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { handlers } from "./calls.js";
import { Gateway } from "./gateway.js";
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
    for (const s of this.gateway.services) this.server.addService(s.definition, s.implementation);
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

  /**
   * hurd.trace.v1.Trace/Watch: the kernel's trace records while the call is
   * open, for the caller's namespace and those nested in it. A watcher that
   * cannot keep up loses records (counted in the next batch), never slows routing.
   */
  private watch(call: grpc.ServerWritableStream<WatchRequest, TraceBatch>): void {
    let t: KTask;
    try {
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
      try {
        const t = authenticate(k, call.request.taskId, call.request.token);
        if (!t) throw new HurdError(Errno.KERN_INVALID_TASK, "unknown task or wrong token");
        cb(null, attachReply(k, t));
      } catch (e) {
        cb(toStatus(e));
      }
    };
    // send_trap (hurdmesh, 4907): the runtime's edge transport, bus traps byte for byte over gRPC.
    impl.sendTrap = (call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      handleTrap(k, call.request, (code, reply, detail) => cb(null, { code, reply, detail }), true, k.tracer !== null ? traceparentOf(call.metadata) : undefined);
    };
    // receive (hurdmesh, 4906): mach_msg's receive side, the task's deliveries as a stream.
    impl.receive = (call: grpc.ServerWritableStream<unknown, unknown>) => {
      let t: KTask;
      try {
        t = this.who(call.metadata);
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
      const sink: Sink = (bytes) => {
        if (!w.writableEnded && !w.destroyed) w.write(bytes);
      };
      const window = Number(call.metadata.get(WINDOW_HEADER)[0] ?? 256) || 256;
      attach(k, t, sink, window);
      // Headers at once: the client learns the stream is up before any delivery (EdgeBus.disconnectedSince).
      call.sendMetadata(new grpc.Metadata());
      // An open stream is a live connection: keep the lease fresh while it lasts.
      const beat = setInterval(() => touch(k, t), Math.max(50, k.config.leaseMs / 3));
      beat.unref();
      const end = () => {
        clearInterval(beat);
        lostSink(t, sink);
      };
      call.on("cancelled", end);
      call.on("close", end);
      call.on("error", end);
    };
    return impl;
  }
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

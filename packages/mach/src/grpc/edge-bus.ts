// The runtime over the kernel's gRPC edge: a Bus for one task, for programs
// outside the bus (the CLI, workloads on other machines). Traps travel as
// the same bytes they would on NATS (Mach/Trap); deliveries arrive on the
// task's Receive stream. Only the task's own subjects are meaningful here.
import * as grpc from "@grpc/grpc-js";
import { context, propagation } from "@opentelemetry/api";
import { CallReply, Delivery, MachDefinition, Trap } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { Bus, BusHandler, BusSubscription } from "../bus/types.js";
import { Errno, HurdError } from "../errors.js";
import { grpcServiceOf } from "./service.js";
import { edgeChannelCredentials } from "./tls.js";

const raw = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

const MachService = grpcServiceOf(MachDefinition);
const EdgeClientService: grpc.ServiceDefinition = {
  sendTrap: { ...(MachService.sendTrap as unknown as grpc.MethodDefinition<unknown, unknown>), requestSerialize: raw, responseDeserialize: (b: Buffer) => b },
  receive: { ...(MachService.receive as unknown as grpc.MethodDefinition<unknown, unknown>), requestSerialize: () => Buffer.alloc(0), responseDeserialize: (b: Buffer) => b },
};
const Ctor = grpc.makeGenericClientConstructor(EdgeClientService, "hurd.mach.v1.Mach");

type EdgeClient = grpc.Client & {
  sendTrap(b: Uint8Array, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Buffer) => void): void;
  receive(req: unknown, md: grpc.Metadata): grpc.ClientReadableStream<Buffer>;
};

export class EdgeBus implements Bus {
  readonly kind = "nats" as const;
  /**
   * A kernel call's context also as text: with the OTel gRPC instrumentation
   * on, the SendTrap client span is made the caller's child from it (and a
   * kernel older than Call.trace_context reads it from the metadata).
   */
  readonly traceparentHeader = true;
  closed = false;
  /** Since when the Receive stream has been down (0: up); the runtime ends a task past its lease. */
  disconnectedSince = 0;
  private readonly c: EdgeClient;
  private stream: grpc.ClientReadableStream<Buffer> | null = null;
  private retry: NodeJS.Timeout | null = null;
  /** The task's delivery handler (one subscription per EdgeBus). */
  private deliver: BusHandler | null = null;

  /**
   * `address` is host:port of the kernel's gRPC edge; the task proves itself
   * on the stream. `caPem`: the CA the edge's certificate must chain to
   * (TLS); absent: plaintext, for a loopback edge.
   */
  constructor(
    readonly address: string,
    private readonly taskId: number,
    private readonly token: string,
    caPem?: string | null,
  ) {
    // The largest delivery is the kernel's largest body (4 MiB) and its
    // envelope: above grpc-js's 4 MiB default for what a client receives.
    this.c = new Ctor(address, edgeChannelCredentials(caPem), { "grpc.max_receive_message_length": 16 * 1024 * 1024 }) as unknown as EdgeClient;
  }

  private md(traceparent?: string): grpc.Metadata {
    const m = new grpc.Metadata();
    m.set("hurd-task", String(this.taskId));
    m.set("hurd-token", this.token);
    // W3C trace context as gRPC metadata, as OTel's gRPC propagation sends it.
    if (traceparent) m.set("traceparent", traceparent);
    return m;
  }

  /**
   * One SendTrap call, in the caller's trace context when it has one. The
   * traceparent goes in the metadata as it is; but with the OTel gRPC
   * instrumentation on (register.mjs), the call is a CLIENT span whose own
   * context replaces it there, so that span must be made the caller's
   * child, not the root of a trace of its own. Without a traceparent
   * (tracing off) the call is made directly.
   */
  private sendTrap(data: Uint8Array, traceparent: string | undefined, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Buffer) => void): void {
    const md = this.md(traceparent);
    if (!traceparent) this.c.sendTrap(data, md, o, cb);
    else context.with(propagation.extract(context.active(), { traceparent }), this.c.sendTrap, this.c, data, md, o, cb);
  }

  publish(_subject: string, data: Uint8Array, _reply?: string, traceparent?: string): void {
    if (this.closed) throw new HurdError(Errno.MACH_SEND_INVALID_DEST, "edge connection closed");
    this.sendTrap(data, traceparent, {}, (e, r) => {
      if (e || !r || this.deliver === null) return;
      // The edge answers every trap; a send the kernel refused (too large,
      // no room, a bad right) is told to the sender as on the bus, where a
      // one-way trap's refusal comes as a SendFailed on its delivery subject.
      const ans = CallReply.decode(r);
      if (ans.code === 0) return;
      const seq = Trap.decode(data).send?.seq;
      if (seq !== undefined) this.deliver("", Delivery.encode({ failed: { seq, code: ans.code, reply: 0 }, seq: 0 }).finish(), undefined);
    });
  }

  /**
   * The task's deliveries, on its Receive stream. A stream that ends (the
   * kernel restarted or went away, the network failed) is opened again
   * every half second, which attaches the task anew, until it is up (the
   * kernel's first headers say so) or the bus is closed; meanwhile
   * disconnectedSince tells the runtime how long it has been without one.
   */
  subscribe(_subject: string, handler: BusHandler): BusSubscription {
    this.deliver = handler;
    let cancelled = false;
    const open = () => {
      this.retry = null;
      if (cancelled || this.closed) return;
      const s = this.c.receive({}, this.md());
      this.stream = s;
      s.on("metadata", () => (this.disconnectedSince = 0));
      s.on("data", (b: Buffer) => {
        this.disconnectedSince = 0;
        handler("", b, undefined);
      });
      const lost = () => {
        if (this.stream !== s || cancelled || this.closed) return;
        this.stream = null;
        this.disconnectedSince ||= Date.now();
        this.retry = setTimeout(open, 500);
        this.retry.unref();
      };
      s.on("error", lost);
      s.on("end", lost);
    };
    open();
    return {
      unsubscribe: () => {
        cancelled = true;
        if (this.retry) clearTimeout(this.retry);
        this.stream?.cancel();
      },
    };
  }

  request(_subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, "edge connection closed"));
    return new Promise((resolve, reject) =>
      this.sendTrap(data, traceparent, { deadline: Date.now() + timeoutMs }, (e, r) => {
        if (!e) return resolve(r);
        if (e.code === grpc.status.DEADLINE_EXCEEDED) reject(new HurdError(Errno.ETIMEDOUT, `no answer from the edge at ${this.address}`));
        else reject(new HurdError(Errno.MACH_SEND_INVALID_DEST, `the kernel's edge at ${this.address}: ${e.details || e.message}`, { cause: e }));
      }),
    );
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.stream?.cancel();
    this.c.close();
  }
}

export { CallReply };

// The stub runtime's public face.
export { Errno, EWOULDBLOCK, HurdError, errnoName, fail, isErrno, type ErrnoName } from "./errors.js";
export { grpcStatusOf } from "./grpc-status.js";
export type { Bus, BusHandler, BusSubscription } from "./bus/types.js";
export { LocalHub, LocalConnection } from "./bus/local.js";
export { NatsBus } from "./bus/nats.js";
export { methods, msgidOf, isSimple, type MethodDef, type MethodInfo, type ServiceDef } from "./msgid.js";
export { Task, Notify, MACH_PORT_NULL, MACH_PORT_DEAD, type AttachOptions, type MessageHandler, type RpcOptions } from "./task.js";
export { client, type Client, type CallOptions } from "./client.js";
export { serve, Server, type Context, type Impl, type NotifyHandler } from "./serve.js";
export { Rights, rightsOf, portAt, optionalRight, withRights } from "./rights.js";
export { SIG, NSIG, CLD, W, W_CONTINUED, WNOHANG, WUNTRACED, WSTOPPED, WCONTINUED, WNOWAIT, WEXITED, signalNumber, signalName } from "./signals.js";
export { MsgType, PortRight, NotifyId, TaskSpecialPort, type Received, type ReceivedPort, type Message, type MsgPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
export { EdgeBus } from "./edge-bus.js";
export { encode } from "./wire.js";
export { clearTaskEvents, decodeTaskEvents, encodeTaskEvents, newTaskEvents, type TaskEvents } from "./task-events.js";
export { tracingHooks } from "./hooks.js";
export { TRACE_CONTEXT_BYTES, TRACE_FLAGS_AT, NO_TRACE_CONTEXT, isTraceContext, isSampled, traceparentOf, traceContextOf, hexOf } from "./trace-context.js";

// The stub runtime's public face: what a program written against it needs
// to attach as a task, call and serve port interfaces, and name its errors.
// Loading it loads no transport beyond the in-process bus: NATS is
// @hurdmesh/mach/nats and the gRPC edge @hurdmesh/mach/edge, each loaded by
// whoever picks it. What the repository's own packages share besides is
// @hurdmesh/mach/internal.
export { Errno, EWOULDBLOCK, HurdError, errnoName, fail, isErrno, type ErrnoName } from "./errors.js";
export type { Bus, BusHandler, BusSubscription, KeyValue } from "./bus/types.js";
export { FramedStoreLog, StoreFencedError, type LogMessage, type LogTransport, type StoreLog, type StoreLogImage } from "./bus/store-log.js";
export { MemoryLogBacking, MemoryStoreLog } from "./bus/memory-store-log.js";
export { LocalHub, LocalConnection } from "./bus/local.js";
export { Task, Notify, NoKernelError, MACH_PORT_NULL, MACH_PORT_DEAD, type AttachOptions, type MessageHandler, type RpcOptions } from "./task.js";
export { client, type Client, type CallOptions } from "./client.js";
export { serve, Server, type Context, type Impl, type NotifyHandler } from "./serve.js";
export { Rights, rightsOf, portAt, optionalRight, withRights } from "./rights.js";
export { SIG, NSIG, CLD, W, W_CONTINUED, WNOHANG, WUNTRACED, WSTOPPED, WCONTINUED, WNOWAIT, WEXITED, signalNumber, signalName } from "./signals.js";
export { createLogger, formatLogLine, logFormat, LOG_LEVELS, type Logger, type LogLevel, type LogSink } from "./log.js";
export { MsgType, PortRight, NotifyId, TaskSpecialPort, type Received, type ReceivedPort, type Message, type MsgPort } from "@hurdmesh/proto/hurd/mach/v1/mach";

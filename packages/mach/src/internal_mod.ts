// What the repository's own packages and services share about the runtime
// but a program written against it does not need (as nats.js's
// internal_mod.ts): the wire's subjects and codecs, the MIG facts of the
// generated definitions, the hooks telemetry plugs into. Imported as
// @hurdmesh/mach/internal; users of the runtime import @hurdmesh/mach.
export {
  subjectsOf,
  storeSubjectsOf,
  kernelLogSubjectsOf,
  parseSubject,
  permissionsOf,
  inboxOf,
  accountUpdateSubject,
  accountEventSubjects,
  ROOT,
  INBOX_PREFIX,
  ROOT_HURD,
  TASK_MAX_SUBS,
  LAUNCH_ANSWER_MS,
  KERNEL_ANSWER_MS,
  type SystemSubjects,
  type StoreSubjects,
  type ParsedSubject,
  type Role,
  type Permissions,
} from "./subjects.js";
export { matches } from "./bus/local.js";
export { methods, msgidOf, isSimple, type MethodDef, type MethodInfo, type ServiceDef } from "./msgid.js";
export { encode } from "./wire.js";
export { Deadlines, DEADLINE_GRAIN_MS } from "./deadlines.js";
export { clearTaskEvents, decodeTaskEvents, encodeTaskEvents, newTaskEvents, type TaskEvents } from "./task-events.js";
export { tracingHooks, metricsHooks, type RpcSeries } from "./hooks.js";
export { TRACE_CONTEXT_BYTES, TRACE_FLAGS_AT, NO_TRACE_CONTEXT, isTraceContext, isSampled, traceparentOf, traceContextOf, hexOf } from "./trace-context.js";
export { watchTraceOnBus, traceSubjects, TRACE_LEASE, type BusTraceWatch, type BusWatchOptions, type TaskCredentials } from "./trace-watch.js";
export { notifyReady, READY_FD_ENV } from "./ready.js";

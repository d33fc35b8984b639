import { Errno, HurdError, type Bus, type BusSubscription } from "@hurdmesh/mach";
import { methods, NO_TRACE_CONTEXT } from "@hurdmesh/mach/internal";
import { AttachRequest, CallReply, MachDefinition, TaskSpecialPort, Trap, type AttachReply } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { dispatch } from "./calls.js";
import type { Kernel } from "./kernel.js";
import { hurdName } from "./introspect.js";
import { reportSendFailed, send } from "./mqueue.js";
import { taskNatsCredentials, taskNatsRenew } from "./nats-users.js";
import { attach, authenticate, credit, taskGetSpecialPort, touch, type KTask } from "./task.js";

const MACH = methods(MachDefinition);
const ATTACH = MACH.byKey.get("attach")!.msgid;
const NATS_CREDENTIALS = MACH.byKey.get("taskNatsCredentials")!.msgid;
const NATS_RENEW = MACH.byKey.get("taskNatsRenew")!.msgid;

/** The reply a task gets when it attaches: what it needs to run. */
export function attachReply(k: Kernel, t: KTask, bus = false): AttachReply {
  const self = t.space.byPort.get(t.self);
  // The bootstrap port is held by the kernel (inherited from the parent or
  // set by the creator), not necessarily named in the task's space: give the
  // task a send right to it, as task_get_bootstrap_port would, unless it
  // already names the port.
  let bootstrap = 0;
  if (t.bootstrap) bootstrap = t.space.byPort.get(t.bootstrap)?.name ?? taskGetSpecialPort(k, t, 0, TaskSpecialPort.TASK_BOOTSTRAP_PORT);
  return {
    taskId: t.id,
    taskSelf: self ? self.name : 0,
    bootstrap,
    namespaceId: t.ns.id,
    system: k.config.system,
    leaseMs: k.config.leaseMs,
    hurd: hurdName(k, t.ns),
    // Only a task on the bus, and only with a log: the edge's streams end
    // at a takeover anyway, and a kernel that cannot fail over needs no
    // numbers (the embedded default sends none).
    trapSeq: bus && k.journal !== null,
    holder: t.attaches,
  };
}

/**
 * How a trap's answer goes back: a bus reply subject or a gRPC callback.
 * Absent for one-way traps. `applied`: the task's last numbered one-way trap
 * applied (a heartbeat asked as a request learns it: CallReply.applied).
 */
export type Answer = ((code: number, bytes: Uint8Array, detail: string, applied?: number) => void) | null;

const NONE = new Uint8Array(0);

/**
 * One trap, whichever carrier brought it (the bus or the gRPC edge): check
 * the token, then route the message or run the call. A trap with a bad token
 * is logged and dropped, never routed. `keepSink` keeps an edge task's
 * stream as its delivery path when it attaches through a trap. `replyTo`:
 * the bus subject the answer is asked on.
 */
export function handleTrap(k: Kernel, data: Uint8Array, answer: Answer, keepSink = false, traceparent?: string, replyTo?: string): void {
  let trap: Trap;
  try {
    trap = Trap.decode(data);
  } catch {
    k.stats.rejectedTraps++;
    k.log(`malformed trap (${data.length} bytes) dropped`);
    answer?.(Errno.MIG_BAD_ARGUMENTS, NONE, "malformed trap");
    return;
  }
  const t = authenticate(k, trap.task, trap.token);
  if (!t) {
    k.stats.rejectedTraps++;
    // A task that just ended may still have traps in flight: only a wrong
    // token for a live task is worth a log line.
    if (k.tasks.has(trap.task)) k.log(`trap for task ${trap.task} with a missing or wrong token rejected`);
    answer?.(Errno.KERN_INVALID_TASK, NONE, "unknown task or wrong token");
    return;
  }
  // With NATS users, a task asks for its answers on its own inbox. The
  // kernel may answer whatever it is asked, so a reply subject elsewhere
  // (another task's inbox) would have it write into another's replies.
  if (replyTo !== undefined && k.natsUsers !== null && !replyTo.startsWith(k.natsUsers.taskInbox(t))) {
    k.stats.rejectedTraps++;
    k.log(`trap of task ${t.id} asking for its answer outside its own inbox dropped`);
    return;
  }
  // What this trap makes the kernel do on its own (notifications: a task's
  // death, the last send right gone) links to the span that caused it: the
  // message's trace context, or a kernel call's (Call.trace_context; from an
  // older runtime without it, the call's bus header or gRPC metadata).
  const tracer = k.tracer;
  if (tracer !== null) {
    if (trap.send) tracer.cause = trap.send.traceContext;
    else if (trap.call && trap.call.traceContext.length !== 0) tracer.cause = trap.call.traceContext;
    else tracer.causeText = traceparent ?? "";
  }
  let applied = true;
  try {
    applied = runTrap(k, t, trap, answer, keepSink);
  } finally {
    // Logged once applied, after the clock and random bytes it drew
    // (journal.ts); a numbered trap dropped as a repeat or past a gap
    // changed nothing, and its replay would drop it again: not logged.
    if (k.journal !== null && applied) k.journal.trap(data, answer !== null, keepSink);
    if (tracer !== null) {
      tracer.cause = NO_TRACE_CONTEXT;
      tracer.causeText = "";
    }
  }
}

/** Applies a trap; false: a numbered one-way trap that was not the next one, dropped. */
function runTrap(k: Kernel, t: KTask, trap: Trap, answer: Answer, keepSink: boolean): boolean {
  if (trap.seq !== 0) {
    // Exactly once across a failover (docs/kernel-log.md, "Clients across a
    // failover"): the runtime sends a task's one-way traps again from the
    // last one applied; a repeat, or one past a gap, is dropped.
    if (trap.seq !== t.trapSeq + 1) {
      k.stats.droppedTraps++;
      answer?.(0, NONE, "", t.trapSeq);
      return false;
    }
    t.trapSeq = trap.seq;
  }
  if (trap.send) {
    touch(k, t);
    if (trap.credit) credit(k, t, trap.credit);
    try {
      send(k, t, trap.send);
      answer?.(0, NONE, "");
    } catch (e) {
      const he = HurdError.from(e);
      k.stats.sendFailures++;
      if (k.tracer !== null) k.tracer.refused(t, trap.send, he.code);
      if (answer) answer(he.code, NONE, he.message);
      else reportSendFailed(k, t, trap.send.seq, he.code, 0);
    }
    return true;
  }
  if (trap.call) {
    try {
      let out: Uint8Array;
      // attach (hurdmesh, 4902): opens delivery on the bus, or keeps an edge stream's.
      if (trap.call.msgid === ATTACH) {
        let req: AttachRequest;
        try {
          req = AttachRequest.decode(trap.call.request);
        } catch (e) {
          throw new HurdError(Errno.MIG_BAD_ARGUMENTS, "malformed attach request", { cause: e });
        }
        attach(k, t, keepSink ? t.sink : null, req.window);
        out = MachDefinition.methods.attach.responseType.encode(attachReply(k, t, !keepSink)).finish();
      } else if (trap.call.msgid === NATS_CREDENTIALS || trap.call.msgid === NATS_RENEW) {
        // A task's NATS user, on the bus only: an edge client is never handed the fabric.
        if (keepSink) throw new HurdError(Errno.MIG_BAD_ID, "NATS credentials are not served at the edge");
        touch(k, t);
        if (trap.credit) credit(k, t, trap.credit);
        out = trap.call.msgid === NATS_RENEW ? taskNatsRenew(k, t) : taskNatsCredentials(k, trap.call.request);
      } else {
        touch(k, t);
        if (trap.credit) credit(k, t, trap.credit);
        out = dispatch(k, t, trap.call.msgid, trap.call.request);
      }
      answer?.(0, out, "");
    } catch (e) {
      const he = HurdError.from(e);
      answer?.(he.code, NONE, he.message);
    }
    return true;
  }
  touch(k, t);
  if (trap.credit) credit(k, t, trap.credit);
  // A heartbeat asks nothing, but a caller that waits for an answer (a bus
  // request, the edge's SendTrap) gets one, or its call stays open until
  // its deadline; asked on the bus, it is how the runtime learns which of
  // its numbered traps were applied.
  answer?.(0, NONE, "", t.trapSeq);
  return true;
}

/**
 * The kernel's bus side: every trap arrives on hurd.<system>.kernel.trap,
 * carries the task's id and token, and is routed (sends) or answered (calls).
 */
export class TrapServer {
  private sub: BusSubscription | null = null;
  readonly subject: string;
  constructor(
    private readonly kernel: Kernel,
    private readonly bus: Bus,
  ) {
    this.subject = kernel.subjects.trap;
    kernel.useBus(bus);
  }

  start(): void {
    this.sub = this.bus.subscribe(this.subject, (_s, data, reply, traceparent) =>
      handleTrap(this.kernel, data, reply ? (code, bytes, detail, applied) => this.answer(reply, code, bytes, detail, applied) : null, false, traceparent, reply),
    );
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }

  private answer(reply: string, code: number, bytes: Uint8Array, detail: string, applied = 0): void {
    if (this.bus.closed) return;
    this.bus.publish(reply, CallReply.encode({ code, reply: bytes, detail, applied }).finish());
  }
}

// ipc_mqueue: a message queued on its port, or handed straight to the
// receiver when it has credit and nothing waits before it; a full queue
// holds senders back until their timeout; queued messages are pushed out as
// credit comes back, port by port. Delivery copies the message out into the
// receiver's space (message.ts) and hands the encoded Delivery to its sink
// or its bus subject. This is the hot path: every routed message passes
// send, enqueue, deliver and emit.
import { Errno, HurdError } from "@hurdmesh/mach";
import { encode, NO_TRACE_CONTEXT } from "@hurdmesh/mach/internal";
import { Delivery, MsgType, type Message, type Received, type ReceivedPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { commit, copyinMessage, copyoutLogged, copyoutRight, rollback, undoCopyouts } from "./message.js";
import { MACH_PORT_DEAD, MOVED, R_DEAD, R_NAME, R_SEND, R_SEND_ONCE, type Blocked, type KMsg, type KTask, type Port } from "./objects.js";
import { destroyMsg, releaseRight, releaseSend } from "./port.js";
import { chargeQueued, unchargeQueued } from "./quota.js";
import { err, type KernelState } from "./state.js";

/**
 * mach_msg (MACH_SEND_MSG): translates the header and body rights out of
 * the sender's space (all or nothing), then queues or delivers. Throws a
 * HurdError, with the sender's space as it was, when the message cannot be
 * sent now; a message that waits for room and times out is failed through
 * `failSend`. `kernelReply`: a send-once right the kernel made to a reply
 * port of its own (gateway.ts), the message's reply right instead of one
 * from the sender's space.
 */
export function send(k: KernelState, t: KTask, m: Message, kernelReply: Port | null = null): void {
  let msg: KMsg;
  try {
    msg = copyinMessage(k, t, m);
    if (kernelReply !== null) {
      msg.reply = kernelReply;
      msg.replyType = R_SEND_ONCE;
    }
    const dest = msg.dest;
    if (msg.destType === R_SEND && !dest.kobject && dest.msgcount >= dest.qlimit) {
      // A full queue: wait for room up to the sender's timeout (send-once
      // messages, replies among them, are never held back, as in Mach).
      if (m.timeoutMs === 0) throw err("MACH_SEND_TIMED_OUT", `queue full (${dest.qlimit})`);
      if ((dest.blocked?.length ?? 0) >= k.config.maxBlockedSenders) throw err("MACH_SEND_NO_BUFFER", `${k.config.maxBlockedSenders} senders already wait on this port`);
      chargeQueued(k, msg, t);
      commit(k);
      const waiting = msg;
      const w: Blocked = { msg: waiting, timer: null, timeoutMs: m.timeoutMs };
      // A standby arms no timer: its leader's firing is in the log (timeOut from replay.ts).
      if (k.journal === null || !k.journal.replica) armBlocked(k, dest, w);
      if (k.journal !== null) k.journal.blocked(dest, w);
      if (k.tracer !== null) k.tracer.sent(msg, m);
      (dest.blocked ??= []).push(w);
      t.sent++;
      return;
    }
    // A message that will wait in its queue is charged (quota.ts); one
    // handed straight to its receiver costs nothing to account.
    if (dest.kobject === null && !(dest.receiver !== null && dest.receiver.credit > 0 && dest.msgcount === 0))
      chargeQueued(k, msg, msg.destType === R_SEND_ONCE && dest.receiver !== null ? dest.receiver : t);
  } catch (e) {
    rollback(k);
    // A hurd that kills on a limit ends the task now that its send is undone.
    if (k.offender !== null) k.killOffender();
    throw e;
  }
  commit(k);
  t.sent++;
  k.stats.sent++;
  if (k.tracer !== null) k.tracer.sent(msg, m);
  enqueue(k, msg.dest, msg);
}

/** Fails a blocked sender once its timeout passes (a standby taking over arms those it holds). */
export function armBlocked(k: KernelState, dest: Port, w: Blocked): void {
  w.timer = setTimeout(() => {
    if (timeOut(k, dest, w) && k.journal !== null) k.journal.timedOut(w.msg);
  }, w.timeoutMs);
}

/** A blocked sender's timeout fired: it leaves the queue's waiters and fails (false: it had got in meanwhile). */
export function timeOut(k: KernelState, dest: Port, w: Blocked): boolean {
  const b = dest.blocked;
  const i = b ? b.indexOf(w) : -1;
  if (i < 0) return false;
  b!.splice(i, 1);
  if (b!.length === 0) dest.blocked = null;
  failSend(k, w.msg, Errno.MACH_SEND_TIMED_OUT);
  return true;
}

/**
 * A message that had left its sender cannot be delivered: the rights the
 * sender moved go back to it where it still lives (Mach's pseudo-receive),
 * those the message copied or made are released, its queued bytes are given
 * back, and the sender hears of it on its delivery subject.
 */
export function failSend(k: KernelState, m: KMsg, code: number): void {
  k.stats.sendFailures++;
  if (m.charged !== 0) unchargeQueued(m);
  if (k.tracer !== null) k.tracer.failed(m, code);
  const t = m.sender;
  if (!t || !t.active) {
    destroyMsg(k, m);
    return;
  }
  // A destination right the sender moved was its own: it goes back with the
  // rest (Mach's pseudo-receive); one copied or made for the message is released.
  if (m.destType === R_SEND) {
    if (m.destMoved) copyoutRight(k, t, R_SEND, m.dest);
    else releaseSend(k, m.dest);
  } else m.dest.sorights--;
  let replyName = 0;
  // A kernel reply port (gateway.ts) hears of the failure itself; the
  // sender never held a right to it.
  const kr = m.reply !== null && m.reply.kobject?.kind === "reply" ? m.reply.kobject : null;
  if (kr !== null) m.reply!.sorights--;
  else if (m.reply) replyName = copyoutRight(k, t, m.replyType, m.reply);
  if (m.rights) for (const r of m.rights) if (r.type !== R_NAME) r.value === MOVED ? copyoutRight(k, t, r.type, r.port) : releaseRight(k, r);
  if (kr !== null) kr.sendFailed(code);
  else reportSendFailed(k, t, m.seq, code, replyName);
}

/** Tells a sender that its message `seq` failed with `code` (on its delivery subject or stream). */
export function reportSendFailed(k: KernelState, t: KTask, seq: number, code: number, reply: number): void {
  if (!t.active) return;
  const bytes = Delivery.encode({ failed: { seq, code, reply }, seq: 0 }).finish();
  tell(k, t, bytes);
}

/** ipc_mqueue_send: delivered at once if the receiver can take it, else queued (bounded by qlimit at send). */
export function enqueue(k: KernelState, p: Port, m: KMsg): void {
  if (!p.active) {
    destroyMsg(k, m);
    return;
  }
  if (p.kobject) {
    if (p.kobject.kind === "reply") p.kobject.received(m);
    else kobjectMessage(k, m);
    return;
  }
  const t = p.receiver;
  if (t && t.credit > 0 && p.msgcount === 0) {
    deliver(k, t, p, m);
    return;
  }
  p.push(m);
  if (t && !p.ready) {
    p.ready = true;
    t.ready.push(p);
  }
}

/**
 * ipc_kobject_server: kernel objects (task and host ports) answer no
 * messages here, the kernel's calls are traps. The sender gets MIG_BAD_ID
 * on its reply right, as a MIG server answers an id it does not know.
 */
function kobjectMessage(k: KernelState, m: KMsg): void {
  const reply = m.reply;
  const replyType = m.replyType;
  m.reply = null;
  destroyMsg(k, m);
  if (reply && replyType === R_SEND_ONCE) {
    const r: KMsg = { dest: reply, destType: R_SEND_ONCE, destMoved: false, reply: null, replyType: 0, id: m.id + 100, code: Errno.MIG_BAD_ID, body: new Uint8Array(0), rights: null, sender: null, kernel: false, seq: 0, traceContext: NO_TRACE_CONTEXT, trace: null, payer: null, charged: 0 };
    enqueue(k, reply, r);
  } else if (reply && replyType === R_SEND) releaseSend(k, reply);
}

/** Pushes queued messages to a task while it has credit, port by port. */
export function drain(k: KernelState, t: KTask): void {
  while (t.credit > 0 && t.readyHead < t.ready.length) {
    const p = t.ready[t.readyHead]!;
    if (p.receiver !== t || !p.active) {
      t.readyHead++;
      continue;
    }
    const m = p.shift();
    if (!m) {
      p.ready = false;
      t.readyHead++;
      continue;
    }
    admitBlocked(k, p);
    deliver(k, t, p, m);
  }
  if (t.readyHead === t.ready.length) {
    t.ready.length = 0;
    t.readyHead = 0;
  } else if (t.readyHead > 256) {
    t.ready = t.ready.slice(t.readyHead);
    t.readyHead = 0;
  }
}

/** Room was made on a port: waiting senders get in, oldest first. */
export function admitBlocked(k: KernelState, p: Port): void {
  const b = p.blocked;
  if (!b) return;
  while (b.length > 0 && p.msgcount < p.qlimit) {
    const w = b.shift()!;
    if (w.timer) clearTimeout(w.timer);
    k.stats.sent++;
    p.push(w.msg);
    if (p.receiver && !p.ready) {
      p.ready = true;
      p.receiver.ready.push(p);
    }
  }
  if (b.length === 0) p.blocked = null;
}

/** Copies a message out into the receiver's space and hands it to the task. */
function deliver(k: KernelState, t: KTask, p: Port, m: KMsg): void {
  k.delivering++;
  try {
    deliverNow(k, t, p, m);
  } finally {
    k.delivering--;
  }
  if (k.delivering === 0 && k.drainLater.size > 0) {
    const later = [...k.drainLater];
    k.drainLater.clear();
    for (const u of later) if (u.active && u.credit > 0) drain(k, u);
  }
}

/** ipc_kmsg_copyout and the hand-over: the receiver learns the message under its own names. */
function deliverNow(k: KernelState, t: KTask, p: Port, m: KMsg): void {
  const local = t.space.byPort.get(p);
  if (!local) {
    destroyMsg(k, m);
    return;
  }
  p.seqno++;
  const mark = k.outLog.length;
  let replyName = 0;
  let replyType = MsgType.MSG_TYPE_UNSPECIFIED;
  if (m.reply) {
    replyName = copyoutLogged(k, t, m.replyType, m.reply, -1);
    replyType = m.replyType as MsgType;
  } else if (m.replyType === R_DEAD) replyName = MACH_PORT_DEAD;
  let ports: ReceivedPort[] = [];
  if (m.rights) {
    ports = new Array<ReceivedPort>(m.rights.length);
    for (let i = 0; i < m.rights.length; i++) {
      const r = m.rights[i]!;
      if (r.type === R_NAME) ports[i] = { name: r.value, type: MsgType.MSG_TYPE_PORT_NAME };
      else if (r.type === R_DEAD) ports[i] = { name: MACH_PORT_DEAD, type: MsgType.MSG_TYPE_MOVE_SEND };
      else ports[i] = { name: copyoutLogged(k, t, r.type, r.port!, i), type: r.type as MsgType };
    }
  }
  const rec: Received = {
    local: local.name,
    reply: replyName,
    replyType,
    id: m.id,
    body: m.body,
    ports,
    kernel: m.kernel,
    sender: m.sender ? m.sender.id : 0,
    seqno: p.seqno,
    traceContext: m.traceContext,
    code: m.code,
  };
  if (k.tracer !== null) k.tracer.delivered(m, t, rec);
  // Numbered and kept only by a logged kernel, for a new leader to send again (redeliver.ts).
  const unpaid = t.unpaid;
  let bytes: Uint8Array;
  try {
    bytes = encode(Delivery, { message: rec, seq: unpaid !== null ? t.deliverySeq + 1 : 0 });
    emit(k, t, bytes, local.name);
  } catch (e) {
    // The carrier refused it (a bus that cannot take it, a connection
    // closing): all or nothing, the receiver keeps no name and no credit
    // is spent, and the message fails back to its sender with its rights
    // and its destination right, as one that timed out does.
    undoCopyouts(k, t, m, mark);
    p.seqno--;
    k.log(`delivery to task ${t.id} failed: ${(e as Error).message}`);
    failSend(k, m, HurdError.from(e).code === Errno.MACH_SEND_NO_BUFFER ? Errno.MACH_SEND_NO_BUFFER : Errno.MACH_SEND_INVALID_DEST);
    return;
  }
  k.outLog.length = mark;
  if (unpaid !== null) {
    t.deliverySeq++;
    unpaid.keep(bytes, local.name);
  }
  if (m.charged !== 0) unchargeQueued(m);
  t.credit--;
  t.received++;
  k.stats.delivered++;
  // The destination right in flight is released only now, after the
  // message left: a no-senders it triggers must not overtake it.
  if (m.destType === R_SEND) releaseSend(k, p);
  else if (m.destType === R_SEND_ONCE) p.sorights--;
}

/** Hands encoded bytes to a task: its stream at the edge, or its bus subject. Throws when the carrier refuses them. */
export function emit(k: KernelState, t: KTask, bytes: Uint8Array, local: number): void {
  if (t.sink) t.sink(bytes, local);
  else if (k.bus && !k.bus.closed) k.bus.publish(t.subject + local, bytes);
}

/** emit for what the kernel tells a task of its own accord (a failed send, its end): a refusal is only logged. */
export function tell(k: KernelState, t: KTask, bytes: Uint8Array): void {
  try {
    emit(k, t, bytes, 0);
  } catch (e) {
    k.log(`cannot tell task ${t.id}: ${(e as Error).message}`);
  }
}

import type { Port } from "./port.js";
import type { KTask } from "./task.js";

/** How a right travels inside the kernel. */
export const R_SEND = 17;
export const R_SEND_ONCE = 18;
export const R_RECEIVE = 16;
/** A right whose port was dead when it was copied in: arrives as MACH_PORT_DEAD. */
export const R_DEAD = 0;
/** A plain integer (MACH_MSG_TYPE_PORT_NAME): no right moves. */
export const R_NAME = 15;

export interface KRight {
  type: number;
  port: Port | null;
  /** For R_NAME: the integer itself. */
  value: number;
}

/** A message inside the kernel: its rights are the kernel's until delivered. */
export interface KMsg {
  dest: Port;
  /** R_SEND or R_SEND_ONCE: the right held on dest while in flight. */
  destType: number;
  /** The sender moved its own destination right (MOVE_SEND): a failed send gives it back. */
  destMoved: boolean;
  reply: Port | null;
  /** R_SEND, R_SEND_ONCE or R_DEAD (reply was a dead name). */
  replyType: number;
  id: number;
  code: number;
  body: Uint8Array;
  rights: KRight[] | null;
  sender: KTask | null;
  /** Set only for notifications the kernel generates. */
  kernel: boolean;
  seq: number;
  /** Binary W3C trace context (empty: none). */
  traceContext: Uint8Array;
  /** The kernel tracer's bookkeeping while the message is in flight (null untraced). */
  trace: unknown;
}

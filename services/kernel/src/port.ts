import type { KMsg } from "./message.js";
import type { KTask } from "./task.js";
import type { Namespace } from "./namespace.js";
import type { Entry } from "./space.js";

/** What a kernel-held port stands for (its receive right is the kernel's). */
export type KObject = { kind: "task"; task: KTask } | { kind: "host"; ns: Namespace };

/** A waiting sender on a full queue (MACH_SEND_TIMEOUT). */
export interface Blocked {
  msg: KMsg;
  timer: NodeJS.Timeout | null;
}

let nextPortId = 1;

/**
 * A Mach port: one receive right, counted send and send-once rights, a
 * bounded queue, and the notification requests registered on it.
 */
export class Port {
  readonly id = nextPortId++;
  active = true;
  /** The task whose space holds the receive right; null while in transit or kernel-held. */
  receiver: KTask | null = null;
  kobject: KObject | null = null;
  /** Send rights: one per space that holds one, plus one per right in flight. */
  srights = 0;
  sorights = 0;
  mscount = 0;
  seqno = 0;
  qlimit: number;
  /** Messages waiting for the receiver (a FIFO with a head index). */
  queue: KMsg[] = [];
  qhead = 0;
  blocked: Blocked[] | null = null;
  /** In the receiver's ready list (it has queued messages and waits for credit). */
  ready = false;
  /** no-senders request: the send-once right's port and the sync threshold. */
  nsrequest: Port | null = null;
  /** port-destroyed request. */
  pdrequest: Port | null = null;
  /** Entries (in any space) that hold a dead-name request on this port. */
  dnrequests: Set<Entry> | null = null;
  /** The port set the receive right is a member of. */
  pset: Entry | null = null;
  /**
   * The kernel tracer's note on a send-once reply port whose request was
   * delivered (which request, its span): a field, not a map, because every
   * traced RPC sets it and its reply reads it.
   */
  tracePending: unknown = null;

  constructor(qlimit: number) {
    this.qlimit = qlimit;
  }

  get msgcount(): number {
    return this.queue.length - this.qhead;
  }

  push(m: KMsg): void {
    this.queue.push(m);
  }

  shift(): KMsg | undefined {
    if (this.qhead >= this.queue.length) return undefined;
    const m = this.queue[this.qhead]!;
    this.queue[this.qhead++] = undefined as unknown as KMsg;
    if (this.qhead === this.queue.length) {
      this.queue.length = 0;
      this.qhead = 0;
    } else if (this.qhead > 64 && this.qhead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qhead);
      this.qhead = 0;
    }
    return m;
  }

  /** Takes every queued message (for destruction). */
  takeAll(): KMsg[] {
    const all = this.queue.slice(this.qhead);
    this.queue = [];
    this.qhead = 0;
    return all;
  }
}

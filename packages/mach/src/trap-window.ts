// A task's numbered one-way traps not yet known to be applied (AttachReply.
// trap_seq: a kernel that keeps its state in a log and may fail over). A
// one-way trap published while no kernel leads goes to nobody and nobody
// says so; the runtime keeps each one here until a heartbeat asked as a
// request (CallReply.applied) says the kernel applied it, and sends again,
// in order, every one after the last applied (go-back-N: the kernel drops a
// trap that is not its next one, so one past a gap is never applied before
// the gap is filled). Bounded: past MAX_TRAPS or MAX_BYTES a send fails with
// MACH_SEND_NO_BUFFER instead of growing through a long outage.
import { Errno, HurdError } from "./errors.js";

/** Traps kept at most: about two seconds of a busy task's sends, longer than a takeover. */
export const MAX_TRAPS = 65_536;
/** Bytes kept at most (as NatsBus's MAX_OFFLINE_BYTES). */
export const MAX_BYTES = 16 * 1024 * 1024;

export class TrapWindow {
  /** The last sequence number handed out (the next trap's is this + 1). */
  last = 0;
  /** The highest the kernel said it applied. */
  applied = 0;
  private seqs: number[] = [];
  private traps: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;

  /** Traps kept (sent, not yet known applied). */
  get size(): number {
    return this.seqs.length - this.head;
  }

  /** The next sequence number; throws MACH_SEND_NO_BUFFER when the window is full. */
  next(): number {
    if (this.size >= MAX_TRAPS || this.bytes >= MAX_BYTES)
      throw new HurdError(Errno.MACH_SEND_NO_BUFFER, `${this.size} one-way traps (${this.bytes} bytes) not yet applied by a kernel: none has led for too long`);
    return this.last + 1;
  }

  /** Keeps trap `seq` (the one next() gave) until it is applied. */
  keep(seq: number, bytes: Uint8Array): void {
    this.last = seq;
    this.seqs.push(seq);
    this.traps.push(bytes);
    this.bytes += bytes.length;
  }

  /**
   * The kernel applied every trap up to `seq`: forgets them. Returns
   * whether any trap sent no later than `sentBefore` is still kept: the
   * kernel has seen those (the request came after them on the same
   * connection) and did not apply them, so they were lost.
   */
  ack(seq: number, sentBefore: number): boolean {
    if (seq > this.applied) this.applied = seq;
    while (this.head < this.seqs.length && this.seqs[this.head]! <= seq) {
      this.bytes -= this.traps[this.head]!.length;
      this.traps[this.head] = EMPTY;
      this.head++;
    }
    // Compacted once half the arrays are spent: O(1) amortized.
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.traps = this.traps.slice(this.head);
      this.head = 0;
    }
    return this.head < this.seqs.length && this.seqs[this.head]! <= sentBefore;
  }

  /** Every kept trap, oldest first: to be sent again. */
  *kept(): Iterable<Uint8Array> {
    for (let i = this.head; i < this.traps.length; i++) yield this.traps[i]!;
  }
}

const EMPTY = new Uint8Array(0);

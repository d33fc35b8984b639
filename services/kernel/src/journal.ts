// The leading kernel's side of its log (docs/kernel-log.md): every input it
// applies is recorded as it is applied, a burst of them is appended to the
// log in one JetStream write, and nothing the burst made the kernel say (a
// reply, a delivery, a notification, on the bus) leaves before that write is
// acknowledged. The kernel keeps routing while a write is in flight; what it
// does meanwhile is the next burst. A write refused because the log moved on
// without this kernel (Nats-Expected-Last-Sequence), or made after this
// kernel's lease ran out by its own clock, deposes it: nothing it held back
// is ever sent, and the process is told to stop.
import { Errno, HurdError, type Bus, type BusHandler, type BusSubscription } from "@hurdmesh/mach";
import { BurstWriter, f64, Rec } from "./log-format.js";
import { randomBytes } from "node:crypto";
import type { Blocked, KMsg, Port } from "./objects.js";
import type { KernelJournal } from "./state.js";

/** Where bursts go: JetStreamLog on NATS (append conditioned on the expected last sequence). */
export interface LogWriter {
  append(data: Uint8Array, expected: number): Promise<number>;
  /** After an append whose answer was lost: where it was stored, or null if it was not (JetStreamLog.landed). */
  landed?(data: Uint8Array, expected: number): Promise<number | null>;
}

export interface JournalOptions {
  /** The log's last sequence when this kernel began to lead (its own TAKEOVER entry's, or 0). */
  lastSeq: number;
  /** Whether the kernel still holds its lease by its own clock (leadership.ts): checked before every append. */
  leading(): boolean;
  /** A lapsed lease: resolves true once it is renewed (no other kernel took over), false once lost. Absent: a lapse deposes. */
  regain?(): Promise<boolean>;
  /** The kernel is deposed (or the log failed): nothing more is written or sent; the process stops. */
  deposed(e: Error): void;
  /** The largest burst appended as one message (the bus's max_payload, less room for headers). */
  maxBurstBytes?: number;
  /**
   * Everything recorded is in the log and nothing is being written: the
   * kernel's state is its log's up to lastSeq (a leader takes its own
   * snapshots at such a moment, failover.ts). Called after each write.
   */
  written?(): void;
}

/** A publish held back, or an answer that leaves another way (the gRPC edge's callbacks and stream writes). */
type Held = [subject: string, data: Uint8Array, reply: string | undefined, traceparent: string | undefined] | (() => void);

export class Journal implements KernelJournal {
  readonly replica = false;
  /** The log's last sequence this kernel wrote or started from. */
  lastSeq: number;
  /** Set once deposed: every later output is dropped. */
  failed: Error | null = null;
  /** Counters for tests and the bench. */
  readonly stats = { appends: 0, records: 0, bytes: 0 };
  private entryNow = 0;
  private loggedNow = 0;
  private burst = new BurstWriter();
  private held: Held[] = [];
  private inflight = false;
  private scheduled = false;
  private readonly maxBurst: number;
  private readonly flushNow = () => void this.flush();
  private waiters: (() => void)[] = [];

  constructor(
    private readonly log: LogWriter,
    private readonly bus: Bus,
    private readonly o: JournalOptions,
  ) {
    this.lastSeq = o.lastSeq;
    this.maxBurst = o.maxBurstBytes ?? 512 * 1024;
  }

  /** The clock as of the last entry written (its last CLOCK record): what a standby's clock reads after it. */
  get clock(): number {
    return this.loggedNow;
  }

  /** Nothing recorded and unwritten: the state is the log's up to lastSeq. */
  get idle(): boolean {
    return this.failed === null && !this.inflight && this.burst.records === 0;
  }

  // ---------------------------------------------------------------- KernelJournal

  now(): number {
    if (this.entryNow === 0) this.entryNow = Date.now();
    return this.entryNow;
  }

  random(n: number): Buffer<ArrayBuffer> {
    const b = randomBytes(n);
    // Copied: the token pool is wiped as tokens are handed out.
    this.burst.add(Rec.RAND, Buffer.from(b), -1);
    return b;
  }

  blocked(_dest: Port, _w: Blocked): void {}

  timedOut(m: KMsg): void {
    const p = Buffer.allocUnsafe(12);
    p.writeUInt32LE(m.sender?.id ?? 0, 0);
    p.writeDoubleLE(m.seq, 4);
    this.record(Rec.TIMEOUT, p);
  }

  eventsSent(): void {
    this.record(Rec.EVENTS, null);
  }

  /** A trap the kernel applied (trap.ts, once it is applied). */
  trap(data: Uint8Array, answered: boolean, keepSink: boolean): void {
    this.record(Rec.TRAP, data, (answered ? 1 : 0) | (keepSink ? 2 : 0));
  }

  /** A sweep ran: logged if it changed something, else its clock reading is dropped. */
  swept(ended: number): void {
    if (ended > 0) this.record(Rec.SWEEP, null);
    else this.entryNow = 0;
  }

  /** A boot task was made (Kernel.bootTask). */
  booted(name: string, hostPriv: boolean, ns: number): void {
    this.record(Rec.BOOT, Buffer.from(JSON.stringify({ name, hostPriv, ns })));
  }

  /** A boot task's NATS user was minted (its key's random bytes are already in the burst). */
  userMinted(taskId: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32LE(taskId, 0);
    this.record(Rec.USER, p);
  }

  /** The edge changed a task outside a trap (edge.ts). */
  edge(op: number, taskId: number, arg: number): void {
    const p = Buffer.allocUnsafe(9);
    p[0] = op;
    p.writeUInt32LE(taskId, 1);
    p.writeUInt32LE(arg >>> 0, 5);
    this.record(Rec.EDGE, p);
  }

  /** A boot claim's effect (boot-claim.ts). */
  claim(op: number, payload: Uint8Array | null): void {
    this.record(Rec.CLAIM, payload, op);
  }

  after(f: () => void): void {
    if (this.failed !== null) return;
    this.held.push(f);
    this.schedule();
  }

  /** The bus is back after an outage: leases restart (task.ts, restartLeases) at `now`. */
  resumed(): void {
    this.record(Rec.RESUMED, null);
  }

  /** This kernel took over: its leases restart (replay.ts, freshLeases) at `now`. */
  tookOver(): void {
    this.record(Rec.TAKEOVER, null);
  }

  private record(kind: Rec, payload: Uint8Array | null, flags = -1): void {
    if (this.entryNow !== 0 && this.entryNow !== this.loggedNow) {
      this.burst.add(Rec.CLOCK, f64(this.entryNow));
      this.loggedNow = this.entryNow;
    }
    this.entryNow = 0;
    this.burst.add(kind, payload, flags);
    this.schedule();
  }

  // ---------------------------------------------------------------- group commit

  /** Resolves once everything recorded so far is in the log (or the journal failed). */
  synced(): Promise<void> {
    if (this.failed !== null || (!this.inflight && this.burst.records === 0)) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** The bus the kernel speaks on while it leads: what it publishes waits for the burst that caused it. */
  heldBus(): Bus {
    return new HeldBus(this.bus, this);
  }

  /**
   * A publish of the kernel's: after the burst that caused it is written.
   * Never at once, even with nothing unwritten: a trap's answer is made
   * before the trap's own record (handleTrap records it once applied), so
   * it waits for the end of this turn, when that record is in the burst.
   */
  output(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    if (this.failed !== null) return;
    this.held.push([subject, data, reply, traceparent]);
    this.schedule();
  }

  private schedule(): void {
    if (this.inflight || this.scheduled) return;
    this.scheduled = true;
    // After this turn of the event loop: every trap of the socket read in
    // hand (and the microtask that sends their nested-task events) joins it.
    setImmediate(this.flushNow);
  }

  /** Appends the burst gathered so far, then sends what it held back; repeats while traps arrived meanwhile. */
  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.failed === null && this.burst.records > 0) {
      this.inflight = true;
      const held = this.held;
      this.held = [];
      const records = this.burst.records;
      const data = this.burst.take();
      try {
        // A lapsed lease (the key could not be written) holds the write until it is renewed or lost.
        if (!this.o.leading() && !(this.o.regain && (await this.o.regain()))) throw new HurdError(Errno.EPERM, "kernel log: this kernel's lease ran out before its write: another kernel may lead");
        for (let at = 0; at < data.length; ) {
          // A burst past the bus's largest message goes as several, each chained on the one before.
          const end = this.cut(data, at);
          this.lastSeq = await this.appendLeading(at === 0 && end === data.length ? data : withVersion(data, at, end));
          this.stats.appends++;
          at = end;
        }
      } catch (e) {
        this.depose(e as Error);
        this.wake();
        return;
      } finally {
        this.inflight = false;
      }
      this.stats.records += records;
      this.stats.bytes += data.length;
      this.release(held);
    }
    // Outputs gathered with no record of their own (a rejected trap's answer) go now.
    if (this.failed === null && !this.inflight && this.burst.records === 0 && this.held.length > 0) {
      const held = this.held;
      this.held = [];
      this.release(held);
    }
    this.wake();
    if (this.idle) this.o.written?.();
  }

  /**
   * One append, sent again while the log has no server to take it (a
   * NATS node lost, the stream's replicas electing a leader: the entry is
   * stored nowhere, LogUnavailableError) and this kernel still leads, or
   * leads again once its lapsed lease is renewed: so a node's loss costs
   * the hurd a pause, not its kernel.
   */
  private async appendLeading(data: Uint8Array): Promise<number> {
    let unsure = false;
    for (;;) {
      try {
        if (unsure && this.log.landed) {
          // The last try's answer was lost: stored or not, the log says (and may not say yet: asked again).
          const at = await this.log.landed(data, this.lastSeq);
          if (at !== null) return at;
        }
        unsure = false;
        return await this.log.append(data, this.lastSeq);
      } catch (e) {
        const err = e as { notStored?: boolean; code?: number };
        // Not stored (no server holds the log), or unknown (a timeout: read back before sending again); anything else (a fence is EPERM) deposes.
        if (err.notStored !== true) {
          if (err.code !== Errno.EIO || !this.log.landed) throw e;
          unsure = true;
        }
        await new Promise((r) => setTimeout(r, 100));
        if (!this.o.leading() && !(this.o.regain && (await this.o.regain()))) throw e;
      }
    }
  }

  private release(held: Held[]): void {
    for (const h of held) {
      try {
        if (typeof h === "function") h();
        else this.bus.publish(h[0], h[1], h[2], h[3]);
      } catch {
        // The bus (or an edge stream) closing under a delivery: the receiver hears nothing, as when it is sent unlogged.
      }
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Where the next message of a burst ends: whole records, at most maxBurst bytes (one record alone may be more). */
  private cut(data: Uint8Array, from: number): number {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let at = from === 0 ? 1 : from;
    const start = at;
    while (at < b.length) {
      const len = 5 + b.readUInt32LE(at + 1);
      if (at > start && at + len - start > this.maxBurst) break;
      at += len;
    }
    return at;
  }

  private depose(e: Error): void {
    if (this.failed !== null) return;
    this.failed = e;
    this.held = [];
    this.o.deposed(e);
  }
}

/** A burst's records [from, end) as an entry of its own (the version byte first). */
function withVersion(data: Uint8Array, from: number, end: number): Uint8Array {
  const s = from === 0 ? 1 : from;
  const out = new Uint8Array(1 + end - s);
  out[0] = data[0]!;
  out.set(data.subarray(s, end), 1);
  return out;
}

/** A bus that passes everything on to another: a wrapper overrides what it changes (publish, for the journal and the test fault). */
export class PassBus implements Bus {
  readonly kind: "local" | "nats";
  constructor(protected readonly bus: Bus) {
    this.kind = bus.kind;
  }
  get closed(): boolean {
    return this.bus.closed;
  }
  get maxPayload(): number | undefined {
    return this.bus.maxPayload;
  }
  publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    this.bus.publish(subject, data, reply, traceparent);
  }
  subscribe(subject: string, handler: BusHandler): BusSubscription {
    return this.bus.subscribe(subject, handler);
  }
  request(subject: string, data: Uint8Array, timeoutMs: number, traceparent?: string): Promise<Uint8Array> {
    return this.bus.request(subject, data, timeoutMs, traceparent);
  }
  flush(): Promise<void> {
    return this.bus.flush();
  }
  close(): Promise<void> {
    return this.bus.close();
  }
}

/** The real bus, but publishes go through the journal (held until their burst is written). */
class HeldBus extends PassBus {
  constructor(
    bus: Bus,
    private readonly journal: Journal,
  ) {
    super(bus);
  }
  override publish(subject: string, data: Uint8Array, reply?: string, traceparent?: string): void {
    this.journal.output(subject, data, reply, traceparent);
  }
}

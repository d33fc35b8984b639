// A store log kept in this process (store-log.ts): the messages live in a
// MemoryLogBacking, and each MemoryStoreLog over it plays one process of a
// server, so tests run a restart, a takeover and a fenced old writer
// without a nats-server. Nothing survives this process.
import { FramedStoreLog, StoreFencedError, type LogMessage, type LogTransport } from "./store-log.js";

/** The stored messages (what JetStream's stream is to jetstream-store-log.ts). */
export class MemoryLogBacking {
  /** The last sequence handed out; it goes on across drops, as a stream's does. */
  seq = 0;
  msgs: LogMessage[] = [];
  constructor(readonly maxMessage = 1024 * 1024) {}
}

class MemoryTransport implements LogTransport {
  constructor(private readonly b: MemoryLogBacking) {}
  get maxMessage(): number {
    return this.b.maxMessage;
  }
  async publish(key: string, data: Uint8Array, expected: number | null): Promise<number> {
    // A turn, as a write to a server takes: concurrent writers interleave as they would.
    await new Promise((r) => setImmediate(r));
    if (data.length > this.b.maxMessage) throw new RangeError(`message of ${data.length} bytes over the maximum ${this.b.maxMessage}`);
    if (expected !== null && expected !== this.b.seq) throw new StoreFencedError(expected, this.b.seq, `wrong last sequence: ${this.b.seq}`);
    const seq = ++this.b.seq;
    this.b.msgs.push({ seq, key, data: data.slice() });
    return seq;
  }
  async readAll(): Promise<LogMessage[]> {
    return [...this.b.msgs];
  }
  async dropBefore(seq: number): Promise<void> {
    this.b.msgs = this.b.msgs.filter((m) => m.seq >= seq);
  }
  async dropAll(): Promise<void> {
    this.b.msgs = [];
  }
}

export class MemoryStoreLog extends FramedStoreLog {
  constructor(readonly backing: MemoryLogBacking = new MemoryLogBacking()) {
    super(new MemoryTransport(backing));
  }
}

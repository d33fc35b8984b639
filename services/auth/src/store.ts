// What auth writes through so that a new process of its task can carry on
// (restart in place; the kernel's reincarnation.ts keeps the task): its
// handles' ids by the name of their port in auth's space, and the names of
// its own ports. The rights are not copied: they stay in the kernel, in
// auth's space, and the restarted auth finds them by these names. A write
// is acknowledged before the RPC that caused it is answered.
import { Errno, HurdError, type StoreLog } from "@hurdmesh/mach";
import type { Ids } from "./handles.js";

/** What a previous process of this task left. */
export interface AuthImage {
  /** The root handle's name (a receive right). */
  root: number;
  /** auth's notify port (rendezvous dead names). */
  notifyPort: number;
  /** Handle port name -> its ids. */
  handles: Map<number, Ids>;
}

export interface AuthStore {
  /**
   * The image a previous process of task `taskId` left, or null: then this
   * is a fresh start, and whatever an earlier boot left is forgotten.
   */
  open(taskId: number): Promise<AuthImage | null>;
  /** auth's own ports, once at a fresh start. */
  putSelf(root: number, notifyPort: number): Promise<void> | void;
  putHandle(name: number, ids: Ids): Promise<void> | void;
  deleteHandle(name: number): Promise<void> | void;
  /**
   * Called once, at the first write that failed (a store that can fail):
   * packages/boot/src/stores.ts superviseStore has the process exit.
   */
  onBroken?: ((e: Error) => void) | null;
}

/**
 * The embedded default: the image lives in this process, so writes cost a
 * map operation and nothing survives the process (nothing changes for a
 * hurd in one process). Tests restart auth on it within one process.
 */
export class MemoryAuthStore implements AuthStore {
  private taskId = 0;
  private image: AuthImage = { root: 0, notifyPort: 0, handles: new Map() };

  async open(taskId: number): Promise<AuthImage | null> {
    if (this.taskId === taskId && this.image.notifyPort !== 0) return { ...this.image, handles: new Map(this.image.handles) };
    this.taskId = taskId;
    this.image = { root: 0, notifyPort: 0, handles: new Map() };
    return null;
  }
  putSelf(root: number, notifyPort: number): void {
    this.image.root = root;
    this.image.notifyPort = notifyPort;
  }
  putHandle(name: number, ids: Ids): void {
    this.image.handles.set(name, ids);
  }
  deleteHandle(name: number): void {
    this.image.handles.delete(name);
  }
}

/** One change: auth's own ports (with the task they belong to), a handle made, a handle gone. */
type Change = ["s", number, number, number] | ["h", number, Ids] | ["d", number];
/** The whole image: [task, root, notify, [[name, ids], ...]]. */
type Snapshot = [number, number, number, [number, Ids][]];

const enc = new TextEncoder();
const dec = new TextDecoder();
const noop = () => {};
/** A snapshot is written once the batches since the last one are this many times its size... */
const SNAPSHOT_RATIO = 2;
/** ...and at least this many bytes: a few thousand handles are not rewritten at every makeauth. */
const SNAPSHOT_MIN_BYTES = 256 * 1024;

/**
 * On a store log (StoreLog: JetStream on NATS, auth's bucket's stream, as
 * proc's LogProcStore on proc's): each batch of changes is ONE appended
 * message, so a write is fenced (an old process of auth's task, stopped
 * while a new one took over, is refused: StoreFencedError) where a KV put
 * per key was not. Changes asked while a write is in flight wait for it and
 * go together in the next batch (group commit: under a makeauth load many
 * handles share one acknowledged write; the log takes one write at a time
 * anyway, each naming the sequence the one before left).
 *
 * A batch is compact JSON, [["h", name, ids] | ["d", name] | ["s", task,
 * root, notify], ...]: a handle's change is some 40 bytes, the framing
 * (store-log.ts) is JSON already, and it is read only at a restart, so a
 * binary layout would save little and be one more format to keep. A
 * snapshot of every handle is written once the tail is SNAPSHOT_RATIO
 * times the last one and at least SNAPSHOT_MIN_BYTES, which bounds the log
 * and a restart's replay.
 *
 * Fail-stop, as proc's journal: after the first failed write (a timeout may
 * have landed, so this writer's idea of the log's last sequence may be
 * wrong) every write is refused EIO and onBroken says so; the process is
 * to exit and a new one read back what was acknowledged.
 */
export class LogAuthStore implements AuthStore {
  private taskId = 0;
  private root = 0;
  private notify = 0;
  /** Every handle as the log holds it: what a snapshot writes. */
  private handles = new Map<number, Ids>();
  /** Changes asked and not yet taken by a write. */
  private pending: Change[] = [];
  /** The write that will take `pending` (null: none asked yet), and the last one asked. */
  private queued: Promise<void> | null = null;
  private last: Promise<void> = Promise.resolve();
  /** Set once a write failed. */
  broken: Error | null = null;
  onBroken: ((e: Error) => void) | null = null;
  readonly stats = { writes: 0, changes: 0, snapshots: 0 };

  constructor(readonly log: StoreLog) {}

  async open(taskId: number): Promise<AuthImage | null> {
    const { snapshot, entries } = await this.log.open();
    let task = 0;
    try {
      if (snapshot) {
        const [t, root, notify, hs] = JSON.parse(dec.decode(snapshot)) as Snapshot;
        [task, this.root, this.notify, this.handles] = [t, root, notify, new Map(hs)];
      }
      for (const e of entries) {
        for (const c of JSON.parse(dec.decode(e)) as Change[]) {
          if (c[0] === "s") [, task, this.root, this.notify] = c;
          else if (c[0] === "h") this.handles.set(c[1], c[2]);
          else if (c[0] === "d") this.handles.delete(c[1]);
          else throw new Error(`unknown change ${JSON.stringify(c)}`);
        }
      }
    } catch (e) {
      // Not auth's changes: refused rather than forgotten, so no handle a caller holds is dropped unseen.
      throw new HurdError(Errno.EIO, `auth's store log holds something that is not its handles: ${(e as Error).message}`, { cause: e });
    }
    this.taskId = taskId;
    if (task === taskId && this.notify !== 0) return { root: this.root, notifyPort: this.notify, handles: new Map(this.handles) };
    // Another task's (an earlier boot's), or an older layout's (KvAuthStore's "self" and "h<name>" keys): start from nothing.
    const foreign = (this.log as { foreign?: boolean }).foreign;
    this.root = this.notify = 0;
    this.handles = new Map();
    if (task !== 0 || snapshot || entries.length || foreign) await this.log.reset();
    return null;
  }

  putSelf(root: number, notifyPort: number): Promise<void> {
    return this.write(["s", this.taskId, root, notifyPort]);
  }
  putHandle(name: number, ids: Ids): Promise<void> {
    return this.write(["h", name, ids]);
  }
  deleteHandle(name: number): Promise<void> {
    return this.write(["d", name]);
  }

  /** Resolves once `c`, and every change asked before it, is acknowledged. */
  private write(c: Change): Promise<void> {
    if (this.broken) return Promise.reject(this.eio());
    this.pending.push(c);
    if (this.queued) return this.queued;
    const p = (async () => {
      await this.last.then(noop, noop);
      this.queued = null;
      if (this.broken) throw this.eio();
      const batch = this.pending;
      this.pending = [];
      try {
        await this.commit(batch);
      } catch (e) {
        if (!this.broken) {
          this.broken = e as Error;
          this.onBroken?.(e as Error);
        }
        throw this.eio();
      }
    })();
    this.queued = p;
    this.last = p;
    p.catch(noop);
    return p;
  }

  private async commit(batch: Change[]): Promise<void> {
    await this.log.append(enc.encode(JSON.stringify(batch)));
    this.stats.writes++;
    this.stats.changes += batch.length;
    for (const c of batch) {
      if (c[0] === "s") [, , this.root, this.notify] = c;
      else if (c[0] === "h") this.handles.set(c[1], c[2]);
      else this.handles.delete(c[1]);
    }
    const l = this.log;
    if (l.tailBytes >= SNAPSHOT_MIN_BYTES && l.tailBytes >= SNAPSHOT_RATIO * l.snapshotBytes) {
      const snap: Snapshot = [this.taskId, this.root, this.notify, [...this.handles]];
      await l.snapshot(enc.encode(JSON.stringify(snap)));
      this.stats.snapshots++;
    }
  }

  private eio(): HurdError {
    // What failed goes to onBroken as it was (superviseStore tells a fenced old process from a failed store by it); callers see EIO.
    return new HurdError(Errno.EIO, `auth's store failed; auth restarts from its last acknowledged state: ${this.broken?.message ?? "unknown"}`, { cause: this.broken });
  }
}

// proc's write-through (issue 17): what each RPC changed in proc's tables
// goes to its store (store.ts) before the RPC is answered, so that a new
// process of proc's task (restore.ts) never takes back what a caller saw.
//
// The tables are touched by key (a pid, a pgid, a sid, a handle's port
// name) where they change; the records are made from the tables as they are
// when the batch is written, so a process changed three times is written
// once, with its last state, and a key whose object left the table is
// deleted. One write is in flight at a time (a key's writes land in order);
// changes made meanwhile wait for it and go together in the next batch
// (group commit: under load, many RPCs' changes share one write). An RPC's
// answer waits for the write that holds its changes and every write before.
//
// A write that fails leaves proc's memory ahead of its store, with nothing
// to roll the memory back by: proc stops answering (EIO from then on, the
// failed RPC included) and says so (onBroken), and a new process rebuilds
// from the store, where the failed RPC's changes never were. Fail-stop, as
// a database whose log cannot be written.
import { Errno, HurdError } from "@hurdmesh/mach";
import type { HandleTable } from "./handles.js";
import type { ProcServer } from "./server.js";
import { ProcBatch, type ProcSelfRecord, type ProcStore } from "./store.js";

const RESOLVED: Promise<void> = Promise.resolve();
/**
 * How far ahead of the pid allocator (and the serial counter) the self
 * record is written: a restarted proc starts there, so it hands out no pid
 * or serial twice, and the record is rewritten only once the allocator has
 * gone half that far, not at every fork. A restart skips at most this many
 * pids (of 4 million).
 */
const RESERVE = 4096;
const noop = () => {};

export class ProcJournal {
  private readonly pids = new Set<number>();
  private readonly pgids = new Set<number>();
  private readonly sids = new Set<number>();
  private readonly ports = new Set<number>();
  /** The write in flight (or the last one), and the one that will take what is dirty now. */
  private flushing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** proc's own ports as the self record last wrote them (notify, auth, host_priv, device master). */
  private readonly lastPorts = [0, 0, 0, 0];
  /** Where the allocator and the serial counter were when the self record last reserved ahead of them; -1: never. */
  private pidBase = -1;
  private serialBase = -1;
  private hostDirty = false;
  /** Set once a write failed: the tables are no longer what the store holds. */
  broken: Error | null = null;
  /** Called once, at the first failed write. */
  onBroken: ((e: Error) => void) | null = null;
  readonly stats = { writes: 0, keys: 0 };

  constructor(
    private readonly srv: ProcServer,
    readonly store: ProcStore,
    private readonly handles: HandleTable,
  ) {}

  proc(pid: number): void {
    this.pids.add(pid);
  }
  pgrp(pgid: number): void {
    this.pgids.add(pgid);
  }
  session(sid: number): void {
    this.sids.add(sid);
  }
  handle(port: number): void {
    this.ports.add(port);
  }
  host(): void {
    this.hostDirty = true;
  }

  /** The EIO every RPC answers once a write failed. */
  check(): void {
    if (this.broken) throw new HurdError(Errno.EIO, `proc's store failed; proc restarts from its last acknowledged state: ${this.broken.message}`);
  }

  /**
   * Resolves once every change made so far is acknowledged by the store;
   * rejects EIO if a write failed.
   */
  commit(): Promise<void> {
    if (this.broken) return Promise.reject(this.eio());
    if (this.queued) return this.queued;
    if (!this.dirty()) return this.flushing ?? RESOLVED;
    const prev = this.flushing ?? RESOLVED;
    const p = (async () => {
      // Always a turn first: `queued` is set before the batch is taken.
      await prev.then(noop, noop);
      this.queued = null;
      if (this.broken) throw this.eio();
      // A process that no longer holds proc's task (the kernel detached it:
      // a new process may be reading the store) writes nothing more.
      if (this.srv.task.detached) throw new HurdError(Errno.MIG_SERVER_DIED, "proc's process no longer holds its task");
      const b = this.take();
      if (b.size === 0) return;
      this.stats.writes++;
      this.stats.keys += b.size;
      try {
        await this.store.write(b);
      } catch (e) {
        this.fail(e as Error);
        throw this.eio();
      }
    })();
    this.queued = p;
    this.flushing = p;
    p.catch(noop);
    return p;
  }

  private eio(): HurdError {
    return new HurdError(Errno.EIO, `proc's store failed: ${this.broken?.message ?? "unknown"}`);
  }

  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    this.onBroken?.(e);
  }

  private dirty(): boolean {
    return this.pids.size + this.pgids.size + this.sids.size + this.ports.size > 0 || this.hostDirty || this.selfDue();
  }

  /** The self record is due when a port of proc's changed or the allocator used half its reserve. */
  private selfDue(): boolean {
    const s = this.srv;
    if (this.pidBase < 0) return true;
    const span = s.pids.max - s.pids.floor;
    const gone = (s.pids.position - this.pidBase + span) % span;
    const l = this.lastPorts;
    // Asked at every RPC's commit: compared field by field, nothing made.
    return gone >= RESERVE / 2 || s.serialCount - this.serialBase >= RESERVE / 2 || l[0] !== s.notifyPort || l[1] !== s.authPort || l[2] !== s.hostPriv || l[3] !== s.deviceMaster;
  }

  private selfRecord(): ProcSelfRecord {
    const s = this.srv;
    const span = s.pids.max - s.pids.floor;
    this.pidBase = s.pids.position;
    this.serialBase = s.serialCount;
    const l = this.lastPorts;
    l[0] = s.notifyPort;
    l[1] = s.authPort;
    l[2] = s.hostPriv;
    l[3] = s.deviceMaster;
    // Ahead by the reserve, wrapped as the allocator wraps.
    const pidNext = s.pids.floor + ((s.pids.position - s.pids.floor + RESERVE) % span);
    return { task: s.task.id, notifyPort: s.notifyPort, authPort: s.authPort, hostPriv: s.hostPriv, deviceMaster: s.deviceMaster, pidNext, serials: s.serialCount + RESERVE };
  }

  /** Everything dirty, as records of the tables now; the dirty sets are emptied. */
  private take(): ProcBatch {
    const b = new ProcBatch();
    const s = this.srv;
    if (this.selfDue()) b.self(this.selfRecord());
    if (this.hostDirty) {
      const d = s.hostData;
      b.host({ execPorts: d.execPorts, execInts: d.execInts, notifiers: d.notifiers, versions: [...d.versions] });
      this.hostDirty = false;
    }
    for (const pid of this.pids) {
      const p = s.byPid.get(pid);
      if (p) b.proc(p);
      else b.changes.set(`p${pid}`, null);
    }
    for (const pgid of this.pgids) b.pgrp(pgid, s.pgrps.get(pgid)?.session.sid ?? null);
    for (const sid of this.sids) {
      const ss = s.sessions.get(sid);
      b.session(sid, ss ? ss.sidport : null);
    }
    for (const port of this.ports) b.handle(port, this.handles.byPort.get(port) ?? null);
    this.pids.clear();
    this.pgids.clear();
    this.sids.clear();
    this.ports.clear();
    return b;
  }

  /** The records as they stand, all of them (a fresh start: whatever the store held is replaced). */
  everything(): void {
    for (const pid of this.srv.byPid.keys()) this.pids.add(pid);
    for (const pgid of this.srv.pgrps.keys()) this.pgids.add(pgid);
    for (const sid of this.srv.sessions.keys()) this.sids.add(sid);
    for (const port of this.handles.byPort.keys()) this.ports.add(port);
    this.pidBase = -1;
    this.hostDirty = true;
  }
}

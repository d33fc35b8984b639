// What proc is to write through so that a new process of its task can carry
// on (restart in place, issue 17; the kernel's reincarnation.ts keeps the
// task): its process table as records by key, mirroring auth's store
// (services/auth/src/store.ts). The rights are not copied: task ports,
// process ports, handle ports, msgports and session ports stay in the
// kernel, in proc's space, and a restarted proc finds them by the names
// recorded here. A write is to be acknowledged before the RPC that caused
// it is answered; one RPC's (one trap burst's) changes go as one batch, a
// key written once however often the burst changed it. journal.ts writes
// the batches, restore.ts rebuilds from the image.
import { Errno, HurdError, type KeyValue, type StoreLog } from "@hurdmesh/mach";
import type { Rusage } from "./proc.js";
import { P, type Proc } from "./proc.js";
import type { Handle } from "./handles.js";
import type { WaitResult } from "./wait.js";

/** One process (struct proc), zombies included; its relations by pid, its ports by name in proc's space. */
export interface ProcRecord {
  pid: number;
  serial: number;
  flags: number;
  task: number;
  taskId: number;
  port: number;
  /** The parent's pid; 0: none (the boot processes). */
  parent: number;
  /** The pgrp's id; 0: none. */
  pgid: number;
  login: string;
  uids: number[];
  msgport: number;
  status: number;
  sigcode: number;
  argvAddr: number;
  envpAddr: number;
  startCode: number;
  endCode: number;
  entry: number;
  exe: string;
  /** argv and envp (NUL-separated), base64; null when never registered. */
  args: string | null;
  env: string | null;
  rusage: Rusage | null;
  childRusage: Rusage | null;
  /** The task namespace root's pid; 0: none. */
  nsRoot: number;
  nsNotify: number;
  startMs: number;
  ns: number;
}

export interface PgrpRecord {
  pgid: number;
  sid: number;
}

export interface SessionRecord {
  sid: number;
  sidport: number;
}

/** A process handle, by its port's name in proc's space. */
export interface HandleRecord {
  port: number;
  pid: number;
  serial: number;
  /** Whom it counts against for the quota: a uid, or the opener's own pid (no ids). */
  owner: { uid: number } | { pid: number };
  ids: number[];
  final: WaitResult | null;
}

/** proc's own: the task the image belongs to, its ports, the pid allocator's position and the serial counter. */
export interface ProcSelfRecord {
  task: number;
  notifyPort: number;
  authPort: number;
  hostPriv: number;
  deviceMaster: number;
  pidNext: number;
  serials: number;
}

/** The host RPCs' data (host.ts): exec data and notifiers by port name in proc's space, versions. */
export interface HostRecord {
  execPorts: number[] | null;
  execInts: number[];
  notifiers: number[];
  versions: [string, string][];
}

/** What a previous process of this task left. */
export interface ProcImage {
  self: ProcSelfRecord;
  host: HostRecord | null;
  procs: Map<number, ProcRecord>;
  pgrps: Map<number, PgrpRecord>;
  sessions: Map<number, SessionRecord>;
  handles: Map<number, HandleRecord>;
}

const b64 = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64"));

export function procRecord(p: Proc): ProcRecord {
  return {
    pid: p.pid,
    serial: p.serial,
    flags: p.flags,
    task: p.task,
    taskId: p.taskId,
    port: p.port,
    parent: p.parent?.pid ?? 0,
    pgid: p.pgrp?.pgid ?? 0,
    login: p.login.name,
    uids: [...p.uids],
    msgport: p.msgport,
    status: p.status,
    sigcode: p.sigcode,
    argvAddr: p.argvAddr,
    envpAddr: p.envpAddr,
    startCode: p.startCode,
    endCode: p.endCode,
    entry: p.entry,
    exe: p.exe,
    args: b64(p.args),
    env: b64(p.env),
    rusage: p.rusage,
    childRusage: p.childRusage,
    nsRoot: p.nsRoot?.pid ?? 0,
    nsNotify: p.nsNotify,
    startMs: p.startMs,
    ns: p.ns,
  };
}

export function handleRecord(h: Handle): HandleRecord {
  return { port: h.port, pid: h.pid, serial: h.serial, owner: typeof h.owner === "number" ? { uid: h.owner } : { pid: h.owner.pid }, ids: [...h.ids], final: h.final };
}

/** argv or envp back from a record. */
export function bytesOf(s: string | null): Uint8Array | null {
  return s === null ? null : new Uint8Array(Buffer.from(s, "base64"));
}

/**
 * One RPC's changes, by key: a process changed three times in a burst is
 * written once, with its last state; a record put then deleted is deleted.
 * Bounded by what one burst touches.
 */
export class ProcBatch {
  readonly changes = new Map<string, object | null>();

  proc(p: Proc): void {
    // A reaped process is out of the table: its record goes.
    this.changes.set(`p${p.pid}`, p.has(P.REAPED) ? null : procRecord(p));
  }
  pgrp(pgid: number, sid: number | null): void {
    this.changes.set(`g${pgid}`, sid === null ? null : { pgid, sid });
  }
  session(sid: number, sidport: number | null): void {
    this.changes.set(`s${sid}`, sidport === null ? null : { sid, sidport });
  }
  handle(port: number, h: Handle | null): void {
    this.changes.set(`h${port}`, h === null ? null : handleRecord(h));
  }
  self(r: ProcSelfRecord): void {
    this.changes.set(SELF, r);
  }
  host(r: HostRecord): void {
    this.changes.set(HOST, r);
  }
  get size(): number {
    return this.changes.size;
  }
}

export interface ProcStore {
  /**
   * The image a previous process of task `taskId` left, or null: then this
   * is a fresh start, and whatever an earlier boot left is forgotten.
   */
  open(taskId: number): Promise<ProcImage | null>;
  /** Writes one batch; resolved once every change in it is acknowledged. */
  write(b: ProcBatch): Promise<void> | void;
}

const SELF = "self";
const HOST = "x";

/** Files the records of `all` (key -> record) into an image for task `taskId`, or null if they are another task's. */
function imageOf(taskId: number, all: Map<string, unknown>): ProcImage | null {
  const self = all.get(SELF) as ProcSelfRecord | undefined;
  if (!self || self.task !== taskId) return null;
  const image: ProcImage = { self, host: (all.get(HOST) as HostRecord | undefined) ?? null, procs: new Map(), pgrps: new Map(), sessions: new Map(), handles: new Map() };
  for (const [k, v] of all) {
    const n = Number(k.slice(1));
    if (k[0] === "p") image.procs.set(n, v as ProcRecord);
    else if (k[0] === "g") image.pgrps.set(n, v as PgrpRecord);
    else if (k[0] === "s" && k !== SELF) image.sessions.set(n, v as SessionRecord);
    else if (k[0] === "h") image.handles.set(n, v as HandleRecord);
  }
  return image;
}

/**
 * The embedded default: the image lives in this process, so a write costs
 * a map operation per key and nothing survives the process. Tests restart
 * proc on it within one process.
 */
export class MemoryProcStore implements ProcStore {
  private taskId = 0;
  private records = new Map<string, unknown>();

  async open(taskId: number): Promise<ProcImage | null> {
    const image = this.taskId === taskId ? imageOf(taskId, this.records) : null;
    if (image === null) {
      this.taskId = taskId;
      this.records = new Map();
    }
    return image;
  }
  write(b: ProcBatch): void {
    for (const [k, v] of b.changes) {
      if (v === null) this.records.delete(k);
      else this.records.set(k, v);
    }
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** On a key-value bucket (JetStream on NATS, proc's own): "self", "x" (host data), "p<pid>", "g<pgid>", "s<sid>", "h<port>" -> JSON. */
export class KvProcStore implements ProcStore {
  constructor(private readonly kv: KeyValue) {}

  async open(taskId: number): Promise<ProcImage | null> {
    const all = new Map<string, unknown>();
    for (const [k, v] of await this.kv.entries()) all.set(k, JSON.parse(dec.decode(v)));
    const image = imageOf(taskId, all);
    // Another task's (an earlier boot's): start from nothing.
    if (image === null && all.size) await this.kv.purge();
    return image;
  }
  /** The batch's keys in parallel: JetStream has no multi-key transaction, so a process killed mid-batch may leave part of it (the RPC was not answered). */
  async write(b: ProcBatch): Promise<void> {
    await Promise.all([...b.changes].map(([k, v]) => (v === null ? this.kv.delete(k) : this.kv.put(k, enc.encode(JSON.stringify(v))))));
  }
}

/** A snapshot is written once the batches since the last one are this many times its size... */
const SNAPSHOT_RATIO = 2;
/** ...and at least this many bytes: a small table is not rewritten at every few forks. */
const SNAPSHOT_MIN_BYTES = 1024 * 1024;

/**
 * On a store log (StoreLog: JetStream on NATS, the bucket's stream): each
 * batch is ONE appended message, JSON [[key, record|null], ...], so a trap
 * burst costs one acknowledged write however many keys it touched (a
 * KvProcStore put per key cost a quarter of the lifecycles/s); the image is
 * rebuilt by replaying the batches after the last snapshot, and a snapshot
 * of every record is written once the tail is SNAPSHOT_RATIO times the
 * last one and at least SNAPSHOT_MIN_BYTES, which bounds both the log and
 * a restart's replay. A write of an old process of proc's task, once a new
 * one opened the log, is refused (StoreFencedError).
 */
export class LogProcStore implements ProcStore {
  /** Every record as the log holds it: what a snapshot writes. */
  private records = new Map<string, unknown>();
  readonly stats = { snapshots: 0 };

  constructor(readonly log: StoreLog) {}

  async open(taskId: number): Promise<ProcImage | null> {
    const { snapshot, entries } = await this.log.open();
    let all: Map<string, unknown>;
    try {
      all = new Map<string, unknown>(snapshot ? (JSON.parse(dec.decode(snapshot)) as [string, unknown][]) : []);
      for (const e of entries) for (const [k, v] of JSON.parse(dec.decode(e)) as [string, unknown][]) v === null ? all.delete(k) : all.set(k, v);
    } catch (e) {
      // Not proc's records: refused rather than forgotten, so nothing a restart needed is dropped unseen.
      throw new HurdError(Errno.EIO, `proc's store log holds something that is not its records: ${(e as Error).message}`, { cause: e });
    }
    const image = imageOf(taskId, all);
    this.records = image ? all : new Map();
    // Another task's (an earlier boot's), or an older layout's: start from nothing.
    if (image === null && (all.size || (this.log as { foreign?: boolean }).foreign)) await this.log.reset();
    return image;
  }

  async write(b: ProcBatch): Promise<void> {
    await this.log.append(enc.encode(JSON.stringify([...b.changes])));
    for (const [k, v] of b.changes) {
      if (v === null) this.records.delete(k);
      else this.records.set(k, v);
    }
    const l = this.log;
    if (l.tailBytes >= SNAPSHOT_MIN_BYTES && l.tailBytes >= SNAPSHOT_RATIO * l.snapshotBytes) {
      await l.snapshot(enc.encode(JSON.stringify([...this.records])));
      this.stats.snapshots++;
    }
  }
}

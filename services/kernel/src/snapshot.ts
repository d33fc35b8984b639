// A snapshot of the kernel's state (docs/kernel-log.md, "Snapshots"): the
// whole object graph a standby holds after applying log entry S, so that a
// kernel started later restores it and replays from S+1 instead of from the
// log's first entry, and the log before S can be dropped.
//
// The state is a graph: tasks name their spaces and ports, ports their
// receiver tasks and queued messages, messages their senders and the rights
// they carry, entries the ports they hold, hurds one another. It is written
// as a table of objects in the order a breadth-first walk from the kernel's
// tables meets them, each object once, references as indices; so a restored
// kernel has the same sharing (one Port object behind every entry that names
// it) and the same iteration orders (Maps and Sets keep theirs), which replay
// depends on (the lease sweep reads `leased` from its front). The walk has no
// recursion, so no chain of rights in transit can overflow the stack.
//
// What is not state is left out: a task's delivery function (an edge
// stream's; restored as one that drops what it is handed, as a standby's
// are, see replay.ts), a blocked sender's timer (a standby arms none; the
// new leader arms them at takeover), the tracer's notes on messages. Anything
// else that is not data (a function in any other field, an object of a class
// not listed here) is refused: a snapshot that could not be restored whole
// is not written.
//
// The same encoding, uncompressed, is the kernel's canonical dump: two
// kernels with the same state give the same bytes (the replay tests compare
// a leader's with its standby's).
import { gunzipSync, gzipSync } from "node:zlib";
import type { KernelState } from "./state.js";
import { idCounters, KTask, Namespace, Port, setIdCounters, Space, Unpaid, type Entry } from "./objects.js";

/** Classes whose instances are state: restored with their prototype, their constructor not run (it would draw ids). */
const CLASSES: Record<string, { prototype: object }> = { KTask, Port, Space, Namespace, Unpaid };
const CLASS_NAME = new Map<object, string>(Object.entries(CLASSES).map(([n, c]) => [c.prototype, n]));

/** Fields that are not state, by name: written as null (a delivery function: as "there was one"). */
const NOT_STATE = new Set(["timer", "trace", "tracePending"]);
const FUNCTION_FIELDS = new Set(["sink"]);

/** What a snapshot holds beside the kernel's tables (replay.ts's Replica, nats-users.ts, boot-claim.ts). */
export interface SnapshotExtras {
  /** The leader's clock as of the entry, and random bytes logged but not yet drawn. */
  replica?: { clock: number; pool: Buffer<ArrayBuffer>[] } | null;
  natsUsers?: unknown;
  claims?: unknown;
}

/** What a restore hands back besides the kernel: the extras, and the ports with senders blocked on them (a standby fails those on its leader's TIMEOUT records). */
export interface Restored extends SnapshotExtras {
  blocked: Port[];
}

/** One encoded value: a JSON primitive, or a tagged reference / non-JSON number. */
type Val = number | string | boolean | null | { r: number } | { n: string } | { u: 0 } | { f: 0 };

const VERSION = 1;

function kernelRoot(k: KernelState, x: SnapshotExtras): Record<string, unknown> {
  return {
    ids: idCounters(),
    root: k.root,
    namespaces: k.namespaces,
    tasks: k.tasks,
    leased: k.leased,
    unattached: k.unattached,
    lapsed: k.lapsed,
    tokenPool: k.tokenPool,
    tokenAt: k.tokenAt,
    eventsPending: k.eventsPending,
    eventsScheduled: k.eventsScheduled,
    natsUsers: x.natsUsers ?? null,
    claims: x.claims ?? null,
    replica: x.replica ?? null,
  };
}

/** The graph from `root` as a table of objects (index 0 is the root). Throws on what cannot be restored. */
function encodeGraph(root: object): unknown[][] {
  const index = new Map<object, number>();
  const order: object[] = [];
  const ref = (o: object): { r: number } => {
    let i = index.get(o);
    if (i === undefined) {
      i = order.length;
      index.set(o, i);
      order.push(o);
    }
    return { r: i };
  };
  const val = (v: unknown, field: string): Val => {
    if (v === null || typeof v === "boolean" || typeof v === "string") return v;
    if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0) ? v : { n: String(v) };
    if (v === undefined) return { u: 0 };
    if (typeof v === "function") {
      if (FUNCTION_FIELDS.has(field)) return { f: 0 };
      throw new Error(`kernel snapshot: a function in field ${field} is not state`);
    }
    if (typeof v === "object") return ref(v);
    throw new Error(`kernel snapshot: a ${typeof v} in field ${field} is not state`);
  };
  const fields = (o: object): Record<string, Val> => {
    const out: Record<string, Val> = {};
    for (const [key, v] of Object.entries(o)) out[key] = NOT_STATE.has(key) ? null : val(v, key);
    return out;
  };
  ref(root);
  const table: unknown[][] = [];
  for (let i = 0; i < order.length; i++) {
    const o = order[i]!;
    if (Array.isArray(o)) table.push(["A", ...o.map((v) => val(v, "[]"))]);
    else if (o instanceof Map) {
      const e: unknown[] = ["M"];
      for (const [key, v] of o) e.push(val(key, "key"), val(v, "value"));
      table.push(e);
    } else if (o instanceof Set) table.push(["S", ...[...o].map((v) => val(v, "member"))]);
    else if (o instanceof Uint8Array) table.push(["B", Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString("base64")]);
    else {
      const proto = Object.getPrototypeOf(o) as object | null;
      const name = proto === null ? undefined : CLASS_NAME.get(proto);
      if (name !== undefined) table.push(["C", name, fields(o)]);
      else if (proto === Object.prototype || proto === null) table.push(["O", fields(o)]);
      else throw new Error(`kernel snapshot: a ${(o as { constructor?: { name?: string } }).constructor?.name ?? "foreign"} object is not state`);
    }
  }
  return table;
}

/** The objects of a table, made first as shells and then filled, so references in any direction resolve. */
function decodeGraph(table: unknown[][]): unknown[] {
  const objs: unknown[] = table.map((e) => {
    switch (e[0]) {
      case "A":
        return [];
      case "M":
        return new Map();
      case "S":
        return new Set();
      case "B":
        return Buffer.from(e[1] as string, "base64");
      case "C": {
        const c = CLASSES[e[1] as string];
        if (!c) throw new Error(`kernel snapshot: unknown class ${String(e[1])}`);
        return Object.create(c.prototype) as object;
      }
      case "O":
        return {};
      default:
        throw new Error(`kernel snapshot: unknown object kind ${String(e[0])}`);
    }
  });
  const val = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    const t = v as Record<string, unknown>;
    if ("r" in t) {
      const i = t.r as number;
      if (!(Number.isInteger(i) && i >= 0 && i < objs.length)) throw new Error(`kernel snapshot: reference ${String(i)} out of its table`);
      return objs[i];
    }
    if ("n" in t) return Number(t.n);
    if ("u" in t) return undefined;
    if ("f" in t) return DROP;
    throw new Error("kernel snapshot: a value of no known kind");
  };
  table.forEach((e, i) => {
    const o = objs[i] as never;
    switch (e[0]) {
      case "A":
        for (let j = 1; j < e.length; j++) (o as unknown[]).push(val(e[j]));
        break;
      case "M":
        for (let j = 1; j + 1 < e.length; j += 2) (o as Map<unknown, unknown>).set(val(e[j]), val(e[j + 1]));
        break;
      case "S":
        for (let j = 1; j < e.length; j++) (o as Set<unknown>).add(val(e[j]));
        break;
      case "C":
      case "O":
        for (const [key, v] of Object.entries(e[e[0] === "C" ? 2 : 1] as Record<string, unknown>)) (o as Record<string, unknown>)[key] = val(v);
        break;
    }
  });
  return objs;
}

/** An edge stream's delivery function as a restored kernel has it: the old leader's stream carried them (replay.ts, replicaSink). */
const DROP = () => {};

/** The kernel's state (and a standby's extras) as one canonical JSON text: equal state, equal text. */
export function dumpKernel(k: KernelState, x: SnapshotExtras = {}): string {
  return JSON.stringify({ v: VERSION, table: encodeGraph(kernelRoot(k, x)) });
}

/** A snapshot to store: the dump, compressed (fast level: a standby writes it while it replays). */
export function encodeSnapshot(k: KernelState, x: SnapshotExtras = {}): Buffer {
  return gzipSync(dumpKernel(k, x), { level: 1 });
}

/**
 * Makes `k` (a kernel just constructed, in a process with no other kernel)
 * the snapshot's kernel: its tables are replaced with the snapshot's, and
 * the process's id counters carry on from the snapshot's. Returns the
 * extras for their owners to take back. Throws, changing nothing that
 * matters (the process stops), on a snapshot it cannot read whole.
 */
export function restoreSnapshot(k: KernelState, data: Uint8Array): Restored {
  let doc: { v?: number; table?: unknown[][] };
  try {
    doc = JSON.parse(gunzipSync(data).toString()) as typeof doc;
  } catch (e) {
    throw new Error(`kernel snapshot unreadable: ${(e as Error).message}`, { cause: e });
  }
  if (doc.v !== VERSION || !Array.isArray(doc.table) || doc.table.length === 0) throw new Error(`kernel snapshot of version ${String(doc.v)}; this kernel reads version ${VERSION}`);
  const objs = decodeGraph(doc.table);
  const r = objs[0] as ReturnType<typeof kernelRoot>;
  if (!(r.root instanceof Namespace) || !(r.tasks instanceof Map) || !(r.namespaces instanceof Map)) throw new Error("kernel snapshot: its root is not a kernel's");
  setIdCounters(r.ids as number[]);
  const w = k as unknown as Record<string, unknown>;
  w.root = r.root;
  for (const key of ["namespaces", "tasks", "leased", "unattached", "lapsed"] as const) {
    const m = k[key] as Map<unknown, unknown>;
    m.clear();
    for (const [a, b] of r[key] as Map<unknown, unknown>) m.set(a, b);
  }
  k.tokenPool = r.tokenPool as Buffer<ArrayBuffer>;
  k.tokenAt = r.tokenAt as number;
  k.eventsPending.length = 0;
  k.eventsPending.push(...(r.eventsPending as Namespace[]));
  k.eventsScheduled = r.eventsScheduled as boolean;
  const blocked: Port[] = [];
  for (const o of objs) {
    // Which space holds each entry with a dead-name request: a WeakMap, so not walked; made again from the spaces.
    if (o instanceof Space) for (const e of o.entries.values() as Iterable<Entry>) if (e.dnrequest !== null) k.dnSpaces.set(e, o);
    if (o instanceof Port && o.blocked !== null && o.blocked.length > 0) blocked.push(o);
  }
  return { replica: r.replica as SnapshotExtras["replica"], natsUsers: r.natsUsers, claims: r.claims, blocked };
}


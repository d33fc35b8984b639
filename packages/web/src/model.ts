// What `hurd web` knows and keeps up to date: the hurds the session sees
// and their processes (read from each hurd's proc once a period), the port
// graph of a hurd (host_ipc_graph, on demand), and the messages the kernel
// routes (its trace stream), counted per edge between processes and kept in
// a bounded ring for their details. Everything it holds is bounded: the
// ring, the traffic counted between two batches (edges and RPC names per
// edge), the process view (aggregate.ts).
import type { HostIpcGraphReply, IpcPortInfo } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import type { TraceBatch, TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { VIEW_BOUNDS, viewOf } from "./aggregate.js";
import type { WebHurd, WebMessage, WebMessageDetail, WebName, WebPorts, WebSpace, WebState, WebTraffic } from "./types.js";

/** One hurd as the session reaches it: its name, where it nests, and its proc's process table. */
export interface HurdView {
  name: string;
  /** "" for the root hurd. */
  parent: string;
  namespaceId: number;
  /** The hurd's processes as its own proc numbers them (namespace_id 0 in its answer). */
  procs(): Promise<ProcInfo[]>;
}

/** What the view observes through (the CLI's connections, or a test's stand-in). */
export interface Observed {
  /** The hurds to show, root first (asked again every refresh: subhurds come and go). */
  hurds(): Promise<HurdView[]>;
  /** host_ipc_graph on the root hurd's host_priv, every page (nested hurds included). */
  ipcGraph(): Promise<HostIpcGraphReply>;
  /** Starts the trace stream (bodies included); the function ends it. */
  watch(onBatch: (b: TraceBatch) => void, onEnd: (e: Error | null) => void): () => void;
  /** The rpctrace line of a record and its body decoded ("" when none), with task names from `who`. */
  describe(r: TraceRecord, who: (task: number) => string): { line: string; body: string };
  /** The Jaeger page of a trace id (hex), "" when none is configured. */
  traceUrl(traceId: string): string;
}

export const MODEL_BOUNDS = {
  /** Messages kept for their details (GET /api/message/<n>). */
  ring: 2000,
  /** Messages listed per traffic batch (the newest); the rest are counted. */
  listed: 50,
  /** Edges counted between two batches; more are dropped and counted. */
  edges: 4096,
  /** RPC names counted per edge. */
  rpcsPerEdge: 32,
  /** Names in a port graph reply; more are left out (ask for one task's space). */
  portGraphNames: 20_000,
};

const hex = (b: Uint8Array) => (b.length === 16 ? Buffer.from(b.buffer, b.byteOffset, 16).toString("hex") : "");

interface Kept {
  msg: WebMessage;
  rec: TraceRecord;
}

export class Model {
  state: WebState = { hurds: [], at: 0 };
  /** kernel task id -> node id (`<hurd>/<pid>`), from the last process tables. */
  private nodeOf = new Map<number, string>();
  private readonly ring: (Kept | undefined)[] = new Array(MODEL_BOUNDS.ring);
  private readonly byN = new Map<number, number>();
  private ringAt = 0;
  private edges = new Map<string, { from: string; to: string; count: number; rpcs: Map<string, number> }>();
  private batch: WebMessage[] = [];
  private unlisted = 0;
  private dropped = 0;
  private overflow = 0;
  /** Namespace id -> hurd name (from host_ipc_graph and the views). */
  private hurdOfNs = new Map<number, string>();

  constructor(private readonly o: Observed) {}

  /** Reads every hurd's processes; answers whether the view changed. */
  async refresh(): Promise<boolean> {
    const views = await this.o.hurds();
    const now = Date.now();
    let budget = VIEW_BOUNDS.maxNodes;
    const hurds: WebHurd[] = [];
    const nodeOf = new Map<number, string>();
    // The root hurd's table must answer (the view is a process of it: without
    // it the view is lost, and refresh fails so the server can say so); a
    // subhurd that does not answer is shown empty (subhurds come and go).
    const lists = await Promise.all(views.map((v, i) => (i === 0 ? v.procs() : v.procs().catch(() => [] as ProcInfo[]))));
    views.forEach((v, i) => {
      // A hurd's own processes; a nested hurd's appear in its own view.
      const own = lists[i]!.filter((p) => !p.namespaceId);
      for (const p of own) if (p.taskId) nodeOf.set(p.taskId, `${v.name}/${p.pid}`);
      const { hurd, used } = viewOf(v.name, v.parent, v.namespaceId, own, budget, now);
      budget = Math.max(0, budget - used);
      hurds.push(hurd);
      if (v.namespaceId) this.hurdOfNs.set(v.namespaceId, v.name);
    });
    this.nodeOf = nodeOf;
    const before = JSON.stringify(this.state.hurds.map(shape));
    this.state = { hurds, at: now };
    return JSON.stringify(hurds.map(shape)) !== before;
  }

  private who = (t: number): string => {
    const n = this.nodeOf.get(t);
    if (n === undefined) return `task${t}`;
    const [h, pid] = n.split("/");
    return h === this.state.hurds[0]?.name ? `task${t}(pid${pid})` : `task${t}(${h}:pid${pid})`;
  };

  /** A trace batch from the kernel: counted per edge, listed, kept. */
  ingest(b: TraceBatch): void {
    this.dropped += b.dropped;
    for (const r of b.records) {
      const hurd = this.hurdOfNs.get(r.namespaceId) ?? this.state.hurds[0]?.name ?? "";
      const from = r.fromTask ? (this.nodeOf.get(r.fromTask) ?? "") : r.kernel ? `${hurd}/3` : "";
      const to = r.toTask ? (this.nodeOf.get(r.toTask) ?? "") : "";
      const msg: WebMessage = { n: r.n, ts: r.tsMs, hurd, from, to, rpc: r.rpc || `msgid ${r.msgid}`, reply: r.isReply, code: r.error || r.code, line: "" };
      // The line is made when asked for (most messages are only counted).
      this.keep(msg, r);
      if (from && to) this.count(from, to, msg.rpc);
      this.batch.push(msg);
      if (this.batch.length > MODEL_BOUNDS.listed) {
        this.batch.shift();
        this.unlisted++;
      }
    }
    // Messages past the watch's record rate: counted on their edges, never listed.
    for (const c of b.counts) {
      const hurd = this.hurdOfNs.get(c.namespaceId) ?? this.state.hurds[0]?.name ?? "";
      const from = c.fromTask ? (this.nodeOf.get(c.fromTask) ?? "") : c.kernel ? `${hurd}/3` : "";
      const to = c.toTask ? (this.nodeOf.get(c.toTask) ?? "") : "";
      if (from && to) this.count(from, to, c.rpc || `msgid ${c.msgid}`, c.count);
      this.unlisted += c.count;
    }
  }

  private keep(msg: WebMessage, rec: TraceRecord): void {
    const old = this.ring[this.ringAt];
    if (old !== undefined) this.byN.delete(old.msg.n);
    this.ring[this.ringAt] = { msg, rec };
    this.byN.set(msg.n, this.ringAt);
    this.ringAt = (this.ringAt + 1) % MODEL_BOUNDS.ring;
  }

  private count(from: string, to: string, rpc: string, n = 1): void {
    const k = `${from}>${to}`;
    let e = this.edges.get(k);
    if (e === undefined) {
      if (this.edges.size >= MODEL_BOUNDS.edges) {
        this.overflow++;
        return;
      }
      this.edges.set(k, (e = { from, to, count: 0, rpcs: new Map() }));
    }
    e.count += n;
    const name = e.rpcs.has(rpc) || e.rpcs.size < MODEL_BOUNDS.rpcsPerEdge ? rpc : "(other)";
    e.rpcs.set(name, (e.rpcs.get(name) ?? 0) + n);
  }

  /** The traffic since the last call (null when there was none). */
  takeTraffic(): WebTraffic | null {
    if (this.edges.size === 0 && this.batch.length === 0 && this.dropped === 0) return null;
    const t: WebTraffic = {
      edges: [...this.edges.values()].map((e) => ({ from: e.from, to: e.to, count: e.count, rpcs: Object.fromEntries(e.rpcs) })),
      msgs: this.batch.map((m) => ({ ...m, line: this.lineOf(m.n) })),
      unlisted: this.unlisted + this.overflow,
      dropped: this.dropped,
    };
    this.edges = new Map();
    this.batch = [];
    this.unlisted = 0;
    this.overflow = 0;
    this.dropped = 0;
    return t;
  }

  private lineOf(n: number): string {
    const k = this.kept(n);
    return k ? this.o.describe(k.rec, this.who).line : "";
  }

  private kept(n: number): Kept | undefined {
    const at = this.byN.get(n);
    return at === undefined ? undefined : this.ring[at];
  }

  /** A kept message in full; null once it has left the ring. */
  message(n: number): WebMessageDetail | null {
    const k = this.kept(n);
    if (!k) return null;
    const d = this.o.describe(k.rec, this.who);
    const traceId = hex(k.rec.traceId);
    return { ...k.msg, line: d.line, body: d.body, rights: k.rec.rights, traceId, traceUrl: traceId ? this.o.traceUrl(traceId) : "" };
  }

  // ------------------------------------------------------------ ports

  private graph: { at: number; g: Promise<HostIpcGraphReply> } | null = null;
  /** host_ipc_graph, read at most once a second whoever asks. */
  private ipc(): Promise<HostIpcGraphReply> {
    const now = Date.now();
    if (this.graph === null || now - this.graph.at > 1000) {
      this.graph = { at: now, g: this.o.ipcGraph() };
      this.graph.g.catch(() => (this.graph = null));
    }
    return this.graph.g;
  }

  private nsOf(hurd: string, g: HostIpcGraphReply): number {
    for (const h of g.hurds) this.hurdOfNs.set(h.namespaceId, h.hurd);
    return g.hurds.find((h) => h.hurd === hurd)?.namespaceId ?? this.state.hurds.find((h) => h.name === hurd)?.namespaceId ?? 0;
  }

  private label(taskId: number, name: string): string {
    const n = this.nodeOf.get(taskId);
    return n ? `pid ${n.split("/")[1]} ${name}` : `task ${taskId} ${name}`;
  }

  private taskNode(taskId: number): string {
    return this.nodeOf.get(taskId) ?? `task/${taskId}`;
  }

  /** The port graph of `hurd`: its tasks, the ports they name, their rights as edges. */
  async ports(hurd: string): Promise<WebPorts> {
    const g = await this.ipc();
    const ns = this.nsOf(hurd, g);
    const portInfo = new Map<number, IpcPortInfo>(g.ports.map((p) => [p.port, p]));
    const out: WebPorts = { hurd, tasks: [], ports: [], rights: [], omitted: 0 };
    const seen = new Set<number>();
    let names = 0;
    for (const s of g.spaces) {
      if (s.namespaceId !== ns) continue;
      const task = this.taskNode(s.taskId);
      out.tasks.push({ id: task, label: this.label(s.taskId, s.name), taskId: s.taskId });
      for (const e of s.names) {
        if (++names > MODEL_BOUNDS.portGraphNames) {
          out.omitted++;
          continue;
        }
        const kinds = rightsOf(e.type);
        if (kinds.includes("dead-name")) {
          const id = `dead/${s.taskId}/${e.name}`;
          out.ports.push({ id, label: `dead name ${e.name}`, receiver: "", kobject: "", msgcount: 0, dead: true });
          out.rights.push({ id: `${task}#${e.name}`, task, port: id, kind: "dead-name", urefs: e.urefs, name: e.name });
          continue;
        }
        if (!e.port) continue;
        const pid = `port/${e.port}`;
        if (!seen.has(e.port)) {
          seen.add(e.port);
          const p = portInfo.get(e.port);
          out.ports.push({ id: pid, label: `port ${e.port}${p?.kobject ? ` (${p.kobject})` : ""}`, receiver: p?.receiver ? this.taskNode(p.receiver) : "", kobject: p?.kobject ?? "", msgcount: p?.msgcount ?? 0, dead: p ? !p.active : false });
        }
        for (const kind of kinds) if (kind !== "port-set") out.rights.push({ id: `${task}#${e.name}#${kind}`, task, port: pid, kind: kind as WebPorts["rights"][number]["kind"], urefs: kind === "send" ? e.urefs : 1, name: e.name });
      }
    }
    return out;
  }

  /** One process's whole IPC space (mach_port_names), with each port's receiver and other holders. */
  async space(node: string): Promise<WebSpace | null> {
    let taskId = 0;
    for (const [t, n] of this.nodeOf) if (n === node) taskId = t;
    if (!taskId && node.startsWith("task/")) taskId = Number(node.slice(5));
    if (!taskId) return null;
    const g = await this.ipc();
    const s = g.spaces.find((x) => x.taskId === taskId);
    if (!s) return null;
    const portInfo = new Map<number, IpcPortInfo>(g.ports.map((p) => [p.port, p]));
    const holders = new Map<number, string[]>();
    for (const o of g.spaces) for (const e of o.names) if (e.port && o.taskId !== taskId) (holders.get(e.port) ?? holders.set(e.port, []).get(e.port)!).push(this.taskNode(o.taskId));
    const names: WebName[] = s.names.map((e) => {
      const p = e.port ? portInfo.get(e.port) : undefined;
      return {
        name: e.name,
        rights: rightsOf(e.type),
        urefs: e.urefs,
        port: e.port,
        receiver: p ? (p.receiver ? this.taskNode(p.receiver) : p.kobject ? `kernel: ${p.kobject}` : "") : "",
        holders: e.port ? [...new Set(holders.get(e.port) ?? [])] : [],
        dnrequest: (e.type & 0x80000000) !== 0,
      };
    });
    return { node, taskId, names: names.sort((a, b) => a.name - b.name) };
  }
}

/** The rights a name's mach_port_type bits say it holds. */
export function rightsOf(type: number): string[] {
  const out: string[] = [];
  if (type & (1 << 17)) out.push("receive");
  if (type & (1 << 16)) out.push("send");
  if (type & (1 << 18)) out.push("send-once");
  if (type & (1 << 19)) out.push("port-set");
  if (type & (1 << 20)) out.push("dead-name");
  return out;
}

/** What of a hurd's view decides whether the page must redraw it (not the ages). */
function shape(h: WebHurd): unknown {
  return [h.name, h.parent, h.total, h.procs.map((p) => [p.pid, p.ppid, p.stat, p.command, p.uid]), h.groups.map((g) => [g.id, g.count])];
}

export { hex as traceIdHex };

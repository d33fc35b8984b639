// The view's eyes on a running hurd, through the kernel's gRPC edge as the
// `hurd` command reaches it: each hurd's proc for its process table, the
// root hurd's host_priv for host_ipc_graph and for the trace stream
// (hurd.trace.v1.Trace/Watch, which covers the hurds nested in it). The
// view's own tasks are left out of the stream: its reading of the tables
// would otherwise be most of what it shows.
import * as grpc from "@grpc/grpc-js";
import type { Process } from "@hurdmesh/libhurd";
import type { Task } from "@hurdmesh/mach";
import { edgeChannelCredentials, grpcClientOf } from "@hurdmesh/mach/edge";
import type { HostIpcGraphReply } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { TraceDefinition, type TraceBatch } from "@hurdmesh/proto/hurd/trace/v1/trace";
import type { HurdView, Observed } from "./model.js";

/** A hurd the session reaches: its proc through `me`, a process of the view's own in that hurd. */
export interface Reached {
  name: string;
  parent: string;
  namespaceId: number;
  me: Process;
}

export interface EdgeObservedOptions {
  /** The kernel's edge, and the root hurd task the view watches as. */
  edge: string;
  /** The CA of the edge's certificate (TLS); absent: plaintext on loopback. */
  edgeCa?: string;
  task: Task;
  token: string;
  /** A send right to the root hurd's host_priv, in `task`'s space. */
  hostPriv: number;
  /** The hurds to show, root first. */
  hurds(): Promise<Reached[]>;
  /** The view's own tasks (left out of the trace stream). */
  own(): number[];
  describe: Observed["describe"];
  /** The Jaeger UI ("" for no links). */
  jaegerUrl: string;
}

/** Every process of a hurd as its proc lists them (proc_getallprocinfo pages). */
export async function procsOf(me: Process): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  let start = 1;
  for (;;) {
    const page = await me.proc.getallprocinfo({ startPid: start, max: 4096, flags: 0 });
    out.push(...page.procs);
    if (!page.nextPid) return out;
    start = page.nextPid;
  }
}

/**
 * Records a second the view asks the kernel for; every other message comes
 * counted (TraceBatch.counts). The page lists at most MODEL_BOUNDS.listed
 * messages a tick (50 per 250 ms): more records than that would be decoded
 * only to be counted, and each costs the kernel a record with its body.
 */
export const WATCH_RECORDS_PER_SECOND = 200;

export function edgeObserved(o: EdgeObservedOptions): Observed {
  return {
    async hurds(): Promise<HurdView[]> {
      return (await o.hurds()).map((h) => ({ name: h.name, parent: h.parent, namespaceId: h.namespaceId, procs: () => procsOf(h.me) }));
    },
    async ipcGraph(): Promise<HostIpcGraphReply> {
      const all: HostIpcGraphReply = { spaces: [], ports: [], hurds: [], nextTask: 0 };
      const seen = new Set<number>();
      let start = 0;
      // Pages until the last; bounded by the tasks there are.
      for (let i = 0; i < 10_000; i++) {
        const g = (await o.task.call("hostIpcGraph", { hostPriv: o.hostPriv, nested: true, startTask: start })) as HostIpcGraphReply;
        all.spaces.push(...g.spaces);
        for (const p of g.ports) if (!seen.has(p.port)) (seen.add(p.port), all.ports.push(p));
        if (g.hurds.length) all.hurds = g.hurds;
        if (!g.nextTask) break;
        start = g.nextTask;
      }
      return all;
    },
    watch(onBatch: (b: TraceBatch) => void, onEnd: (e: Error | null) => void): () => void {
      const tc = new (grpcClientOf(TraceDefinition))(o.edge, edgeChannelCredentials(o.edgeCa));
      const md = new grpc.Metadata();
      md.set("hurd-task", String(o.task.id));
      md.set("hurd-token", o.token);
      const stream = tc.watch({ tasks: [], follow: false, bodies: true, includeSelf: false, exclude: o.own(), hostPriv: o.hostPriv, recordsPerSecond: WATCH_RECORDS_PER_SECOND }, md);
      // Tasks the view attaches later (a subhurd's) are left out here too.
      stream.on("data", (b: TraceBatch) => {
        const own = new Set(o.own());
        onBatch({ ...b, records: b.records.filter((r) => !own.has(r.fromTask) && !own.has(r.toTask)), counts: b.counts.filter((c) => !own.has(c.fromTask) && !own.has(c.toTask)) });
      });
      stream.on("error", (e: grpc.ServiceError) => onEnd(e.code === grpc.status.CANCELLED ? null : e));
      stream.on("end", () => onEnd(null));
      return () => {
        stream.cancel();
        tc.close();
      };
    },
    describe: o.describe,
    traceUrl: (id) => (o.jaegerUrl ? `${o.jaegerUrl.replace(/\/+$/, "")}/trace/${id}` : ""),
  };
}

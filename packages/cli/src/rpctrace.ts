// hurd rpctrace [--pid N | --task T] [--rpc NAME] [--json] [-- PROGRAM ARGS]:
// a live view of the messages the kernel routes, in the spirit of the Hurd's
// rpctrace — one line per RPC, `task12(pid105)->hurd.process.v1.Process/GetPids ()`
// completed by ` = 0 {...}` or ` = 0x40000003 (ESRCH)`. Nothing is
// interposed: the kernel publishes its trace stream (hurd.trace.v1.Trace/Watch
// on its gRPC edge) only while this watches, and no task's ports change.
import * as grpc from "@grpc/grpc-js";
import { portAt } from "@hurdmesh/mach";
import { runProgram, W, describeStatus } from "@hurdmesh/libhurd";
import { edgeChannelCredentials, grpcClientOf } from "@hurdmesh/mach/edge";
import { TraceDefinition, type TraceBatch, type TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { allProcs } from "./list.js";
import { jaegerLink, RpcTraceFormatter, traceIdHex } from "./rpctrace/format.js";
import { CliError, connect, type Connected } from "./session.js";

export interface RpctraceOptions {
  pid?: string;
  task?: string;
  json?: boolean;
  rpc?: string[];
  ns?: string;
  timestamps?: boolean;
  /** Stop after this many records (tests, scripts). */
  count?: string;
  strsize?: string;
  hurd?: string;
  quiet?: boolean;
  /** End each line with the Jaeger URL of the message's trace. */
  links?: boolean;
  /** The Jaeger UI's base URL (default HURD_JAEGER_URL, else http://localhost:16686). */
  jaegerUrl?: string;
}

export const DEFAULT_JAEGER_URL = "http://localhost:16686";

/** Task id -> pid, refreshed from proc when an unknown task shows up (at most once a second). */
class Pids {
  private readonly map = new Map<number, number>();
  private last = 0;
  private busy = false;
  constructor(private readonly c: Connected) {}
  async refresh(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const p of await allProcs(this.c.me)) if (p.taskId) this.map.set(p.taskId, p.pid);
      this.last = Date.now();
      this.gaveUp.clear();
    } catch {
      // proc being away only costs the pids in the names.
    } finally {
      this.busy = false;
    }
  }
  known(task: number): boolean {
    return this.map.has(task) || this.gaveUp.has(task);
  }
  /** Refreshes unless it did within the last 200 ms; tasks still unknown then are not asked about again. */
  async refreshSoon(): Promise<void> {
    if (Date.now() - this.last < 200) return;
    await this.refresh();
  }
  /** Tasks proc did not know at the last refresh (servers, the kernel's own): no refresh for them. */
  private readonly gaveUp = new Set<number>();
  pid(task: number): number | undefined {
    const p = this.map.get(task);
    if (p === undefined && task) this.gaveUp.add(task);
    return p;
  }
  taskOf(pid: number): number | undefined {
    for (const [t, p] of this.map) if (p === pid) return t;
    return undefined;
  }
}

function matchesRpc(r: TraceRecord, names: string[]): boolean {
  if (!names.length) return true;
  const rpc = r.rpc || String(r.msgid);
  return names.some((n) => rpc === n || rpc.endsWith(`/${n}`) || rpc.toLowerCase().endsWith(`/${n.toLowerCase()}`) || rpc.includes(n));
}

export async function rpctrace(argv: string[], o: RpctraceOptions): Promise<number> {
  if ((o.pid ? 1 : 0) + (o.task ? 1 : 0) + (argv.length ? 1 : 0) > 1) throw new CliError("give one of --pid, --task or -- PROGRAM");
  const c = await connect(o.hurd, "rpctrace");
  const pids = new Pids(c);
  await pids.refresh();
  const tasks: number[] = [];
  let follow = false;
  if (o.pid) {
    const pid = Number(o.pid);
    const t = Number.isInteger(pid) ? pids.taskOf(pid) : undefined;
    if (t === undefined) {
      await c.close();
      throw new CliError(`no process ${o.pid} (or it has no task)`);
    }
    tasks.push(t);
    follow = true;
  } else if (o.task) {
    const t = Number(o.task);
    if (!Number.isInteger(t) || t <= 0) throw new CliError(`not a task id: ${o.task}`);
    tasks.push(t);
    follow = true;
  } else if (argv.length) {
    // The program will be a child of this command's task: follow this task's
    // children (this task's own messages stay out: it is excluded below).
    tasks.push(c.task.id);
    follow = true;
  }
  const rpcNames = (o.rpc ?? []).flatMap((s) => s.split(",")).filter(Boolean);
  const nsFilter = o.ns !== undefined ? Number(o.ns) : undefined;
  const limit = o.count !== undefined ? Number(o.count) : Infinity;
  const write = (s: string) => void process.stdout.write(s);
  const who = (t: number) => {
    const p = pids.pid(t);
    return p === undefined ? `task${t}` : `task${t}(pid${p})`;
  };
  const jaeger = o.jaegerUrl || process.env.HURD_JAEGER_URL || DEFAULT_JAEGER_URL;
  const link = o.links
    ? (r: TraceRecord) => {
        const u = jaegerLink(jaeger, r);
        return u ? ` ${u}` : "";
      }
    : undefined;
  const fmt = new RpcTraceFormatter(write, { who, timestamps: o.timestamps, strsize: o.strsize ? Number(o.strsize) : undefined, link });
  let seen = 0;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => (finish = r));

  // The kernel shows its trace stream to holders of host_priv only: root
  // gets it from proc, as `hurd shutdown` does; this task then watches.
  let hostPriv: number;
  try {
    const priv = await c.me.proc.getprivports({});
    hostPriv = portAt(priv, priv.hostPriv);
  } catch (e) {
    await c.close();
    throw new CliError(`rpctrace needs the host_priv port (root): ${(e as Error).message}`);
  }
  const tc = new (grpcClientOf(TraceDefinition))(c.session.edge, edgeChannelCredentials(c.session.edgeCa));
  const md = new grpc.Metadata();
  md.set("hurd-task", String(c.task.id));
  md.set("hurd-token", c.token);
  const stream = tc.watch({ tasks, follow, bodies: true, includeSelf: false, exclude: [c.task.id], hostPriv, recordsPerSecond: 0 }, md);
  const ready = new Promise<void>((resolve) => {
    stream.on("metadata", () => resolve());
    setTimeout(resolve, 300).unref();
  });
  // Batches are shown in order; one with a task not yet known waits for proc's answer, so lines name pids.
  let chain = Promise.resolve();
  const show = (b: TraceBatch) => {
    if (b.dropped && !o.json) process.stderr.write(`hurd rpctrace: ${b.dropped} messages not shown (the view fell behind)\n`);
    for (const r of b.records) {
      if (seen >= limit) return;
      if (nsFilter !== undefined && r.namespaceId !== nsFilter) continue;
      if (!matchesRpc(r, rpcNames)) continue;
      if (o.json) {
        const { body, traceId, ...rest } = r;
        const out: Record<string, unknown> = { ...rest, pid: pids.pid(r.fromTask), toPid: pids.pid(r.toTask) };
        // The trace as Jaeger and W3C write it, and its page (the same base URL as --links).
        const id = traceIdHex(traceId);
        if (id) {
          out.traceId = id;
          out.traceUrl = jaegerLink(jaeger, r);
        }
        const args = r.kernel ? null : fmt.decode(r, r.isReply);
        if (args !== null) out.args = args;
        void body;
        write(JSON.stringify(out) + "\n");
      } else fmt.push(r);
      if (++seen >= limit) {
        fmt.end();
        finish(0);
        return;
      }
    }
  };
  stream.on("data", (b: TraceBatch) => {
    chain = chain.then(async () => {
      if (b.records.some((r) => (r.fromTask && !pids.known(r.fromTask)) || (r.toTask && !pids.known(r.toTask)))) await pids.refreshSoon();
      show(b);
    });
  });
  stream.on("error", (e: grpc.ServiceError) => {
    if (e.code === grpc.status.CANCELLED) return;
    process.stderr.write(`hurd rpctrace: ${e.metadata?.get("hurd-errno")?.[0] ?? "error"}: ${e.details || e.message}\n`);
    finish(1);
  });
  stream.on("end", () => finish(0));
  process.on("SIGINT", () => finish(0));
  process.on("SIGTERM", () => finish(0));
  await ready;

  let code: number;
  if (argv.length) {
    const run = await runProgram(c.me, argv, { attach: c.attach });
    if (!o.quiet) process.stderr.write(`hurd rpctrace: ${argv[0]} is pid ${run.pid}\n`);
    process.on("SIGINT", () => run.child.kill("SIGINT"));
    const status = await Promise.race([run.done, finished.then(() => null)]);
    if (status !== null) {
      // Let the last messages (the exit, the parent's wait) reach the view.
      await new Promise((r) => setTimeout(r, 200));
      fmt.end();
      if (!o.quiet) process.stderr.write(`Child ${run.pid} ${describeStatus(status)}\n`);
      code = W.ifexited(status) ? W.exitstatus(status) : 128 + W.termsig(status);
    } else code = await finished;
  } else code = await finished;
  fmt.end();
  stream.cancel();
  tc.close();
  await c.close();
  return code;
}

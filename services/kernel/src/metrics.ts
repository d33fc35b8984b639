// The kernel's metrics: what a dashboard of a hurd needs from Mach's side.
//
//   per hurd, read at collection (gauges): tasks, ports (receive rights),
//     rights by kind (hurd.right: receive, send, send-once, port-set,
//     dead-name), messages queued and their bytes;
//   the kernel's counters (read at collection from the counters routing
//     keeps anyway): messages sent and delivered, notifications, sends
//     refused, traps rejected, trace records dropped for watchers, spans
//     dropped by a full export queue;
//   rpc.server.call.duration of the kernel's own calls (hurd.mach.v1.Mach/*,
//     per hurd of the calling task), the one thing recorded per call.
//
// Nothing is counted per message beyond what routing counts already: the
// per-hurd gauges walk the hurds' tasks, spaces and queues when a scrape
// asks (a scrape of a hurd of N names costs O(N), on the scraper's
// schedule, never on the message path).
import type { Attributes, BatchObservableResult, Observable } from "@opentelemetry/api";
import type { RpcSeries } from "@hurdmesh/mach/internal";
import { rpcDurations, rpcSeries, type Metrics } from "@hurdmesh/telemetry";
import { callName } from "./calls.js";
import { hurdName } from "./introspect.js";
import { TYPE_DEAD_NAME, TYPE_PORT_SET, TYPE_RECEIVE, TYPE_SEND, TYPE_SEND_ONCE, type Namespace } from "./objects.js";
import type { KernelState } from "./state.js";

/** Kernel calls timed per hurd of the caller: (namespace, msgid) -> series. */
export class CallMetrics {
  private readonly byNs = new WeakMap<Namespace, Map<number, RpcSeries>>();
  private readonly server;
  constructor(
    private readonly k: KernelState,
    m: Metrics,
  ) {
    this.server = rpcDurations(m).server;
  }
  /** A kernel call `msgid` by a task of `ns` took `seconds` and answered `code`. */
  record(ns: Namespace, msgid: number, seconds: number, code: number): void {
    let calls = this.byNs.get(ns);
    if (calls === undefined) this.byNs.set(ns, (calls = new Map()));
    let s = calls.get(msgid);
    if (s === undefined) calls.set(msgid, (s = rpcSeries(this.server, `hurd.mach.v1.Mach/${callName(msgid)}`, hurdName(this.k, ns))));
    s.record(seconds, code);
  }
}

const RIGHTS: [number, string][] = [
  [TYPE_RECEIVE, "receive"],
  [TYPE_SEND, "send"],
  [TYPE_SEND_ONCE, "send-once"],
  [TYPE_PORT_SET, "port-set"],
  [TYPE_DEAD_NAME, "dead-name"],
];

interface HurdCounts {
  attrs: Attributes;
  tasks: number;
  ports: number;
  rights: number[];
  queued: number;
  bytes: number;
}

/** One walk over every live hurd: its tasks, their names, and the queues of the ports they receive on. */
function countHurds(k: KernelState): HurdCounts[] {
  const out: HurdCounts[] = [];
  const hurds: Namespace[] = [k.root];
  for (let i = 0; i < hurds.length; i++) for (const c of hurds[i]!.children) if (c.active) hurds.push(c);
  for (const ns of hurds) {
    const c: HurdCounts = { attrs: { "hurd.name": hurdName(k, ns) }, tasks: ns.tasks.size, ports: 0, rights: [0, 0, 0, 0, 0], queued: 0, bytes: 0 };
    for (const t of ns.tasks)
      for (const e of t.space.entries.values()) {
        for (let r = 0; r < RIGHTS.length; r++) if (e.bits & RIGHTS[r]![0]) c.rights[r]!++;
        const p = e.port;
        if (p !== null && e.bits & TYPE_RECEIVE) {
          c.ports++;
          const q = p.queue;
          for (let j = p.qhead; j < q.length; j++) {
            c.queued++;
            c.bytes += q[j]!.body.length;
          }
        }
      }
    out.push(c);
  }
  return out;
}

/** What the kernel exposes to `observeKernel`: its state and the counters of its tracer. */
export interface ObservedKernel extends KernelState {
  readonly trace: { readonly stats: { records: number; dropped: number }; spansDropped(): number };
}

/**
 * Registers the kernel's instruments on `m` and turns the timing of its
 * calls on. Returns a function that undoes both (the kernel's close).
 */
export function observeKernel(k: ObservedKernel, m: Metrics): () => void {
  const meter = m.meter;
  const gauge = (name: string, description: string, unit = "{" + name.split(".").pop() + "}") => meter.createObservableGauge(name, { description, unit });
  const counter = (name: string, description: string) => meter.createObservableCounter(name, { description });
  const tasks = gauge("hurd.kernel.tasks", "Tasks alive in the hurd.", "{task}");
  const ports = gauge("hurd.kernel.ports", "Ports whose receive right a task of the hurd holds.", "{port}");
  const rights = gauge("hurd.kernel.rights", "Names in the IPC spaces of the hurd's tasks, by the right they hold (hurd.right).", "{right}");
  const queued = gauge("hurd.kernel.queued.messages", "Messages queued on the hurd's ports, waiting for their receiver.", "{message}");
  const bytes = gauge("hurd.kernel.queued.bytes", "Bytes of the bodies of the messages queued on the hurd's ports.", "By");
  const sent = counter("hurd.kernel.messages.sent", "Messages sent through the kernel (requests, replies and one-way messages).");
  const delivered = counter("hurd.kernel.messages.delivered", "Messages the kernel delivered to their receiver.");
  const notifications = counter("hurd.kernel.notifications", "Notifications the kernel generated (dead-name, no-senders, new-task, ...).");
  const refused = counter("hurd.kernel.sends.refused", "Sends refused or not delivered (bad destination, full queue, dead port).");
  const rejected = counter("hurd.kernel.traps.rejected", "Traps and edge calls rejected for a missing or wrong task token.");
  const records = counter("hurd.kernel.trace.records.dropped", "Trace records dropped because a watcher fell behind.");
  const spans = counter("hurd.kernel.spans.dropped", "Spans dropped because the export queue was full.");
  const all: Observable[] = [tasks, ports, rights, queued, bytes, sent, delivered, notifications, refused, rejected, records, spans];
  const none: Attributes = {};
  const cb = (r: BatchObservableResult) => {
    for (const h of countHurds(k)) {
      r.observe(tasks, h.tasks, h.attrs);
      r.observe(ports, h.ports, h.attrs);
      for (let i = 0; i < RIGHTS.length; i++) r.observe(rights, h.rights[i]!, { ...h.attrs, "hurd.right": RIGHTS[i]![1] });
      r.observe(queued, h.queued, h.attrs);
      r.observe(bytes, h.bytes, h.attrs);
    }
    const s = k.stats;
    r.observe(sent, s.sent, none);
    r.observe(delivered, s.delivered, none);
    r.observe(notifications, s.notifications, none);
    r.observe(refused, s.sendFailures, none);
    r.observe(rejected, s.rejectedTraps, none);
    r.observe(records, k.trace.stats.dropped, none);
    r.observe(spans, k.trace.spansDropped(), none);
  };
  meter.addBatchObservableCallback(cb, all);
  k.callMetrics = new CallMetrics(k, m);
  return () => {
    meter.removeBatchObservableCallback(cb, all);
    k.callMetrics = null;
  };
}

// proc's metrics, per hurd (hurd.name: the hurd this proc serves): live
// processes and zombies, open process handles per owner uid (the quota's
// buckets; -1 is the processes with no ids), and the processes made and
// reaped since proc started. The counts include the processes of the hurds
// nested in this one, which this proc numbers too (as a parent PID
// namespace does on Linux). Everything is read when a scrape asks: proc's
// tables keep these numbers anyway, and a walk for the zombies costs
// O(processes) on the scraper's schedule, never on an RPC's path.
import type { BatchObservableResult, Observable } from "@opentelemetry/api";
import { globalMetrics, type Metrics } from "@hurdmesh/telemetry";
import type { HandleTable } from "./handles.js";
import { P } from "./proc.js";
import type { ProcServer } from "./server.js";

/** Registers proc's instruments on the program's metrics (none: nothing); they go when proc's task does. */
export function observeProc(srv: ProcServer, handles: HandleTable, m: Metrics | null = globalMetrics()): void {
  if (!m) return;
  const meter = m.meter;
  const hurd = { "hurd.name": srv.task.hurd };
  const processes = meter.createObservableGauge("hurd.proc.processes", { description: "Processes with a pid in this hurd's proc (zombies included).", unit: "{process}" });
  const zombies = meter.createObservableGauge("hurd.proc.zombies", { description: "Processes that exited and wait to be reaped.", unit: "{process}" });
  const held = meter.createObservableGauge("hurd.proc.handles", { description: "Open process handles, by the uid that owns them (hurd.uid; -1: no ids).", unit: "{handle}" });
  const created = meter.createObservableCounter("hurd.proc.processes.created", { description: "Processes proc gave a pid to.", unit: "{process}" });
  const reaped = meter.createObservableCounter("hurd.proc.processes.reaped", { description: "Processes proc removed from its tables (waited for, or never to be waited for).", unit: "{process}" });
  const all: Observable[] = [processes, zombies, held, created, reaped];
  const cb = (r: BatchObservableResult) => {
    if (srv.task.detached) {
      // This proc is over (its hurd shut down): its series end with it.
      meter.removeBatchObservableCallback(cb, all);
      return;
    }
    let z = 0;
    for (const p of srv.byPid.values()) if (p.flags & P.DEAD) z++;
    r.observe(processes, srv.byPid.size, hurd);
    r.observe(zombies, z, hurd);
    const perUid = new Map<number, number>();
    for (const h of handles.byPort.values()) {
      // An id-less opener's handles count against itself; here they are uid -1.
      const uid = typeof h.owner === "number" ? h.owner : -1;
      perUid.set(uid, (perUid.get(uid) ?? 0) + 1);
    }
    for (const [uid, n] of perUid) r.observe(held, n, { ...hurd, "hurd.uid": uid });
    r.observe(created, srv.stats.created, hurd);
    r.observe(reaped, srv.stats.reaped, hurd);
  };
  meter.addBatchObservableCallback(cb, all);
}

// Metrics, scraped as Prometheus scrapes them: a hurd and a subhurd boot
// with the program's metrics on (a /metrics endpoint on a free port), a
// known workload runs, and the page's numbers move by what it did — N
// process lifecycles are N more processes made and reaped in the hurd that
// ran them, N more proc_child calls served, the kernel's per-hurd tasks
// and rights and its counters are there, labelled with each hurd's name.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { Process, WNOHANG } from "@hurdmesh/libhurd";
import { installMetricsHooks, setGlobalMetrics } from "@hurdmesh/telemetry";
import { startMetrics, type SdkMetrics } from "@hurdmesh/telemetry-sdk";
import { busKinds } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";
import { dashboardQueries, dashboardVariables, labelValuesQuery } from "./dashboard.js";
import { names, parsePrometheus, sample, type Samples } from "./prometheus.js";

/** Every metric name the dashboard's PromQL queries (and its variables) read. */
export function dashboardMetrics(): Set<string> {
  const out = new Set<string>();
  // A metric is a name followed by its selector or range ({ or [); functions are followed by (.
  for (const q of dashboardQueries()) for (const m of q.expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)) out.add(m[1]!);
  for (const v of dashboardVariables()) out.add(labelValuesQuery(v.definition).match);
  return out;
}

/** One lifecycle as a fork that exits at once and is waited for: task_create, proc_child, exit, proc_wait. */
async function lifecycle(parent: Process): Promise<void> {
  const c = await parent.fork("metrics-child");
  await parent.task.taskTerminate(c.task);
  await parent.task.deallocate(c.task).catch(() => {});
  const w = await parent.wait(c.pid);
  assert.equal(w?.pid, c.pid);
}

for (const kind of busKinds) {
  describe(`metrics on /metrics (${kind} bus)`, () => {
    let m: SdkMetrics;
    let b: BootedHurd;
    let sub: Subhurd;
    let root: Process;
    let inner: Process;
    let system: string;
    const scrape = async (): Promise<Samples> => parsePrometheus(await (await fetch(m.endpoint)).text());

    before(async () => {
      // As a program's main does: the global Metrics and the runtime's hooks; procs booted from here on register their instruments.
      m = (await startMetrics("hurd-test", { HURD_METRICS_ADDR: "127.0.0.1:0" }))!;
      b = await bootHurd(kind);
      b.h.kernel.useMetrics(m);
      system = b.h.kernel.config.system;
      const attach = (id: number, token: string) => b.h.attach(id, token, { window: 1024, timeoutMs: 20000 });
      sub = await bootSubhurd(b.initTask, "inner", attach, new InProcessLauncher(attach), { log: () => {} });
      root = await Process.attach(b.initTask, b.init.booted!.proc, b.init.booted!.auth, { msgport: false });
      inner = await Process.attach(sub.task, sub.init.booted!.proc, sub.init.booted!.auth, { msgport: false });
      // Reap what the boots left, so the counts below are the workload's alone.
      while (await root.wait(-1, WNOHANG).catch(() => null));
      while (await inner.wait(-1, WNOHANG).catch(() => null));
    });
    after(async () => {
      installMetricsHooks(null);
      setGlobalMetrics(null);
      await b.close();
      await m.shutdown();
    });

    it("serves the Prometheus text format on its own port, with the resource as target_info", async () => {
      const r = await fetch(m.endpoint);
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type") ?? "", /text\/plain/);
      const s = parsePrometheus(await r.text());
      const info = s.find((x) => x.name === "target_info");
      assert.ok(info, "target_info present");
      assert.equal(info.labels.service_namespace, "hurdmesh");
      assert.match(info.labels.service_instance_id ?? "", /^[0-9a-f-]{36}$/);
      assert.equal((await fetch(m.endpoint.replace("/metrics", "/other"))).status, 404);
    });

    it("N lifecycles in a hurd are N more processes made and reaped there, and N more proc_child calls served", async () => {
      const N = 7;
      const M = 4;
      const before = await scrape();
      for (let i = 0; i < N; i++) await lifecycle(root);
      for (let i = 0; i < M; i++) await lifecycle(inner);
      const now = await scrape();
      const delta = (name: string, labels: Record<string, string>) => (sample(now, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
      // The subhurd's proc numbers its own processes only.
      assert.equal(delta("hurd_proc_processes_created_total", { hurd_name: "inner" }), M);
      assert.equal(delta("hurd_proc_processes_reaped_total", { hurd_name: "inner" }), M);
      // The root's proc numbers the subhurd's too (an ancestor PID namespace), so it saw both.
      assert.equal(delta("hurd_proc_processes_created_total", { hurd_name: system }), N + M);
      const child = { rpc_method: "hurd.process.v1.Process/Child", rpc_response_status_code: "OK" };
      assert.equal(delta("rpc_server_call_duration_count", { ...child, hurd_name: system }), N);
      assert.equal(delta("rpc_server_call_duration_count", { ...child, hurd_name: "inner" }), M);
      assert.equal(delta("rpc_client_call_duration_count", { ...child, hurd_name: system }), N);
      // The kernel's own calls: task_create and task_terminate, per hurd of the caller.
      const create = { rpc_method: "hurd.mach.v1.Mach/TaskCreate", rpc_response_status_code: "OK" };
      assert.equal(delta("rpc_server_call_duration_count", { ...create, hurd_name: system }), N);
      assert.equal(delta("rpc_server_call_duration_count", { ...create, hurd_name: "inner" }), M);
      // Every observation is in a bucket, and the +Inf bucket is the count.
      const count = sample(now, "rpc_server_call_duration_count", { ...child, hurd_name: system })!;
      assert.equal(sample(now, "rpc_server_call_duration_bucket", { ...child, hurd_name: system, le: "+Inf" }), count);
    });

    it("a failed RPC is counted under its errno, with error.type", async () => {
      const before = await scrape();
      await assert.rejects(root.proc.getmsgport({ pid: 99999 }));
      const now = await scrape();
      const labels = { rpc_method: "hurd.process.v1.Process/Getmsgport", rpc_response_status_code: "ESRCH", error_type: "ESRCH", hurd_name: system };
      assert.equal((sample(now, "rpc_server_call_duration_count", labels) ?? 0) - (sample(before, "rpc_server_call_duration_count", labels) ?? 0), 1);
    });

    it("the kernel's gauges are per hurd and its counters move with the traffic", async () => {
      const s = await scrape();
      for (const hurd of [system, "inner"]) {
        assert.ok((sample(s, "hurd_kernel_tasks", { hurd_name: hurd }) ?? 0) >= 4, `tasks of ${hurd}: init, proc, auth, pid 1`);
        assert.ok((sample(s, "hurd_kernel_ports", { hurd_name: hurd }) ?? 0) > 0);
        assert.ok((sample(s, "hurd_kernel_rights", { hurd_name: hurd, hurd_right: "send" }) ?? 0) > 0);
        assert.notEqual(sample(s, "hurd_kernel_queued_messages", { hurd_name: hurd }), undefined);
        assert.notEqual(sample(s, "hurd_kernel_queued_bytes", { hurd_name: hurd }), undefined);
        assert.notEqual(sample(s, "hurd_proc_zombies", { hurd_name: hurd }), undefined);
        assert.ok((sample(s, "hurd_proc_processes", { hurd_name: hurd }) ?? 0) >= 4);
      }
      const sent = sample(s, "hurd_kernel_messages_sent_total", {})!;
      assert.ok(sent > 0);
      await root.getpids();
      const s2 = await scrape();
      assert.ok(sample(s2, "hurd_kernel_messages_sent_total", {})! >= sent + 2, "a request and its reply");
      assert.ok(sample(s2, "hurd_kernel_messages_delivered_total", {})! > 0);
      for (const name of ["hurd_kernel_notifications_total", "hurd_kernel_sends_refused_total", "hurd_kernel_traps_rejected_total", "hurd_kernel_spans_dropped_total", "hurd_kernel_trace_records_dropped_total"])
        assert.notEqual(sample(s2, name, {}), undefined, name);
    });

    it("every metric the hurdmesh Grafana dashboard queries is one the services export", async () => {
      const wanted = dashboardMetrics();
      assert.ok(wanted.size >= 15, `the dashboard names ${wanted.size} metrics`);
      // A failed call, a lifecycle and an open handle first, so that every series the panels read has a sample.
      await assert.rejects(root.proc.getmsgport({ pid: 99999 }));
      await lifecycle(root);
      const h = await root.open(1);
      const have = names(await scrape());
      await h.close();
      const missing = [...wanted].filter((n) => !have.has(n));
      assert.deepEqual(missing, [], `exported: ${[...have].sort().join(", ")}`);
    });

    it("process handles are counted per owner uid", async () => {
      const h = await root.open(1);
      const s = await scrape();
      assert.ok((sample(s, "hurd_proc_handles", { hurd_name: system, hurd_uid: "0" }) ?? 0) >= 1);
      await h.close();
    });
  });
}

// The provisioned Grafana dashboard's queries, run by a real Prometheus
// (Debian's, which .ci/run installs; never skipped) against a booted hurd:
// a hurd and a subhurd boot with metrics on, Prometheus scrapes their
// /metrics every second, a known workload runs in both hurds (process
// lifecycles, a failed call, an open process handle), and every PromQL
// query of every panel goes through Prometheus's HTTP API as Grafana sends
// it: with $hurd = All and with $hurd = each hurd the variable's own query
// lists. Each query must parse and return data; where the workload
// guarantees traffic, a value above zero; and a query filtered by $hurd
// must answer for that hurd alone. A metric renamed in the code or the
// dashboard makes its panel's query come back empty, and this fails. And
// the compose profile's prometheus.yml passes Prometheus's own promtool.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { InProcessLauncher } from "@hurdmesh/boot";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { Process, WNOHANG, type ProcessHandle } from "@hurdmesh/libhurd";
import { installMetricsHooks, setGlobalMetrics } from "@hurdmesh/telemetry";
import { startMetrics, type SdkMetrics } from "@hurdmesh/telemetry-sdk";
import { busKinds } from "../harness.js";
import { bootHurd, type BootedHurd } from "../init/kit.js";
import { dashboardQueries, dashboardVariables, interpolate, labelValuesQuery, type DashboardQuery } from "./dashboard.js";
import { havePrometheus, startPrometheus, type PrometheusServer, type Series } from "./prometheus-server.js";

/**
 * Queries whose value may rightly be zero after the workload (nothing
 * refused, nothing dropped, nothing queued at the instant of the scrape):
 * they must still return their series, so the metric exists under that
 * name and labels. Every other query must show a value above zero.
 */
const MAY_BE_ZERO = new Set([
  "Messages queued/A",
  "Bytes queued/A",
  "Routing/C",
  "Routing/D",
  "Routing/E",
  "Processes and zombies/B",
  "Spans dropped (full export queue)/A",
  "Spans dropped (full export queue)/B",
  "Spans waiting for export, trace records dropped/A",
  "Spans waiting for export, trace records dropped/B",
]);

const PROMETHEUS_YML = fileURLToPath(new URL("../../deploy/dashboards/prometheus.yml", import.meta.url));
const SCRAPE_S = 1;
/**
 * What Grafana puts for its interval macros. $__rate_interval is at least
 * four scrape intervals and grows with the dashboard's time range: here it
 * covers the whole workload (and the scrapes after it), however slowly a
 * loaded machine ran it, so a rate() has samples on both sides of it.
 */
function intervals(coverS: number): { rate: string; interval: string; range: string } {
  const w = `${Math.max(4 * SCRAPE_S, Math.ceil(coverS) + 5)}s`;
  return { rate: w, interval: `${SCRAPE_S}s`, range: w };
}

const key = (q: DashboardQuery) => `${q.panel}/${q.refId}`;

/** One lifecycle: a fork that is terminated at once and waited for. */
async function lifecycle(parent: Process): Promise<void> {
  const c = await parent.fork("dashboard-child");
  await parent.task.taskTerminate(c.task);
  await parent.task.deallocate(c.task).catch(() => {});
  const w = await parent.wait(c.pid);
  assert.equal(w?.pid, c.pid);
}

describe("the dashboards profile's Prometheus config", () => {
  it("is one Prometheus accepts (promtool check config), and promtool refuses a broken one", () => {
    const ok = spawnSync("promtool", ["check", "config", PROMETHEUS_YML], { encoding: "utf8", timeout: 30000 });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    const dir = mkdtempSync(join(tmpdir(), "hurd-promtool-"));
    try {
      const broken = join(dir, "prometheus.yml");
      const text = readFileSync(PROMETHEUS_YML, "utf8");
      assert.match(text, /scrape_interval: 5s/);
      writeFileSync(broken, text.replace("scrape_interval: 5s", "scrape_interval: five seconds"));
      const bad = spawnSync("promtool", ["check", "config", broken], { encoding: "utf8", timeout: 30000 });
      assert.notEqual(bad.status, 0, "a config with a bad duration");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const kind of busKinds) {
  describe(`the Grafana dashboard's queries on a real Prometheus (${kind} bus)`, () => {
    let m: SdkMetrics;
    let b: BootedHurd;
    let sub: Subhurd;
    let root: Process;
    let inner: Process;
    let system: string;
    let prom: PrometheusServer | null = null;
    const handles: ProcessHandle[] = [];
    /** The instant every query is evaluated at: after the workload and two more scrapes. */
    let at = 0;
    let macros = intervals(0);

    before(async () => {
      assert.ok(havePrometheus(), "prometheus is not on PATH: apt-get install prometheus (.ci/run does)");
      m = (await startMetrics("hurd-up", { HURD_METRICS_ADDR: "127.0.0.1:0" }))!;
      b = await bootHurd(kind);
      b.h.kernel.useMetrics(m);
      system = b.h.kernel.config.system;
      const attach = (id: number, token: string) => b.h.attach(id, token, { window: 1024, timeoutMs: 20000 });
      sub = await bootSubhurd(b.initTask, "inner", attach, new InProcessLauncher(attach), { log: () => {} });
      root = await Process.attach(b.initTask, b.init.booted!.proc, b.init.booted!.auth, { msgport: false });
      inner = await Process.attach(sub.task, sub.init.booted!.proc, sub.init.booted!.auth, { msgport: false });
      while (await root.wait(-1, WNOHANG).catch(() => null));
      while (await inner.wait(-1, WNOHANG).catch(() => null));
      // `hurd up` serves every server of both hurds from one process: one target, labelled as prometheus.yml labels its targets.
      prom = await startPrometheus([{ endpoint: m.endpoint!, labels: { service: "hurd-up" } }], SCRAPE_S);
      await prom.scraped(1);
      // The workload, spread over several scrapes so rate() has samples on both sides of it.
      handles.push(await root.open(1), await inner.open(1));
      const started = Date.now();
      const until = started + 4000;
      while (Date.now() < until) {
        await lifecycle(root);
        await lifecycle(inner);
        await assert.rejects(root.proc.getmsgport({ pid: 99999 }));
        await assert.rejects(inner.proc.getmsgport({ pid: 99999 }));
        await new Promise((r) => setTimeout(r, 100));
      }
      await prom.scraped(2);
      at = Date.now() / 1000;
      macros = intervals(at - started / 1000);
    });
    after(async () => {
      for (const h of handles) await h.close().catch(() => {});
      await prom?.stop();
      installMetricsHooks(null);
      setGlobalMetrics(null);
      await b?.close();
      await m?.shutdown();
    });

    it("the $hurd variable's query lists both hurds", async () => {
      const [v, ...more] = dashboardVariables();
      assert.equal(more.length, 0, "one variable, $hurd");
      assert.equal(v!.name, "hurd");
      const { match, label } = labelValuesQuery(v!.definition);
      assert.deepEqual((await prom!.labelValues(label, match)).sort(), [system, "inner"].sort());
    });

    it("every query parses, returns data with $hurd = All, and shows both hurds where it groups by hurd", async () => {
      const qs = dashboardQueries();
      assert.ok(qs.length >= 20, `the dashboard has ${qs.length} queries`);
      const defs = dashboardVariables();
      const empty: string[] = [];
      const zero: string[] = [];
      for (const q of qs) {
        const promql = interpolate(q.expr, { hurd: "All" }, defs, macros);
        const r = await prom!.query(promql, at);
        if (r.length === 0) {
          empty.push(`${key(q)}: ${promql}`);
          continue;
        }
        if (!MAY_BE_ZERO.has(key(q)) && !r.some((s) => s.value > 0)) zero.push(`${key(q)}: ${promql} = ${JSON.stringify(r)}`);
        if (/by \([^)]*hurd_name/.test(q.expr)) {
          const hurds = new Set(r.map((s) => s.metric.hurd_name));
          assert.ok(hurds.has(system) && hurds.has("inner"), `${key(q)} shows ${[...hurds].join(", ")}`);
        }
      }
      assert.deepEqual(empty, [], "queries that returned nothing");
      assert.deepEqual(zero, [], "queries the workload should have moved");
      console.log(`# ${qs.length} panel queries (and the variable's label_values) evaluated with $hurd = All`);
    });

    it("with $hurd = each hurd, every query returns data for that hurd alone", async () => {
      const defs = dashboardVariables();
      const qs = dashboardQueries();
      for (const hurd of [system, "inner"]) {
        const empty: string[] = [];
        for (const q of qs) {
          const promql = interpolate(q.expr, { hurd: [hurd] }, defs, macros);
          const r: Series[] = await prom!.query(promql, at);
          if (r.length === 0) {
            empty.push(`${key(q)}: ${promql}`);
            continue;
          }
          if (!MAY_BE_ZERO.has(key(q))) assert.ok(r.some((s) => s.value > 0), `${key(q)} for ${hurd}: ${JSON.stringify(r)}`);
          for (const s of r) if (s.metric.hurd_name !== undefined) assert.equal(s.metric.hurd_name, hurd, `${key(q)}: a series of another hurd`);
        }
        assert.deepEqual(empty, [], `queries that returned nothing for $hurd = ${hurd}`);
      }
    });

    it("a query's data is the workload's: the lifecycles made in each hurd, as Prometheus counts them", async () => {
      // increase() over the whole run against proc's own counter read now: Prometheus saw what the services counted.
      for (const hurd of [system, "inner"]) {
        const r = await prom!.query(`sum(hurd_proc_processes_created_total{hurd_name="${hurd}"})`, at);
        assert.equal(r.length, 1);
        assert.ok(r[0]!.value >= 10, `${hurd}: ${r[0]!.value} processes made`);
      }
      // The root's proc numbers the subhurd's processes too (an ancestor PID namespace): it made more.
      const [rootMade, innerMade] = await Promise.all([system, "inner"].map(async (h) => (await prom!.query(`sum(hurd_proc_processes_created_total{hurd_name="${h}"})`, at))[0]!.value));
      assert.ok(rootMade! > innerMade!, `root ${rootMade} > inner ${innerMade}`);
    });

    it("a query Prometheus refuses is reported as such (the check can fail)", async () => {
      await assert.rejects(prom!.query("sum by (rpc_method (rate(x[1m]))", at), /Prometheus refused .*bad_data/);
      assert.deepEqual(await prom!.query("hurd_metric_that_no_service_exports", at), []);
    });
  });
}

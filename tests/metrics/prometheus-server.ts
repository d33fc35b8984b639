// A real Prometheus (Debian's `prometheus`, installed by .ci/run) for a
// test: its own free loopback port, its own temporary storage, a config
// naming the /metrics endpoints to scrape, and its HTTP query API. It ends
// with the test (stop(), and a SIGKILL at the runner's exit should a test
// die before its after hook), and its storage goes with it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ScrapeTarget {
  /** http://host:port/metrics, as the program printed or startMetrics returned. */
  endpoint: string;
  /** Labels the scrape adds, as deploy/dashboards/prometheus.yml adds `service`. */
  labels: Record<string, string>;
}

/** A series of an instant vector: its labels and its value (NaN and ±Inf kept as numbers). */
export interface Series {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusServer {
  url: string;
  /** An instant query at `time` (seconds; default now); throws with Prometheus's own error when it refuses the query. */
  query(promql: string, time?: number): Promise<Series[]>;
  /** The values a label takes on the series `match` selects (what Grafana's label_values() asks). */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Waits until every target has been scraped successfully `scrapes` more times. */
  scraped(scrapes?: number, timeoutMs?: number): Promise<void>;
  /** Prometheus's log so far (for a failing assertion's message). */
  log(): string;
  stop(): Promise<void>;
}

/** Whether Prometheus is installed (.ci/run installs it; elsewhere the suite says it cannot run). */
export function havePrometheus(): boolean {
  return spawnSync("sh", ["-c", "command -v prometheus"], { encoding: "utf8" }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(a && typeof a === "object" ? a.port : 0));
    });
  });
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

interface ApiReply<T> {
  status: "success" | "error";
  data: T;
  errorType?: string;
  error?: string;
}

export async function startPrometheus(targets: ScrapeTarget[], scrapeIntervalS = 1): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), "hurd-prometheus-"));
  const port = await freePort();
  const config = {
    global: { scrape_interval: `${scrapeIntervalS}s`, evaluation_interval: `${scrapeIntervalS}s` },
    scrape_configs: [
      {
        job_name: "hurdmesh",
        static_configs: targets.map((t) => {
          const u = new URL(t.endpoint);
          return { targets: [u.host], labels: t.labels };
        }),
        metrics_path: "/metrics",
      },
    ],
  };
  // YAML is a superset of JSON: the config is written as JSON.
  writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 1));
  const proc = spawn(
    "prometheus",
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { stdio: ["ignore", "pipe", "pipe"], cwd: dir },
  );
  running.add(proc);
  let log = "";
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<void>((r) => proc.on("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;

  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    running.delete(proc);
    rmSync(dir, { recursive: true, force: true });
  };

  // GET, as Grafana's label_values asks (the label values endpoint takes no POST in 2.42).
  async function api<T>(path: string, params: Record<string, string | string[]>): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
    const r = await fetch(`${url}${path}?${q}`);
    const text = await r.text();
    let j: ApiReply<T>;
    try {
      j = JSON.parse(text) as ApiReply<T>;
    } catch {
      throw new Error(`Prometheus answered ${path} with HTTP ${r.status}: ${text.slice(0, 200)}`);
    }
    if (j.status !== "success") throw new Error(`Prometheus refused ${path} ${JSON.stringify(params)}: ${j.errorType}: ${j.error}`);
    return j.data;
  }

  try {
    const deadline = Date.now() + 30000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`prometheus exited (${proc.exitCode}): ${log}`);
      const ok = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready on ${url} in 30 s: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const server: PrometheusServer = {
    url,
    log: () => log,
    stop,
    async query(promql, time) {
      const data = await api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>("/api/v1/query", {
        query: promql,
        ...(time === undefined ? {} : { time: String(time) }),
      });
      if (data.resultType !== "vector") throw new Error(`${promql}: a ${data.resultType}, not an instant vector`);
      return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
    },
    async labelValues(label, match) {
      return api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values`, { "match[]": match });
    },
    async scraped(scrapes = 2, timeoutMs = 30000) {
      // Each target's last scrape time, then wait for it to move `scrapes` times with health "up".
      const targetsNow = async () => {
        const r = await fetch(`${url}/api/v1/targets?state=active`);
        const j = (await r.json()) as ApiReply<{ activeTargets: { scrapeUrl: string; health: string; lastScrape: string; lastError: string }[] }>;
        return j.data.activeTargets;
      };
      const seen = new Map<string, Set<string>>();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ts = await targetsNow();
        for (const t of ts) if (t.health === "up") (seen.get(t.scrapeUrl) ?? seen.set(t.scrapeUrl, new Set()).get(t.scrapeUrl)!).add(t.lastScrape);
        // The first lastScrape seen may predate the call: `scrapes` more is `scrapes + 1` distinct times.
        if (ts.length === targets.length && ts.every((t) => (seen.get(t.scrapeUrl)?.size ?? 0) > scrapes)) return;
        if (Date.now() > deadline) throw new Error(`Prometheus's targets not scraped ${scrapes} more times in ${timeoutMs} ms: ${JSON.stringify(ts)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
  return server;
}

// The dashboards profile, checked where CI can check it (no image of
// Prometheus, Grafana or Jaeger can be pulled here): the compose file's
// services, the Prometheus targets, Grafana's provisioning and Jaeger's
// span-metrics wiring agree with one another and with what the services
// serve. That the dashboard's metrics are the ones exported is checked
// against a live scrape in tests/metrics/metrics.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

const root = new URL("../../", import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), "utf8");
const yaml = (p: string) => parse(read(p), { merge: true }) as Record<string, any>;

describe("the dashboards compose profile", () => {
  const compose = yaml("docker-compose.yml");
  const services = compose.services as Record<string, any>;

  it("runs Prometheus and Grafana only in the dashboards profile, published on the bind address", () => {
    for (const s of ["prometheus", "grafana"]) {
      assert.deepEqual(services[s].profiles, ["dashboards"], s);
      assert.match(services[s].ports[0], /^\$\{HURDMESH_BIND:-127\.0\.0\.1\}:/);
    }
  });

  it("every service serves /metrics on the port Prometheus scrapes, and exports spans as OTLP/HTTP protobuf to Jaeger's 4318", () => {
    const env = compose["x-hurdmesh"].environment;
    assert.equal(env.HURD_METRICS_ADDR, "${HURD_METRICS_ADDR:-0.0.0.0:9464}");
    assert.equal(env.OTEL_EXPORTER_OTLP_PROTOCOL, "${OTEL_EXPORTER_OTLP_PROTOCOL:-http/protobuf}");
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}");
    const prom = yaml("deploy/dashboards/prometheus.yml");
    const job = prom.scrape_configs.find((j: any) => j.job_name === "hurdmesh");
    const targets: string[] = job.static_configs.flatMap((c: any) => c.targets);
    for (const t of targets) {
      const [host, port] = t.split(":");
      // kernel:9465: docker-compose.ha.yml's standby, in the kernel's network namespace (compose.test.ts checks it serves there).
      assert.equal(port, t === "kernel:9465" ? "9465" : "9464", t);
      assert.ok(services[host!], `${host} is a compose service`);
      assert.equal(services[host!].image, "${HURDMESH_IMAGE:-hurdmesh:dev}", `${host} runs the hurdmesh image`);
    }
    for (const s of ["kernel", "init", "proc", "auth"]) assert.ok(targets.includes(`${s}:9464`), `${s} is scraped`);
  });

  it("Jaeger's Monitor tab reads span metrics back from the same Prometheus that scrapes them", () => {
    assert.deepEqual(services.jaeger.command, ["--config", "/etc/jaeger/config.yaml"]);
    assert.ok(services.jaeger.volumes.some((v: string) => v.startsWith("./deploy/dashboards/jaeger.yaml:/etc/jaeger/config.yaml")));
    const j = yaml("deploy/dashboards/jaeger.yaml");
    assert.equal(j.receivers.otlp.protocols.http.endpoint, "0.0.0.0:4318");
    assert.ok(j.service.pipelines.traces.exporters.includes("spanmetrics"));
    assert.deepEqual(j.service.pipelines["metrics/spanmetrics"].receivers, ["spanmetrics"]);
    const port = j.exporters.prometheus.endpoint.split(":").pop();
    const prom = yaml("deploy/dashboards/prometheus.yml");
    assert.ok(prom.scrape_configs.some((c: any) => c.static_configs.some((s: any) => s.targets.includes(`jaeger:${port}`))), "Prometheus scrapes the span metrics");
    const backend = j.extensions.jaeger_storage.metric_backends[j.extensions.jaeger_query.storage.metrics];
    assert.equal(backend.prometheus.endpoint, "http://prometheus:9090");
  });

  it("Grafana is provisioned with the Prometheus the dashboard names and loads the hurdmesh dashboard", () => {
    const ds = yaml("deploy/dashboards/grafana/provisioning/datasources/datasources.yaml");
    const p = ds.datasources.find((d: any) => d.type === "prometheus");
    assert.equal(p.url, "http://prometheus:9090");
    const dash = JSON.parse(read("deploy/dashboards/grafana/dashboards/hurdmesh.json"));
    const uids = new Set<string>();
    for (const panel of dash.panels) if (panel.datasource) uids.add(panel.datasource.uid);
    assert.deepEqual([...uids], [p.uid]);
    const prov = yaml("deploy/dashboards/grafana/provisioning/dashboards/dashboards.yaml");
    const mount = services.grafana.volumes.find((v: string) => v.startsWith("./deploy/dashboards/grafana/dashboards:"));
    assert.equal(mount.split(":")[1], prov.providers[0].options.path);
    // The panels the issue asks for: RPC rate, latency and errors per method and per hurd, kernel resources, export drops.
    const titles = dash.panels.map((x: any) => x.title as string).join(" | ");
    for (const t of ["per method", "per hurd", "Errors", "Latency", "Tasks", "Ports", "Rights", "queued", "dropped"]) assert.match(titles, new RegExp(t), t);
  });

  it("Kubernetes pods export over the same path", () => {
    const k = read("k8s/components/hurdmesh-env/kustomization.yaml");
    assert.match(k, /OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/jaeger\.hurdmesh\.svc\.cluster\.local:4318/);
    assert.match(k, /OTEL_EXPORTER_OTLP_PROTOCOL=http\/protobuf/);
    assert.match(k, /HURD_METRICS_ADDR=0\.0\.0\.0:9464/);
  });
});

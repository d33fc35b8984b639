// hurd web as a deployment runs it, checked where CI can check it (no
// container engine here; the process itself is run as the compose service
// runs it in tests/deploy/containers.test.ts): compose's `web` service and
// the root hurd's Kubernetes overlay agree with what `hurd web` needs (the
// session init writes, the edge as the container reaches it, a port of its
// own for /metrics, a probe on /healthz) and with Prometheus's targets.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";

const root = new URL("../../", import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), "utf8");
const yaml = (p: string) => parse(read(p), { merge: true }) as Record<string, any>;

describe("hurd web in docker compose", () => {
  const compose = yaml("docker-compose.yml");
  const s = compose.services;
  const web = s.web;

  it("is a service of its own running `hurd web` on the hurdmesh image, published on the bind address", () => {
    assert.ok(web, "compose has a web service");
    assert.equal(web.image, "${HURDMESH_IMAGE:-hurdmesh:dev}");
    assert.deepEqual(web.command.slice(0, 2), ["hurd", "web"]);
    const listen = web.command[web.command.indexOf("--listen") + 1];
    assert.equal(listen, "0.0.0.0:7410", "listens beyond loopback inside the container, to be published");
    assert.ok(Number(web.command[web.command.indexOf("--wait") + 1]) > 0, "waits for init's session");
    assert.deepEqual(web.ports, ["${HURDMESH_BIND:-127.0.0.1}:${HURD_WEB_PORT:-7410}:7410"]);
    assert.equal(web.profiles, undefined, "up by default with the hurd");
  });

  it("reads init's session read-only, reaches the kernel by its service name, and starts once init is healthy", () => {
    const initMount = s.init.volumes.find((v: string) => v.startsWith("hurd-state:"));
    assert.equal(web.volumes.find((v: string) => v.startsWith("hurd-state:")), `${initMount}:ro`);
    const env = web.environment;
    assert.equal(env.HURD_EDGE, `kernel:${s.kernel.environment.HURD_GRPC.split(":").pop()}`);
    assert.equal(env.HURD_STATE_DIR ?? "/var/lib/hurdmesh", initMount.split(":")[1], "the image's HURD_STATE_DIR is where init writes");
    assert.equal(env.OTEL_SERVICE_NAME, "hurd-web");
    assert.equal(env.HURD_JAEGER_URL, "${HURD_JAEGER_URL:-http://127.0.0.1:16686}", "links go to the Jaeger UI as it is published");
    assert.deepEqual(web.depends_on, { init: { condition: "service_healthy" } });
  });

  it("is healthy on /healthz, and scraped by Prometheus on 9464 like every service", () => {
    assert.match(web.healthcheck.test.join(" "), /http:\/\/127\.0\.0\.1:7410\/healthz/);
    assert.equal(web.healthcheck.interval, s.kernel.healthcheck.interval, "the anchor's timings");
    assert.equal(web.environment.HURD_METRICS_ADDR, "${HURD_METRICS_ADDR:-0.0.0.0:9464}");
    const prom = yaml("deploy/dashboards/prometheus.yml");
    const targets = prom.scrape_configs.find((j: any) => j.job_name === "hurdmesh").static_configs;
    assert.ok(targets.some((c: any) => c.targets.includes("web:9464") && c.labels.service === "hurd-web"));
  });
});

const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
const skip = kubectl.error || kubectl.status !== 0 ? "kubectl is not installed: the overlay was NOT rendered (install kubectl to run this suite)" : false;

describe("hurd web in Kubernetes (overlays/root)", { skip }, () => {
  const r = spawnSync("kubectl", ["kustomize", new URL("k8s/overlays/root", root).pathname], { encoding: "utf8" });
  const objects = r.status === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, any>) : [];

  it("is a container of its own in the root hurd's init pod, after init, sharing its state read-only", () => {
    assert.equal(r.status, 0, r.stderr);
    const init = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "init")!;
    const cs = init.spec.template.spec.containers as any[];
    assert.deepEqual(
      cs.map((c) => c.name),
      ["init", "web"],
      "init stays first: kubectl exec and logs default to it",
    );
    const [i, w] = cs;
    assert.deepEqual(w.args.slice(0, 2), ["hurd", "web"]);
    assert.equal(w.args[w.args.indexOf("--listen") + 1], "0.0.0.0:7410");
    const state = i.volumeMounts.find((m: any) => m.name === "state");
    assert.deepEqual(
      w.volumeMounts.find((m: any) => m.name === "state"),
      { name: "state", mountPath: state.mountPath, readOnly: true },
    );
    // One pod, one network: web's /metrics cannot take init's port.
    const envOf = (c: any, k: string) => c.env?.find((e: any) => e.name === k)?.value;
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("hurdmesh-env"))!;
    const initMetrics = envOf(i, "HURD_METRICS_ADDR") ?? cm.data.HURD_METRICS_ADDR;
    assert.notEqual(envOf(w, "HURD_METRICS_ADDR"), initMetrics);
    assert.equal(envOf(w, "OTEL_SERVICE_NAME"), "hurd-web");
    assert.equal(w.env.find((e: any) => e.name === "HURD_BOOT_SECRET"), undefined, "a client of the hurd gets no boot secret");
    // Nor the fabric: hurd web reaches the hurd through the edge (the servers take hurdmesh-fabric too).
    const fabric = (c: any) => [...(c.envFrom ?? []).map((e: any) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === e.configMapRef?.name)?.data ?? {}), Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value]))].flatMap((d) => Object.keys(d)).filter((k) => /^(NATS_|HURD_NATS_)/.test(k));
    assert.deepEqual(fabric(w), [], "hurd web is given the fabric");
    assert.ok(fabric(i).includes("NATS_URL"), "init is not given NATS's address");
    for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) assert.deepEqual(w[p].httpGet, { path: "/healthz", port: "web" }, p);
  });

  it("has a Service selecting that pod on the web port", () => {
    const svc = objects.find((o) => o.kind === "Service" && o.metadata.name === "web")!;
    assert.ok(svc, "Service web");
    const init = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "init")!;
    const labels = init.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v, k);
    const w = init.spec.template.spec.containers.find((c: any) => c.name === "web");
    const port = w.ports.find((p: any) => p.name === svc.spec.ports[0].targetPort);
    assert.equal(port?.containerPort, 7410);
  });

  it("only the root hurd has one: a subhurd overlay's init pod runs init alone", () => {
    const s = spawnSync("kubectl", ["kustomize", new URL("k8s/overlays/subhurd-a", root).pathname], { encoding: "utf8" });
    assert.equal(s.status, 0, s.stderr);
    const init = parseAllDocuments(s.stdout)
      .map((d) => d.toJS() as Record<string, any>)
      .find((o) => o.kind === "Deployment" && o.metadata.name === "init")!;
    assert.deepEqual(
      init.spec.template.spec.containers.map((c: any) => c.name),
      ["init"],
    );
  });
});

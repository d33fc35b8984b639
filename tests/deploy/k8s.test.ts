// The Kubernetes manifests (k8s/) pass the offline validator, and the
// validator fails on broken copies: an unknown field, a missing limit, a
// wrong type, a committed Secret value, a boot secret from the wrong Secret, a NATS
// cluster that cannot form or a kernel's log at more replicas than NATS has
// nodes, and a copied overlay left out of k8s/kustomization.yaml. Each broken copy must be
// rejected with a line that names the field. Needs kubectl (it renders the
// kustomizations); skips, saying so, only when kubectl is absent.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import assert from "node:assert/strict";
// @ts-expect-error: a plain .mjs script without type declarations
import { validate } from "../../scripts/k8s/validate.mjs";

const repo = new URL("../..", import.meta.url).pathname;
const validator = join(repo, "scripts/k8s/validate.mjs");
const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
const skip = kubectl.error || kubectl.status !== 0 ? "kubectl is not installed: the k8s manifests were NOT validated (install kubectl to run this suite)" : false;

function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [validator, ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d) => (err += d));
    p.on("close", (code) => resolve({ code: code ?? 1, out, err }));
  });
}

const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** A copy of k8s/ in a temp dir with one file edited; returns its k8s dir. */
function brokenCopy(file: string, edit: (text: string) => string): string {
  const t = mkdtempSync(join(tmpdir(), "hurdmesh-k8s-"));
  temps.push(t);
  const k8s = join(t, "k8s");
  cpSync(join(repo, "k8s"), k8s, { recursive: true });
  const p = join(k8s, file);
  const before = readFileSync(p, "utf8");
  const after = edit(before);
  assert.notEqual(after, before, `the edit of ${file} changed nothing: the test is out of date with the manifests`);
  writeFileSync(p, after);
  return k8s;
}

/** Exactly one occurrence of `from` replaced (so a manifest change cannot silently defuse the test). */
function once(from: string | RegExp, to: string): (s: string) => string {
  return (s) => {
    const n = typeof from === "string" ? s.split(from).length - 1 : (s.match(new RegExp(from.source, "g")) ?? []).length;
    assert.ok(n >= 1, `${from} not found in the manifest`);
    return s.replace(from, to);
  };
}

/** The validator in this process (its model definitions load once): its problem lines, as the CLI prints them. */
async function problems(root: string, dirs?: string[]): Promise<string> {
  const r = (await validate({ root, dirs })) as { problems: string[] };
  return r.problems.join("\n");
}

describe("k8s manifests", { skip, concurrency: true }, () => {
  test("every kustomization renders and passes the schemas, the unknown-field check and the project rules (the CLI, exit 0)", async () => {
    const r = await run([]);
    assert.equal(r.code, 0, `validator failed:\n${r.err}${r.out}`);
    assert.match(r.out, /k8s validate: \d+ kustomizations, \d+ objects rendered/);
  });

  test("the CLI exits 1 with one line per problem", async () => {
    const k8s = brokenCopy("hurd/proc.yaml", (s) => once("imagePullPolicy: IfNotPresent", "imagePullPolicyy: IfNotPresent")(once("containerPort: 7401", 'containerPort: "7401"')(s)));
    const r = await run(["--root", k8s, join(k8s, "overlays/subhurd-a")]);
    assert.equal(r.code, 1, r.out + r.err);
    const lines = r.err.trim().split("\n");
    assert.equal(lines.length, 3, r.err);
    assert.match(lines[0]!, /overlays\/subhurd-a: Deployment hurd-subhurd-a\/proc: spec\.template\.spec\.containers\[0\]\.ports\[0\]\.containerPort: must be integer$/);
    assert.match(lines[1]!, /overlays\/subhurd-a: Deployment hurd-subhurd-a\/proc: spec\.template\.spec\.containers\[0\]\.imagePullPolicyy: unknown field "imagePullPolicyy"/);
    assert.match(lines[2]!, /^k8s validate: 2 problems in 1 kustomizations/);
  });

  const cases: { name: string; file: string; edit: (s: string) => string; overlay: string; expect: RegExp }[] = [
    {
      name: "an unknown field (imagePullPolicyy)",
      file: "hurd/proc.yaml",
      edit: once("imagePullPolicy: IfNotPresent", "imagePullPolicyy: IfNotPresent"),
      overlay: "overlays/subhurd-a",
      expect: /Deployment hurd-subhurd-a\/proc: spec\.template\.spec\.containers\[0\]\.imagePullPolicyy: unknown field "imagePullPolicyy"/,
    },
    {
      name: "an unknown field nested in metadata (lables)",
      file: "base/jaeger.yaml",
      edit: once(/\n {6}labels:\n {8}app\.kubernetes\.io\/name: jaeger\n/, "\n      labels:\n        app.kubernetes.io/name: jaeger\n      lables:\n        oops: x\n"),
      overlay: "base",
      expect: /Deployment hurdmesh\/jaeger: spec\.template\.metadata\.lables: unknown field "lables"/,
    },
    {
      name: "a missing memory limit",
      file: "base/kernel.yaml",
      edit: once('            limits:\n              cpu: "1"\n              memory: 512Mi\n', '            limits:\n              cpu: "1"\n'),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.resources\.limits\.memory: missing/,
    },
    {
      name: "a wrong type (a port as a string)",
      file: "hurd/auth.yaml",
      edit: once("containerPort: 7401", 'containerPort: "7401"'),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/auth: spec\.template\.spec\.containers\[0\]\.ports\[0\]\.containerPort: must be integer/,
    },
    {
      name: "a wrong enum value",
      file: "base/kernel.yaml",
      edit: once("    type: Recreate", "    type: Recreated"),
      overlay: "base",
      expect: /Deployment hurdmesh\/kernel: spec\.strategy\.type: must be equal to one of the allowed values/,
    },
    {
      name: "a committed boot secret (a secretGenerator with a value)",
      file: "components/hurdmesh-env/kustomization.yaml",
      edit: once("configMapGenerator:\n", "secretGenerator:\n  - name: hurd-boot\n    literals:\n      - secret=change-me\n    options:\n      disableNameSuffixHash: true\nconfigMapGenerator:\n"),
      overlay: "overlays/subhurd-b",
      expect: /Secret hurd-subhurd-b\/hurd-boot: data: a Secret with values in the manifests commits a secret/,
    },
    {
      name: "init's boot secret from a Secret hurd keys k8s does not make",
      file: "hurd/init.yaml",
      edit: once("                  name: hurd-boot\n", "                  name: hurd-bootx\n"),
      overlay: "overlays/subhurd-b",
      expect: /Deployment hurd-subhurd-b\/init: spec\.template\.spec\.containers\[0\]\.env\[\d+\]: HURD_BOOT_SECRET must come from the Secret hurd-boot/,
    },
    {
      name: "a key the boot Secret does not have",
      file: "hurd/init.yaml",
      edit: once("                  key: secret\n", "                  key: boot\n"),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/init: spec\.template\.spec\.containers\[0\]\.env\[\d+\]\.valueFrom\.secretKeyRef: Secret hurd-boot \(made by hurd keys k8s\) has no key boot/,
    },
    {
      name: "the boot key mounted into init",
      file: "hurd/init.yaml",
      edit: once("            secretName: hurd-nats-init\n", "            secretName: hurd-boot-key\n"),
      overlay: "overlays/subhurd-a",
      expect: /Deployment hurd-subhurd-a\/init: spec\.template\.spec\.containers\[0\]\.volumeMounts: mounts hurd-boot-key \(container init\): the boot key, which claims any hurd: the kernel's alone/,
    },
    {
      name: "a kernel without its boot key",
      file: "base/kernel.yaml",
      edit: once("            - name: HURD_BOOT_KEY_FILE\n", "            - name: HURD_BOOT_KEY_FILEX\n"),
      overlay: "base",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.env: no HURD_BOOT_KEY_FILE/,
    },
    {
      name: "a Service whose selector matches nothing",
      file: "base/kernel.yaml",
      edit: once(/selector:\n {4}app\.kubernetes\.io\/name: kernel\n {2}ports:/, "selector:\n    app.kubernetes.io/name: kernal\n  ports:"),
      overlay: "base",
      expect: /Service hurdmesh\/kernel: spec\.selector: app\.kubernetes\.io\/name=kernal matches no workload in namespace hurdmesh/,
    },
    {
      name: "NATS with no NetworkPolicy (anything in the cluster would reach the fabric)",
      file: "base/kustomization.yaml",
      edit: once("  - network-policy.yaml\n", ""),
      overlay: "base",
      expect: /StatefulSet hurdmesh\/nats: metadata\.labels: NATS pods are selected by no NetworkPolicy/,
    },
    {
      name: "a NetworkPolicy that lets any pod reach NATS",
      file: "base/network-policy.yaml",
      edit: once("  ingress:\n    - from:\n        - namespaceSelector: {}\n          podSelector:\n            matchLabels:\n              app.kubernetes.io/part-of: hurdmesh\n      ports:\n        - port: 4222", "  ingress:\n    - ports:\n        - port: 4222"),
      overlay: "base",
      expect: /StatefulSet hurdmesh\/nats: metadata\.labels: a NetworkPolicy selecting NATS admits pods that are not hurdmesh's own/,
    },
    {
      name: "the boot secret handed to proc, which does not need it",
      file: "hurd/proc.yaml",
      edit: once("          env:\n", "          env:\n            - name: HURD_BOOT_SECRET\n              valueFrom:\n                secretKeyRef:\n                  name: hurd-boot\n                  key: secret\n"),
      overlay: "overlays/subhurd-a",
      expect: /Deployment hurd-subhurd-a\/proc: spec\.template\.spec\.containers\[0\]\.env\[\d+\]: the proc has HURD_BOOT_SECRET: only init needs it/,
    },
    {
      name: "a boot secret handed to the kernel, which checks claims against its boot key",
      file: "base/kernel.yaml",
      edit: once("          env:\n", "          env:\n            - name: HURD_BOOT_SECRET\n              valueFrom:\n                secretKeyRef:\n                  name: hurd-boot\n                  key: secret\n"),
      overlay: "base",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.env\[0\]: the kernel has HURD_BOOT_SECRET: it checks every hurd's claim against its boot key/,
    },
    {
      // hurd web's container beside init is exempt from the servers' rules; init's is not.
      name: "the root init's server container without the boot secret (hurd web beside it)",
      file: "hurd/init.yaml",
      edit: once("            - name: HURD_BOOT_SECRET\n", "            - name: HURD_BOOT_SECRET_X\n"),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/init: spec\.template\.spec\.containers\[0\]\.env: no HURD_BOOT_SECRET \(container init\)/,
    },
    {
      name: "an object without Kubernetes' recommended labels",
      file: "base/jaeger.yaml",
      edit: once("  labels:\n    app.kubernetes.io/name: jaeger\n    app.kubernetes.io/component: tracing\nspec:\n  replicas", "  labels:\n    app.kubernetes.io/component: tracing\nspec:\n  replicas"),
      overlay: "base",
      expect: /Deployment hurdmesh\/jaeger: metadata\.labels\.app\.kubernetes\.io\/name: missing/,
    },
    {
      name: "a namespace that does not enforce Pod Security's restricted profile",
      file: "components/subhurd/namespace.yaml",
      edit: once("pod-security.kubernetes.io/enforce: restricted", "pod-security.kubernetes.io/enforce: baseline"),
      overlay: "overlays/subhurd-a",
      expect: /Namespace hurd-subhurd-a: metadata\.labels\.pod-security\.kubernetes\.io\/enforce: must be restricted/,
    },
    {
      name: "a container that may escalate its privileges",
      file: "hurd/proc.yaml",
      edit: once("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/proc: spec\.template\.spec\.containers\[0\]\.securityContext\.allowPrivilegeEscalation: must be false/,
    },
    {
      name: "a container that keeps its capabilities",
      file: "base/kernel.yaml",
      edit: once('drop: ["ALL"]', 'drop: ["NET_RAW"]'),
      overlay: "base",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.securityContext\.capabilities\.drop: must include ALL/,
    },
    {
      name: "a subhurd whose instance label names another hurd",
      file: "overlays/subhurd-b/kustomization.yaml",
      edit: once("app.kubernetes.io/instance: subhurd-b", "app.kubernetes.io/instance: subhurd-a"),
      overlay: "overlays/subhurd-b",
      expect: /Deployment hurd-subhurd-b\/init: metadata\.labels\.app\.kubernetes\.io\/instance: must be the hurd's name, subhurd-b/,
    },
    {
      name: "a hurd server that a rolling update would double",
      file: "hurd/init.yaml",
      edit: once("    type: Recreate", "    type: RollingUpdate"),
      overlay: "overlays/subhurd-a",
      expect: /Deployment hurd-subhurd-a\/init: spec\.strategy\.type: must be Recreate/,
    },
    // NATS authorization and TLS (issue 15).
    {
      name: "hurd web (a client of the hurd) given the fabric's address",
      file: "overlays/root/web.yaml",
      edit: once("          name: hurdmesh-env\n", "          name: hurdmesh-env\n      - configMapRef:\n          name: hurdmesh-fabric\n"),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/init: spec\.template\.spec\.containers\[1\]\.envFrom\[1\]: NATS_URL \(container web\): a client of the hurd is given the fabric/,
    },
    {
      name: "HURD_NATS_AUTH=off in the shared settings",
      file: "components/hurdmesh-env/kustomization.yaml",
      edit: once("      - HURD_NATS_CA_FILE=/etc/hurdmesh/ca/ca.crt\n", "      - HURD_NATS_CA_FILE=/etc/hurdmesh/ca/ca.crt\n      - HURD_NATS_AUTH=off\n"),
      overlay: "overlays/subhurd-a",
      expect: /ConfigMap hurd-subhurd-a\/hurdmesh-fabric-\S+: data\.HURD_NATS_AUTH: off: NATS authorization is never off/,
    },
    {
      name: "HURD_NATS_AUTH=off on one container",
      file: "hurd/proc.yaml",
      edit: once("            - name: HURD_NATS_CREDS_FILE\n", '            - name: HURD_NATS_AUTH\n              value: "off"\n            - name: HURD_NATS_CREDS_FILE\n'),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/proc: spec\.template\.spec\.containers\[0\]\.env\[\d\]: HURD_NATS_AUTH=off \(container proc\)/,
    },
    {
      name: "a plaintext NATS URL",
      file: "components/hurdmesh-env/kustomization.yaml",
      edit: once("NATS_URL=tls://", "NATS_URL=nats://"),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.envFrom\[1\]: NATS_URL nats:\/\/nats\.hurdmesh\.svc\.cluster\.local:4222 \(container kernel\): must be tls:\/\//,
    },
    {
      name: "a NATS user file the pod does not mount",
      file: "hurd/auth.yaml",
      edit: once("            - name: nats-user\n              mountPath: /etc/hurdmesh/nats\n              readOnly: true\n", ""),
      overlay: "overlays/subhurd-b",
      expect: /Deployment hurd-subhurd-b\/auth: spec\.template\.spec\.containers\[0\]\.env\[\d\]: HURD_NATS_CREDS_FILE=\/etc\/hurdmesh\/nats\/nats\.creds \(container auth\) is under none of its volumeMounts/,
    },
    {
      name: "init without its NATS user",
      file: "hurd/init.yaml",
      edit: once("            - name: HURD_NATS_CREDS_FILE\n", "            - name: HURD_NATS_CREDS_FILEX\n"),
      overlay: "overlays/subhurd-a",
      expect: /Deployment hurd-subhurd-a\/init: spec\.template\.spec\.containers\[0\]\.env: no HURD_NATS_CREDS_FILE \(container init\)/,
    },
    {
      name: "the account's signing keys mounted into proc",
      file: "hurd/proc.yaml",
      edit: once("            secretName: hurd-nats-proc\n", "            secretName: hurd-nats-keys\n"),
      overlay: "overlays/root",
      expect: /Deployment hurdmesh\/proc: spec\.template\.spec\.containers\[0\]\.volumeMounts: mounts hurd-nats-keys \(container proc\): the NATS account's signing keys, which mint any user: the kernel's alone/,
    },
    {
      name: "a mounted key the Secret does not have",
      file: "base/nats.yaml",
      edit: once("              - key: tls.key\n", "              - key: tls.pem\n"),
      overlay: "base",
      expect: /StatefulSet hurdmesh\/nats: spec\.template\.spec\.volumes\[1\]\.secret\.items\[1\]: Secret nats-tls \(made by hurd keys k8s\) has no key tls\.pem/,
    },
    {
      name: "the kubelet's gRPC probe on an edge that speaks TLS",
      file: "base/kernel.yaml",
      edit: once("          readinessProbe:\n            exec:\n              command: [\"node\", \"/opt/hurdmesh/bin/grpc-health.mjs\"]\n", "          readinessProbe:\n            grpc:\n              port: 7400\n"),
      overlay: "base",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.readinessProbe: the edge speaks TLS: must be an exec probe running bin\/grpc-health\.mjs/,
    },
    // The logged kernel with a standby (components/kernel-ha, overlays/root-kernel-ha).
    {
      name: "two kernels without their log (each would route the system's traps)",
      file: "base/kernel.yaml",
      edit: once("  replicas: 1\n", "  replicas: 2\n"),
      overlay: "base",
      expect: /Deployment hurdmesh\/kernel: spec\.replicas: 2 kernels without --journal/,
    },
    {
      name: "three logged kernels",
      file: "components/kernel-ha/kustomization.yaml",
      edit: once("        path: /spec/replicas\n        value: 2\n", "        path: /spec/replicas\n        value: 3\n"),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.replicas: 3: at most 2 logged kernels/,
    },
    {
      name: "kernels run with --standby (none would lead a fresh log)",
      file: "components/kernel-ha/kustomization.yaml",
      edit: once('value: ["kernel", "--journal"]', 'value: ["kernel", "--standby"]'),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.args: --standby: every replica of a Deployment takes the same args/,
    },
    {
      name: "a logged kernel whose liveness dials the edge (a standby would be restarted forever)",
      file: "components/kernel-ha/kustomization.yaml",
      edit: once(/ {6}- op: replace\n {8}path: \/spec\/template\/spec\/containers\/0\/livenessProbe\n(?: {8}.*\n| {10}.*\n| {12}.*\n)+/, ""),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.livenessProbe: dials the edge, where a kernel with --journal does not listen while it stands by/,
    },
    {
      name: "two logged kernels whose readiness is not the edge (the Service would send clients to the standby)",
      file: "components/kernel-ha/kustomization.yaml",
      edit: once(
        "      - op: replace\n        path: /spec/template/spec/containers/0/readinessProbe/periodSeconds\n        value: 2\n",
        "      - op: replace\n        path: /spec/template/spec/containers/0/readinessProbe\n        value:\n          httpGet:\n            path: /metrics\n            port: metrics\n",
      ),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.readinessProbe: must be the edge with 2 kernels/,
    },
    {
      name: "two logged kernels rolled out by a rolling update (it would wait forever for the standby to be ready)",
      file: "components/kernel-ha/kustomization.yaml",
      edit: once("      - op: replace\n        path: /spec/replicas\n", "      - op: replace\n        path: /spec/strategy\n        value: {type: RollingUpdate}\n      - op: replace\n        path: /spec/replicas\n"),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.strategy\.type: must be Recreate: a rolling update would wait forever/,
    },
    {
      name: "a probe on a port the container does not declare (the kernel's metrics)",
      file: "components/kernel-ha/kustomization.yaml",
      edit: once(/ {6}- op: add\n {8}path: \/spec\/template\/spec\/containers\/0\/ports\/-\n(?: {8}.*\n| {10}.*\n)+/, ""),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.livenessProbe: names port metrics, which container kernel does not declare/,
    },
    // NATS as a cluster (components/nats-cluster, overlays/root-cluster).
    {
      name: "a NATS cluster of 2 (no quorum survives a loss)",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once("        path: /spec/replicas\n        value: 3\n", "        path: /spec/replicas\n        value: 2\n"),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: spec\.replicas: 2 NATS nodes: a JetStream cluster is 3 or 5/,
    },
    {
      name: "a NATS cluster without its route port",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once("      - op: add\n        path: /spec/template/spec/containers/0/ports/-\n        value:\n          name: cluster\n          containerPort: 6222\n", ""),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: spec\.template\.spec\.containers\[0\]\.ports: declares no route port 6222/,
    },
    {
      name: "a NATS cluster started one pod after the other (nats-0 would wait forever for a leader)",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once("      - op: add\n        path: /spec/podManagementPolicy\n        value: Parallel\n", ""),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: spec\.podManagementPolicy: must be Parallel/,
    },
    {
      name: "a NATS cluster whose headless Service hides pods that are not ready (the routes never find each other)",
      file: "base/nats.yaml",
      edit: once("  publishNotReadyAddresses: true\n", "  publishNotReadyAddresses: false\n"),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: spec\.serviceName: Service nats-headless must publish not-ready addresses/,
    },
    {
      name: "a NATS cluster whose pods are not told their names (server_name $POD_NAME)",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once("          name: POD_NAME\n", "          name: POD\n"),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: spec\.template\.spec\.containers\[0\]\.env: no POD_NAME from metadata\.name/,
    },
    {
      name: "a NATS cluster without the CA its routes verify each other with",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once("                    - key: ca.crt\n                      path: ca.crt\n", ""),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: spec\.template\.spec\.volumes: nats-tls without ca\.crt/,
    },
    {
      name: "a NATS cluster whose NetworkPolicy blocks the routes",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once("            - port: 6222\n", "            - port: 6223\n"),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: metadata\.labels: the NetworkPolicies selecting NATS let no route \(port 6222\) through/,
    },
    {
      name: "a NATS cluster whose disruption budget lets a drain take the quorum",
      file: "components/nats-cluster/pdb.yaml",
      edit: once("  maxUnavailable: 1\n", "  maxUnavailable: 2\n"),
      overlay: "overlays/root-cluster",
      expect: /StatefulSet hurdmesh\/nats: metadata\.labels: PodDisruptionBudget nats: maxUnavailable 2 for 3 NATS nodes; at most 1/,
    },
    {
      name: "the kernel's log at more replicas than NATS has nodes",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once('          name: HURD_KERNEL_LOG_REPLICAS\n          value: "3"\n', '          name: HURD_KERNEL_LOG_REPLICAS\n          value: "5"\n'),
      overlay: "overlays/root-cluster",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.env\[\d+\]: the kernel's log at 5 replicas needs at least 5 NATS nodes; StatefulSet nats runs 3/,
    },
    {
      name: "the kernel's log at R3 on one NATS node (JetStream would refuse the stream)",
      file: "base/kernel.yaml",
      edit: once("            - name: HURD_LEASE_MS\n", '            - name: HURD_KERNEL_LOG_REPLICAS\n              value: "3"\n            - name: HURD_LEASE_MS\n'),
      overlay: "overlays/root-kernel-ha",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.env\[\d+\]: the kernel's log at 3 replicas needs at least 3 NATS nodes; StatefulSet nats runs 1/,
    },
    {
      name: "a logged kernel that keeps its log on one node of a NATS cluster",
      file: "components/nats-cluster/kustomization.yaml",
      edit: once('          name: HURD_KERNEL_LOG_REPLICAS\n          value: "3"\n', '          name: HURD_KERNEL_LOG_REPLICAS\n          value: "1"\n'),
      overlay: "overlays/root-cluster",
      expect: /Deployment hurdmesh\/kernel: spec\.template\.spec\.containers\[0\]\.env\[\d+\]: a logged kernel's log at 1 replica on a NATS cluster of 3/,
    },
  ];
  for (const c of cases)
    test(`rejects ${c.name}`, async () => {
      const k8s = brokenCopy(c.file, c.edit);
      const out = await problems(k8s, [join(k8s, c.overlay)]);
      assert.notEqual(out, "", `the validator accepted ${c.name}`);
      assert.match(out, c.expect);
      // Each line names the kustomization, the object and the field.
      for (const line of out.split("\n")) assert.match(line, /: (Deployment|StatefulSet|Service|Secret|ConfigMap|Namespace) \S+: \S+: /);
    });

  test("the logged kernel: overlays/root-kernel-ha runs two kernels with --journal, readiness on the edge, liveness off it, and no hurd web", () => {
    const out = spawnSync("kubectl", ["kustomize", join(repo, "k8s/overlays/root-kernel-ha")], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    const objects = parseAllDocuments(out.stdout).map((d) => d.toJS() as Record<string, any>);
    const kernel = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "kernel")!;
    assert.equal(kernel.spec.replicas, 2);
    assert.equal(kernel.spec.strategy.type, "Recreate");
    const c = kernel.spec.template.spec.containers[0];
    assert.deepEqual(c.args, ["kernel", "--journal"]);
    assert.deepEqual(c.readinessProbe.exec.command, ["node", "/opt/hurdmesh/bin/grpc-health.mjs"], "readiness is the edge: the leader's alone");
    for (const p of ["livenessProbe", "startupProbe"]) assert.deepEqual(c[p].httpGet, { path: "/metrics", port: "metrics" }, `${p}: the metrics page, which a standby serves`);
    assert.ok(c.ports.some((p: any) => p.name === "metrics" && p.containerPort === 9464));
    const init = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "init")!;
    assert.deepEqual(init.spec.template.spec.containers.map((x: any) => x.name), ["init"], "hurd web is left out: a logged kernel does not serve it");
    assert.ok(!objects.some((o) => o.kind === "Service" && o.metadata.name === "web"));
    // The default is unchanged: one kernel without the log, and hurd web.
    const plain = parseAllDocuments(spawnSync("kubectl", ["kustomize", join(repo, "k8s/overlays/root")], { encoding: "utf8" }).stdout).map((d) => d.toJS() as Record<string, any>);
    const k1 = plain.find((o) => o.kind === "Deployment" && o.metadata.name === "kernel")!;
    assert.equal(k1.spec.replicas, 1);
    assert.deepEqual(k1.spec.template.spec.containers[0].args, ["kernel"]);
  });

  test("NATS as a cluster: overlays/root-cluster runs three NATS nodes with routes, the logged kernel at R3, and leaves the plain overlays at one node", () => {
    const out = spawnSync("kubectl", ["kustomize", join(repo, "k8s/overlays/root-cluster")], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    const objects = parseAllDocuments(out.stdout).map((d) => d.toJS() as Record<string, any>);
    const nats = objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === "nats")!;
    assert.equal(nats.spec.replicas, 3);
    assert.equal(nats.spec.podManagementPolicy, "Parallel");
    const c = nats.spec.template.spec.containers[0];
    assert.ok(c.ports.some((p: any) => p.name === "cluster" && p.containerPort === 6222));
    assert.deepEqual(c.env.find((e: any) => e.name === "POD_NAME")?.valueFrom, { fieldRef: { fieldPath: "metadata.name" } });
    // Where hurd keys k8s --nats-cluster's nats.conf looks for the CA of the routes.
    const tls = nats.spec.template.spec.volumes.find((v: any) => v.name === "tls");
    assert.deepEqual(tls.secret.items.map((i: any) => i.key).sort(), ["ca.crt", "tls.crt", "tls.key"]);
    assert.ok(c.volumeMounts.some((m: any) => m.name === "tls" && m.mountPath === "/etc/nats/tls"));
    assert.equal(nats.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey, "kubernetes.io/hostname");
    const headless = objects.find((o) => o.kind === "Service" && o.metadata.name === nats.spec.serviceName)!;
    assert.equal(headless.spec.clusterIP, "None");
    assert.equal(headless.spec.publishNotReadyAddresses, true);
    assert.ok(headless.spec.ports.some((p: any) => p.port === 6222));
    const pdb = objects.find((o) => o.kind === "PodDisruptionBudget")!;
    assert.equal(pdb.metadata.namespace, "hurdmesh");
    assert.equal(pdb.spec.maxUnavailable, 1);
    const kernel = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "kernel")!;
    assert.equal(kernel.spec.replicas, 2, "built on overlays/root-kernel-ha: a leader and its standby");
    assert.deepEqual(kernel.spec.template.spec.containers[0].env.find((e: any) => e.name === "HURD_KERNEL_LOG_REPLICAS"), { name: "HURD_KERNEL_LOG_REPLICAS", value: "3" });
    for (const plain of ["k8s/overlays/root", "k8s/overlays/root-kernel-ha"]) {
      const objs = parseAllDocuments(spawnSync("kubectl", ["kustomize", join(repo, plain)], { encoding: "utf8" }).stdout).map((d) => d.toJS() as Record<string, any>);
      assert.equal(objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === "nats")!.spec.replicas, 1, plain);
      assert.ok(!objs.some((o) => o.kind === "PodDisruptionBudget"), plain);
    }
  });

  test("k8s/kustomization.yaml may list overlays/root-cluster in place of overlays/root (a variant of a variant)", async () => {
    const k8s = brokenCopy("kustomization.yaml", once("  - overlays/root\n", "  - overlays/root-cluster\n"));
    assert.equal(await problems(k8s, [k8s]), "");
    const rendered = spawnSync("kubectl", ["kustomize", k8s], { encoding: "utf8" }).stdout;
    assert.match(rendered, /podManagementPolicy: Parallel\n/);
    assert.match(rendered, /name: hurd-subhurd-a\n/, "the subhurds are still deployed");
  });

  test("k8s/kustomization.yaml may list overlays/root-kernel-ha in place of overlays/root (a variant, not an overlay left out)", async () => {
    const k8s = brokenCopy("kustomization.yaml", once("  - overlays/root\n", "  - overlays/root-kernel-ha\n"));
    assert.equal(await problems(k8s, [k8s]), "");
    const rendered = spawnSync("kubectl", ["kustomize", k8s], { encoding: "utf8" }).stdout;
    assert.match(rendered, /- --journal\n/);
    assert.match(rendered, /name: hurd-subhurd-a\n/, "the subhurds are still deployed");
  });

  test("hurd k8s new-subhurd NAME --write: an overlay that validates, listed in k8s/kustomization.yaml", async () => {
    const t = mkdtempSync(join(tmpdir(), "hurdmesh-k8s-"));
    temps.push(t);
    const k8s = join(t, "k8s");
    cpSync(join(repo, "k8s"), k8s, { recursive: true });
    const cli = join(repo, "packages/cli/src/main.ts");
    const w = spawnSync(process.execPath, ["--import", "tsx", cli, "k8s", "new-subhurd", "gamma", "--parent", "subhurd-a", "--write", "--dir", k8s], { encoding: "utf8", timeout: 60000 });
    assert.equal(w.status, 0, w.stderr);
    // The next step it prints is the command that keys a subhurd added to an install.
    assert.match(w.stdout, /hurd keys k8s --add-subhurds gamma --nats-keys keys\.json --ca ca\.crt --boot-key-file boot\.key \| kubectl apply -f -/);
    assert.match(readFileSync(join(k8s, "kustomization.yaml"), "utf8"), /  - overlays\/subhurd-b\n  - overlays\/gamma\n/);
    assert.equal(await problems(k8s, [k8s, join(k8s, "overlays/gamma")]), "");
    const rendered = spawnSync("kubectl", ["kustomize", join(k8s, "overlays/gamma")], { encoding: "utf8" }).stdout;
    assert.match(rendered, /name: hurd-gamma\n/);
    assert.match(rendered, /name: HURD_PARENT\n\s+value: subhurd-a/);
    const again = spawnSync(process.execPath, ["--import", "tsx", cli, "k8s", "new-subhurd", "gamma", "--write", "--dir", k8s], { encoding: "utf8", timeout: 60000 });
    assert.equal(again.status, 1, "an overlay is never overwritten");
  });

  test("a third subhurd: a copied overlay with its name changed validates once k8s/kustomization.yaml lists it", async () => {
    const t = mkdtempSync(join(tmpdir(), "hurdmesh-k8s-"));
    temps.push(t);
    const k8s = join(t, "k8s");
    cpSync(join(repo, "k8s"), k8s, { recursive: true });
    cpSync(join(k8s, "overlays/subhurd-b"), join(k8s, "overlays/subhurd-c"), { recursive: true });
    const kf = join(k8s, "overlays/subhurd-c/kustomization.yaml");
    // Every mention of the name, as `sed -i s/subhurd-b/subhurd-c/g` would (namespace, hurd and instance labels).
    writeFileSync(kf, readFileSync(kf, "utf8").replaceAll("subhurd-b", "subhurd-c"));
    // Not yet listed in the top kustomization: the validator says so.
    // (The listing check looks at the folders; rendering the top kustomization is enough.)
    assert.match(await problems(k8s, [k8s]), /kustomization\.yaml: resources does not list overlays\/subhurd-c/);
    const top = join(k8s, "kustomization.yaml");
    writeFileSync(top, once("  - overlays/subhurd-b\n", "  - overlays/subhurd-b\n  - overlays/subhurd-c\n")(readFileSync(top, "utf8")));
    assert.equal(await problems(k8s, [k8s, join(k8s, "overlays/subhurd-c")]), "");
    const rendered = spawnSync("kubectl", ["kustomize", k8s], { encoding: "utf8" }).stdout;
    assert.match(rendered, /name: hurd-subhurd-c\n/);
    assert.match(rendered, /fieldPath: metadata\.labels\['hurdmesh\.dev\/hurd'\]/);
    assert.equal(rendered.match(/namespace: hurd-subhurd-c\n/g)?.length, 5, "the two ConfigMaps and the three Deployments in hurd-subhurd-c (the Secrets are the user's)");
  });
});

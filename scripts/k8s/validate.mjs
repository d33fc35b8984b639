#!/usr/bin/env node
// Offline validation of the Kubernetes manifests in k8s/ (no cluster needed).
//
//   node scripts/k8s/validate.mjs [--root DIR] [KUSTOMIZATION_DIR...]
//
// For every kustomization under the root (default: the repo's k8s/; every
// folder whose kustomization.yaml is a Kustomization, not a Component) or
// the folders named, it runs `kubectl kustomize`, parses the YAML and checks
// every object:
//  1. schema: the kubernetes-models class for its apiVersion/kind, .validate()
//     (types, enums, required fields);
//  2. unknown fields, which those schemas let through: the object is walked
//     against the model's TypeScript definitions (generated from the same
//     OpenAPI spec), and a property the definition does not declare is
//     rejected; maps (labels, annotations, data, resources.limits, ...) are
//     index signatures there and take any key;
//  3. project rules (rules() below).
// One line per problem, exit 1 if any; exit 2 if kubectl is missing.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(join(repo, "package.json"));

export class KubectlMissing extends Error {}

/** kubectl's path, or null. */
export function findKubectl() {
  const r = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
  return r.error || r.status !== 0 ? null : "kubectl";
}

const KUBECTL_HELP =
  "kubectl is not installed (it renders the kustomizations: `kubectl kustomize`). Install kubectl >= 1.27 " +
  "(Debian/Ubuntu: the pkgs.k8s.io apt repository, https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/; " +
  "or download the static binary from https://dl.k8s.io/release/v1.32.0/bin/linux/amd64/kubectl into PATH).";

/** Every folder under root holding a kustomization.yaml of kind Kustomization (Components cannot be built alone). */
export function findKustomizations(root) {
  const out = [];
  const walk = (d) => {
    const f = ["kustomization.yaml", "kustomization.yml", "Kustomization"].map((n) => join(d, n)).find((p) => existsSync(p));
    if (f) {
      const k = parseYaml(readFileSync(f, "utf8")) ?? {};
      if ((k.kind ?? "Kustomization") === "Kustomization") out.push(d);
    }
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (!e.startsWith(".") && statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

/** `kubectl kustomize dir`, parsed: { objects } or { error }. */
async function render(dir) {
  const r = await new Promise((done) => {
    const p = spawn("kubectl", ["kustomize", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    p.on("error", (error) => done({ error }));
    p.on("close", (status) => done({ status, stdout, stderr }));
  });
  if (r.error) throw new KubectlMissing(KUBECTL_HELP);
  if (r.status !== 0) return { error: (r.stderr || r.stdout).trim().split("\n").join(" | ") };
  const docs = parseAllDocuments(r.stdout);
  const errs = docs.flatMap((d) => d.errors.map((e) => e.message));
  if (errs.length) return { error: `rendered YAML does not parse: ${errs[0]}` };
  return { objects: docs.map((d) => d.toJS()).filter((o) => o && typeof o === "object") };
}

// ---- 1. schemas (kubernetes-models) ---------------------------------------

/** "apps/v1" → "kubernetes-models/apps/v1", "v1" → "kubernetes-models/v1". */
function modelModule(apiVersion, kind) {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

function modelExists(apiVersion, kind) {
  try {
    // kubernetes-models 5 is ESM only (its exports have no "require"): resolve
    // as import() would, which maps a kind through the exports' wildcard
    // without looking for the file.
    return existsSync(fileURLToPath(import.meta.resolve(modelModule(apiVersion, kind))));
  } catch {
    return false;
  }
}

/** "/spec/template/spec/containers/0/image" → "spec.template.spec.containers[0].image". */
export function jsonPath(instancePath) {
  return (
    instancePath
      .split("/")
      .slice(1)
      .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), "") || "(object)"
  );
}

async function schemaProblems(obj) {
  const mod = await import(modelModule(obj.apiVersion, obj.kind));
  const Model = mod[obj.kind];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) return [`(object): ${e.message}`];
    const seen = new Set();
    const out = [];
    for (const err of e.errors) {
      // IntOrString / Quantity are anyOf(string, integer): ajv reports each branch.
      const extra = err.keyword === "enum" ? ` (one of ${err.params.allowedValues.join(", ")})` : "";
      const line = `${jsonPath(err.instancePath)}: ${err.message}${extra}`;
      if (!seen.has(line)) out.push(line), seen.add(line);
    }
    return out;
  }
}

// ---- 2. unknown fields (the models' TypeScript definitions) ---------------

const checkers = new Map();
/** A TypeScript program over the model definitions of the kinds given; returns a field checker (memoized). */
function fieldChecker(kinds) {
  const key = kinds.map((k) => k.join("/")).sort().join(",");
  if (!checkers.has(key)) checkers.set(key, makeFieldChecker(kinds));
  return checkers.get(key);
}

function makeFieldChecker(kinds) {
  const ts = require("typescript");
  const file = join(repo, "__k8s_models__.ts");
  // The few global types the definitions use, instead of parsing TypeScript's lib.es5.d.ts.
  const lib = join(repo, "__k8s_models_lib__.d.ts");
  const libText =
    "interface Array<T> { length: number; [n: number]: T } interface ReadonlyArray<T> { readonly length: number; readonly [n: number]: T }\n" +
    "interface Boolean {} interface Function {} interface CallableFunction extends Function {} interface NewableFunction extends Function {}\n" +
    "interface IArguments {} interface Number {} interface Object {} interface RegExp {} interface String {} interface Symbol {}\n";
  const virtual = new Map([[file, () => text], [lib, () => libText]]);
  const names = kinds.map(([av, k], i) => [`${av}/${k}`, `T${i}`, modelModule(av, k), `I${k}`]);
  const text = names.map(([, alias, mod, iface]) => `import type { ${iface} as ${alias} } from "${mod}";`).join("\n") +
    `\nexport interface Roots {\n${names.map(([key, alias]) => `  ${JSON.stringify(key)}: ${alias};`).join("\n")}\n}\n`;
  const options = {
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    noLib: true,
    types: [],
    noEmit: true,
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (virtual.has(resolve(f)) ? ts.createSourceFile(f, virtual.get(resolve(f))(), lang) : getSourceFile(f, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => virtual.has(resolve(f)) || fileExists(f);
  const program = ts.createProgram([lib, file], options, host);
  const src = program.getSourceFile(file);
  // Only the generated file's imports need checking (a full check of the definitions takes seconds).
  const diags = [...program.getGlobalDiagnostics(), ...program.getSemanticDiagnostics(src)];
  if (diags.length) throw new Error(`model definitions do not load: ${ts.flattenDiagnosticMessageText(diags[0].messageText, " ")}`);
  const checker = program.getTypeChecker();
  const roots = checker.getTypeAtLocation(src.statements.find((s) => ts.isInterfaceDeclaration(s)).name);

  const F = ts.TypeFlags;
  const typeOf = (sym) => checker.getTypeOfSymbol(sym);
  const isArray = (t) => checker.isArrayType(t) || checker.isTupleType(t);
  const isObjectLike = (t) => !!(t.flags & F.Object) && !isArray(t);
  /** A type that says nothing about its fields (any, unknown, object, {}): accept whatever is there. */
  const freeForm = (t) =>
    !!(t.flags & (F.Any | F.Unknown | F.NonPrimitive)) ||
    (isObjectLike(t) && checker.getPropertiesOfType(t).length === 0 && checker.getIndexInfosOfType(t).length === 0);
  const name = (t) => checker.typeToString(t).replace(/^I(?=[A-Z])/, "").replace(/^IoK8s(Api|ApimachineryPkgApis)?/, "");

  function walk(value, type, path, out) {
    if (value === null || value === undefined) return;
    type = checker.getNonNullableType(type);
    const members = type.isUnion() ? type.types : [type];
    if (members.some(freeForm)) return;
    if (Array.isArray(value)) {
      const arr = members.find(isArray);
      if (!arr) return; // a type mismatch: the schema check reports it
      const el = checker.getTypeArguments(arr)[0];
      value.forEach((v, i) => walk(v, el, `${path}[${i}]`, out));
      return;
    }
    if (typeof value !== "object") return;
    const objs = members.filter(isObjectLike);
    if (!objs.length) return;
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      let fieldType;
      for (const t of objs) {
        const p = checker.getPropertyOfType(t, k);
        if (p) {
          fieldType = typeOf(p);
          break;
        }
        const idx = checker.getIndexInfosOfType(t).find((i) => i.keyType.flags & F.String);
        if (idx) {
          fieldType = idx.type;
          break;
        }
      }
      if (!fieldType) out.push(`${at}: unknown field "${k}" (not in ${objs.map(name).join(" | ")})`);
      else walk(v, fieldType, at, out);
    }
  }
  return (obj) => {
    const p = checker.getPropertyOfType(roots, `${obj.apiVersion}/${obj.kind}`);
    const out = [];
    walk(obj, typeOf(p), "", out);
    return out;
  };
}

// ---- 3. project rules -----------------------------------------------------

/** Kinds whose definitions are loaded up front; others are added when a render has them. */
const COMMON_KINDS = [
  ["v1", "Namespace"], ["v1", "ConfigMap"], ["v1", "Secret"], ["v1", "Service"], ["v1", "ServiceAccount"], ["v1", "Pod"],
  ["v1", "PersistentVolumeClaim"], ["apps/v1", "Deployment"], ["apps/v1", "StatefulSet"], ["apps/v1", "DaemonSet"],
  ["batch/v1", "Job"], ["batch/v1", "CronJob"], ["networking.k8s.io/v1", "NetworkPolicy"], ["networking.k8s.io/v1", "Ingress"],
  ["policy/v1", "PodDisruptionBudget"], ["rbac.authorization.k8s.io/v1", "Role"], ["rbac.authorization.k8s.io/v1", "RoleBinding"],
];

const HURD_ROLES = { kernel: 7400, init: 7401, proc: 7401, auth: 7401 };
/**
 * The Secrets the user makes at deploy time, with their keys (`hurd keys k8s
 * --subhurds … | kubectl apply -f -`, packages/cli/src/keys-k8s.ts; the
 * k8s-keys test checks that it prints exactly these): never in the
 * manifests, so a reference to one need not find it in the output.
 */
export const USER_SECRETS = {
  "nats-config": ["nats.conf"],
  "nats-tls": ["tls.crt", "tls.key", "ca.crt"],
  "kernel-tls": ["tls.crt", "tls.key", "ca.crt"],
  "hurd-nats-keys": ["nats-keys.json"],
  "hurd-boot": ["secret"],
  "hurd-boot-key": ["key"],
  "hurd-ca": ["ca.crt"],
  "hurd-nats-init": ["nats.creds"],
  "hurd-nats-proc": ["nats.creds"],
  "hurd-nats-auth": ["nats.creds"],
};
/** The account's signing keys (whoever mounts them can mint any NATS user) and the boot key (whoever reads it can claim any hurd): the kernel's alone. */
const KERNEL_ONLY_SECRETS = new Set(["hurd-nats-keys", "hurd-boot-key"]);
/** Settings that name a file: the file must be under one of the container's volume mounts. */
const FILE_SETTINGS = ["HURD_NATS_CA_FILE", "HURD_NATS_CREDS_FILE", "HURD_NATS_KEYS", "HURD_GRPC_CERT", "HURD_GRPC_KEY", "HURD_GRPC_CA", "HURD_EDGE_CA_FILE", "HURD_HEALTH_CA_FILE", "HURD_BOOT_SECRET_FILE", "HURD_BOOT_KEY_FILE"];
/** Each hurd server's own NATS user: init claims its boot with it, proc and auth take their launch order. */
const NEEDS_CREDS = new Set(["init", "proc", "auth"]);
/** Kubernetes' recommended labels: on every object, and on every pod template. */
const RECOMMENDED = ["name", "instance", "version", "component", "part-of", "managed-by"].map((k) => `app.kubernetes.io/${k}`);
/** Pod Security Admission: every namespace enforces the restricted profile (and warns and audits by it). */
const PSA = { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted" };
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]);
const RUN_TO_COMPLETION = new Set(["Job", "CronJob"]);

/** A kernel container run with its state as a log (hurd-kernel --journal; docs/kernel-log.md). */
function logged(c) {
  return (c.args ?? []).includes("--journal");
}

/**
 * Whether a probe dials the kernel's gRPC edge (7400, the port named grpc):
 * bin/grpc-health.mjs (in the kernel's container, HURD_HEALTH_PROBE names
 * the edge), or a gRPC, TCP or HTTP probe on that port.
 */
function probesEdge(p) {
  if (!p) return false;
  if (p.exec) return (p.exec.command ?? []).some((a) => /grpc-health\.mjs$/.test(a));
  const port = p.grpc?.port ?? p.tcpSocket?.port ?? p.httpGet?.port;
  return port === HURD_ROLES.kernel || port === "grpc";
}

/** The pod template of a workload, or null. */
function podOf(o) {
  switch (o.kind) {
    case "Pod":
      return { metadata: o.metadata, spec: o.spec, path: "spec" };
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
      return o.spec?.template ? { ...o.spec.template, path: "spec.template.spec" } : null;
    case "CronJob":
      return o.spec?.jobTemplate?.spec?.template ? { ...o.spec.jobTemplate.spec.template, path: "spec.jobTemplate.spec.template.spec" } : null;
    default:
      return null;
  }
}

/**
 * Rules the schemas cannot express. Every object and pod template: the
 * recommended app.kubernetes.io labels (name, instance, version, component,
 * part-of, managed-by); every Namespace: Pod Security Admission labels
 * enforcing (warning, auditing) "restricted", and every pod keeping that
 * profile (no host namespaces or hostPath, no privilege escalation, all
 * capabilities dropped, seccomp RuntimeDefault). Per container: resources.requests and
 * resources.limits with cpu and memory; readiness and liveness probes
 * (except init containers and Job/CronJob pods, which run to completion, so
 * a probe is pointless there); runAsNonRoot (pod or container) and not
 * runAsUser 0. Per hurdmesh pod (label app.kubernetes.io/component kernel,
 * init, proc or auth): HURD_BOOT_SECRET from the user's Secret hurd-boot
 * (key secret) for init, HURD_BOOT_KEY_FILE for the kernel, and neither for
 * proc and auth; NATS
 * authorization and TLS (issue 15): no HURD_NATS_AUTH=off anywhere, every
 * NATS_URL tls:// with HURD_NATS_CA_FILE beside it, every file setting
 * (HURD_NATS_CREDS_FILE, HURD_GRPC_CERT, …) under a volume mount, init,
 * proc and auth with a NATS user, the account's signing keys
 * (hurd-nats-keys) mounted by the kernel and nobody else, and the kernel's
 * probes an exec of bin/grpc-health.mjs when its edge speaks TLS; a mounted
 * Secret item must be a key the Secret has; no
 * Secret in the output carries a value (none is committed); gRPC probes on 7400 (kernel) or 7401, one replica that is never
 * doubled (Deployment strategy Recreate, or a StatefulSet), except the
 * kernel with --journal (components/kernel-ha): two replicas, readiness on
 * the edge (the leader alone listens there), liveness and startup probes
 * off it (a standby must pass them), never --standby (every replica takes
 * the same args). A NATS StatefulSet of several pods is a JetStream
 * cluster (natsClusterProblems: 3 or 5, the route port, Parallel, a
 * headless Service publishing not-ready pods, a PodDisruptionBudget), and
 * the kernel's log replicas (HURD_KERNEL_LOG_REPLICAS, --log-replicas) are
 * at most NATS's pods, and at least 3 for a logged kernel on a NATS cluster.
 * A probe's named port is one its container declares. Every Secret or
 * ConfigMap a pod references exists in its namespace (unless optional); every
 * namespaced object's namespace is declared in the same output; every
 * Service selects a workload in its namespace and names only ports that
 * workload has.
 */
export function rules(objects) {
  const problems = [];
  const id = (o) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name}`;
  const say = (o, path, msg) => problems.push({ obj: id(o), line: `${path}: ${msg}` });
  const inNs = (kind, ns) => objects.filter((x) => x.kind === kind && (x.metadata?.namespace ?? "") === ns);
  const namespaces = new Set(objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata?.name));

  for (const o of objects) {
    const ns = o.metadata?.namespace ?? "";
    for (const k of RECOMMENDED) if (!o.metadata?.labels?.[k]) say(o, `metadata.labels.${k}`, "missing (Kubernetes' recommended labels go on every object)");
    const hurdName = o.metadata?.labels?.["hurdmesh.dev/hurd"];
    if (hurdName && o.metadata.labels["app.kubernetes.io/instance"] !== hurdName)
      say(o, "metadata.labels.app.kubernetes.io/instance", `must be the hurd's name, ${hurdName} (as hurdmesh.dev/hurd)`);
    // No secret value is committed: every Secret a pod needs is made at deploy time (USER_SECRETS).
    if (o.kind === "Secret" && ["data", "stringData", "binaryData"].some((f) => Object.keys(o[f] ?? {}).length))
      say(o, "data", "a Secret with values in the manifests commits a secret: make it at deploy time (hurd keys k8s), not in k8s/");
    if (o.kind === "ConfigMap") {
      if (o.data?.HURD_NATS_AUTH === "off") say(o, "data.HURD_NATS_AUTH", "off: NATS authorization is never off in Kubernetes");
      if (o.data?.NATS_URL !== undefined && !String(o.data.NATS_URL).startsWith("tls://")) say(o, "data.NATS_URL", `${o.data.NATS_URL}: must be tls://`);
    }
    if (o.kind === "Namespace")
      for (const [k, v] of Object.entries(PSA))
        if (o.metadata?.labels?.[k] !== v) say(o, `metadata.labels.${k}`, `must be ${v} (Pod Security Admission)`);
    if (!CLUSTER_SCOPED.has(o.kind)) {
      if (!ns) say(o, "metadata.namespace", "no namespace (it would land in whatever namespace kubectl is pointed at)");
      else if (!namespaces.has(ns)) say(o, "metadata.namespace", `namespace ${ns} is not declared by a Namespace object in this kustomization`);
    }
    const pod = podOf(o);
    if (!pod?.spec) continue;
    const spec = pod.spec;
    const labels = pod.metadata?.labels ?? {};
    const role = labels["app.kubernetes.io/component"];
    const hurd = labels["app.kubernetes.io/part-of"] === "hurdmesh" && role in HURD_ROLES;
    const secrets = inNs("Secret", ns);
    const configMaps = inNs("ConfigMap", ns);
    const has = (list, name, key) => {
      const x = list.find((s) => s.metadata?.name === name);
      if (!x) return "missing";
      if (key !== undefined && !(key in (x.data ?? {})) && !(key in (x.stringData ?? {})) && !(key in (x.binaryData ?? {}))) return "nokey";
      return "ok";
    };
    const ref = (path, kindName, list, r, key) => {
      if (!r || r.optional) return;
      if (kindName === "Secret" && r.name in USER_SECRETS) {
        if (key !== undefined && !USER_SECRETS[r.name].includes(key)) say(o, path, `Secret ${r.name} (made by hurd keys k8s) has no key ${key}`);
        return;
      }
      const h = has(list, r.name, key);
      if (h === "missing") say(o, path, `${kindName} ${r.name} does not exist in namespace ${ns || "(none)"}`);
      else if (h === "nokey") say(o, path, `${kindName} ${r.name} has no key ${key}`);
    };
    for (const k of RECOMMENDED) if (!labels[k]) say(o, `${pod.path.replace(/\.spec$/, "")}.metadata.labels.${k}`, "missing (Kubernetes' recommended labels go on the pods too)");
    // Pod Security's restricted profile, which the namespaces enforce: a pod that breaks it is refused at creation.
    for (const f of ["hostNetwork", "hostPID", "hostIPC"]) if (spec[f]) say(o, `${pod.path}.${f}`, "not allowed by Pod Security's restricted profile");
    (spec.volumes ?? []).forEach((v, i) => {
      if (v.hostPath) say(o, `${pod.path}.volumes[${i}].hostPath`, "not allowed by Pod Security's restricted profile");
    });
    const podSeccomp = spec.securityContext?.seccompProfile?.type;
    const podNonRoot = spec.securityContext?.runAsNonRoot;
    const podUser = spec.securityContext?.runAsUser;
    const all = [
      ...(spec.initContainers ?? []).map((c, i) => ({ c, path: `${pod.path}.initContainers[${i}]`, init: true })),
      ...(spec.containers ?? []).map((c, i) => ({ c, path: `${pod.path}.containers[${i}]`, init: false })),
    ];
    for (const { c, path, init } of all) {
      // The container's settings as it sees them: envFrom's ConfigMaps, then env's literals (which win).
      const settings = new Map();
      (c.envFrom ?? []).forEach((e, i) => {
        const cm = e.configMapRef && configMaps.find((x) => x.metadata?.name === e.configMapRef.name);
        for (const [k, v] of Object.entries(cm?.data ?? {})) settings.set(k, { value: v, where: `${path}.envFrom[${i}]` });
      });
      (c.env ?? []).forEach((e, i) => {
        if (e.value !== undefined) settings.set(e.name, { value: e.value, where: `${path}.env[${i}]` });
      });
      // NATS authorization and TLS hold everywhere (issue 15): nobody is told to do without.
      if (settings.get("HURD_NATS_AUTH")?.value === "off") say(o, settings.get("HURD_NATS_AUTH").where, `HURD_NATS_AUTH=off (container ${c.name}): NATS authorization is never off in Kubernetes`);
      const url = settings.get("NATS_URL");
      if (url && !String(url.value).split(",").every((u) => u.trim().startsWith("tls://")))
        say(o, url.where, `NATS_URL ${url.value} (container ${c.name}): must be tls://, NATS's traffic leaves the node`);
      if (url && String(url.value).startsWith("tls://") && !settings.has("HURD_NATS_CA_FILE") && !settings.has("HURD_NATS_CA") && c.args?.[0] !== "hurd")
        say(o, url.where, `NATS over TLS with no HURD_NATS_CA_FILE (container ${c.name}): the server's certificate is from hurd keys k8s's CA`);
      const mounts = (c.volumeMounts ?? []).map((m) => m.mountPath.replace(/\/$/, ""));
      // (A `hurd` client beside a server, hurd web, reads the session file, not these settings.)
      for (const k of c.args?.[0] === "hurd" ? [] : FILE_SETTINGS) {
        const v = settings.get(k);
        if (v && !mounts.some((m) => String(v.value).startsWith(`${m}/`)))
          say(o, v.where, `${k}=${v.value} (container ${c.name}) is under none of its volumeMounts: the file would not be there`);
      }
      for (const m of c.volumeMounts ?? []) {
        const vol = [...(spec.volumes ?? []), ...(o.spec?.volumeClaimTemplates ?? []).map((t) => ({ name: t.metadata?.name }))].find((v) => v.name === m.name);
        if (!vol) say(o, `${path}.volumeMounts`, `mounts volume ${m.name}, which the pod does not declare`);
        else if (KERNEL_ONLY_SECRETS.has(vol.secret?.secretName) && role !== "kernel")
          say(o, `${path}.volumeMounts`, `mounts ${vol.secret.secretName} (container ${c.name}): ${vol.secret.secretName === "hurd-boot-key" ? "the boot key, which claims any hurd" : "the NATS account's signing keys, which mint any user"}: the kernel's alone`);
      }
      // A `hurd` client beside a server (hurd web) is a process of the hurd: the edge, never the fabric.
      if (c.args?.[0] === "hurd")
        for (const [k, v] of settings)
          if (/^(NATS_.*|HURD_NATS_.*)$/.test(k)) say(o, v.where, `${k} (container ${c.name}): a client of the hurd is given the fabric; it reaches the hurd through the edge`);
      if (hurd && !init && c.args?.[0] !== "hurd" && NEEDS_CREDS.has(role) && !settings.has("HURD_NATS_CREDS_FILE") && !settings.has("HURD_NATS_CREDS"))
        say(o, `${path}.env`, `no HURD_NATS_CREDS_FILE (container ${c.name}): the ${role} has no NATS user (Secret hurd-nats-${role})`);
      if (hurd && !init && role === "kernel" && !settings.has("HURD_NATS_KEYS"))
        say(o, `${path}.env`, "no HURD_NATS_KEYS: the kernel mints every NATS user with the keys in Secret hurd-nats-keys");
      for (const what of ["requests", "limits"])
        for (const r of ["cpu", "memory"]) if (c.resources?.[what]?.[r] === undefined) say(o, `${path}.resources.${what}.${r}`, `missing (container ${c.name})`);
      if (!init && !RUN_TO_COMPLETION.has(o.kind))
        for (const p of ["readinessProbe", "livenessProbe"]) if (!c[p]) say(o, `${path}.${p}`, `missing (container ${c.name})`);
      // A probe on a port by name (the kernel's metrics) finds it only if the container declares it.
      for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const named = c[p]?.httpGet?.port ?? c[p]?.tcpSocket?.port;
        if (typeof named === "string" && !(c.ports ?? []).some((cp) => cp.name === named)) say(o, `${path}.${p}`, `names port ${named}, which container ${c.name} does not declare`);
      }
      if ((c.securityContext?.runAsNonRoot ?? podNonRoot) !== true)
        say(o, `${path}.securityContext.runAsNonRoot`, `must be true, here or in ${pod.path}.securityContext (container ${c.name})`);
      if ((c.securityContext?.runAsUser ?? podUser) === 0) say(o, `${path}.securityContext.runAsUser`, `is 0 (root) (container ${c.name})`);
      const sc = c.securityContext ?? {};
      if (sc.allowPrivilegeEscalation !== false) say(o, `${path}.securityContext.allowPrivilegeEscalation`, `must be false (Pod Security restricted; container ${c.name})`);
      if (sc.privileged) say(o, `${path}.securityContext.privileged`, `not allowed by Pod Security's restricted profile (container ${c.name})`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) say(o, `${path}.securityContext.capabilities.drop`, `must include ALL (Pod Security restricted; container ${c.name})`);
      const added = (sc.capabilities?.add ?? []).filter((x) => x !== "NET_BIND_SERVICE");
      if (added.length) say(o, `${path}.securityContext.capabilities.add`, `${added.join(", ")} not allowed by Pod Security's restricted profile (container ${c.name})`);
      const seccomp = sc.seccompProfile?.type ?? podSeccomp;
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost")
        say(o, `${path}.securityContext.seccompProfile.type`, `must be RuntimeDefault (or Localhost), here or in ${pod.path}.securityContext (Pod Security restricted; container ${c.name})`);
      (c.env ?? []).forEach((e, i) => {
        ref(`${path}.env[${i}].valueFrom.secretKeyRef`, "Secret", secrets, e.valueFrom?.secretKeyRef, e.valueFrom?.secretKeyRef?.key);
        ref(`${path}.env[${i}].valueFrom.configMapKeyRef`, "ConfigMap", configMaps, e.valueFrom?.configMapKeyRef, e.valueFrom?.configMapKeyRef?.key);
      });
      (c.envFrom ?? []).forEach((e, i) => {
        ref(`${path}.envFrom[${i}].secretRef`, "Secret", secrets, e.secretRef);
        ref(`${path}.envFrom[${i}].configMapRef`, "ConfigMap", configMaps, e.configMapRef);
      });
      // A container running the `hurd` command beside a server (hurd web in
      // the root init's pod) is a client of the hurd, not one of its servers:
      // no boot secret, and its own probes (checked above like any container's).
      if (hurd && !init && c.args?.[0] !== "hurd") {
        const boot = (c.env ?? []).findIndex((e) => e.name === "HURD_BOOT_SECRET");
        // The kernel checks boot claims against its boot key, each hurd's init claims with that hurd's own
        // secret (derived from the key); proc and auth never need either, so never get one.
        if (role === "proc" || role === "auth") {
          if (boot >= 0) say(o, `${path}.env[${boot}]`, `the ${role} has HURD_BOOT_SECRET: only init needs it`);
        } else if (role === "kernel") {
          if (boot >= 0) say(o, `${path}.env[${boot}]`, "the kernel has HURD_BOOT_SECRET: it checks every hurd's claim against its boot key (HURD_BOOT_KEY_FILE from hurd-boot-key)");
          else if (!String(settings.get("HURD_BOOT_KEY_FILE")?.value ?? "")) say(o, `${path}.env`, "no HURD_BOOT_KEY_FILE: the kernel checks every hurd's boot claim against the key in Secret hurd-boot-key");
        } else if (boot < 0) say(o, `${path}.env`, `no HURD_BOOT_SECRET (container ${c.name}): the kernel refuses an init without it`);
        else if (!c.env[boot].valueFrom?.secretKeyRef) say(o, `${path}.env[${boot}]`, "HURD_BOOT_SECRET must come from a Secret (valueFrom.secretKeyRef), not a literal");
        else if (c.env[boot].valueFrom.secretKeyRef.name !== "hurd-boot" || c.env[boot].valueFrom.secretKeyRef.optional)
          say(o, `${path}.env[${boot}]`, "HURD_BOOT_SECRET must come from the Secret hurd-boot (made by hurd keys k8s), not optional");
        const port = HURD_ROLES[role];
        // An edge with TLS: the kubelet's gRPC probe speaks none, so the image's grpc-health script asks, checking the certificate.
        const tlsEdge = role === "kernel" && settings.has("HURD_GRPC_CERT");
        // A logged kernel (--journal, components/kernel-ha) listens on the edge only while it leads:
        // its readiness is the edge (the Service follows the leader), its liveness and startup never are.
        const journal = role === "kernel" && logged(c);
        if (role === "kernel" && (c.args ?? []).includes("--standby"))
          say(o, `${path}.args`, "--standby: every replica of a Deployment takes the same args, and a --standby kernel never leads a log nobody has led; run --journal (a kernel that finds a leader stands by)");
        if (journal)
          for (const p of ["livenessProbe", "startupProbe"])
            if (probesEdge(c[p]))
              say(o, `${path}.${p}`, "dials the edge, where a kernel with --journal does not listen while it stands by: the kubelet would restart every standby; ask its metrics page (httpGet /metrics on HURD_METRICS_ADDR's port)");
        for (const p of journal ? ["readinessProbe"] : ["readinessProbe", "livenessProbe"]) {
          if (!c[p]) continue;
          if (tlsEdge) {
            const cmd = c[p].exec?.command ?? [];
            if (!cmd.some((a) => /grpc-health\.mjs$/.test(a)) || !settings.has("HURD_HEALTH_CA_FILE") || !String(settings.get("HURD_HEALTH_PROBE")?.value ?? "").endsWith(`:${port}`))
              say(o, `${path}.${p}`, `the edge speaks TLS: must be an exec probe running bin/grpc-health.mjs with HURD_HEALTH_PROBE=127.0.0.1:${port} and HURD_HEALTH_CA_FILE`);
            continue;
          }
          const g = c[p].grpc;
          if (!g || g.port !== port || (g.service ?? "") !== "")
            say(o, `${path}.${p}`, `must be a gRPC probe on port ${port} (grpc.health.v1, service "") for the ${role}`);
        }
      }
    }
    (spec.volumes ?? []).forEach((v, i) => {
      if (v.secret) {
        const r = { name: v.secret.secretName, optional: v.secret.optional };
        if (v.secret.items?.length) v.secret.items.forEach((it, j) => ref(`${pod.path}.volumes[${i}].secret.items[${j}]`, "Secret", secrets, r, it.key));
        else ref(`${pod.path}.volumes[${i}].secret`, "Secret", secrets, r);
      }
      if (v.configMap) ref(`${pod.path}.volumes[${i}].configMap`, "ConfigMap", configMaps, v.configMap);
    });
    if (hurd) {
      const replicas = o.spec.replicas ?? 1;
      const kernel = role === "kernel" ? (spec.containers ?? []).find((c) => c.name === "kernel") ?? spec.containers?.[0] : null;
      if (o.kind === "Deployment" && kernel && replicas !== 1) {
        // A leader and its standby (components/kernel-ha): the log fences all but one, the readiness probe shows which.
        if (!logged(kernel))
          say(o, "spec.replicas", `${replicas} kernels without --journal: each would take the system's traps with a state of its own; more than one needs the kernel's log (components/kernel-ha)`);
        else if (replicas > 2) say(o, "spec.replicas", `${replicas}: at most 2 logged kernels, a leader and its standby (the shape tests/restart/failover runs)`);
        else if (replicas < 1) say(o, "spec.replicas", "must be 1 or, with --journal, 2");
        else if (!probesEdge(kernel.readinessProbe))
          say(o, `${pod.path}.containers[${spec.containers.indexOf(kernel)}].readinessProbe`, "must be the edge with 2 kernels: only the leader listens there, so Service kernel selects the leader alone");
        if (o.spec.strategy?.type !== "Recreate") say(o, "spec.strategy.type", "must be Recreate: a rolling update would wait forever for a new kernel that stands by (never ready) to be ready");
      } else if (o.kind === "Deployment") {
        if (replicas !== 1) say(o, "spec.replicas", `must be 1: a hurd ${role} is not replicable`);
        if (o.spec.strategy?.type !== "Recreate") say(o, "spec.strategy.type", `must be Recreate: a rolling update would run two ${role}s at once`);
      } else if (o.kind === "StatefulSet") {
        if ((o.spec.replicas ?? 1) !== 1) say(o, "spec.replicas", `must be 1: a hurd ${role} is not replicable`);
      } else say(o, "kind", `a hurd ${role} must be a Deployment (Recreate) or a StatefulSet`);
    }
  }

  for (const s of objects.filter((o) => o.kind === "Service")) {
    const ns = s.metadata?.namespace ?? "";
    const sel = s.spec?.selector;
    if (s.spec?.type === "ExternalName") continue;
    if (!sel || !Object.keys(sel).length) {
      say(s, "spec.selector", "empty: the Service would select no pods (or need hand-made Endpoints)");
      continue;
    }
    const pods = objects
      .filter((o) => (o.metadata?.namespace ?? "") === ns)
      .map(podOf)
      .filter((p) => p && Object.entries(sel).every(([k, v]) => p.metadata?.labels?.[k] === v));
    if (!pods.length) {
      say(s, "spec.selector", `${Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(",")} matches no workload in namespace ${ns}`);
      continue;
    }
    (s.spec.ports ?? []).forEach((p, i) => {
      if (typeof p.targetPort !== "string") return;
      const named = pods.some((pod) => (pod.spec?.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort)));
      if (!named) say(s, `spec.ports[${i}].targetPort`, `no selected container has a port named ${p.targetPort}`);
    });
  }
  // NATS is the fabric: its pods are selected by a NetworkPolicy whose every
  // ingress rule admits hurdmesh's own pods only (issue 15).
  for (const o of objects) {
    const pod = podOf(o);
    if (pod?.metadata?.labels?.["app.kubernetes.io/name"] !== "nats") continue;
    const ns = o.metadata?.namespace ?? "";
    const labels = pod.metadata.labels;
    const guards = objects.filter(
      (p) =>
        p.kind === "NetworkPolicy" &&
        (p.metadata?.namespace ?? "") === ns &&
        (p.spec?.policyTypes ?? ["Ingress"]).includes("Ingress") &&
        Object.entries(p.spec?.podSelector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v),
    );
    const ownOnly = (p) =>
      (p.spec.ingress ?? []).every((r) => (r.from ?? []).length > 0 && r.from.every((peer) => peer.podSelector?.matchLabels?.["app.kubernetes.io/part-of"] === "hurdmesh" && !peer.ipBlock));
    if (!guards.length) say(o, "metadata.labels", "NATS pods are selected by no NetworkPolicy: anything in the cluster reaches the fabric");
    else if (!guards.every(ownOnly)) say(o, "metadata.labels", "a NetworkPolicy selecting NATS admits pods that are not hurdmesh's own");
    if (o.kind === "StatefulSet" && (o.spec.replicas ?? 1) > 1)
      for (const l of natsClusterProblems(o, pod, objects.filter((x) => (x.metadata?.namespace ?? "") === ns), guards)) say(o, ...l);
  }
  // The kernel's log at R replicas needs R NATS nodes (JetStream refuses the
  // stream otherwise, and the kernel never starts); a logged kernel on a
  // NATS cluster keeps its log on one node unless it asks for more.
  const natsSets = objects.filter((o) => o.kind === "StatefulSet" && podOf(o)?.metadata?.labels?.["app.kubernetes.io/name"] === "nats");
  for (const o of objects) {
    const pod = podOf(o);
    if (o.kind !== "Deployment" || pod?.metadata?.labels?.["app.kubernetes.io/component"] !== "kernel") continue;
    const nats = natsSets.find((x) => (x.metadata?.namespace ?? "") === (o.metadata?.namespace ?? ""));
    if (!nats) continue;
    const nodes = nats.spec.replicas ?? 1;
    (pod.spec?.containers ?? []).forEach((c, i) => {
      if (c.args?.[0] !== "kernel") return;
      const { value: r, where } = logReplicas(c, objects.filter((x) => x.kind === "ConfigMap" && (x.metadata?.namespace ?? "") === (o.metadata?.namespace ?? "")), `spec.template.spec.containers[${i}]`);
      if (!(Number.isInteger(r) && r >= 1 && r <= 5)) say(o, where, `the kernel's log replicas (HURD_KERNEL_LOG_REPLICAS, --log-replicas) are 1 to 5, not ${r}`);
      else if (r > nodes) say(o, where, `the kernel's log at ${r} replicas needs at least ${r} NATS nodes; StatefulSet ${nats.metadata.name} runs ${nodes} (components/nats-cluster)`);
      else if (logged(c) && nodes > 1 && r < 3)
        say(o, where, `a logged kernel's log at ${r} replica${r === 1 ? "" : "s"} on a NATS cluster of ${nodes}: the loss of one node holding it stops every hurd; HURD_KERNEL_LOG_REPLICAS=3 (components/nats-cluster)`);
    });
  }
  return problems;
}

/** The route port every NATS node listens on for its peers (hurd keys k8s --nats-cluster's cluster block). */
const NATS_ROUTE_PORT = 6222;

/** The kernel container's log replicas: --log-replicas in its args, else HURD_KERNEL_LOG_REPLICAS (env, then envFrom), else 1. */
function logReplicas(c, configMaps, path) {
  const args = c.args ?? [];
  const a = args.findIndex((x) => x === "--log-replicas" || x.startsWith("--log-replicas="));
  if (a >= 0) return { value: Number(args[a].includes("=") ? args[a].split("=")[1] : args[a + 1]), where: `${path}.args` };
  const e = (c.env ?? []).findIndex((x) => x.name === "HURD_KERNEL_LOG_REPLICAS");
  if (e >= 0) return { value: Number(c.env[e].value), where: `${path}.env[${e}]` };
  for (const [i, f] of (c.envFrom ?? []).entries()) {
    const v = configMaps.find((m) => m.metadata?.name === f.configMapRef?.name)?.data?.HURD_KERNEL_LOG_REPLICAS;
    if (v !== undefined) return { value: Number(v), where: `${path}.envFrom[${i}]` };
  }
  return { value: 1, where: `${path}.env` };
}

/**
 * A NATS StatefulSet of several pods is a JetStream cluster
 * (components/nats-cluster): an odd number, 3 or 5 (a quorum is a
 * majority; a stream has at most 5 replicas); the route port declared; pods
 * started at once (each is ready only once the cluster has a leader); a
 * headless governing Service that publishes pods before they are ready (the
 * routes find each other by those names) and declares the route port; the
 * pod's name in POD_NAME (nats.conf's server_name); nats-tls's CA mounted
 * (the routes verify each other); the routes let through by a NetworkPolicy;
 * and a PodDisruptionBudget that never takes the quorum.
 */
function natsClusterProblems(o, pod, inNs, guards) {
  const out = [];
  const n = o.spec.replicas;
  const spec = pod.spec;
  if (n !== 3 && n !== 5)
    out.push(["spec.replicas", `${n} NATS nodes: a JetStream cluster is 3 or 5 (${n % 2 ? "a stream has at most 5 replicas" : `its quorum is a majority: ${n} nodes survive no more losses than ${n - 1}`})`]);
  const ci = (spec.containers ?? []).findIndex((c) => c.name === "nats");
  const c = spec.containers?.[ci] ?? {};
  const cpath = `${pod.path}.containers[${ci < 0 ? 0 : ci}]`;
  if (!(c.ports ?? []).some((p) => p.containerPort === NATS_ROUTE_PORT)) out.push([`${cpath}.ports`, `declares no route port ${NATS_ROUTE_PORT}: ${n} NATS nodes route to each other there`]);
  if (!(c.env ?? []).some((e) => e.name === "POD_NAME" && e.valueFrom?.fieldRef?.fieldPath === "metadata.name"))
    out.push([`${cpath}.env`, "no POD_NAME from metadata.name: a cluster's nats.conf names each server $POD_NAME (hurd keys k8s --nats-cluster)"]);
  const tls = (spec.volumes ?? []).find((v) => v.secret?.secretName === "nats-tls");
  if (tls && tls.secret.items?.length && !tls.secret.items.some((it) => it.key === "ca.crt"))
    out.push([`${pod.path}.volumes`, "nats-tls without ca.crt: the routes verify each other's certificate against the CA"]);
  if (o.spec.podManagementPolicy !== "Parallel")
    out.push(["spec.podManagementPolicy", "must be Parallel: a node is ready only once JetStream has a leader, which needs a second node, which OrderedReady would never start"]);
  const headless = inNs.find((x) => x.kind === "Service" && x.metadata?.name === o.spec.serviceName);
  if (!headless) out.push(["spec.serviceName", `${o.spec.serviceName ?? "(none)"}: no such Service; the routes find the pods by their names under it`]);
  else {
    if (headless.spec?.clusterIP !== "None") out.push(["spec.serviceName", `Service ${headless.metadata.name} is not headless (clusterIP: None): the pods would have no names of their own`]);
    if (headless.spec?.publishNotReadyAddresses !== true)
      out.push(["spec.serviceName", `Service ${headless.metadata.name} must publish not-ready addresses (publishNotReadyAddresses: true): no pod is ready before the routes find each other`]);
    if (!(headless.spec?.ports ?? []).some((p) => p.port === NATS_ROUTE_PORT)) out.push(["spec.serviceName", `Service ${headless.metadata.name} declares no route port ${NATS_ROUTE_PORT}`]);
  }
  const routes = guards.some((g) => (g.spec.ingress ?? []).some((r) => (r.ports ?? []).some((p) => p.port === NATS_ROUTE_PORT || p.port === "cluster")));
  if (guards.length && !routes) out.push(["metadata.labels", `the NetworkPolicies selecting NATS let no route (port ${NATS_ROUTE_PORT}) through: the nodes would never form a cluster`]);
  const labels = pod.metadata?.labels ?? {};
  const pdb = inNs.find((x) => x.kind === "PodDisruptionBudget" && Object.entries(x.spec?.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v));
  const quorumLoss = Math.floor((n - 1) / 2);
  if (!pdb) out.push(["metadata.labels", `no PodDisruptionBudget selects the NATS pods: a drain could take ${quorumLoss + 1} of ${n} at once, JetStream's quorum`]);
  else {
    const max = pdb.spec.maxUnavailable;
    const min = pdb.spec.minAvailable;
    const ok = typeof max === "number" ? max >= 1 && max <= quorumLoss : typeof min === "number" ? n - min >= 1 && n - min <= quorumLoss : false;
    if (!ok) out.push(["metadata.labels", `PodDisruptionBudget ${pdb.metadata.name}: ${max !== undefined ? `maxUnavailable ${max}` : `minAvailable ${min}`} for ${n} NATS nodes; at most ${quorumLoss} may be down at once (and as a number, not a percentage)`]);
  }
  return out;
}

// ---- driver ---------------------------------------------------------------

/**
 * Validates the kustomizations in dirs (default: all under root).
 * Returns { problems: string[], objects: number, dirs: string[] }.
 */
export async function validate({ root = join(repo, "k8s"), dirs } = {}) {
  root = resolve(root);
  if (!findKubectl()) throw new KubectlMissing(KUBECTL_HELP);
  dirs = (dirs?.length ? dirs.map((d) => resolve(d)) : findKustomizations(root));
  const show = (d) => {
    const r = relative(process.cwd(), d);
    return r.startsWith("..") ? d : r || ".";
  };
  const problems = [];
  const rendered = [];
  // kubectl starts slowly and the model definitions take a second to load:
  // the renders run (all at once) while the checker for the usual kinds is built.
  const renders = Promise.all(dirs.map(render));
  let known = COMMON_KINDS.filter(([av, k]) => modelExists(av, k));
  let fields = fieldChecker(known);
  for (const [i, r] of (await renders).entries()) {
    if (r.error) problems.push(`${show(dirs[i])}: kubectl kustomize failed: ${r.error}`);
    else rendered.push({ dir: dirs[i], objects: r.objects });
  }
  const kinds = new Map(known.map(([av, k]) => [`${av}/${k}`, [av, k]]));
  let more = false;
  for (const { dir, objects } of rendered)
    for (const o of objects) {
      if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
        problems.push(`${show(dir)}: an object without apiVersion/kind: ${JSON.stringify(o).slice(0, 80)}`);
        continue;
      }
      const key = `${o.apiVersion}/${o.kind}`;
      if (!kinds.has(key)) {
        const ok = modelExists(o.apiVersion, o.kind);
        kinds.set(key, ok ? [o.apiVersion, o.kind] : null);
        more ||= ok;
      }
    }
  if (more) fields = fieldChecker([...kinds.values()].filter(Boolean));
  let count = 0;
  for (const { dir, objects } of rendered) {
    const where = (o) => `${show(dir)}: ${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name ?? "(no name)"}`;
    for (const o of objects) {
      if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") continue;
      count++;
      if (!kinds.get(`${o.apiVersion}/${o.kind}`)) {
        problems.push(`${where(o)}: no Kubernetes schema for ${o.apiVersion} ${o.kind} (a typo, a removed API version, or a custom resource this validator does not know)`);
        continue;
      }
      for (const l of await schemaProblems(o)) problems.push(`${where(o)}: ${l}`);
      for (const l of fields(o)) problems.push(`${where(o)}: ${l}`);
    }
    for (const p of rules(objects)) problems.push(`${show(dir)}: ${p.obj}: ${p.line}`);
  }
  // The top kustomization must deploy every overlay (a copied overlay not listed there would never be applied).
  const top = join(root, "kustomization.yaml");
  const overlays = join(root, "overlays");
  if (existsSync(top) && existsSync(overlays)) {
    const listed = new Set(((parseYaml(readFileSync(top, "utf8")) ?? {}).resources ?? []).map((r) => resolve(root, r)));
    // A variant of a listed overlay (overlays/root-kernel-ha builds on overlays/root) is applied
    // in its place, never beside it: either one listed is enough.
    const resourcesOf = (d) => {
      const f = join(d, "kustomization.yaml");
      const rs = existsSync(f) ? (parseYaml(readFileSync(f, "utf8")) ?? {}).resources ?? [] : [];
      return rs.filter((r) => typeof r === "string").map((r) => resolve(d, r));
    };
    // Transitively: overlays/root-cluster builds on overlays/root-kernel-ha, which builds on overlays/root.
    const builtOn = (d, seen = new Set()) => {
      for (const r of resourcesOf(d)) if (!seen.has(r)) seen.add(r), builtOn(r, seen);
      return seen;
    };
    const variant = (d) => [...builtOn(d)].some((r) => listed.has(r)) || [...listed].some((l) => builtOn(l).has(d));
    for (const e of readdirSync(overlays).sort()) {
      const d = join(overlays, e);
      if (statSync(d).isDirectory() && !listed.has(d) && !variant(d)) problems.push(`${show(top)}: resources does not list overlays/${e} (add "- overlays/${e}")`);
    }
  }
  return { problems, objects: count, dirs };
}

async function main() {
  const args = process.argv.slice(2);
  let root;
  const dirs = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--root") root = args[++i];
    else if (args[i] === "-h" || args[i] === "--help") {
      console.log("usage: node scripts/k8s/validate.mjs [--root K8S_DIR] [KUSTOMIZATION_DIR...]");
      return 0;
    } else dirs.push(args[i]);
  }
  const t0 = performance.now();
  let r;
  try {
    r = await validate({ root, dirs });
  } catch (e) {
    if (e instanceof KubectlMissing) {
      console.error(`k8s validate: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  for (const p of r.problems) console.error(p);
  if (r.problems.length) {
    console.error(`k8s validate: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} in ${r.dirs.length} kustomizations (${secs}s)`);
    return 1;
  }
  console.log(`k8s validate: ${r.dirs.length} kustomizations, ${r.objects} objects rendered, schemas, unknown fields and project rules all pass (${secs}s)`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exit(await main());

// hurd keys k8s: every Secret the manifests in k8s/ need, as YAML for
// `kubectl apply -f -`, made fresh on each run and printed on stdout only
// (never argv, never a file left behind). None is committed: the manifests
// name them, `npm run k8s:validate` checks that each mount names one of
// these with a key it has (USER_SECRETS there).
//
// In the infrastructure namespace (hurdmesh), read by NATS and the kernel:
//   nats-config     nats.conf: operator mode, the accounts preloaded, nobody
//                   anonymous, TLS on the client port, JetStream in /data (JWTs only);
//                   with --nats-cluster N, the routes between the N pods of
//                   components/nats-cluster too (natsConfig)
//   nats-tls        kubernetes.io/tls: NATS's certificate (nats.<ns>.svc…; with
//                   --nats-cluster, each pod's name under nats-headless too)
//   kernel-tls      kubernetes.io/tls: the gRPC edge's (kernel.<ns>.svc…, 127.0.0.1 for its probe)
//   hurd-nats-keys  nats-keys.json: the account's signing keys; the kernel's alone (it mints every user)
//   hurd-boot-key   key: the boot key; the kernel's alone (it checks every hurd's boot claim against it)
// In each hurd's namespace (the root hurd's is hurdmesh; subhurd NAME's is hurd-NAME):
//   hurd-boot       secret: that hurd's own boot secret, derived from the boot key
//                   (hurdBootSecret), which its init claims its boot with, for that hurd only
//   hurd-ca         ca.crt: the CA of NATS's and the edge's certificates (clients check both against it)
//   hurd-nats-init, hurd-nats-proc, hurd-nats-auth
//                   nats.creds: that server's own NATS user (init: its hurd's boot claim;
//                   proc, auth: their own launch order), mounted into that server's pod only
//
// So whoever reads one hurd's namespace can claim that hurd's boot and no
// other's (and its init's NATS user gets only that hurd's claim answers).
//
// --external-certs leaves nats-tls and kernel-tls out (cert-manager, say,
// makes them, shaped alike) and takes the CA that signs them with --ca.
// Otherwise a private CA is made, signs both, and its key is dropped.
// --add-subhurds prints only a new subhurd's Secrets, from the install's
// keys (--nats-keys), CA (--ca) and boot key (--boot-key-file, or
// HURD_BOOT_KEY), read back with kubectl (k8s/README.md).
import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { FabricKeys } from "@hurdmesh/mach/nats-auth";
import { CliError } from "./errors.js";

/** A Kubernetes namespace or Secret name: a DNS-1123 label (which also keeps the YAML below plain scalars). */
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The names the manifests use (k8s/base, k8s/hurd). */
export const K8S_SECRETS = {
  natsConfig: "nats-config",
  natsTls: "nats-tls",
  kernelTls: "kernel-tls",
  natsKeys: "hurd-nats-keys",
  bootKey: "hurd-boot-key",
  boot: "hurd-boot",
  ca: "hurd-ca",
  user: (server: string) => `hurd-nats-${server}`,
} as const;

/** A subhurd's namespace, as k8s/overlays (and `hurd k8s new-subhurd`) name it. */
export const subhurdNamespace = (name: string) => `hurd-${name}`;

export interface K8sKeysOptions {
  /** The infrastructure's and the root hurd's namespace. */
  namespace: string;
  /** HURD_SYSTEM of the manifests: the subjects the users are scoped to. */
  system: string;
  subhurds: string[];
  clusterDomain: string;
  /** cert-manager (or the user) makes nats-tls and kernel-tls; `caPem` is their CA. */
  externalCerts: boolean;
  caPem?: string;
  /** NATS's pods: 1 (k8s/base), or 3 or 5 forming a cluster (components/nats-cluster). */
  natsCluster?: number;
}

/**
 * NATS as components/nats-cluster runs it: the StatefulSet's pods, named
 * by their governing (headless) Service, and the variable the pod's name is
 * in (the downward API), which names each server.
 */
const NATS_CLUSTER = {
  statefulSet: "nats",
  headless: "nats-headless",
  routePort: 6222,
  serverNameEnv: "POD_NAME",
  name: "hurdmesh",
  /** The user every route presents; its password is in nats-config, which only the NATS pods mount. */
  routeUser: "route",
  caFile: "/etc/nats/tls/ca.crt",
} as const;

/** How many NATS pods a cluster may have: JetStream's quorum needs an odd number, and a stream has at most 5 replicas. */
const NATS_CLUSTER_SIZES = [1, 3, 5] as const;

/** Each NATS pod's stable DNS name (the StatefulSet's pod under its headless Service): where the routes go. */
function natsPodNames(n: number, namespace: string, clusterDomain: string): string[] {
  return Array.from({ length: n }, (_x, i) => `${NATS_CLUSTER.statefulSet}-${i}.${NATS_CLUSTER.headless}.${namespace}.svc.${clusterDomain}`);
}

const TLS_DIR = "/etc/nats/tls";

/**
 * nats.conf for NATS's pods. One node: as it always was (JetStream without
 * sync_interval, so that Debian bookworm's nats-server 2.9.10 still runs
 * it). A cluster (components/nats-cluster, image nats:2.10-alpine): every
 * pod reads the same text; its server_name comes from its pod's name
 * ($POD_NAME), its routes go to every pod's stable name (its own ignored),
 * over TLS verified both ways against the CA and with a route password,
 * and JetStream syncs every write before acknowledging it (sync_interval:
 * always, which 2.10 takes and 2.9.10 refuses): an entry acknowledged by
 * two of three nodes survives a power loss of the whole cluster.
 */
async function natsConfig(keys: FabricKeys, o: { nodes: number; namespace: string; clusterDomain: string }): Promise<string> {
  const { fabricServerConfig } = await import("@hurdmesh/mach/nats-auth");
  const tls = { certFile: `${TLS_DIR}/tls.crt`, keyFile: `${TLS_DIR}/tls.key` };
  const common = { host: "0.0.0.0", port: 4222, jetstreamDir: "/data", tls };
  if (o.nodes === 1) return fabricServerConfig(keys, common);
  const password = randomBytes(24).toString("base64url");
  return fabricServerConfig(keys, {
    ...common,
    serverNameEnv: NATS_CLUSTER.serverNameEnv,
    syncInterval: "always",
    cluster: {
      name: NATS_CLUSTER.name,
      port: NATS_CLUSTER.routePort,
      user: NATS_CLUSTER.routeUser,
      password,
      tls: { ...tls, caFile: NATS_CLUSTER.caFile },
      routes: natsPodNames(o.nodes, o.namespace, o.clusterDomain).map((h) => `nats-route://${NATS_CLUSTER.routeUser}:${password}@${h}:${NATS_CLUSTER.routePort}`),
    },
  });
}

export interface SecretDoc {
  name: string;
  namespace: string;
  type: "Opaque" | "kubernetes.io/tls";
  data: Record<string, string>;
}

/** One Secret as YAML: every value base64, every name a checked label. */
export function secretYaml(s: SecretDoc): string {
  const component = s.type === "kubernetes.io/tls" ? "tls" : "config";
  return [
    "apiVersion: v1",
    "kind: Secret",
    "metadata:",
    `  name: ${s.name}`,
    `  namespace: ${s.namespace}`,
    "  labels:",
    "    app.kubernetes.io/name: hurdmesh",
    `    app.kubernetes.io/component: ${component}`,
    "    app.kubernetes.io/part-of: hurdmesh",
    "    app.kubernetes.io/managed-by: hurd-keys",
    `type: ${s.type}`,
    "data:",
    ...Object.entries(s.data).map(([k, v]) => `  ${k}: ${Buffer.from(v).toString("base64")}`),
    "",
  ].join("\n");
}

/**
 * A subhurd's name in Kubernetes: a DNS label (its namespace is hurd-NAME)
 * that the kernel takes as a hurd's name (boot-claim.ts: a letter first, at
 * most 32). `hurd k8s new-subhurd` checks the same, so an overlay it makes
 * is one `hurd keys k8s` can key.
 */
export function isSubhurdName(name: string): boolean {
  return /^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/.test(name);
}

export const SUBHURD_NAME_RULE = "a lowercase letter, then lowercase letters, digits and '-', at most 32";

function checkNames(o: { namespace: string; system: string; subhurds: string[]; clusterDomain: string }): void {
  if (!LABEL.test(o.namespace)) throw new CliError(`not a Kubernetes namespace: ${JSON.stringify(o.namespace)}`);
  if (!/^[A-Za-z0-9_-]+$/.test(o.system)) throw new CliError(`not a hurdmesh system name: ${JSON.stringify(o.system)}`);
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.clusterDomain)) throw new CliError(`not a cluster domain: ${JSON.stringify(o.clusterDomain)}`);
  const seen = new Set<string>();
  for (const h of o.subhurds) {
    if (!isSubhurdName(h)) throw new CliError(`not a subhurd name: ${JSON.stringify(h)} (${SUBHURD_NAME_RULE})`);
    if (seen.has(h)) throw new CliError(`subhurd ${h} named twice`);
    seen.add(h);
  }
}

/** The CA's certificate from a file, checked to be one. */
function readCa(path: string): string {
  if (!existsSync(path)) throw new CliError(`no CA certificate at ${path}`);
  const pem = readFileSync(path, "utf8");
  try {
    new X509Certificate(pem);
  } catch {
    throw new CliError(`${path} holds no PEM certificate`);
  }
  return pem;
}

/** One hurd's Secrets in its namespace: the boot secret, the CA, and its three servers' NATS users. */
async function hurdSecrets(o: { system: string; hurd: string; namespace: string; bootKey: string; caPem: string; signer: unknown; account: string }): Promise<SecretDoc[]> {
  const { credsFile, mintUser, permissionsFor } = await import("@hurdmesh/mach/nats-auth");
  const { hurdBootSecret } = await import("@hurdmesh/kernel");
  const signer = o.signer as Parameters<typeof mintUser>[0];
  const out: SecretDoc[] = [
    { name: K8S_SECRETS.boot, namespace: o.namespace, type: "Opaque", data: { secret: hurdBootSecret(o.bootKey, o.hurd) } },
    { name: K8S_SECRETS.ca, namespace: o.namespace, type: "Opaque", data: { "ca.crt": o.caPem } },
  ];
  const who = o.hurd || "root";
  // Role users carry no expiry: each can do one thing (claim its hurd's boot, take its own launch order).
  out.push({
    name: K8S_SECRETS.user("init"),
    namespace: o.namespace,
    type: "Opaque",
    data: { "nats.creds": credsFile(mintUser(signer, o.account, `k8s ${who} init`, permissionsFor(o.system, { kind: "boot-claim", hurd: o.hurd }))) },
  });
  for (const server of ["proc", "auth"])
    out.push({
      name: K8S_SECRETS.user(server),
      namespace: o.namespace,
      type: "Opaque",
      data: { "nats.creds": credsFile(mintUser(signer, o.account, `k8s ${who} ${server}`, permissionsFor(o.system, { kind: "launch", hurd: o.hurd, server }))) },
    });
  return out;
}

/** Every Secret of a new install: the infrastructure's, the root hurd's, each subhurd's. */
export async function k8sSecrets(o: K8sKeysOptions): Promise<SecretDoc[]> {
  checkNames(o);
  const nodes = o.natsCluster ?? 1;
  if (!(NATS_CLUSTER_SIZES as readonly number[]).includes(nodes))
    throw new CliError(`--nats-cluster ${nodes}: NATS runs 1 pod, or a cluster of 3 or 5 (JetStream's quorum is a majority, and a stream has at most 5 replicas)`);
  if (o.externalCerts && !o.caPem) throw new CliError("--external-certs needs --ca FILE: the CA that signs nats-tls and kernel-tls, which every client checks them against");
  if (!o.externalCerts && o.caPem) throw new CliError("--ca goes with --external-certs or --add-subhurds (without them a private CA is made)");
  const { issueCert, makeCA, makeFabricKeys, NKey } = await import("@hurdmesh/mach/nats-auth");
  const keys = makeFabricKeys(o.system, { jetstream: true });
  const ns = o.namespace;
  const svc = (name: string) => [name, `${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.${o.clusterDomain}`];
  const out: SecretDoc[] = [
    {
      name: K8S_SECRETS.natsConfig,
      namespace: ns,
      type: "Opaque",
      data: {
        "nats.conf": await natsConfig(keys, { nodes, namespace: ns, clusterDomain: o.clusterDomain }),
      },
    },
  ];
  let caPem = o.caPem;
  if (!o.externalCerts) {
    const ca = await makeCA({ name: `hurdmesh ${o.system} k8s CA` });
    caPem = ca.certPem;
    // 127.0.0.1: the kernel's exec probe dials its own edge. A cluster's
    // routes dial each pod by its name under the headless Service, and a
    // route's TLS is checked both ways: every pod shows this one certificate.
    const pods = nodes > 1 ? [...svc(NATS_CLUSTER.headless), ...natsPodNames(nodes, ns, o.clusterDomain)] : [];
    const nats = await issueCert(ca, { dns: [...svc("nats"), ...pods, "localhost"], ip: ["127.0.0.1"] });
    const edge = await issueCert(ca, { dns: [...svc("kernel"), "localhost"], ip: ["127.0.0.1"] });
    out.push(
      { name: K8S_SECRETS.natsTls, namespace: ns, type: "kubernetes.io/tls", data: { "tls.crt": nats.certPem, "tls.key": nats.keyPem, "ca.crt": ca.certPem } },
      { name: K8S_SECRETS.kernelTls, namespace: ns, type: "kubernetes.io/tls", data: { "tls.crt": edge.certPem, "tls.key": edge.keyPem, "ca.crt": ca.certPem } },
    );
    // The CA's key goes out of scope here: nothing can issue another certificate.
  }
  out.push({ name: K8S_SECRETS.natsKeys, namespace: ns, type: "Opaque", data: { "nats-keys.json": JSON.stringify(keys, null, 2) + "\n" } });
  const bootKey = randomBytes(32).toString("base64url");
  out.push({ name: K8S_SECRETS.bootKey, namespace: ns, type: "Opaque", data: { key: bootKey } });
  const signer = NKey.fromSeed(keys.accountSigningSeed, "account");
  for (const hurd of ["", ...o.subhurds])
    out.push(...(await hurdSecrets({ system: o.system, hurd, namespace: hurd ? subhurdNamespace(hurd) : ns, bootKey, caPem: caPem!, signer, account: keys.account })));
  return out;
}

/** A subhurd's Secrets for an existing install, from its keys, CA and boot key. */
export async function k8sAddSubhurds(o: { subhurds: string[]; natsKeys: string; caPem: string; bootKey: string }): Promise<SecretDoc[]> {
  const { NKey, readFabricKeys } = await import("@hurdmesh/mach/nats-auth");
  let keys;
  try {
    keys = readFabricKeys(o.natsKeys);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  checkNames({ namespace: "hurdmesh", system: keys.system, subhurds: o.subhurds, clusterDomain: "cluster.local" });
  if (o.bootKey.length < 16) throw new CliError("the boot key (--boot-key-file or HURD_BOOT_KEY: the install's hurd-boot-key) is missing or shorter than 16 characters");
  const signer = NKey.fromSeed(keys.accountSigningSeed, "account");
  const out: SecretDoc[] = [];
  for (const hurd of o.subhurds)
    out.push(...(await hurdSecrets({ system: keys.system, hurd, namespace: subhurdNamespace(hurd), bootKey: o.bootKey, caPem: o.caPem, signer, account: keys.account })));
  return out;
}

const list = (s: string | undefined) => (s ?? "").split(",").map((x) => x.trim()).filter(Boolean);

/** The command: options as commander gives them; the boot key from a file or the environment, never argv. */
export async function k8sKeysCommand(o: {
  namespace: string;
  system: string;
  subhurds?: string;
  clusterDomain: string;
  externalCerts?: boolean;
  ca?: string;
  addSubhurds?: string;
  natsKeys?: string;
  bootKeyFile?: string;
  natsCluster?: string;
}): Promise<void> {
  const caPem = o.ca ? readCa(o.ca) : undefined;
  let docs: SecretDoc[];
  if (o.addSubhurds !== undefined) {
    if (!list(o.addSubhurds).length) throw new CliError("--add-subhurds names at least one subhurd");
    if (o.subhurds || o.externalCerts || o.natsCluster !== undefined) throw new CliError("--add-subhurds adds to an install: not with --subhurds, --external-certs or --nats-cluster");
    if (!o.natsKeys || !caPem) throw new CliError("--add-subhurds needs --nats-keys FILE and --ca FILE (the install's; k8s/README.md says how to read them back)");
    let bootKey = process.env.HURD_BOOT_KEY ?? "";
    delete process.env.HURD_BOOT_KEY;
    if (o.bootKeyFile) {
      try {
        bootKey = readFileSync(o.bootKeyFile, "utf8").trim();
      } catch (e) {
        throw new CliError(`cannot read the boot key: ${(e as Error).message}`);
      }
    }
    docs = await k8sAddSubhurds({ subhurds: list(o.addSubhurds), natsKeys: o.natsKeys, caPem, bootKey });
  } else {
    if (o.natsKeys || o.bootKeyFile) throw new CliError("--nats-keys and --boot-key-file go with --add-subhurds");
    const natsCluster = o.natsCluster === undefined ? 1 : /^\d+$/.test(o.natsCluster) ? Number(o.natsCluster) : NaN;
    if (Number.isNaN(natsCluster)) throw new CliError(`--nats-cluster ${JSON.stringify(o.natsCluster)}: a number of NATS pods (1, 3 or 5)`);
    docs = await k8sSecrets({ namespace: o.namespace, system: o.system, subhurds: list(o.subhurds), clusterDomain: o.clusterDomain, externalCerts: !!o.externalCerts, caPem, natsCluster });
  }
  process.stdout.write(docs.map(secretYaml).join("---\n"));
  process.stderr.write(`hurd: ${docs.length} Secrets in ${[...new Set(docs.map((d) => d.namespace))].join(", ")} (pipe to kubectl apply -f -)\n`);
}

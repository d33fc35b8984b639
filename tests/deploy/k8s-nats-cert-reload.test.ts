// k8s/components/nats-cert-reload, as overlays/root includes it: the
// render passes the offline validator, and the sidecar can do its work
// there. It shares the pod's PID namespace with nats-server,
// runs as nats-server's uid with no capability added (a signal to another
// container's process needs the same uid or CAP_KILL), reads the same
// files nats-server reads, read-only, checks them against the CA NATS's
// clients are given, and asks the port nats-server serves on.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import assert from "node:assert/strict";
// @ts-expect-error: a plain .mjs script without type declarations
import { validate } from "../../scripts/k8s/validate.mjs";

const repo = new URL("../..", import.meta.url).pathname;
const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
const skip = kubectl.error || kubectl.status !== 0 ? "kubectl is not installed: the component was NOT rendered (install kubectl to run this suite)" : false;

interface Container {
  name: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  securityContext?: { runAsUser?: number; runAsGroup?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  shareProcessNamespace?: boolean;
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
}

describe("k8s/components/nats-cert-reload", { skip }, () => {
  const k8s = join(repo, "k8s");
  const overlay = join(k8s, "overlays/root");

  test("overlays/root with the component passes the validator (schemas, unknown fields, project rules)", async () => {
    const r = (await validate({ root: k8s, dirs: [overlay] })) as { problems: string[] };
    assert.deepEqual(r.problems, []);
  });

  test("the sidecar shares nats-server's PID namespace and uid, adds no capability, and reads nats-server's certificate files, read-only", () => {
    const out = spawnSync("kubectl", ["kustomize", overlay], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    const nats = parseAllDocuments(out.stdout)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: { template: { spec: PodSpec } } })
      .find((o) => o?.kind === "StatefulSet" && o.metadata.name === "nats")!;
    const pod = nats.spec.template.spec;
    assert.equal(pod.shareProcessNamespace, true);
    const server = pod.containers.find((c) => c.name === "nats")!;
    const sidecar = pod.containers.find((c) => c.name === "cert-reload")!;
    assert.ok(sidecar, "no cert-reload container");
    const uid = (c: Container) => c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
    assert.equal(uid(sidecar), uid(server), "the sidecar's uid is not nats-server's: its SIGHUP would be refused (EPERM)");
    assert.equal(uid(sidecar), 1000);
    assert.deepEqual(sidecar.securityContext?.capabilities, { drop: ["ALL"] });
    assert.equal(sidecar.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(sidecar.securityContext?.allowPrivilegeEscalation, false);

    const args = sidecar.args!;
    assert.deepEqual(args.slice(0, 2), ["hurd", "nats-reload"]);
    const arg = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    // Where nats-server reads its certificate: its own mount of the same volume.
    const tlsMount = server.volumeMounts!.find((m) => m.name === "tls")!;
    const sidecarTls = sidecar.volumeMounts!.find((m) => m.name === "tls")!;
    assert.equal(sidecarTls.readOnly, true);
    assert.equal(arg("cert"), `${sidecarTls.mountPath}/tls.crt`);
    assert.equal(arg("key"), `${sidecarTls.mountPath}/tls.key`);
    assert.equal(sidecarTls.mountPath, tlsMount.mountPath, "the sidecar reads the files at another path than nats-server");
    // The CA every server dials NATS with (HURD_NATS_CA_FILE from Secret hurd-ca).
    const caMount = sidecar.volumeMounts!.find((m) => arg("ca")!.startsWith(`${m.mountPath}/`))!;
    assert.equal(caMount.readOnly, true);
    assert.equal(pod.volumes.find((v) => v.name === caMount.name)?.secret?.secretName, "hurd-ca");
    // The port nats-server serves clients on, on the pod's loopback.
    assert.equal(arg("server"), `127.0.0.1:${server.ports!.find((p) => p.name === "client")!.containerPort}`);
    // Its health port is not one nats-server's container takes.
    const health = Number(arg("health")!.split(":").pop());
    assert.ok(!server.ports!.some((p) => p.containerPort === health), "the sidecar's health port is nats-server's");
    assert.equal(sidecar.ports!.find((p) => p.name === "reload-health")?.containerPort, health);
  });
});

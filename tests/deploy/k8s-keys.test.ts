// `hurd keys k8s --namespace NS`: the boot Secret a hurd's namespace needs,
// printed for `kubectl apply -f -`, since no secret is committed in k8s/.
// Run as the user runs it (the CLI as a process): a Secret that passes
// Kubernetes' schema, named as the manifests reference it, a new value on
// every call, the value never on stderr, and a bad namespace refused.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { Secret } from "kubernetes-models/v1/Secret";

const repo = join(import.meta.dirname, "../..");
const cli = join(repo, "packages/cli/src/main.ts");
const keysK8s = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", cli, "keys", "k8s", ...args], { encoding: "utf8", timeout: 60000 });

/** The one Secret of a run's stdout, checked against Kubernetes' schema, and its boot secret. */
function secretOf(out: string): { obj: Record<string, any>; secret: string } {
  const docs = parseAllDocuments(out);
  assert.equal(docs.length, 1, "one YAML document");
  assert.deepEqual(docs[0]!.errors, []);
  const obj = docs[0]!.toJS() as Record<string, any>;
  new Secret(obj as ConstructorParameters<typeof Secret>[0]).validate();
  return { obj, secret: Buffer.from(obj.data.secret, "base64").toString("utf8") };
}

describe("hurd keys k8s", () => {
  test("a valid Secret hurd-boot in the namespace, new on every call, never on stderr", () => {
    const runs = [keysK8s("--namespace", "hurdmesh"), keysK8s("--namespace", "hurdmesh"), keysK8s("--namespace", "hurd-subhurd-a")];
    const secrets = runs.map((r) => {
      assert.equal(r.status, 0, r.stderr);
      const { obj, secret } = secretOf(r.stdout);
      assert.equal(obj.kind, "Secret");
      assert.equal(obj.type, "Opaque");
      // The name and key k8s/base/kernel.yaml and k8s/hurd/init.yaml reference.
      assert.equal(obj.metadata.name, "hurd-boot");
      assert.deepEqual(Object.keys(obj.data), ["secret"]);
      assert.equal(obj.metadata.labels["app.kubernetes.io/part-of"], "hurdmesh");
      // 32 random bytes, base64url: 43 characters.
      assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(!r.stderr.includes(secret) && !r.stderr.includes(obj.data.secret), "the secret on stderr");
      return { ns: obj.metadata.namespace, secret };
    });
    assert.deepEqual(secrets.map((s) => s.ns), ["hurdmesh", "hurdmesh", "hurd-subhurd-a"]);
    assert.equal(new Set(secrets.map((s) => s.secret)).size, 3, "two calls or two namespaces shared a secret");
  });

  test("a name that is not a namespace, or none, is refused with nothing on stdout", () => {
    for (const args of [["--namespace", "Hurd_Mesh"], ["--namespace", "a\nkind: ConfigMap"], ["--namespace", ""], []]) {
      const r = keysK8s(...args);
      assert.notEqual(r.status, 0, `accepted ${JSON.stringify(args)}`);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, args.length ? /not a Kubernetes namespace/ : /--namespace/);
    }
  });
});

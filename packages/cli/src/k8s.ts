// hurd k8s new-subhurd NAME: a subhurd's kustomize overlay in one command,
// printed, or (--write) written to k8s/overlays/NAME and listed in
// k8s/kustomization.yaml, where `npm run k8s:validate` and
// `kubectl apply -k k8s/` find it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CliError, UsageError } from "./errors.js";
import { isSubhurdName, SUBHURD_NAME_RULE } from "./keys-k8s.js";

export function subhurdOverlay(name: string, parent?: string): string {
  if (!isSubhurdName(name)) throw new UsageError(`not a subhurd name for Kubernetes: ${name} (${SUBHURD_NAME_RULE})`);
  if (parent !== undefined && (!isSubhurdName(parent) || parent === name)) throw new UsageError(`not a parent subhurd: ${parent}`);
  const nest = parent
    ? `# Nested in subhurd ${parent} rather than in the root hurd.
patches:
  - target: {kind: Deployment}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: HURD_PARENT, value: ${parent}}
`
    : "";
  return `# Subhurd "${name}": its init, proc and auth in namespace hurd-${name},
# booted through the kernel in namespace hurdmesh (apply k8s/base first, or
# all of k8s/). Made by \`hurd k8s new-subhurd ${name}${parent ? ` --parent ${parent}` : ""}\`.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: hurd-${name}
labels:
  - pairs:
      hurdmesh.dev/hurd: ${name}
    includeSelectors: true
  - pairs:
      app.kubernetes.io/instance: ${name}
    includeTemplates: true
components:
  - ../../hurd               # init, proc, auth
  - ../../components/subhurd # Namespace (Pod Security restricted), settings, HURD_SUBHURD; its Secrets: hurd keys k8s
${nest}`;
}

export function newSubhurd(name: string, o: { parent?: string; write?: boolean; dir?: string }): void {
  const text = subhurdOverlay(name, o.parent);
  if (!o.write) {
    process.stdout.write(text);
    return;
  }
  const k8s = o.dir ?? "k8s";
  const top = join(k8s, "kustomization.yaml");
  if (!existsSync(top)) throw new CliError(`no ${top} here (run it at the repository's top, or give --dir)`);
  const dir = join(k8s, "overlays", name);
  const file = join(dir, "kustomization.yaml");
  if (existsSync(file)) throw new CliError(`${file} exists already`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, text);
  const entry = `  - overlays/${name}`;
  const lines = readFileSync(top, "utf8").replace(/\n*$/, "").split("\n");
  if (!lines.includes(entry)) {
    // After the last overlay listed, so the resources list stays one block.
    let at = lines.length;
    for (let i = lines.length - 1; i >= 0; i--)
      if (/^\s*-\s+overlays\//.test(lines[i]!)) {
        at = i + 1;
        break;
      }
    lines.splice(at, 0, entry);
    writeFileSync(top, `${lines.join("\n")}\n`);
  }
  // Its Secrets come from the install's keys, CA and boot key (k8s/README.md says how to read them back).
  process.stdout.write(
    `wrote ${file} and listed it in ${top}: npm run k8s:validate && kubectl apply -k ${k8s}/ && hurd keys k8s --add-subhurds ${name} --nats-keys keys.json --ca ca.crt --boot-key-file boot.key | kubectl apply -f -\n`,
  );
}

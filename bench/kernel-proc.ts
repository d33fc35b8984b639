// A kernel in a process of its own, as deployed (hurd-kernel), for the rows
// whose client must pay only its own connection's share (bench/rows/nats-tls.ts).
// Started by the bench with its configuration on stdin (keys are secrets: not
// on argv): { kind, natsUrl, natsAuth, tls }. It boots one task (the Ping
// server), prints { system, taskId, token, credentials } as one JSON line, and
// runs until its stdin closes.
import { kernelRig, type RigKind } from "./rig.js";

let input = "";
for await (const chunk of process.stdin) {
  input += chunk;
  if (input.includes("\n")) break;
}
const cfg = JSON.parse(input) as { kind: RigKind; natsUrl: string; natsAuth: Parameters<typeof kernelRig>[1]["natsAuth"]; tls?: { caPem: string } };
const k = await kernelRig(cfg.kind, { natsUrl: cfg.natsUrl, natsAuth: cfg.natsAuth }, (l) => process.stderr.write(`kernel: ${l}\n`), { tls: cfg.tls });
const b = k.kernel.bootTask({ name: "bench-server" });
const credentials = k.kernel.natsUsers ? k.kernel.natsUsers.task(k.kernel.tasks.get(b.task.id)!) : undefined;
process.stdout.write(JSON.stringify({ system: k.system, taskId: b.task.id, token: b.token, credentials }) + "\n");
process.stdin.resume();
process.stdin.on("end", () => void k.close().finally(() => process.exit(0)));

// init as its own OS process (`hurd up --nats`): attaches as the boot task
// the kernel made for it (its id, token and host port in the boot file),
// boots the hurd with each server its own OS process, writes the session
// file for the `hurd` command, and shuts the hurd down on SIGINT/SIGTERM.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { NatsBus, Task } from "@hurdmesh/mach";
import { Init } from "./boot.js";
import { ProcessLauncher } from "./launch.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    nats: { type: "string", default: process.env.NATS_URL },
    "boot-file": { type: "string" },
    session: { type: "string" },
    edge: { type: "string", default: "" },
  },
});
const boot = JSON.parse(readFileSync(values["boot-file"]!, "utf8")) as { system: string; tasks: Record<string, { taskId: number; token: string; hostPriv: number }> };
const me = boot.tasks.init;
if (!me || !values.nats) {
  console.error("init: needs --nats and a boot file with an init task");
  process.exit(2);
}
const bus = await NatsBus.connect(values.nats, "hurd-init");
const task = await Task.attach({ bus, system: boot.system, taskId: me.taskId, token: me.token, window: 1024, timeoutMs: 30_000 });
const launcher = new ProcessLauncher({ NATS_URL: values.nats, HURD_SYSTEM: boot.system, command: positionals.length ? positionals : undefined });
const init = new Init({ task, hostPriv: me.hostPriv, launcher });
await init.boot();
const console_ = await init.makeConsole();
if (values.session) writeFileSync(values.session, JSON.stringify({ system: boot.system, edge: values.edge, nats: values.nats, console: console_ }, null, 2), { mode: 0o600 });
console.log("init: ready");
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const code = await init.reboot();
  for (const c of launcher.children) c.kill("SIGTERM");
  process.exit(code);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
void init.halted.then((code) => {
  for (const c of launcher.children) c.kill("SIGTERM");
  setTimeout(() => process.exit(code), 200);
});

// auth as the Hurd boots it (auth.c's main): serve, then startup_authinit
// with a send right to the root handle (init holds it from then on), then
// startup_essential_task so that auth's death crashes the hurd.
import { client, Rights, type Task } from "@hurdmesh/mach";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import type { AuthConfig } from "./config.js";
import { Auth } from "./main.js";

export async function bootAuth(task: Task, o: { hostPriv: number; config?: Partial<AuthConfig> }): Promise<Auth> {
  const auth = await Auth.start(task, o.config);
  const startup = client(task, StartupDefinition, task.bootstrap);
  const r = new Rights();
  // startup_authinit's answer is held until proc has checked in too: no short deadline here.
  await startup.authinit({ auth: r.makeSend(auth.root) }, { rights: r, timeoutMs: 120_000 });
  const e = new Rights();
  await startup.essentialTask({ task: e.copySend(task.self), name: "auth", credential: e.copySend(o.hostPriv) }, { rights: e });
  return auth;
}

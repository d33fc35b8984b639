// auth as the Hurd boots it (auth.c's main): serve, then startup_authinit
// with a send right to the root handle (init holds it from then on), then
// startup_essential_task so that auth's death crashes the hurd.
import { client, portAt, Rights, type Task } from "@hurdmesh/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import type { AuthConfig } from "./config.js";
import { Auth } from "./main.js";
import type { AuthStore } from "./store.js";

export async function bootAuth(task: Task, o: { hostPriv: number; config?: Partial<AuthConfig>; store?: AuthStore }): Promise<Auth> {
  const auth = await Auth.start(task, o.config, o.store);
  // A restart in place: startup has its root handle and watches this task already.
  if (auth.restarted) return auth;
  const startup = client(task, StartupDefinition, task.bootstrap);
  const r = new Rights();
  // startup_authinit's answer is held until proc has checked in too: no short deadline here.
  const rep = await startup.authinit({ auth: r.makeSend(auth.root) }, { rights: r, timeoutMs: 120_000 });
  // startup answers with auth's own process port: say who we are in ps.
  const proc = portAt(rep, rep.proc);
  if (proc && proc !== 0xffffffff) await client(task, ProcessDefinition, proc).setprocargs({ argv: ["/hurd/auth"], envp: [] });
  const e = new Rights();
  await startup.essentialTask({ task: e.copySend(task.self), name: "auth", credential: e.copySend(o.hostPriv) }, { rights: e });
  return auth;
}

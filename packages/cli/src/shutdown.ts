// hurd shutdown: startup_reboot with the host port (proc_getprivports gives it to root).
import { client, portAt, Rights } from "@hurdmesh/mach";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { connect, NAMES } from "./session.js";

export async function shutdown(o: { hurd?: string }): Promise<void> {
  const c = await connect(o.hurd, "shutdown");
  const priv = await c.me.proc.getprivports({});
  const host = portAt(priv, priv.hostPriv);
  const r = new Rights();
  await client(c.task, StartupDefinition, NAMES.startup).reboot({ refport: r.copySend(host), code: 0 }, { rights: r });
  console.log("hurd: shutting down");
  c.task.abandon();
}

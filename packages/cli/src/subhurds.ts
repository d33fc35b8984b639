// `hurd subhurd create|ls|rm`: asks the subhurd manager the host of the
// root hurd serves (init's BOOT_NAMES.subhurds, handed to every command's task).
import { client, Errno, HurdError } from "@hurdmesh/mach";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import { CliError, connect, NAMES } from "./session.js";

async function manager(hurd = "hurd") {
  const c = await connect(hurd, "subhurd");
  return { c, m: client(c.task, SubhurdDefinition, NAMES.subhurds) };
}

export async function subhurdCreate(name: string, o: { parent?: string; hurd?: string }): Promise<void> {
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.create({ name, parent: o.parent ?? "" });
    console.log(`subhurd ${name} is up (namespace ${r.namespaceId}): hurd ps --hurd ${r.session}`);
  } catch (e) {
    if (e instanceof HurdError && e.code === Errno.MACH_SEND_INVALID_DEST) throw new CliError("this hurd manages no subhurds (only `hurd up` in embedded mode does)");
    throw e;
  } finally {
    await c.close();
  }
}

export async function subhurdLs(o: { hurd?: string; json?: boolean }): Promise<void> {
  const { c, m } = await manager(o.hurd);
  try {
    const { subhurds } = await m.list({});
    if (o.json) for (const s of subhurds) console.log(JSON.stringify(s));
    else {
      console.log("NAME".padEnd(16) + "PARENT".padEnd(16) + "NAMESPACE  DEPTH");
      for (const s of subhurds) console.log(s.name.padEnd(16) + s.parent.padEnd(16) + String(s.namespaceId).padEnd(11) + s.depth);
    }
  } finally {
    await c.close();
  }
}

export async function subhurdRm(name: string, o: { hurd?: string }): Promise<void> {
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.remove({ name });
    console.log(`removed ${r.removed.join(", ")}`);
  } finally {
    await c.close();
  }
}

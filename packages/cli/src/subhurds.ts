// The subhurd manager `hurd up` serves (hurd.subhurd.v1.Subhurd), and the
// `hurd subhurd create|ls|rm` commands that use it. Each subhurd is a kernel
// namespace nested in its parent's, with its own startup, auth, proc and
// pid 1, booted in the `hurd up` process; its session file makes every
// command take `--hurd NAME`.
import { rmSync, writeFileSync } from "node:fs";
import { bootSubhurd, type Subhurd } from "@hurdmesh/init";
import { client, Errno, HurdError, PortRight, serve, type Task } from "@hurdmesh/mach";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import { CliError, connect, NAMES, sessionPath } from "./session.js";

interface Entry {
  sub: Subhurd;
  parent: string;
  depth: number;
}

/** Serves the manager on a new port of `host` (the root hurd's startup task); answers the port's name. */
export async function serveSubhurds(host: Task, o: { root: string; edge: string; attach: (id: number, token: string) => Promise<Task>; say: (l: string) => void }): Promise<{ port: number; removeAll(): Promise<void> }> {
  const hurds = new Map<string, Entry>();
  const port = await host.allocate(PortRight.PORT_RIGHT_RECEIVE);
  const remove = async (name: string): Promise<string[]> => {
    const e = hurds.get(name);
    if (!e) throw new HurdError(Errno.ENOENT, `no subhurd called ${name}`);
    const gone: string[] = [];
    for (const [n, x] of hurds) if (x.parent === name) gone.push(...(await remove(n)));
    hurds.delete(name);
    // A clean shutdown: dosync to its parties, then its namespace (and anything left nested in it) ends.
    await e.sub.init.reboot();
    rmSync(sessionPath(name), { force: true });
    o.say(`subhurd ${name} removed`);
    return [...gone, name];
  };
  serve(host, SubhurdDefinition, {
    async create(req) {
      const name = req.name;
      if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(name)) throw new HurdError(Errno.EINVAL, "a subhurd name is a letter, then up to 31 letters, digits, - or _");
      if (name === o.root || hurds.has(name)) throw new HurdError(Errno.EEXIST, `a hurd called ${name} exists`);
      const parent = req.parent && req.parent !== o.root ? hurds.get(req.parent) : null;
      if (req.parent && req.parent !== o.root && !parent) throw new HurdError(Errno.ENOENT, `no subhurd called ${req.parent}`);
      const creator = parent ? parent.sub.task : host;
      const sub = await bootSubhurd(creator, name, o.attach, { log: (l) => o.say(`${name}: ${l}`) });
      hurds.set(name, { sub, parent: parent ? req.parent : o.root, depth: (parent?.depth ?? 0) + 1 });
      writeFileSync(sessionPath(name), JSON.stringify({ system: sub.task.system, edge: o.edge, console: sub.console, parent: req.parent || o.root }, null, 2), { mode: 0o600 });
      void sub.init.halted.then(() => {
        if (hurds.get(name)?.sub === sub) {
          hurds.delete(name);
          rmSync(sessionPath(name), { force: true });
          o.say(`subhurd ${name} halted`);
        }
      });
      o.say(`subhurd ${name} is up (namespace ${sub.namespaceId}, in ${parent ? req.parent : o.root})`);
      return { namespaceId: sub.namespaceId, session: name };
    },
    list() {
      return { subhurds: [...hurds].map(([name, e]) => ({ name, parent: e.parent, namespaceId: e.sub.namespaceId, depth: e.depth })) };
    },
    async remove(req) {
      return { removed: await remove(req.name) };
    },
  }).add(port, {});
  return {
    port,
    async removeAll() {
      for (const [n, e] of [...hurds]) if (e.parent === o.root) await remove(n).catch(() => {});
    },
  };
}

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

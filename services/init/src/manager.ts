// The subhurd manager (hurd.subhurd.v1.Subhurd) that whatever hosts a hurd
// serves: `hurd up` in one process, init's own process with --nats. Each
// subhurd is a kernel namespace nested in its parent's, with its own startup,
// auth, proc and pid 1; its servers run where the launcher puts them.
import { Errno, HurdError, PortRight, serve, type Logger, type LogSink, type Task } from "@hurdmesh/mach";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import { BOOT_NAMES, type Console, type Launcher } from "./boot.js";
import { bootSubhurd, type Subhurd } from "./subhurd.js";

export interface ManagerOptions {
  /** The root hurd's name (subhurds may not take it). */
  root: string;
  /**
   * The root hurd's host port in the host task's space: through it the
   * manager may change its subhurds' policy and limits either way
   * (namespace_set_policy from an ancestor). Without it, a subhurd's own
   * host port only tightens them.
   */
  hostPriv?: number;
  attach: (id: number, token: string) => Promise<Task>;
  /** Where a new subhurd's auth, proc and pid 1 run. */
  launcher: (name: string) => Launcher;
  /** Publishes a subhurd's console (the session file the `hurd` command reads), and takes it back. */
  publish(name: string, c: Console, parent: string, system: string): void;
  unpublish(name: string): void;
  say: LogSink;
  /** With it, a subhurd's init logs under the subhurd's name (field hurd) rather than in say's lines. */
  log?: Logger;
}

interface Entry {
  sub: Subhurd;
  parent: string;
  depth: number;
  /** The task that created it, which holds its host port (sub.hostPriv). */
  creator: Task;
}

/** A subhurd's limits, policy and usage (the kernel's namespace_info, on its own host port). */
function info(e: Entry) {
  return e.creator.call("namespaceInfo", { hostPriv: e.sub.hostPriv, namespaceId: 0 });
}

/** Serves the manager on a new port of `host` (the root hurd's startup task); answers the port's name. */
export async function serveSubhurds(host: Task, o: ManagerOptions): Promise<{ port: number; removeAll(): Promise<void> }> {
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
    o.unpublish(name);
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
      const sub = await bootSubhurd(creator, name, o.attach, o.launcher(name), { log: o.log ? o.log.child({ hurd: name }).sink : (l, level) => o.say(`${name}: ${l}`, level), limits: req.limits, policy: req.policy });
      hurds.set(name, { sub, parent: parent ? req.parent : o.root, depth: (parent?.depth ?? 0) + 1, creator });
      o.publish(name, sub.console, parent ? req.parent : o.root, sub.task.system);
      void sub.init.halted.then(() => {
        if (hurds.get(name)?.sub === sub) {
          hurds.delete(name);
          o.unpublish(name);
          o.say(`subhurd ${name} halted`);
        }
      });
      o.say(`subhurd ${name} is up (namespace ${sub.namespaceId}, in ${parent ? req.parent : o.root})`);
      return { namespaceId: sub.namespaceId, session: name };
    },
    async list() {
      return { subhurds: await Promise.all([...hurds].map(async ([name, e]) => ({ name, parent: e.parent, namespaceId: e.sub.namespaceId, depth: e.depth, info: await info(e).catch(() => undefined) }))) };
    },
    async remove(req) {
      return { removed: await remove(req.name) };
    },
    /** The kernel's namespace_set_policy on a subhurd, through its parent's host port where the manager holds it. */
    async setPolicy(req) {
      const e = hurds.get(req.name);
      if (!e) throw new HurdError(Errno.ENOENT, `no subhurd called ${req.name}`);
      const up = e.parent === o.root ? (o.hostPriv ? { task: host, hostPriv: o.hostPriv } : null) : { task: e.creator, hostPriv: BOOT_NAMES.hostPriv };
      const via = up ?? { task: e.creator, hostPriv: e.sub.hostPriv };
      await via.task.call("namespaceSetPolicy", { hostPriv: via.hostPriv, namespaceId: up ? e.sub.namespaceId : 0, policy: req.policy, limits: req.limits });
      return { info: await info(e) };
    },
  }).add(port, {});
  return {
    port,
    async removeAll() {
      for (const [n, e] of [...hurds]) if (e.parent === o.root) await remove(n).catch(() => {});
    },
  };
}


// hurd web [--listen HOST:PORT] [--jaeger-url URL] [--wait S]: the live view in a
// browser (@hurdmesh/web), attached to the hurd as the other commands are:
// a process of the hurd (child of pid 1, root ids) over the kernel's edge,
// with the host_priv port from proc for the port graph and the trace
// stream, and a process in each subhurd it can reach (the root's subhurd
// manager, or the session files of the same system) for their own pids.
// Prints the page's address with a one-time key; bound to 127.0.0.1 unless
// --listen says otherwise. The session's token (the console's, in the
// session file) is accepted as a bearer token or `/?token=`.
//
// As a service of its own (compose, Kubernetes), it starts beside an init
// that may not have written the session yet: --wait S keeps asking for that
// long. It exits (status 1) once the hurd has not answered for 10 s (the
// hurd rebooted and ended the view's task with it), so the restart policy
// brings it back attached to the hurd that is up.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { client, createLogger, portAt } from "@hurdmesh/mach";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import type { TraceRecord } from "@hurdmesh/proto/hurd/trace/v1/trace";
import { edgeObserved, startWeb, type Reached, type WebServer } from "@hurdmesh/web";
import { DEFAULT_JAEGER_URL } from "./rpctrace.js";
import { RpcTraceFormatter } from "./rpctrace/format.js";
import { checkListen } from "./args.js";
import { CliError, connect, NAMES, stateDir, type Connected, type Session } from "./session.js";

export interface WebCmdOptions {
  listen?: string;
  hurd?: string;
  jaegerUrl?: string;
  quiet?: boolean;
  /** Seconds to keep trying to reach the hurd before giving up (default 0: once). */
  wait?: string | number;
  /** Called once when the hurd stops answering. */
  onLost?: (why: string) => void;
}

export interface RunningWeb {
  server: WebServer;
  close(): Promise<void>;
}

/** The rpctrace line of one record, and its body decoded. */
function describe(r: TraceRecord, who: (t: number) => string): { line: string; body: string } {
  let out = "";
  const f = new RpcTraceFormatter((s) => (out += s), { who, strsize: 200 });
  f.push(r);
  f.end();
  const body = r.kernel ? "" : (f.decode(r, r.isReply) ?? "");
  return { line: out.trimEnd().replace(/ \.\.\.\d+$/, ""), body };
}

/** Subhurds of `root` by their session files (compose, Kubernetes: no subhurd manager to ask). */
function sessionFiles(root: Session, rootName: string): { name: string; parent: string }[] {
  const out: { name: string; parent: string }[] = [];
  try {
    for (const f of readdirSync(stateDir())) {
      if (!f.endsWith(".json")) continue;
      const name = f.slice(0, -5);
      if (name === rootName) continue;
      try {
        const s = JSON.parse(readFileSync(join(stateDir(), f), "utf8")) as Session & { parent?: string };
        // A container's init names the root hurd's parent by the system's name (compose: both "hurd").
        if (s.system === root.system) out.push({ name, parent: !s.parent || s.parent === root.system ? rootName : s.parent });
      } catch {
        // Not a session file.
      }
    }
  } catch {
    // No state folder: no subhurds to show.
  }
  return out;
}

/** Starts the view on hurd `hurd` (its session file); answers it running. */
/** connect(), asked again every second for `waitS` seconds while the hurd is not up or does not answer. */
async function connectWaiting(hurd: string, waitS: number, say: (l: string) => void): Promise<Connected> {
  const until = Date.now() + waitS * 1000;
  let said = "";
  for (;;) {
    try {
      return await connect(hurd, "hurd web");
    } catch (e) {
      if (!(e instanceof CliError) || Date.now() >= until) throw e;
      // Once per distinct reason, not once a second.
      if (e.message !== said) say(`${(said = e.message)}; trying again for up to ${waitS} s`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export async function startWebFor(hurd = "hurd", o: WebCmdOptions = {}): Promise<RunningWeb> {
  // Refused before anything is attached.
  if (o.listen !== undefined) checkListen(o.listen);
  const waitS = Number(o.wait ?? 0);
  if (!Number.isFinite(waitS) || waitS < 0) throw new CliError(`--wait takes seconds (a number >= 0), not ${o.wait}`);
  // Its diagnostics are log lines as every server's (a service of its own in compose and Kubernetes); its address is its output.
  const log = createLogger("hurd-web", { hurd });
  const c = await connectWaiting(hurd, waitS, (l) => !o.quiet && log.warn(l));
  let hostPriv: number;
  try {
    const priv = await c.me.proc.getprivports({});
    hostPriv = portAt(priv, priv.hostPriv);
  } catch (e) {
    await c.close();
    throw new CliError(`hurd web needs the host_priv port (root): ${(e as Error).message}`);
  }
  const manager = client(c.task, SubhurdDefinition, NAMES.subhurds);
  /** Connections to subhurds, by name, made once and kept while the subhurd lives. */
  const subs = new Map<string, Promise<Connected | null>>();
  const hurds = async (): Promise<Reached[]> => {
    // The subhurds the root's manager made (`hurd subhurd create`), and those
    // booted by inits of their own (compose's second hurd, a Kubernetes
    // overlay), which only their session files tell of.
    let list: { name: string; parent: string; namespaceId: number }[] = [];
    try {
      list = (await manager.list({})).subhurds.map((s) => ({ name: s.name, parent: s.parent || hurd, namespaceId: s.namespaceId }));
    } catch {
      // No manager (a subhurd's console, or an older init): the session files alone.
    }
    const managed = new Set(list.map((s) => s.name));
    for (const s of sessionFiles(c.session, hurd)) if (!managed.has(s.name)) list.push({ ...s, namespaceId: 0 });
    const names = new Set(list.map((s) => s.name));
    for (const [n, p] of subs)
      if (!names.has(n)) {
        subs.delete(n);
        void p.then((x) => x?.close());
      }
    const out: Reached[] = [{ name: hurd, parent: "", namespaceId: c.task.namespaceId, me: c.me }];
    for (const s of list) {
      let p = subs.get(s.name);
      if (!p) subs.set(s.name, (p = connect(s.name, "hurd web").catch(() => null)));
      const sc = await p;
      if (sc) out.push({ name: s.name, parent: s.parent, namespaceId: s.namespaceId || sc.task.namespaceId, me: sc.me });
      // Not reachable (yet): asked again at the next refresh.
      else subs.delete(s.name);
    }
    return out;
  };
  const own = () => [c.task.id];
  const ownAll = () => {
    const ids = own();
    for (const p of subs.values()) void p.then((x) => x && ids.push(x.task.id));
    return ids;
  };
  const subTasks = new Set<number>();
  const observed = edgeObserved({
    edge: c.session.edge,
    edgeCa: c.session.edgeCa,
    task: c.task,
    token: c.token,
    hostPriv,
    hurds: async () => {
      const r = await hurds();
      for (const h of r) subTasks.add(h.me.task.id);
      return r;
    },
    own: () => [...ownAll(), ...subTasks],
    describe,
    jaegerUrl: o.jaegerUrl || process.env.HURD_JAEGER_URL || DEFAULT_JAEGER_URL,
  });
  const server = await startWeb({
    listen: o.listen ?? "127.0.0.1:7410",
    observed,
    token: c.session.console.token,
    log: (l) => !o.quiet && log.info(l),
    onLost: o.onLost,
  }).catch(async (e: Error) => {
    await c.close();
    throw new CliError(`hurd web cannot listen on ${o.listen ?? "127.0.0.1:7410"}: ${e.message}`);
  });
  return {
    server,
    async close() {
      await server.close();
      for (const p of subs.values()) await p.then((x) => x?.close()).catch(() => {});
      await c.close();
    },
  };
}

export async function webCmd(o: WebCmdOptions): Promise<number> {
  const { startMetrics } = await import("@hurdmesh/telemetry-sdk");
  const metrics = await startMetrics("hurd-web");
  let lost: string | null = null;
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const w = await startWebFor(o.hurd, {
    ...o,
    onLost: (why) => {
      lost = why;
      stop();
    },
  });
  console.log(`hurd web: ${w.server.url}`);
  if (!o.quiet) console.error("(open it once: the key is traded for a cookie; the session's token works as a bearer token. Ctrl-C stops)");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await stopped;
  await w.close();
  await metrics?.shutdown();
  if (lost !== null) {
    createLogger("hurd-web", { hurd: o.hurd ?? "hurd" }).error(`the hurd has not answered for 10 s (${lost}); exiting`);
    return 1;
  }
  return 0;
}

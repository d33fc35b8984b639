// The live view's cost, measured in one run against no view: the brokered
// Ping RPC and the process lifecycle on a booted hurd (kernel, init, proc,
// auth, the kernel's gRPC edge), on NATS and on the in-process hub, with no
// view and with the built `hurd web` (the command a user runs, its own
// process) attached through the edge: it reads every process table once a
// second and takes the kernel's trace stream with bodies, and a page is
// connected to it, consuming every event it sends (state, and traffic every
// 250 ms) and fetching the port graph on each state change as the page
// does. The page's drawing itself (cytoscape in a browser) is left out: it
// runs in the viewer's browser, not on the hurd's machine. Every
// "connected" row has `overhead`: the fraction of throughput lost against
// "none" at the same concurrency. Subjects are interleaved, so the ratios
// share conditions.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Edge } from "@hurdmesh/kernel";
import { WNOHANG } from "@hurdmesh/libhurd";
import { client, MsgType, serve } from "@hurdmesh/mach";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { killGroup, spawnGroup } from "../children.js";
import { measureInterleaved, type Row, type Subject } from "../harness.js";
import { bootRig, type Rig } from "../rig.js";
import { compiledEnv, hurdBin } from "./cli.js";
import { PING } from "./kernel.js";
import { LIFECYCLE, lifecycle } from "./proc.js";
import type { BenchContext, RowGroup } from "./types.js";

export type WebMode = "none" | "connected";
export const webName = (what: string, mode: WebMode) => `${what} | hurd web ${mode}`;

/** A Ping server and client in the rig's hurd, wired as bench/rows/kernel.ts wires them. */
export async function pingIn(r: Rig): Promise<() => Promise<unknown>> {
  const boot = r.kernel.bootTask({ name: "bench-server" });
  const srv = await r.attach(boot.task.id, boot.token);
  const port = await srv.allocate();
  serve(srv, PingDefinition, { ping: (req) => ({ payload: req.payload }) }).add(port, {});
  const child = await srv.taskCreate("bench-client");
  await srv.insertRight(child.task, 0x1000, port, MsgType.MSG_TYPE_MAKE_SEND);
  const cli = await r.attach(child.taskId, child.token);
  const ping = client(cli, PingDefinition, 0x1000);
  const payload = new Uint8Array(16);
  await ping.ping({ payload });
  return () => ping.ping({ payload });
}

/** A page on the view: every event read and parsed, the port graph fetched at each state change. */
export function connectPage(base: string, token: string, hurd: string, stats: { events: number; bytes: number }): () => void {
  const ac = new AbortController();
  const headers = { authorization: `Bearer ${token}` };
  void (async () => {
    const res = await fetch(`${base}/api/events`, { headers, signal: ac.signal });
    if (!res.ok || !res.body) throw new Error(`hurd web's events: HTTP ${res.status}`);
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const kind = /^event: (\S+)/.exec(ev)?.[1];
        const data = /\ndata: (.*)$/s.exec(ev)?.[1] ?? "null";
        JSON.parse(data);
        stats.events++;
        stats.bytes += ev.length;
        if (kind === "state") void fetch(`${base}/api/ports?hurd=${encodeURIComponent(hurd)}`, { headers, signal: ac.signal }).then((r) => r.json(), () => null);
      }
    }
  })().catch((e: Error) => {
    if (!ac.signal.aborted) throw e;
  });
  return () => ac.abort();
}

export const web: RowGroup = {
  name: "web",
  needsNats: true,
  async run(ctx: BenchContext): Promise<Row[]> {
    if (!existsSync(join(hurdBin, "../../dist/main.js"))) throw new Error("the web rows run the built `hurd web`: npm run build first");
    const state = mkdtempSync(join(tmpdir(), "hurd-bench-web-"));
    const closers: (() => Promise<void> | void)[] = [];
    const subjects: Subject[] = [];
    const stats = { events: 0, bytes: 0 };
    try {
      // Alternating buses, as the tracing rows do: no rig goes long without its event loop turn.
      for (const mode of ["none", "connected"] as const)
        for (const kind of ["local", "nats"] as const) {
          const r = await bootRig(kind, ctx, ctx.log);
          closers.push(async () => {
            while (await r.parent.wait(-1, WNOHANG).catch(() => null));
            await r.close();
          });
          const edge = new Edge(r.kernel);
          const port = await edge.listen("127.0.0.1:0");
          closers.unshift(() => edge.close());
          const ping = await pingIn(r);
          const lc = lifecycle(r);
          if (mode === "connected") {
            const name = `web${kind}`;
            const console_ = await r.init.makeConsole([]);
            writeFileSync(join(state, `${name}.json`), JSON.stringify({ system: r.system, edge: `127.0.0.1:${port}`, console: console_ }), { mode: 0o600 });
            const p = spawnGroup(process.execPath, [hurdBin, "web", "--hurd", name, "--listen", "127.0.0.1:0"], { env: compiledEnv({ HURD_STATE_DIR: state }), stdio: ["ignore", "pipe", "pipe"] });
            let out = "";
            p.stdout!.on("data", (d) => (out += d));
            p.stderr!.on("data", (d) => (out += d));
            closers.unshift(() => killGroup(p));
            for (let i = 0; i < 600 && !/hurd web: http:\/\/\S+/.test(out) && p.exitCode === null; i++) await new Promise((res) => setTimeout(res, 100));
            const m = /hurd web: (http:\/\/[^/\s]+)/.exec(out);
            if (!m) throw new Error(`hurd web did not start: ${out}`);
            closers.unshift(connectPage(m[1]!, console_.token, name, stats));
          }
          subjects.push({ name: webName(PING, mode), bus: kind, call: ping });
          subjects.push({ name: webName(LIFECYCLE, mode), bus: kind, call: lc });
        }
      // The view's first tables and port graphs, before anything is measured.
      await new Promise((res) => setTimeout(res, 2000));
      const rows: Row[] = [];
      for (const n of ctx.inFlight) {
        ctx.log(`web: ${subjects.length} subjects interleaved, ${n} in flight`);
        rows.push(...(await measureInterleaved(subjects, n, { durationMs: ctx.durationMs })));
      }
      for (const r of rows) {
        const [what, mode] = r.name.split(" | hurd web ");
        r.web = mode;
        if (mode !== "connected") continue;
        const none = rows.find((x) => x.name === webName(what!, "none") && x.bus === r.bus && x.in_flight === r.in_flight);
        if (none && none.calls_per_s > 0) r.overhead = Math.round((1 - r.calls_per_s / none.calls_per_s) * 1000) / 1000;
      }
      for (const r of rows) if (r.overhead !== undefined) ctx.log(`overhead ${((r.overhead as number) * 100).toFixed(1)} %: ${r.name} (${r.bus}, ${r.in_flight} in flight)`);
      ctx.log(`web: the pages read ${stats.events} events (${Math.round(stats.bytes / 1024)} KiB)`);
      if (stats.events === 0) throw new Error("the pages got no events from hurd web: the connected rows measured no view");
      return subjects.flatMap((s) => rows.filter((x) => x.name === s.name && x.bus === s.bus));
    } finally {
      for (const c of closers) await Promise.resolve(c()).catch(() => {});
      rmSync(state, { recursive: true, force: true });
    }
  },
};

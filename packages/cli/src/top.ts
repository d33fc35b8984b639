// hurd top: the process table, refreshed. proc and init are in it.
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { connect } from "./session.js";
import { allProcs } from "./list.js";
import { render } from "./ps.js";

export async function top(o: { hurd?: string; interval?: string; iterations?: string }): Promise<void> {
  const every = Math.max(200, Number(o.interval ?? 1000));
  const n = o.iterations ? Number(o.iterations) : Infinity;
  const c = await connect(o.hurd, "top");
  let stop = false;
  process.on("SIGINT", () => (stop = true));
  try {
    for (let i = 0; i < n && !stop; i++) {
      const procs: ProcInfo[] = (await allProcs(c.me)).filter((p) => !p.namespaceId);
      const zombies = procs.filter((p) => p.state & 0x100).length;
      const stopped = procs.filter((p) => p.state & 0x1).length;
      const head = `hurd top - ${new Date().toTimeString().slice(0, 8)}  ${c.session.system}  processes: ${procs.length} total, ${stopped} stopped, ${zombies} zombie`;
      if (process.stdout.isTTY) process.stdout.write("\x1b[H\x1b[2J");
      console.log(`${head}\n\n${render(procs, ["pid", "uid", "stat", "time", "ppid", "command"])}\n`);
      if (i + 1 < n) await new Promise((r) => setTimeout(r, every));
    }
  } finally {
    await c.close();
  }
}

// Boot and shutdown as a user sees them: `hurd up` from process start to
// "is up", and Ctrl-C (startup_reboot) to process exit; embedded, and with
// every server its own OS process on NATS; with the built command (compiled
// JavaScript, what `npx hurd` runs). Node's start-up is part of what a user
// waits for, so it is included.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killGroup, spawnGroup } from "../children.js";
import type { Row } from "../harness.js";
import { buildIfStale, compiledEnv, hurdBin } from "./cli.js";
import type { BenchContext, RowGroup } from "./types.js";

async function once(nats: string | null): Promise<{ up: number; down: number }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-up-"));
  const t0 = performance.now();
  const p = spawnGroup(process.execPath, [hurdBin, "up", "--grpc", "127.0.0.1:0", "--hurd", `b${process.pid}`, ...(nats ? ["--nats", nats] : [])], {
    env: compiledEnv({ HURD_STATE_DIR: dir }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number>((r) => p.on("exit", (c) => r(c ?? 1)));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`hurd up did not come up: ${out}`)), 60_000);
      p.stdout!.on("data", (d) => {
        out += d;
        if (/ is up in /.test(out)) {
          clearTimeout(t);
          resolve();
        }
      });
      p.stderr!.on("data", (d) => (out += d));
      void exited.then((c) => reject(new Error(`hurd up exited ${c}: ${out}`)));
    });
    const up = performance.now() - t0;
    const t1 = performance.now();
    p.kill("SIGINT");
    const code = await exited;
    const down = performance.now() - t1;
    if (code !== 0) throw new Error(`hurd up exited ${code}: ${out}`);
    return { up, down };
  } finally {
    // Whatever happened, nothing it started (with --nats: the kernel, init, proc, auth, pid 1) lives on.
    killGroup(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(name: string, bus: string, ms: number): Row {
  return { name, bus, in_flight: 0, calls: 1, p50_us: Math.round(ms * 1000), p99_us: Math.round(ms * 1000), calls_per_s: 0, errors: 0, cpu_us_per_call: 0, ms: Math.round(ms) };
}

export const boot: RowGroup = {
  name: "boot",
  async run(ctx: BenchContext): Promise<Row[]> {
    buildIfStale();
    const rows: Row[] = [];
    for (const [mode, nats] of [["embedded", null], ["nats", ctx.natsUrl]] as const) {
      const r = await once(nats);
      ctx.log(`hurd up (${mode}): ready in ${Math.round(r.up)} ms, Ctrl-C to exit ${Math.round(r.down)} ms`);
      rows.push(row("hurd up: start to ready", mode === "embedded" ? "local" : "nats", r.up));
      rows.push(row("hurd up: Ctrl-C to exit", mode === "embedded" ? "local" : "nats", r.down));
    }
    return rows;
  },
};

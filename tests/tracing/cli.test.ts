// `hurd rpctrace` as a person runs it, against `hurd up`: trace a program it
// spawns, as text lines and as JSON lines, filtered by RPC name.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;

describe("hurd rpctrace", () => {
  const name = `rt${process.pid}`;
  let proc: ChildProcess;
  let env: NodeJS.ProcessEnv;
  let out = "";
  before(async () => {
    env = { ...process.env, HURD_STATE_DIR: mkdtempSync(join(tmpdir(), "hurd-rt-")) };
    delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
    proc = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", name], { env, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || proc.exitCode !== null, 60000, "hurd up");
    assert.match(out, / is up in /, out);
  });
  after(async () => {
    spawnSync(process.execPath, ["--import", "tsx", main, "shutdown", "--hurd", name], { env, timeout: 30000 });
    proc.kill("SIGTERM");
  });

  const hurd = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", main, args[0]!, "--hurd", name, ...args.slice(1)], { env, encoding: "utf8", timeout: 60000 });

  it("traces a program it spawns, one line per RPC with its reply", () => {
    const r = hurd("rpctrace", "--", "sh", "-c", "exit 3");
    assert.equal(r.status, 3, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    const m = /^hurd rpctrace: sh is pid (\d+)$/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    const pid = m[1];
    assert.match(r.stderr, new RegExp(`^Child ${pid} exited with status 3$`, "m"));
    const who = `task\\d+\\(pid${pid}\\)`;
    for (const re of [
      new RegExp(`^${who}->hurd\\.process\\.v1\\.Process/Getpids \\(\\) = 0 \\{pid: ${pid}, ppid: \\d+.*\\}$`),
      new RegExp(`^${who}->hurd\\.process\\.v1\\.Process/Setprocargs \\(argv: \\["sh", "-c", "exit 3"\\]\\) = 0$`),
      new RegExp(`^${who}->hurd\\.process\\.v1\\.Process/MarkExit \\(status: 768\\) = 0$`),
    ])
      assert.ok(lines.some((l) => re.test(l)), `no line matching ${re} in:\n${r.stdout}`);
  });

  it("--json and --rpc: JSON lines of the chosen RPCs only", () => {
    const r = hurd("rpctrace", "--json", "--rpc", "Setprocargs", "-q", "--", "true");
    assert.equal(r.status, 0, r.stderr);
    const recs = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(recs.length, 2, r.stdout);
    assert.equal(recs[0].rpc, "hurd.process.v1.Process/Setprocargs");
    assert.equal(recs[0].isReply, false);
    assert.match(recs[0].args, /argv: \["true"\]/);
    assert.equal(recs[1].isReply, true);
    assert.equal(recs[1].replyTo, recs[0].n);
    assert.equal(recs[1].code, 0);
    assert.equal(recs[1].toTask, recs[0].fromTask);
  });

  it("refuses --pid of a process that does not exist", () => {
    const r = hurd("rpctrace", "--pid", "99999");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no process 99999/);
  });
});

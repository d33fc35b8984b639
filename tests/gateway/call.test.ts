// `hurd call SERVICE/METHOD [JSON]`: any Hurd server's RPC from the command
// line, through the kernel's edge, against an embedded `hurd up`.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { methods } from "@hurdmesh/mach/internal";
import { INTERFACES } from "@hurdmesh/mach/registry";
import { until } from "../harness.js";

const main = new URL("../../packages/cli/src/main.ts", import.meta.url).pathname;

describe("hurd call", () => {
  const state = mkdtempSync(join(tmpdir(), "hurd-call-"));
  const env = { ...process.env, HURD_STATE_DIR: state };
  let up: ChildProcess;
  let out = "";
  const hurd = (...args: string[]) => {
    const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], { env, encoding: "utf8", timeout: 60_000 });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    up = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    up.stdout!.on("data", (d) => (out += d));
    up.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || up.exitCode !== null, 60_000, "hurd up");
    assert.match(out, / is up in /, out);
  });
  after(async () => {
    if (up.exitCode === null) {
      up.kill("SIGINT");
      await until(() => up.exitCode !== null, 10_000, "hurd up to stop").catch(() => up.kill("SIGKILL"));
    }
    rmSync(state, { recursive: true, force: true });
  });

  it("--list names every method of every interface with its MIG id, without a hurd", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", main, "call", "--list"], { env: { ...process.env, HURD_STATE_DIR: join(state, "none") }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, INTERFACES.reduce((n, d) => n + methods(d).byKey.size, 0));
    assert.ok(lines.some((l) => /^Process\/Getpids\s+24016\s+hurd\.process\.v1\.Process$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^Process\/Reauthenticate\s+24011\s+hurd\.process\.v1\.Process\s+simpleroutine$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^Msg\/SigPost\s+23000\s/.test(l)), r.stdout);
  });

  it("Process/Getpids answers for pid 1, whose process port the call's task holds", () => {
    const r = hurd("call", "Process/Getpids");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).pid, 1);
  });

  it("Auth/GetIds, Process/Getpgrp with a JSON request, Subhurd/List: every interface by its default port", () => {
    assert.deepEqual(JSON.parse(hurd("call", "Auth/GetIds").stdout), { euids: [0], auids: [0, 0], egids: [0], agids: [0, 0] });
    assert.deepEqual(JSON.parse(hurd("call", "process/getpgrp", '{"pid":4}').stdout), { pgrp: 1 });
    assert.deepEqual(JSON.parse(hurd("call", "hurd.subhurd.v1.Subhurd/List").stdout), {});
  });

  it("--pid N Msg/SigPost signals process N: a spawned program dies of SIGTERM", async () => {
    const sp = spawn(process.execPath, ["--import", "tsx", main, "spawn", "--", "sleep", "60"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    sp.stderr!.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => sp.on("exit", (c) => r(c)));
    try {
      await until(() => /is pid \d+/.test(err) || sp.exitCode !== null, 30_000, "hurd spawn");
      const pid = err.match(/is pid (\d+)/)![1]!;
      const r = hurd("call", "--pid", pid, "Msg/SigPost", '{"signal":15}');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await exited, 143, err);
    } finally {
      if (sp.exitCode === null) sp.kill("SIGKILL");
    }
  });

  it("a server's error is one line and exit 1; the call's task is gone afterwards", () => {
    const r = hurd("call", "Process/Getpgrp", '{"pid":99999}');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "hurd: ESRCH (no such process): no pid 99999\n");
    const e = hurd("call", "Startup/Reboot");
    assert.equal(e.code, 1);
    assert.match(e.stderr, /^hurd: EPERM/);
    const ps = hurd("ps", "-o", "command");
    assert.equal(ps.code, 0, ps.stderr);
    assert.doesNotMatch(ps.stdout, /^call$/m);
  });

  it("usage errors are one line, then where help is, and exit 2", () => {
    for (const args of [[], ["Nope/Getpids"], ["Process/Nope"], ["Process"], ["Process/Getpgrp", "{"], ["Process/Getpgrp", '{"pod":1}'], ["Process/Getpgrp", "[1]"], ["--pid", "x", "Msg/SigPost"], ["--pid", "1", "--port", "3", "Msg/SigPost"], ["--list", "Process/Getpids"], ["--timeout", "0", "Process/Getpids"]]) {
      const r = hurd("call", ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^hurd: [^\n]+\nTry 'hurd call --help' for more information\.\n$/, args.join(" "));
      assert.equal(r.stdout, "");
    }
  });
});

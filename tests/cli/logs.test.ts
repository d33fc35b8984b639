// What `hurd up` and the servers write is structured: off a terminal, one
// JSON object a line (what docker compose logs and Kubernetes' collectors
// take), with its level and the hurd's name, and inside a trace the trace
// id; `hurd up --nats` finds its servers ready without reading their logs.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { busKinds, natsUrl, until } from "../harness.js";
import { compiledEnv } from "../build.js";
import { hurd, hurdBin, up } from "./kit.js";

interface Line {
  level: string;
  time: string;
  name: string;
  hurd?: string;
  msg: string;
  trace_id?: string;
  span_id?: string;
}

const lines = (out: string) => out.trimEnd().split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l) as Line; } catch { throw new Error(`not JSON: ${l}\n--- all:\n${out}`); } });

describe("logs", () => {
  // A stand-in OTLP/HTTP collector: tracing on, spans accepted and dropped.
  let collector: Server;
  let endpoint = "";
  before(async () => {
    collector = createServer((req, res) => req.resume().on("end", () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end()));
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
    endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  });
  after(() => collector.close());

  it("hurd up: every line is JSON with level and hurd; the boot's lines carry its trace id", async () => {
    const name = `lg${process.pid}`;
    const u = await up(name, [], { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf", OTEL_TRACES_SAMPLER: "always_on", HURD_LOG_LEVEL: "" });
    try {
      assert.equal(hurd(u, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      const ls = lines(u.out());
      for (const l of ls) {
        assert.ok(["trace", "debug", "info", "warn", "error", "fatal"].includes(l.level), JSON.stringify(l));
        assert.match(l.time, /^\d{4}-\d\d-\d\dT/);
        assert.equal(l.hurd, name, JSON.stringify(l));
      }
      const boot = ls.find((l) => l.msg === "core servers up: auth, proc")!;
      assert.equal(boot.name, "init");
      assert.match(boot.trace_id ?? "", /^[0-9a-f]{32}$/, "init's boot runs in the trace \"hurd boot\"");
      assert.match(boot.span_id ?? "", /^[0-9a-f]{16}$/);
      const upLine = ls.find((l) => / is up in /.test(l.msg))!;
      assert.equal(upLine.trace_id, undefined, "after the boot: no trace");
      assert.ok(ls.some((l) => l.level === "info" && /shutting down: reboot requested/.test(l.msg)));
    } finally {
      u.proc.kill("SIGKILL");
    }
  });

  it("hurd up -q: warnings and errors only", async () => {
    const name = `lq${process.pid}`;
    const state = mkdtempSync(join(tmpdir(), "hurd-quiet-"));
    const env = { ...process.env, HURD_STATE_DIR: state, HURD_LOG_LEVEL: "" };
    const proc = spawn(process.execPath, [hurdBin, "up", "-q", "--grpc", "127.0.0.1:0", "--hurd", name], { env: compiledEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number>((r) => proc.on("exit", (c) => r(c ?? 1)));
    try {
      // Up once its session is written (nothing said at info).
      await until(() => existsSync(join(state, `${name}.json`)) || proc.exitCode !== null, 60000, "hurd up -q");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(hurd({ proc, out: () => out, env, exited, name }, "shutdown").code, 0);
      assert.equal(await exited, 0, out);
      assert.equal(out, "", "nothing at info");
    } finally {
      proc.kill("SIGKILL");
    }
  });

  it("hurd up --nats: ready from the servers' readiness lines (fd 3), every server's lines JSON", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, async () => {
    const name = `ln${process.pid}`;
    // Words the old readiness check matched on are gone from no log; readiness must not need them.
    const u = await up(name, ["--nats", natsUrl()], { HURD_LOG_LEVEL: "" });
    try {
      assert.equal(hurd(u, "shutdown").code, 0);
      assert.equal(await u.exited, 0, u.out());
      const ls = lines(u.out());
      const names = new Set(ls.map((l) => l.name));
      for (const n of ["kernel", "init", "hurd-up"]) assert.ok(names.has(n), `${n} logs (has ${[...names].join(", ")})`);
      assert.ok(ls.some((l) => l.name === "kernel" && /gRPC edge on/.test(l.msg)));
    } finally {
      u.proc.kill("SIGKILL");
    }
  });
});

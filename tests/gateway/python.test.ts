// A client in another language, from Debian's packages (python3-grpcio,
// python3-grpc-tools, which .ci/run installs): stubs generated from proto/
// at test time, calls made against the edge of a `hurd up` (the built
// command, as `npm start` runs it) with the session file's token. The
// README's Python example is run as it is written there.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { compiledEnv } from "../build.js";
import { until } from "../harness.js";

const require = createRequire(import.meta.url);
const root = new URL("../../", import.meta.url).pathname;
const hurdBin = join(root, "packages/cli/bin/hurd.mjs");
const client = new URL("./fixtures/client.py", import.meta.url).pathname;
// Debian's interpreter is the one its packages install for (a pyenv or venv python3 first on PATH may lack them).
const python = process.env.HURD_PYTHON ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");

/** The README's example of `kind`: the code block after its <!-- gateway-example: kind --> marker. */
function readmeExample(kind: string): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const m = readme.match(new RegExp(`<!-- gateway-example: ${kind} -->\\n\`\`\`${kind}\\n([\\s\\S]*?)\\n\`\`\`\\n`));
  assert.ok(m, `README.md has a ${kind} example after <!-- gateway-example: ${kind} -->`);
  return m[1]!;
}

function py(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(python, args, { env, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

describe("a Python (grpcio) client of the Hurd's servers through the edge", () => {
  const scratch = mkdtempSync(join(tmpdir(), "hurd-python-"));
  const state = join(scratch, "state");
  const stubs = join(scratch, "stubs");
  const env = compiledEnv({ ...process.env, HURD_STATE_DIR: state });
  let pyEnv: NodeJS.ProcessEnv;
  let up: ChildProcess;
  let out = "";

  before(async () => {
    const check = py(["-c", "import grpc, grpc_tools.protoc, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))"], process.env);
    assert.equal(check.status, 0, `${python} cannot import grpc and grpc_tools: apt-get install python3-grpcio python3-grpc-tools (.ci/run does)\n${check.stderr}`);
    const wellKnown = check.stdout.trim();
    // The stubs, from proto/ as it is now. reflection.proto is compiled under
    // another name: its own path would make a grpc/ folder hiding grpcio's.
    mkdirSync(stubs, { recursive: true });
    const reflection = join(scratch, "rproto");
    mkdirSync(reflection);
    copyFileSync(join(dirname(require.resolve("@grpc/reflection")), "../proto/grpc/reflection/v1/reflection.proto"), join(reflection, "reflection_v1.proto"));
    const files = ["hurd/mig/v1/mig.proto", "hurd/process/v1/process.proto", "hurd/auth/v1/auth.proto", "hurd/msg/v1/msg.proto", "reflection_v1.proto"];
    const gen = py(["-m", "grpc_tools.protoc", `-I${join(root, "proto")}`, `-I${reflection}`, `-I${wellKnown}`, `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, ...files], process.env);
    assert.equal(gen.status, 0, gen.stderr);
    pyEnv = { ...process.env, PYTHONPATH: stubs, HURD_STATE_DIR: state };
    up = spawn(process.execPath, [hurdBin, "up", "--grpc", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    up.stdout!.on("data", (d) => (out += d));
    up.stderr!.on("data", (d) => (out += d));
    await until(() => / is up in /.test(out) || up.exitCode !== null, 60_000, "hurd up");
    assert.match(out, / is up in /, out);
  });

  after(async () => {
    if (up && up.exitCode === null) {
      up.kill("SIGINT");
      await until(() => up.exitCode !== null, 10_000, "hurd up to shut down").catch(() => up.kill("SIGKILL"));
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  it("the README's example calls Process/Getpids as the console (pid 1's process port)", () => {
    const file = join(scratch, "getpids.py");
    writeFileSync(file, readmeExample("python"));
    const r = py([file], pyEnv);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^pid 1 ppid 1 orphaned (True|False)\n$/);
  });

  it("Process/Getpgrp and Auth/GetIds", () => {
    const g = py([client, "getpgrp", "1"], pyEnv);
    assert.equal(g.status, 0, g.stderr);
    assert.deepEqual(JSON.parse(g.stdout), { pgrp: 1 });
    const ids = py([client, "getids"], pyEnv);
    assert.equal(ids.status, 0, ids.stderr);
    assert.deepEqual(JSON.parse(ids.stdout), { euids: [0], auids: [0, 0], egids: [0], agids: [0, 0] });
  });

  it("an error arrives as its gRPC status with the hurd-errno trailer", () => {
    const r = py([client, "error"], pyEnv);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.equal(e.code, "NOT_FOUND");
    assert.equal(e.errno, "ESRCH");
  });

  it("Msg/SigPost by pid: the spawned program dies of the signal", async () => {
    const spawned = spawn(process.execPath, [hurdBin, "spawn", "--", "sleep", "60"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    spawned.stderr!.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => spawned.on("exit", (c) => r(c)));
    try {
      await until(() => /is pid \d+/.test(err) || spawned.exitCode !== null, 30_000, "hurd spawn");
      const pid = err.match(/is pid (\d+)/)?.[1];
      assert.ok(pid, err);
      const r = py([client, "sigpost", pid, "15"], pyEnv);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), {});
      assert.equal(await exited, 128 + 15, err);
      assert.match(err, new RegExp(`pid ${pid} killed by SIGTERM`));
    } finally {
      if (spawned.exitCode === null) spawned.kill("SIGKILL");
    }
  });

  it("reflection alone: every service's descriptors load into a Python descriptor pool, and Process/Getpids is called from them", () => {
    const r = py([client, "reflect"], pyEnv);
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as { services: string[]; files: string[]; pid: number };
    for (const s of ["hurd.process.v1.Process", "hurd.auth.v1.Auth", "hurd.msg.v1.Msg", "hurd.startup.v1.Startup", "hurd.mach.v1.Mach"]) assert.ok(o.services.includes(s), s);
    assert.ok(o.files.includes("hurd/mig/v1/mig.proto") && o.files.includes("google/protobuf/descriptor.proto"), o.files.join(", "));
    assert.equal(o.pid, 1);
  });
});

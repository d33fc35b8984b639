// The container roles (bin/hurdmesh-service.mjs kernel|init|proc|auth), run
// here as plain OS processes on the real nats-server `npm test` starts:
// exactly what docker compose and Kubernetes run, minus the containers, so
// this runs on every machine. Boot in any start order, health, a subhurd,
// proc and auth restarted in place when a container's process is killed,
// a crash when proc goes (and a fresh boot when the "restart policy" brings
// the servers back), a kernel restart, a clean shutdown on SIGTERM; and
// `hurd web` as compose's web service runs it (`hurdmesh-service hurd web`).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { compiledEnv } from "../build.js";
import { busKinds, natsUrl, roleCredsFile, until } from "../harness.js";

const root = new URL("../../", import.meta.url).pathname;
const service = join(root, "bin/hurdmesh-service.mjs");
const probe = join(root, "bin/grpc-health.mjs");
const cli = join(root, "packages/cli/src/main.ts");

interface Role {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number>;
}

let healthPorts = 17800 + (process.pid % 500) * 20;

describe("container roles on a real nats-server", { skip: !busKinds.includes("nats") && "HURD_TEST_BUSES excludes nats" }, () => {
  const state = mkdtempSync(join(tmpdir(), "hurd-containers-"));
  const system = `ctr${process.pid}`;
  const secret = "containers-test-secret";
  const running: Role[] = [];
  let edge = "";

  /**
   * The NATS user a container of `role` is given (npm test's keys stand for
   * the deployment's secrets): the kernel mints everything from the keys
   * file; init's may claim its hurd's boot task; proc's and auth's may take
   * their own launch order. Nothing with authorization off.
   */
  function natsEnv(role: string, hurd: string): NodeJS.ProcessEnv {
    if (role === "kernel") return {};
    const creds = roleCredsFile(system, role === "init" ? { kind: "boot-claim", hurd } : { kind: "launch", hurd, server: role });
    return creds ? { HURD_NATS_CREDS: creds } : {};
  }

  function start(role: string, extra: NodeJS.ProcessEnv = {}, args: string[] = []): Role & { health: string } {
    const health = `127.0.0.1:${healthPorts++}`;
    // The image's entry point runs the compiled programs (dist/), as in a container.
    const env: NodeJS.ProcessEnv = {
      ...compiledEnv(),
      NATS_URL: natsUrl(),
      HURD_SYSTEM: system,
      HURD_BOOT_SECRET: secret,
      HURD_STATE_DIR: state,
      HURD_HEALTH_ADDR: health,
      HURD_GRPC: "127.0.0.1:0",
      HURD_PUBLIC_EDGE: edge || "127.0.0.1:1",
      ...natsEnv(role, extra.HURD_SUBHURD ?? ""),
      ...extra,
    };
    for (const k of Object.keys(env)) if (k.startsWith("OTEL_")) delete env[k];
    const proc = spawn(process.execPath, [service, role, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number>((r) => proc.on("exit", (c, s) => r(c ?? (s ? 128 : 1))));
    const r = { proc, out: () => out, exited, health };
    running.push(r);
    return r;
  }

  function hurd(...args: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ["--import", "tsx", cli, ...args], {
      env: { ...process.env, HURD_STATE_DIR: state, HURD_EDGE: edge },
      encoding: "utf8",
      timeout: 60000,
    });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  function healthy(addr: string): boolean {
    return spawnSync(process.execPath, [probe, addr], { encoding: "utf8", timeout: 10000 }).status === 0;
  }

  function pids(...args: string[]): Array<{ pid: number; command: string }> {
    const r = hurd("ps", "--json", ...args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { pid: number; command: string });
  }

  let kernel: Role;
  let initR: Role & { health: string };
  let procR: Role & { health: string };
  let authR: Role & { health: string };
  /** hurd web, while it runs (it must end with the hurd it watches). */
  let webR: (Role & { health: string }) | null = null;

  before(async () => {
    // Servers first and the kernel last: containers start in any order.
    procR = start("proc");
    authR = start("auth");
    await until(() => /waiting for init's launch order/.test(procR.out()) && /waiting for init's launch order/.test(authR.out()), 30000, "proc and auth listening");
    // An essential task outlives its process this long: time for a killed server's container to come back (restart in place).
    kernel = start("kernel", { HURD_RESTART_GRACE_MS: "60000" });
    await until(() => /gRPC edge on/.test(kernel.out()), 30000, "kernel edge");
    edge = `127.0.0.1:${/gRPC edge on [\d.]+:(\d+)/.exec(kernel.out())![1]}`;
    initR = start("init", { HURD_PUBLIC_EDGE: edge });
    await until(() => /ready: session/.test(initR.out()) || initR.proc.exitCode !== null, 60000, "init ready");
    assert.match(initR.out(), /ready: session/, initR.out());
  });

  after(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
  });

  it("boots the root hurd with pids 1-4 and the servers report SERVING on grpc.health.v1", () => {
    const ps = pids();
    const byPid = new Map(ps.map((p) => [p.pid, p.command]));
    assert.equal(byPid.get(1), "/libexec/runsystem");
    assert.equal(byPid.get(2), "/hurd/startup");
    assert.equal(byPid.get(4), "/hurd/proc");
    assert.ok(byPid.has(3));
    assert.ok(ps.some((p) => p.command === "/hurd/auth"));
    for (const r of [initR, procR, authR]) assert.ok(healthy(r.health), `${r.health} healthy`);
    assert.ok(healthy(edge), "kernel edge healthy");
  });

  it("the health probe fails (exit 1) where nothing serves", () => {
    assert.equal(spawnSync(process.execPath, [probe, "127.0.0.1:1"], { encoding: "utf8", timeout: 10000 }).status, 1);
  });

  it("refuses a role it does not know and an init without the secret", async () => {
    const bad = spawnSync(process.execPath, [service, "nope"], { encoding: "utf8", timeout: 30000 });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /usage: hurdmesh-service kernel\|init/);
    const noSecret = start("init", { HURD_BOOT_SECRET: "", HURD_SUBHURD: "nosecret" });
    assert.equal(await noSecret.exited, 2);
    assert.match(noSecret.out(), /HURD_BOOT_SECRET must hold/);
  });

  it("an init whose boot secret or edge CA file (compose's keys volumes) cannot be read stops with one line, before it claims anything", async () => {
    const missing = join(state, "no-such-file");
    const noSecret = start("init", { HURD_BOOT_SECRET: "", HURD_BOOT_SECRET_FILE: missing, HURD_SUBHURD: "nosecretfile" });
    assert.equal(await noSecret.exited, 2);
    assert.match(noSecret.out(), /cannot read the boot secret \(HURD_BOOT_SECRET_FILE\)/);
    const noCa = start("init", { HURD_EDGE_CA_FILE: missing, HURD_SUBHURD: "nocafile" });
    assert.equal(await noCa.exited, 2);
    assert.match(noCa.out(), /cannot read the edge's CA \(HURD_EDGE_CA_FILE\)/);
    assert.doesNotMatch(noSecret.out() + noCa.out(), /claimed boot task/);
  });

  it("boots a subhurd from its own init, proc and auth: pids from 1, visible in the parent only with --all-hurds", async () => {
    start("proc", { HURD_SUBHURD: "second" });
    start("auth", { HURD_SUBHURD: "second" });
    const sInit = start("init", { HURD_SUBHURD: "second", HURD_PUBLIC_EDGE: edge });
    await until(() => /ready: session/.test(sInit.out()) || sInit.proc.exitCode !== null, 60000, "subhurd init ready");
    assert.ok(existsSync(join(state, "second.json")));
    const inner = pids("--hurd", "second");
    assert.deepEqual(
      inner.filter((p) => p.pid <= 4).map((p) => p.pid).sort(),
      [1, 2, 3, 4],
    );
    const rootPlain = pids();
    const rootAll = pids("--all-hurds");
    assert.ok(rootAll.length >= rootPlain.length + 4, "the parent sees the subhurd's processes with --all-hurds");
    // The subhurd's pid 1 is some other pid up here, never 1.
    assert.equal(rootPlain.filter((p) => p.command === "/libexec/runsystem").length, 1);
  });

  it("runs hurd web as compose's web service does: waits for init's session, shows both hurds, /healthz and /metrics", async () => {
    // Its own state folder, empty at first: a container started before init wrote the session.
    const webState = mkdtempSync(join(tmpdir(), "hurd-containers-web-"));
    const metrics = `127.0.0.1:${healthPorts++}`;
    webR = start("hurd", { HURD_STATE_DIR: webState, HURD_EDGE: edge, HURD_METRICS_ADDR: metrics, HURD_JAEGER_URL: "http://jaeger.example:16686" }, ["web", "--listen", "127.0.0.1:0", "--wait", "60"]);
    await until(() => /trying again for up to 60 s/.test(webR!.out()) || webR!.proc.exitCode !== null, 30000, "hurd web waiting for the session");
    assert.match(webR.out(), /no hurd called hurd is up/);
    // init's session appears (compose: the shared volume), the subhurd's beside it.
    copyFileSync(join(state, "second.json"), join(webState, "second.json"));
    copyFileSync(join(state, "hurd.json"), join(webState, "hurd.json"));
    await until(() => /hurd web: http:\/\/\S+/.test(webR!.out()) || webR!.proc.exitCode !== null, 60000, "hurd web's address");
    const url = new URL(/hurd web: (http:\/\/\S+)/.exec(webR.out())![1]!);
    const base = `${url.protocol}//${url.host}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/api/state`)).status, 401, "no key, no view");
    // The session's token (the console's, from the session file) is a bearer token.
    const session = JSON.parse(readFileSync(join(state, "hurd.json"), "utf8")) as { console: { token: string } };
    const auth = { authorization: `Bearer ${session.console.token}` };
    assert.equal((await fetch(`${base}/api/state`, { headers: { authorization: "Bearer nope" } })).status, 401);
    let last = "";
    await until(
      async () => {
        const st = (await (await fetch(`${base}/api/state`, { headers: auth })).json()) as { hurds: { name: string; parent: string; procs: { pid: number }[] }[] };
        last = JSON.stringify(st.hurds.map((h) => ({ name: h.name, parent: h.parent, pids: h.procs?.map((p) => p.pid) })));
        const second = st.hurds.find((h) => h.name === "second");
        return st.hurds[0]?.name === "hurd" && second?.parent === "hurd" && [1, 2, 3, 4].every((p) => second.procs.some((x) => x.pid === p));
      },
      30000,
      "both hurds in the view, the second nested in the first",
    ).catch((e: Error) => assert.fail(`${e.message}: ${last}\n${webR!.out()}`));
    // The one-time key works once.
    const first = await fetch(`${base}/?key=${url.searchParams.get("key")}`, { redirect: "manual" });
    assert.equal(first.status, 303);
    assert.equal((await fetch(`${base}/?key=${url.searchParams.get("key")}`, { redirect: "manual" })).status, 403);
    const m = await (await fetch(`http://${metrics}/metrics`)).text();
    assert.match(m, /service_name="hurd-web"/, "its own /metrics, as Prometheus scrapes web:9464");
  });

  it("restarts proc and auth in place when a container's process is SIGKILLed and the container comes back: init re-issues the order, pids and the hurd stay", async () => {
    // Each `hurd ps` is a process of its own (a new pid each time): the rest must not change.
    const table = () => pids().filter((p) => !p.command.startsWith("hurd ps")).map((p) => [p.pid, p.command]);
    const before = table();
    for (const role of ["proc", "auth"] as const) {
      const r = role === "proc" ? procR : authR;
      r.proc.kill("SIGKILL");
      await r.exited;
      // The restart policy: the same role again, waiting for an order; init sees it wait and re-issues its task's.
      const again = start(role);
      if (role === "proc") procR = again;
      else authR = again;
      await until(() => /restarted in place on task/.test(again.out()) || again.proc.exitCode !== null, 90000, `${role} restarted in place`);
      assert.match(again.out(), /restarted in place on task/, again.out() + initR.out());
      // init hears the container's answer to the re-issued order just after the container says so.
      await until(() => new RegExp(`${role} restarted in place on task`).test(initR.out()) || initR.proc.exitCode !== null, 30000, `init's word on ${role}`);
      assert.match(initR.out(), new RegExp(`${role} restarted in place on task`));
    }
    assert.equal(initR.proc.exitCode, null, initR.out());
    assert.doesNotMatch(initR.out(), /CRASH/);
    assert.deepEqual(table(), before, "every process of the hurd as it was");
    assert.ok(healthy(procR.health) && healthy(authR.health));
  });

  it("crashes when proc goes (an essential server), and boots again when the servers come back", async () => {
    procR.proc.kill("SIGTERM");
    assert.equal(await procR.exited, 0, procR.out());
    // init sees its essential server die: the hurd crashes, init exits non-zero for its restart policy.
    assert.equal(await initR.exited, 1, initR.out());
    assert.match(initR.out(), /CRASH: essential server proc/);
    // hurd web's task ended with the hurd: it says so and exits 1, for its restart policy.
    if (webR) {
      const w = webR;
      const code = await Promise.race([w.exited, new Promise<string>((r) => setTimeout(() => r("still running 60 s after its hurd crashed"), 60000).unref())]);
      assert.equal(code, 1, w.out());
      assert.match(w.out(), /the hurd has not answered for 10 s/);
      webR = null;
    }
    // auth's task ended with the hurd: it exits for the next boot.
    assert.equal(await authR.exited, 0, authR.out());
    assert.equal(existsSync(join(state, "hurd.json")), false, "the session is withdrawn");
    // The "restart policy": the same three roles again.
    procR = start("proc");
    authR = start("auth");
    initR = start("init", { HURD_PUBLIC_EDGE: edge });
    await until(() => /ready: session/.test(initR.out()) || initR.proc.exitCode !== null, 60000, "init ready again");
    const ps = pids();
    assert.equal(ps.find((p) => p.pid === 1)?.command, "/libexec/runsystem");
    assert.equal(ps.find((p) => p.pid === 4)?.command, "/hurd/proc");
  });

  it("notices a restarted kernel (it knows none of the old tasks): the servers exit, and boot again on the new kernel", async () => {
    kernel.proc.kill("SIGKILL");
    await kernel.exited;
    // An essential task outlives its process this long: time for a killed server's container to come back (restart in place).
    kernel = start("kernel", { HURD_RESTART_GRACE_MS: "60000" });
    await until(() => /gRPC edge on/.test(kernel.out()), 30000, "kernel edge");
    edge = `127.0.0.1:${/gRPC edge on [\d.]+:(\d+)/.exec(kernel.out())![1]}`;
    // A kernel call answers KERN_INVALID_TASK now: init exits non-zero, proc and auth for the next boot.
    assert.equal(await initR.exited, 1, initR.out());
    assert.match(initR.out(), /startup's task ended from outside/);
    assert.equal(await procR.exited, 0, procR.out());
    assert.equal(await authR.exited, 0, authR.out());
    procR = start("proc");
    authR = start("auth");
    initR = start("init", { HURD_PUBLIC_EDGE: edge });
    await until(() => /ready: session/.test(initR.out()) || initR.proc.exitCode !== null, 60000, "init ready on the new kernel");
    assert.equal(pids().find((p) => p.pid === 4)?.command, "/hurd/proc");
  });

  it("shuts the hurd down cleanly on SIGTERM to init: exit 0, proc and auth end", async () => {
    initR.proc.kill("SIGTERM");
    assert.equal(await initR.exited, 0, initR.out());
    assert.match(initR.out(), /shutting the hurd down/);
    assert.equal(await procR.exited, 0, procR.out());
    assert.equal(await authR.exited, 0, authR.out());
    kernel.proc.kill("SIGTERM");
    assert.equal(await kernel.exited, 0);
  });
});

// What the end-to-end suites share: a docker compose stack brought up by
// testcontainers and driven from the host as a user would, through the
// published edge with the `hurd` CLI and the session files init wrote.
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.js";

export const run = promisify(execFile);
export const root = new URL("../../", import.meta.url).pathname;
export const cli = join(root, "packages/cli/src/main.ts");
export const wanted = process.env.HURD_E2E === "1";
/** Why the suites do not run here (HURD_E2E unset), or null. */
export const notWanted = wanted ? null : "set HURD_E2E=1 with a Docker engine, or run `sudo scripts/docker/ci.sh npm run test:e2e` (CI does)";

/** What is missing for the suites to run (an engine, compose v2, the image), or null. */
export function dockerReady(): string | null {
  const r = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 15000 });
  if (r.error || r.status !== 0) return `no Docker engine answers (docker info: ${(r.stderr || String(r.error ?? "")).trim().split("\n")[0]})`;
  const c = spawnSync("docker", ["compose", "version", "--short"], { encoding: "utf8", timeout: 15000 });
  if (c.status !== 0 || !/^v?2\./.test(c.stdout.trim())) return "docker compose v2 is missing (scripts/docker/compose.sh installs it)";
  const i = spawnSync("docker", ["image", "inspect", process.env.HURDMESH_IMAGE ?? "hurdmesh:dev"], { encoding: "utf8", timeout: 15000 });
  if (i.status !== 0) return "the hurdmesh:dev image is not built (scripts/docker/build-images.sh)";
  return null;
}

export interface PsRow {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  command: string;
  ns?: number | string;
}

async function freePort(): Promise<number> {
  return new Promise<number>((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** One compose project: its files and profiles, the host's view of it (edge, sessions), and what the tests started. */
export class Stack {
  env: import("testcontainers").StartedDockerComposeEnvironment | null = null;
  readonly project: string;
  readonly state = mkdtempSync(join(tmpdir(), "hurd-e2e-"));
  readonly composeEnv: Record<string, string> = {};
  edge = "";
  readonly children: ChildProcess[] = [];
  failed = false;

  constructor(
    name: string,
    private readonly files: string[],
    private readonly profiles: string[],
    /** The hurds whose sessions init writes: [service, hurd name]. */
    private readonly sessions: [string, string][],
  ) {
    this.project = `hurdmesh-${name}-${process.pid}`;
  }

  compose(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run("docker", ["compose", "-p", this.project, ...this.files.flatMap((f) => ["-f", f]), ...this.profiles.flatMap((p) => ["--profile", p]), ...args], {
      cwd: root,
      env: { ...process.env, ...this.composeEnv },
      maxBuffer: 64 << 20,
    });
  }

  hurd(...args: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ["--import", "tsx", cli, ...args], { env: this.cliEnv(), encoding: "utf8", timeout: 60000 });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  cliEnv(): NodeJS.ProcessEnv {
    return { ...process.env, HURD_STATE_DIR: this.state, HURD_EDGE: this.edge };
  }

  ps(...args: string[]): PsRow[] {
    const r = this.hurd("ps", "--json", ...args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as PsRow);
  }

  /** `hurd spawn ARGS` in the background: its pid in the hurd once it says it, and its exit status. */
  spawnProgram(...args: string[]): { child: ChildProcess; pid: Promise<number>; exited: Promise<number> } {
    const child = spawn(process.execPath, ["--import", "tsx", cli, "spawn", ...args], { env: this.cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    const pid = (async () => {
      await until(() => / is pid \d+/.test(err) || child.exitCode !== null, 60000, "spawned");
      const m = / is pid (\d+)/.exec(err);
      assert.ok(m, err);
      return Number(m[1]);
    })();
    const exited = new Promise<number>((r) => child.on("exit", (c) => r(c ?? 1)));
    return { child, pid, exited };
  }

  /** The session files init wrote in its volume, copied to the host as `docker compose cp` would. */
  async fetchSessions(): Promise<void> {
    for (const [svc, name] of this.sessions) {
      // `compose exec`, not the container object: a restarted init is a new process in the same service.
      let last = "";
      await until(
        async () => {
          const r = await this.compose("exec", "-T", svc, "cat", `/var/lib/hurdmesh/${name}.json`).catch((e: Error & { stderr?: string }) => ({ stdout: "", stderr: e.stderr ?? e.message }));
          last = r.stderr;
          if (!r.stdout.trim().startsWith("{")) return false;
          writeFileSync(join(this.state, `${name}.json`), r.stdout, { mode: 0o600 });
          return true;
        },
        60_000,
        `${svc}'s session`,
      ).catch(() => assert.fail(`no session from ${svc}: ${last}`));
    }
  }

  async containerHealth(svc: string): Promise<string> {
    const { stdout } = await this.compose("ps", "--all", "--format", "{{.Service}} {{.Health}} {{.State}}");
    const line = stdout.split("\n").find((l) => l.startsWith(`${svc} `));
    return line?.slice(svc.length + 1) ?? "absent";
  }

  /** `docker inspect -f FORMAT` of the service's container. */
  async inspect(svc: string, format: string): Promise<string> {
    const id = (await this.compose("ps", "-q", svc)).stdout.trim();
    return (await run("docker", ["inspect", "-f", format, id])).stdout.trim();
  }

  /**
   * A crash, as Docker sees one: the service's container process killed
   * from the host, and Docker's restart policy brings it back. `docker
   * compose kill` would count as a manual stop, which the policy does not undo.
   */
  async crash(svc: string): Promise<number> {
    const restarts = Number(await this.inspect(svc, "{{.RestartCount}}"));
    process.kill(Number(await this.inspect(svc, "{{.State.Pid}}")), "SIGKILL");
    return restarts;
  }

  /** Up before the suite's tests (`ready` then reads what it needs of it), down after them, logs shown if anything failed. */
  hooks(more: Record<string, string> = {}, ready?: () => void): void {
    before(async () => {
      try {
        await this.up(more);
        ready?.();
      } catch (e) {
        this.failed = true;
        throw e;
      }
    });
    after(() => this.down());
  }

  /** A test of the suite: its failure marks the stack failed, so its logs are shown at the end. */
  test(name: string, fn: () => Promise<void>): void {
    it(name, async () => {
      try {
        await fn();
      } catch (e) {
        this.failed = true;
        throw e;
      }
    });
  }

  /** Brings the stack up, healthy, with free host ports; `more`: settings of the suite's own. */
  async up(more: Record<string, string> = {}): Promise<void> {
    const missing = dockerReady();
    if (missing) throw new Error(`HURD_E2E=1 but ${missing}`);
    const { DockerComposeEnvironment, Wait } = await import("testcontainers");
    Object.assign(this.composeEnv, {
      HURD_EDGE_PORT: String(await freePort()),
      NATS_MONITOR_PORT: String(await freePort()),
      JAEGER_UI_PORT: String(await freePort()),
      // No HURD_BOOT_SECRET: the keys service generates one, as on a user's first `up`.
      HURD_BOOT_SECRET: "",
      ...more,
    });
    const started = Date.now();
    this.env = await new DockerComposeEnvironment(root, this.files)
      .withProjectName(this.project)
      .withProfiles(...this.profiles)
      .withEnvironment(this.composeEnv)
      .withDefaultWaitStrategy(Wait.forHealthCheck())
      // The keys service runs once and exits: done is its healthy.
      .withWaitStrategy("keys-1", Wait.forOneShotStartup())
      .withStartupTimeout(240_000)
      .up();
    console.log(`# compose stack ${this.project} up and healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    this.edge = `127.0.0.1:${this.composeEnv.HURD_EDGE_PORT}`;
    await this.fetchSessions();
  }

  /** Stops everything the suite started, volumes too; the last logs first if anything failed. */
  async down(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null) c.kill("SIGKILL");
    if (this.failed || !this.env) {
      const logs = await this.compose("logs", "--no-color", "--tail", "80").catch((e: Error) => ({ stdout: e.message, stderr: "" }));
      console.log(`# compose logs:\n${(logs.stdout + logs.stderr).split("\n").map((l) => `# ${l}`).join("\n")}`);
    }
    if (!this.env) {
      await this.compose("down", "-v", "--timeout", "10").catch(() => {});
      return;
    }
    try {
      await this.env.down({ timeout: 30_000, removeVolumes: true });
      return;
    } catch (e) {
      // A container still being taken down (the attack test's `docker run
      // --rm`, removed by the engine after it exits) can hold the network a
      // moment: CI saw "network … has active endpoints" once. What held it
      // is said, and the rest is taken down again; a second failure fails.
      const held = await run("docker", ["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", `${this.project}_default`]).catch((x: Error) => ({ stdout: x.message }));
      console.log(`# compose down failed (${String((e as Error).message).trim().split("\n").at(-1)}); on the network then: ${held.stdout.trim() || "nothing"}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
    await this.compose("down", "-v", "--timeout", "10");
  }
}

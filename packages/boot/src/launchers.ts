// Where boot servers run, as init's Launcher sees it. In one process (the
// embedded hurd) they attach to the kernel over the in-process bus; with
// NATS each is its own OS process (daemon.ts) started with its task id and
// token in the environment.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Launcher, LaunchPorts } from "@hurdmesh/init";
import { createLogger, type Task } from "@hurdmesh/mach";
import { nodeImports } from "@hurdmesh/telemetry-sdk";
import { startBootServer } from "./servers.js";

/** Runs auth, proc and runsystem in this process. */
export class InProcessLauncher implements Launcher {
  readonly started: Record<string, unknown> = {};
  constructor(
    private readonly attach: (taskId: number, token: string) => Promise<Task>,
    private readonly o: { command?: string[] } = {},
  ) {}

  async launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void> {
    const task = await this.attach(taskId, token);
    this.started[name] = await startBootServer(name, task, { hostPriv: ports.hostPriv, command: this.o.command, attach: this.attach });
  }
}

// Sources or dist/, as this process runs (the package's export conditions).
const daemon = fileURLToPath(import.meta.resolve("@hurdmesh/boot/daemon"));

/** Runs each boot server as its own OS process on a NATS bus. */
export class ProcessLauncher implements Launcher {
  readonly children: ChildProcess[] = [];
  constructor(private readonly env: { NATS_URL: string; HURD_SYSTEM: string; command?: string[] }) {}

  async launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void> {
    const child = spawn(process.execPath, [...nodeImports(), daemon, name], {
      stdio: ["ignore", "inherit", "inherit"],
      env: {
        ...process.env,
        NATS_URL: this.env.NATS_URL,
        HURD_SYSTEM: this.env.HURD_SYSTEM,
        HURD_TASK_ID: String(taskId),
        HURD_TOKEN: token,
        HURD_HOST_PRIV: String(ports.hostPriv),
        HURD_COMMAND: this.env.command ? JSON.stringify(this.env.command) : "",
      },
    });
    this.children.push(child);
    child.on("exit", (code, sig) => {
      if (code !== 0) createLogger("init", { hurd: this.env.HURD_SYSTEM }).warn(`${name} (pid ${child.pid}) exited with ${sig ?? code}`);
    });
  }
}

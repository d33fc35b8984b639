// pid 1: a small built-in runsystem. It reaps what is orphaned to it (the
// Hurd's /hurd/init loops waitpid(WAIT_ANY, WNOHANG) on SIGCHLD) and runs
// the configured user command, if any, as its child.
import { Process, runProgram, SIG, WNOHANG, describeStatus, type Running } from "@hurdmesh/libhurd";
import { BOOT_NAMES } from "@hurdmesh/init";
import { createLogger, type LogSink, type Task } from "@hurdmesh/mach";

export interface RunsystemOptions {
  command?: string[];
  attach: (taskId: number, token: string) => Promise<Task>;
  log?: LogSink;
}

export class Runsystem {
  reaped = 0;
  /** The command pid 1 runs, while it runs. */
  private run: Running | null = null;
  private constructor(readonly p: Process) {}

  static async start(task: Task, o: RunsystemOptions): Promise<Runsystem> {
    const p = await Process.attach(task, BOOT_NAMES.proc, BOOT_NAMES.auth);
    const rs = new Runsystem(p);
    await p.setArgs(["/libexec/runsystem"]);
    p.signal(SIG.CHLD, () => void rs.reap());
    // Orphans may have died before we were listening.
    void rs.reap();
    if (o.command?.length) {
      const log = o.log ?? createLogger("runsystem", { hurd: task.system }).sink;
      // fork hands the program pid 1's own (root) auth handle: it needs no other (inserting that
      // same port again under another name is KERN_RIGHT_EXISTS).
      const run = await runProgram(p, o.command, { attach: o.attach });
      rs.run = run;
      log(`started ${o.command.join(" ")} as pid ${run.pid}`);
      void run.done.then((s) => {
        rs.run = null;
        log(`${o.command!.join(" ")} (pid ${run.pid}) ${describeStatus(s)}`);
      });
    }
    return rs;
  }

  /** This process is going away without its hurd (its launcher vanished): its command's Linux process goes too. */
  abandon(): void {
    if (this.run && this.run.child.exitCode === null) this.run.child.kill("SIGKILL");
  }

  private reaping = false;
  async reap(): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    try {
      for (;;) {
        const w = await this.p.wait(-1, WNOHANG).catch(() => null);
        if (!w) break;
        this.reaped++;
      }
    } finally {
      this.reaping = false;
    }
  }
}

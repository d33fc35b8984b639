// Running a real Linux program as a Hurd process: a child task and process
// are made for it (fork's proc part), it shows in ps with its argv, signals
// that reach its message port are passed to the Linux process, SIGKILL (a
// task_terminate) kills it, and how it ends becomes its Hurd exit status.
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { existsSync } from "node:fs";
import { MsgType, Notify, NotifyId, PortRight, type Task } from "@hurdmesh/mach";
import { CHILD_NAMES, Process } from "./process.js";
import { fromLinux, signalName, SIG, W } from "./signals.js";

/** Where the program's own auth handle goes in its task (beside fork's CHILD_NAMES). */
const PROGRAM_AUTH = 0x110;

export interface RunOptions {
  /** Attaches a task by id and token (the same bus or edge as the parent). */
  attach: (taskId: number, token: string) => Promise<Task>;
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
  cwd?: string;
  /** An auth handle (in the parent's space) whose ids the program's process takes. */
  auth?: number;
}

export interface Running {
  pid: number;
  process: Process;
  child: ChildProcess;
  /** Resolves with the Hurd wait status once the program ended and proc knows it. */
  done: Promise<number>;
}

const LINUX: Record<number, NodeJS.Signals> = {
  [SIG.HUP]: "SIGHUP", [SIG.INT]: "SIGINT", [SIG.QUIT]: "SIGQUIT", [SIG.TERM]: "SIGTERM", [SIG.USR1]: "SIGUSR1",
  [SIG.USR2]: "SIGUSR2", [SIG.STOP]: "SIGSTOP", [SIG.CONT]: "SIGCONT", [SIG.TSTP]: "SIGTSTP", [SIG.ALRM]: "SIGALRM",
  [SIG.WINCH]: "SIGWINCH", [SIG.KILL]: "SIGKILL", [SIG.ABRT]: "SIGABRT", [SIG.PIPE]: "SIGPIPE",
};

const SETPRIV = process.platform === "linux" ? ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p)) : undefined;

/** Runs argv as a child process of `parent`. */
export async function runProgram(parent: Process, argv: string[], o: RunOptions): Promise<Running> {
  if (argv.length === 0) throw new Error("no program given");
  // The program's task dies with its parent's (this program's own task):
  // when the parent goes, however it goes, so does the program.
  const f = await parent.fork(argv[0]!.split("/").pop() || "program", { dieWithParent: true });
  // fork gave the child the parent's auth handle; the program's own goes beside it.
  if (o.auth) await parent.task.insertRight(f.task, PROGRAM_AUTH, o.auth, MsgType.MSG_TYPE_COPY_SEND);
  const task = await o.attach(f.taskId, f.token);
  const me = await Process.attach(task, CHILD_NAMES.proc, o.auth ? PROGRAM_AUTH : CHILD_NAMES.auth);
  if (o.auth) await me.reauthenticate(PROGRAM_AUTH);
  await me.setArgs(argv, Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`).slice(0, 256));
  await me.markExec();
  // With util-linux's setpriv, the program also gets SIGKILL if this
  // process dies without a word (its tasks then end at their lease, and
  // nothing would be left here to kill it): prctl's parent-death signal.
  const [cmd, args] = SETPRIV ? [SETPRIV, ["--pdeathsig", "KILL", "--", ...argv]] : [argv[0]!, argv.slice(1)];
  const child = spawn(cmd, args, { stdio: o.stdio ?? "inherit", env: o.env ?? process.env, cwd: o.cwd });
  // The Linux process ends with its task, for any reason the task ends: a
  // task_terminate, its hurd shut down, removed or crashed, or the kernel
  // out of reach for longer than the lease (the runtime's Task then ends
  // itself). A task's end is SIGKILL on the Hurd; a signal sent through
  // the Hurd before it has already been passed on (below).
  const killProgram = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  task.onTerminated = killProgram;
  if (task.detached) killProgram();
  let notify = 0;
  // Listen for the end at once: a short program may be gone before the wiring below is done.
  const done = new Promise<number>((resolve) => {
    let finished = false;
    const finish = async (code: number | null, signal: NodeJS.Signals | null) => {
      if (finished) return;
      finished = true;
      const status = signal ? W.exitcode(0, fromLinux(signal)) : W.exitcode(code ?? 0, 0);
      if (!task.detached) {
        await me.proc.markExit({ status, sigcode: 0 }).catch(() => {});
        await task.detach();
      }
      if (notify) parent.task.destroy(notify).catch(() => {});
      resolve(status);
    };
    child.on("exit", (code, signal) => void finish(code, signal));
    child.on("error", (e) => {
      process.stderr.write(`hurd: cannot run ${argv[0]}: ${e.message}\n`);
      void finish(127, null);
    });
  });
  // Every catchable signal goes to the Linux process; its own fate decides ours.
  for (const [sig, name] of Object.entries(LINUX)) {
    const n = Number(sig);
    if (n === SIG.KILL || n === SIG.STOP) continue;
    me.signal(n, () => {
      child.kill(name);
    });
  }
  // SIGKILL arrives as task_terminate: the parent watches the task port die.
  notify = await parent.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
  parent.task.receive(notify, (m) => {
    if (m.kernel && m.id === Notify.DEAD_NAME) killProgram();
  });
  await parent.task.requestNotification(f.task, NotifyId.NOTIFY_DEAD_NAME, notify, 1).catch(() => {});
  return { pid: f.pid, process: me, child, done };
}


export { signalName };

// hurd: boot a hurd and use it. Errors print one line and exit non-zero.
// Each subcommand's module is imported when it runs: `hurd --help` loads
// commander alone, `hurd ps` no kernel, OpenTelemetry or NATS (a command is
// started often and waited for; see the `cli` bench rows).
import { Command } from "commander";
import { CliError } from "./errors.js";

const program = new Command("hurd").description("boot a hurd and drive it").showHelpAfterError();
const hurdOpt = ["--hurd <name>", "which hurd (its session file under ~/.hurdmesh)", "hurd"] as const;
let exitCode = 0;

program
  .command("up")
  .description("boot a hurd (embedded by default; --nats runs every server as its own process)")
  .option("--nats [url]", "each server its own OS process on NATS: a nats-server of its own, or the one at URL (with NATS authorization: see hurd keys nats-config)")
  .option("--nats-insecure", "with --nats URL: a server without NATS authorization (anyone who reaches it can read every token)")
  .option("--nats-keys <file>", "with --nats URL: the NATS keys (default $HURD_NATS_KEYS, then the state directory's)")
  .option("--grpc <host:port>", "the kernel's gRPC edge", "127.0.0.1:7400")
  .option(...hurdOpt)
  .option("-q, --quiet", "print nothing but errors")
  .option("--reboot-on-crash", "boot the hurd again when an essential server dies (embedded mode)")
  .option("--web [host:port]", "also serve `hurd web` (default 127.0.0.1:7410)")
  .argument("[command...]", "a program pid 1 runs once the hurd is up")
  .action(async (command: string[], o) => {
    const { up } = await import("./up.js");
    exitCode = await up({
      nats: o.nats,
      natsInsecure: o.natsInsecure,
      natsKeys: o.natsKeys,
      grpc: o.grpc,
      hurd: o.hurd,
      quiet: o.quiet,
      rebootOnCrash: o.rebootOnCrash,
      web: o.web,
      command: command.length ? command : undefined,
    });
  });
const keys = program.command("keys").description("secrets of a hurd's deployment");
keys
  .command("nats-config")
  .description("print the configuration a nats-server needs for `hurd up --nats URL` (NATS authorization), and keep the hurd's NATS keys in a 0600 file")
  .option("--host <host>", "the address it listens on", "127.0.0.1")
  .option("--port <port>", "its client port", "4222")
  .option("--jetstream <dir>", "with JetStream, storing there")
  .option("--new", "make new keys (the server's old configuration stops working)")
  .option(...hurdOpt)
  .action(async (o) => (await import("./keys.js")).natsConfig(o));
program
  .command("ps")
  .description("list processes (PID PPID PGID SID UID STAT TIME COMMAND)")
  .option("-e", "every process (the default: a hurd is small)")
  .option("-o <columns>", "columns: pid,ppid,pgid,sid,uid,stat,time,serial,task,command")
  .option("--json", "one JSON object per process")
  .option("--all-hurds", "also the processes of nested subhurds (NS column)")
  .option(...hurdOpt)
  .action(async (o) => (await import("./ps.js")).ps(o));
program.command("pstree").description("processes as a tree").option("--json").option(...hurdOpt).action(async (o) => (await import("./ps.js")).pstree(o));
program
  .command("top")
  .description("the process table, refreshed")
  .option("-d, --interval <ms>", "refresh every", "1000")
  .option("-n, --iterations <n>", "stop after n screens")
  .option(...hurdOpt)
  .action(async (o) => (await import("./top.js")).top(o));
program
  .command("kill")
  .description("send a signal to PID, or to process group PGRP given as -PGRP")
  .option("-s, --signal <sig>", "signal name or number", "TERM")
  .argument("<target>", "PID or -PGRP")
  .option(...hurdOpt)
  .action(async (t: string, o) => (await import("./kill.js")).kill(t, o));
program
  .command("killall")
  .description("signal every process called NAME, race-free through process handles")
  .option("-s, --signal <sig>", "signal name or number", "TERM")
  .option("--json", "one line per process: pid, serial, result")
  .argument("<name>")
  .option(...hurdOpt)
  .action(async (n: string, o) => {
    const k = await (await import("./kill.js")).killall(n, o);
    if (!o.json) console.log(`${n}: ${k} process${k === 1 ? "" : "es"} signalled`);
  });
program
  .command("wait")
  .description("wait for PID to end and print how it ended")
  .argument("<pid>")
  .option("--json")
  .option("-q, --quiet", "say nothing on stderr while waiting")
  .option(...hurdOpt)
  .action(async (p: string, o) => {
    exitCode = await (await import("./wait.js")).wait(p, o);
  });
program
  .command("spawn")
  .description("run a Linux program as a Hurd process and stay with it")
  .option("--uid <n>", "run it with uid N")
  .option("-q, --quiet")
  .argument("<program...>")
  .option(...hurdOpt)
  .action(async (argv: string[], o) => {
    exitCode = await (await import("./spawn.js")).spawnCmd(argv, o);
  });
program
  .command("rpctrace")
  .description("a live view of the messages the kernel routes, one line per RPC (as the Hurd's rpctrace)")
  .option("--pid <n>", "only process N and the processes it creates")
  .option("--task <t>", "only kernel task T and the tasks it creates")
  .option("--rpc <name...>", "only these RPCs (full name, method name, or part of it)")
  .option("--ns <id>", "only this namespace")
  .option("--json", "one JSON object per message (with its traceId and traceUrl when traced)")
  .option("--links", "end each line with the Jaeger URL of its trace (when traced)")
  .option("--jaeger-url <url>", "the Jaeger UI for --links and --json (default $HURD_JAEGER_URL or http://localhost:16686)")
  .option("-t, --timestamps", "prefix lines with the time")
  .option("-s, --strsize <n>", "cut strings longer than this", "80")
  .option("-n, --count <n>", "stop after n messages")
  .option("-q, --quiet")
  .argument("[program...]", "run PROGRAM as a Hurd process and trace it and its children")
  .option(...hurdOpt)
  .action(async (argv: string[], o) => {
    exitCode = await (await import("./rpctrace.js")).rpctrace(argv, o);
  });
program
  .command("web")
  .description("a live view in the browser: every hurd's processes, the port graph, messages as they flow")
  .option("--listen <host:port>", "where to serve the page", "127.0.0.1:7410")
  .option("--jaeger-url <url>", "the Jaeger UI messages link to (default $HURD_JAEGER_URL or http://localhost:16686)")
  .option("--wait <seconds>", "keep trying to reach the hurd this long (a container started before init)", "0")
  .option("-q, --quiet")
  .option(...hurdOpt)
  .action(async (o) => {
    exitCode = await (await import("./web.js")).webCmd(o);
  });
const sub = program.command("subhurd").description("hurds nested in this one (each with its own proc, auth and init)");
/** A subhurd's limits and policy (the kernel's HurdLimits and HurdPolicy; defaults and errors in the README). */
const limitFlags = (c: Command) =>
  c
    .option("--max-tasks <n>", "tasks alive in it and the hurds nested in it (default 4096)")
    .option("--max-ports <n>", "port names its tasks hold (default 65536)")
    .option("--max-queued-bytes <size>", "bytes of its messages waiting in queues, e.g. 32M (default 32M)")
    .option("--max-children <n>", "hurds nested in it, at any depth (default 64)")
    .option("--policy <list>", "deny-new-tasks, kill-on-limit, closed (comma-separated), or none");
limitFlags(
  sub
    .command("create")
    .description("boot a subhurd NAME nested in the root hurd or in --parent")
    .argument("<name>")
    .option("--parent <name>", "nest it in this subhurd"),
)
  .option(...hurdOpt)
  .action(async (n: string, o) => (await import("./subhurds.js")).subhurdCreate(n, o));
limitFlags(sub.command("set").description("change a subhurd's limits or policy").argument("<name>"))
  .option(...hurdOpt)
  .action(async (n: string, o) => (await import("./subhurds.js")).subhurdSet(n, o));
sub.command("ls").description("list the subhurds").option("--json").option(...hurdOpt).action(async (o) => (await import("./subhurds.js")).subhurdLs(o));
sub
  .command("rm")
  .description("shut a subhurd down cleanly (and those nested in it)")
  .argument("<name>")
  .option(...hurdOpt)
  .action(async (n: string, o) => (await import("./subhurds.js")).subhurdRm(n, o));
program
  .command("call")
  .description("call a Hurd server's RPC through the kernel's gRPC edge: SERVICE/METHOD [JSON], the reply as JSON")
  .argument("[method]", "SERVICE/METHOD, as Process/Getpids (--list names them)")
  .argument("[json]", "the request, proto3 JSON")
  .option("--list", "every method with its MIG id")
  .option("--pid <n>", "a msg call goes to process N's message port")
  .option("--port <name>", "send to this port name of the calling task instead of the default")
  .option("--timeout <ms>", "the call's deadline", "10000")
  .option(...hurdOpt)
  .action(async (m: string | undefined, j: string | undefined, o) => {
    exitCode = await (await import("./call.js")).call(m, j, o);
  });
program.command("shutdown").description("shut the hurd down (startup_reboot)").option(...hurdOpt).action(async (o) => (await import("./shutdown.js")).shutdown(o));

try {
  if (process.argv[2] === "-o" || process.argv[2] === "-e") process.argv.splice(2, 0, "ps");
  await program.parseAsync(process.argv);
  process.exit(exitCode);
} catch (e) {
  // A HurdError comes from a subcommand that has loaded the runtime already.
  const { HurdError } = await import("@hurdmesh/mach");
  const msg = e instanceof CliError ? e.message : e instanceof HurdError ? `${e.errno}: ${e.message}` : (e as Error).message;
  console.error(`hurd: ${msg}`);
  process.exit(1);
}

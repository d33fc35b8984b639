// hurd: boot a hurd and use it, with the habits of procps and psmisc.
// Each subcommand's module is imported when it runs: `hurd --help` loads
// commander alone, `hurd ps` no kernel, OpenTelemetry or NATS (a command is
// started often and waited for; see the `cli` bench rows).
//
// Exit statuses as coreutils': 0 done, 1 failed (one line on stderr), 2 a
// command line the command cannot take (one line, then where help is). A
// closed pipe (`hurd ps | head -3`) ends the command quietly.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { CliError, UsageError } from "./errors.js";
import type { CommandSpec } from "./completion.js";

const program = new Command("hurd").description("boot a hurd and drive it");
// Before any command is added: subcommands inherit both.
program.exitOverride();
program.configureOutput({ outputError: (s, write) => write(`hurd: ${s.replace(/^error: /, "")}`) });
program.version((JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version, "-V, --version", "print the version");
const hurdOpt = ["--hurd <name>", "which hurd (its session file under ~/.hurdmesh)", "hurd"] as const;
const collect = (v: string, prev: string[]) => [...prev, v];
let exitCode = 0;

program
  .command("up")
  .description("boot a hurd (embedded by default; --nats runs every server as its own process)")
  .option("--nats [url]", "each server its own OS process on NATS: a nats-server of its own, or the one at URL (with NATS authorization: see hurd keys nats-config)")
  .option("--nats-insecure", "with --nats URL: a server without NATS authorization (anyone who reaches it can read every token)")
  .option("--nats-keys <file>", "with --nats URL: the NATS keys (default $HURD_NATS_KEYS, then the state directory's)")
  .option("--journal", "with --nats: the kernel's state as a log on JetStream (docs/kernel-log.md)")
  .option("--standby", "with --nats: the log, and a standby kernel that takes over when the leading one dies")
  .option("--grpc <host:port>", "the kernel's gRPC edge", "127.0.0.1:7400")
  .option("--tls-cert <file>", "TLS with this certificate (PEM) for the edge and, with --nats, NATS of its own, reloaded when the file is renewed (default $HURD_TLS_CERT)")
  .option("--tls-key <file>", "its private key (default $HURD_TLS_KEY)")
  .option("--tls-ca <file>", "the CA that signed it, which clients check it against (default $HURD_TLS_CA)")
  .option(...hurdOpt)
  .option("-q, --quiet", "log warnings and errors only")
  .option("--reboot-on-crash", "boot the hurd again when an essential server dies (embedded mode)")
  .option("--web [host:port]", "also serve `hurd web` (default 127.0.0.1:7410)")
  .argument("[command...]", "a program pid 1 runs once the hurd is up")
  .action(async (command: string[], o) => {
    const { up } = await import("./up.js");
    exitCode = await up({
      nats: o.nats,
      natsInsecure: o.natsInsecure,
      natsKeys: o.natsKeys,
      journal: o.journal,
      standby: o.standby,
      grpc: o.grpc,
      tlsCert: o.tlsCert,
      tlsKey: o.tlsKey,
      tlsCa: o.tlsCa,
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
keys
  .command("k8s")
  .description("print every Secret k8s/ needs (NATS's configuration and TLS, the kernel's keys, boot key and edge certificate, each hurd's own boot secret, CA and NATS users): hurd keys k8s --subhurds subhurd-a,subhurd-b | kubectl apply -f -")
  .option("--namespace <ns>", "the namespace of NATS, the kernel and the root hurd", "hurdmesh")
  .option("--system <name>", "the hurdmesh system (HURD_SYSTEM in the manifests)", "hurd")
  .option("--subhurds <names>", "the subhurds, comma-separated (each in namespace hurd-NAME)")
  .option("--cluster-domain <domain>", "the cluster's DNS domain, in the certificates' names", "cluster.local")
  .option("--external-certs", "leave out nats-tls and kernel-tls (cert-manager makes them); --ca names their CA")
  .option("--ca <file>", "the CA certificate of nats-tls and kernel-tls (with --external-certs or --add-subhurds)")
  .option("--nats-cluster <n>", "NATS's pods: 1 (k8s/base), or 3 or 5 for components/nats-cluster (overlays/root-cluster): routes between them, each pod's name in nats-tls, sync_interval: always (default 1)")
  .option("--add-subhurds <names>", "only the Secrets of new subhurds of an install (with --nats-keys, --ca, and --boot-key-file or HURD_BOOT_KEY)")
  .option("--nats-keys <file>", "with --add-subhurds: the install's hurd-nats-keys (nats-keys.json)")
  .option("--boot-key-file <file>", "with --add-subhurds: the install's boot key (hurd-boot-key)")
  .action(async (o) => (await import("./keys-k8s.js")).k8sKeysCommand(o));
keys
  .command("compose")
  .description("make, once, a docker compose deployment's NATS keys, nats-server configuration, role users, edge certificate and boot secret in DIR (the compose file's keys service runs it)")
  .requiredOption("--dir <dir>", "the folder (the keys volume)")
  .option("--system <name>", "the hurdmesh system (HURD_SYSTEM)", process.env.HURD_SYSTEM || "hurd")
  .option("--subhurds <names>", "subhurds with containers of their own, comma-separated", "")
  .option("--edge-hosts <names>", "names and addresses the edge is dialled by besides kernel, localhost and 127.0.0.1, comma-separated", "")
  .option("--jetstream <dir>", "nats-server's JetStream store directory in its container (empty: none)", "")
  .option("--owner <uid:gid>", "give every folder and file to this user (run as root: the volumes' folders are Docker's)")
  .action(async (o) => (await import("./keys-compose.js")).composeKeysCommand(o));
program
  .command("nats-reload")
  .description("tell the nats-server in this PID namespace (a Kubernetes pod's, shareProcessNamespace) to reload when its certificate files are renewed, and check that it serves the new one; runs until SIGTERM (k8s/components/nats-cert-reload)")
  .requiredOption("--cert <file>", "nats-server's certificate (PEM), as it reads it")
  .requiredOption("--key <file>", "its private key")
  .option("--ca <file>", "the CA clients check it against: a renewal it did not sign is refused")
  .option("--name <name>", "the program to signal, as it was started", "nats-server")
  .option("--config <file>", "only the one started with this configuration file (several in the namespace)")
  .option("--server <host:port>", "where it serves clients, asked which certificate it serves after a reload", "127.0.0.1:4222")
  .option("--wait <secs>", "how long to wait at start for it to appear", "30")
  .option("--health <host:port>", "answer GET /healthz there (the kubelet's probes)")
  .action(async (o) => {
    exitCode = await (await import("./nats-reload.js")).natsReload(o);
  });
program
  .command("ps")
  .description("list processes, as procps's ps (UNIX -ef, -eo FORMAT, -p, -u, --sort; BSD aux)")
  .usage("[-ef] [-o FORMAT] [-p PIDS] [-u USERS] [--sort KEYS] [--json] | aux")
  .argument("[bsd...]", "BSD options as one word: aux, ax, u")
  .option("-e", "every process (the default: a hurd has no terminals to select by)")
  .option("-A", "every process, as -e")
  .option("-f", "full format: UID PID PPID STIME TTY TIME CMD")
  .option("-o, --format <format>", "format keywords, e.g. pid,ppid,user,stat,etime,comm or pid=,args (empty header); several -o add up", collect, [])
  .option("-p, --pid <pids>", "only these pids (comma-separated; repeatable)", collect, [])
  .option("-u, --user <users>", "only these users, by uid or name (comma-separated; repeatable)", collect, [])
  .option("--sort <keys>", "sort by format keywords, - for descending: --sort=-etime,pid")
  .option("--no-headers", "print no header line")
  .option("--json", "one JSON object per process (packages/cli/schema/process.json)")
  .option("--all-hurds", "also the processes of nested subhurds (NS column)")
  .option(...hurdOpt)
  .addHelpText(
    "after",
    "\nFormat keywords: pid ppid pgid sid uid user comm args (cmd, command) etime etimes stime stat s tty time nlwp\n" +
      "  serial task ns ports msgs sent rcvd (hurdmesh's). TIME is CPU time, which hurdmesh tasks do not account: '-'.\n" +
      "  ETIME (ELAPSED) is the time since the process started.",
  )
  .action(async (bsd: string[], o) => {
    exitCode = await (await import("./ps.js")).ps(bsd, { o: o.format, f: o.f, p: o.pid, u: o.user, sort: o.sort, headers: o.headers, json: o.json, hurd: o.hurd, allHurds: o.allHurds });
  });
program
  .command("pstree")
  .description("processes as a tree")
  .option("--json", "one JSON tree per root process (packages/cli/schema/pstree.json)")
  .option(...hurdOpt)
  .action(async (o) => (await import("./ps.js")).pstree(o));
program
  .command("top")
  .description("the process table, refreshed; interactive in a terminal (h for its keys)")
  .option("-d, --delay <secs>", "seconds between screens", "3")
  .option("-n, --iterations <n>", "stop after n screens")
  .option("-b, --batch", "batch mode: plain screens one after another, for pipes and files")
  .option("-p, --pid <pids>", "only these pids (comma-separated; repeatable)", collect, [])
  .option("-u, --user <user>", "only this user's processes (uid or name)")
  .option("--json", "with -b: one JSON object per screen (packages/cli/schema/top.json)")
  .option(...hurdOpt)
  .action(async (o) => (await import("./top.js")).top(o));

// procps's and psmisc's option syntax (-9, -TERM, negative pids, bundles) is
// read by args.ts (see `raw` below); these declarations are the help and the
// completion.
program
  .command("kill")
  .description("send a signal to processes, or to process groups given as -PGID (procps's kill)")
  .usage("[-s SIG | -SIG | -n NUM] PID|-PGID...  |  -l [SIG...]  |  -L")
  .option("-s, --signal <sig>", "the signal, by name or number (default TERM)")
  .option("-n <num>", "the signal, by number")
  .option("-l, --list [sig]", "list the signal names, or translate a name to its number and back")
  .option("-L, --table", "the signal names and numbers as a table")
  .option(...hurdOpt)
  .argument("[pid...]", "pids; -PGID for a process group (after the signal, or after --)");
program
  .command("killall")
  .description("signal processes by name, race-free through process handles; silent on success (psmisc's killall)")
  .usage("[-SIG | -s SIG] [-eIqrvw] [-u USER] NAME...")
  .option("-s, --signal <sig>", "the signal, by name or number (default TERM)")
  .option("-e, --exact", "exact names (names are never truncated here)")
  .option("-I, --ignore-case", "match names ignoring case")
  .option("-r, --regexp", "NAME is an extended regular expression")
  .option("-u, --user <user>", "only this user's processes")
  .option("-w, --wait", "wait until every process signalled has ended")
  .option("-q, --quiet", "say nothing when nothing matched")
  .option("-v, --verbose", "say what was signalled")
  .option("-l, --list", "list the signal names")
  .option("--json", "one line per process (packages/cli/schema/signal-result.json)")
  .option(...hurdOpt)
  .argument("[name...]");
program
  .command("pgrep")
  .description("pids of processes matching a pattern and conditions (procps's pgrep)")
  .usage("[-flaxivnoc] [-u USERS] [-P PPIDS] [-g PGIDS] [-s SIDS] [-d DELIM] [PATTERN]")
  .option("-f, --full", "match the whole command line, not just the name")
  .option("-x, --exact", "the pattern must match all of the name")
  .option("-i, --ignore-case", "match ignoring case")
  .option("-v, --inverse", "those that do not match")
  .option("-u, --euid <users>", "only these users (uids or names)")
  .option("-U, --uid <users>", "the same (real and effective ids are one here)")
  .option("-P, --parent <ppids>", "only children of these")
  .option("-g, --pgroup <pgids>", "only in these process groups")
  .option("-s, --session <sids>", "only in these sessions")
  .option("-n, --newest", "only the newest")
  .option("-o, --oldest", "only the oldest")
  .option("-l, --list-name", "the name beside each pid")
  .option("-a, --list-full", "the command line beside each pid")
  .option("-c, --count", "how many, not which")
  .option("-d, --delimiter <delim>", "between pids (default newline)")
  .option("--json", "one JSON object per process (packages/cli/schema/process.json)")
  .option(...hurdOpt)
  .argument("[pattern]", "an extended regular expression");
program
  .command("pkill")
  .description("signal processes matching a pattern, race-free through process handles (procps's pkill)")
  .usage("[-SIG | --signal SIG] [-fxivnoce] [-u USERS] [-P PPIDS] [-g PGIDS] [-s SIDS] [PATTERN]")
  .option("--signal <sig>", "the signal, by name or number (default TERM)")
  .option("-f, --full", "match the whole command line, not just the name")
  .option("-x, --exact", "the pattern must match all of the name")
  .option("-i, --ignore-case", "match ignoring case")
  .option("-v, --inverse", "those that do not match")
  .option("-u, --euid <users>", "only these users (uids or names)")
  .option("-U, --uid <users>", "the same (real and effective ids are one here)")
  .option("-P, --parent <ppids>", "only children of these")
  .option("-g, --pgroup <pgids>", "only in these process groups")
  .option("-s, --session <sids>", "only in these sessions")
  .option("-n, --newest", "only the newest")
  .option("-o, --oldest", "only the oldest")
  .option("-c, --count", "print how many were signalled")
  .option("-e, --echo", "say what was signalled")
  .option("--json", "one line per process (packages/cli/schema/signal-result.json)")
  .option(...hurdOpt)
  .argument("[pattern]", "an extended regular expression");
program
  .command("pidof")
  .description("pids of the programs named, newest first (sysvinit's pidof)")
  .usage("[-sq] [-o PID] [-d SEP] NAME...")
  .option("-s, --single-shot", "one pid only")
  .option("-q, --quiet", "print nothing: the exit status says")
  .option("-o, --omit-pid <pid>", "leave this pid out (%PPID: this command's parent)")
  .option("-d, --separator <sep>", "between pids (default space)")
  .option(...hurdOpt)
  .argument("<name...>");

program
  .command("wait")
  .description("wait for PID to end and print how it ended")
  .argument("<pid>")
  .option("--json", "one JSON object (packages/cli/schema/wait.json)")
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
  .option("--json", "one JSON object per message, with its traceId and traceUrl when traced (packages/cli/schema/rpctrace.json)")
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
sub.command("ls").description("list the subhurds, each resource's usage against its limit").option("--json", "one JSON object per subhurd (packages/cli/schema/subhurd.json)").option(...hurdOpt).action(async (o) => (await import("./subhurds.js")).subhurdLs(o));
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
const k8s = program.command("k8s").description("Kubernetes manifests (k8s/)");
k8s
  .command("new-subhurd")
  .description("a subhurd's kustomize overlay: printed, or written to k8s/overlays/NAME and listed with --write")
  .argument("<name>", "the subhurd's name (its namespace is hurd-NAME)")
  .option("--parent <name>", "nest it in this subhurd rather than the root hurd")
  .option("--write", "write k8s/overlays/NAME/kustomization.yaml and list it in k8s/kustomization.yaml")
  .option("--dir <path>", "the kustomize tree", "k8s")
  .action(async (n: string, o) => (await import("./k8s.js")).newSubhurd(n, o));
program
  .command("completion")
  .description("a completion script: source <(hurd completion bash); zsh and fish alike")
  .argument("<shell>", "bash, zsh or fish")
  .action(async (shell: string) => (await import("./completion.js")).completion(shell, specs(program)));

/** The commands as the completion scripts see them. */
function specs(c: Command): CommandSpec[] {
  return c.commands.map((x) => ({
    name: x.name(),
    description: x.description(),
    options: [...x.options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f)), "--help"],
    words: x.name() === "completion" ? ["bash", "zsh", "fish"].map((name) => ({ name, description: `${name} completion`, options: [], words: [] })) : specs(x),
  }));
}

/** Commands whose command lines args.ts reads (procps and psmisc syntax); commander shows their help only. */
const raw: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  kill: async () => (await import("./kill.js")).kill,
  killall: async () => (await import("./kill.js")).killall,
  pkill: async () => (await import("./kill.js")).pkill,
  pgrep: async () => (await import("./pgrep.js")).pgrep,
  pidof: async () => (await import("./pgrep.js")).pidof,
};

const argv = process.argv.slice(2);
// `hurd -o pid,comm` and `hurd -e` are `hurd ps ...` (the short form the README has shown).
if (argv[0] === "-o" || argv[0] === "-e") argv.unshift("ps");
const cmd = argv[0] ?? "";

// A reader that went away (`hurd ps --json | head -3`) is not an error: stop
// quietly with the status a process killed by SIGPIPE has (Node ignores the
// signal, so the write fails instead).
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(128 + 13);
  throw e;
});

try {
  const words = argv.slice(1);
  const end = words.indexOf("--");
  const wantsHelp = (end < 0 ? words : words.slice(0, end)).some((w) => w === "--help" || (w === "-h" && cmd !== "kill"));
  if (raw[cmd] && !wantsHelp) exitCode = await (await raw[cmd]())(words);
  else await program.parseAsync(argv, { from: "user" });
  process.exit(exitCode);
} catch (e) {
  process.exit(failed(e));
}

/** One line on stderr and the exit status: 2 for a command line, 1 for a failure. */
function failed(e: unknown): number {
  const tryHelp = () => process.stderr.write(`Try 'hurd${program.commands.some((c) => c.name() === cmd) ? ` ${cmd}` : ""} --help' for more information.\n`);
  if (e instanceof CommanderError) {
    // --help and --version end here too, with status 0; commander has printed its message.
    if (e.exitCode === 0) return 0;
    tryHelp();
    return 2;
  }
  if (e instanceof CliError) {
    process.stderr.write(`hurd: ${e.message}\n`);
    if (e instanceof UsageError) tryHelp();
    return e.exitCode;
  }
  // A HurdError's message starts with its errno name.
  process.stderr.write(`hurd: ${(e as Error).message}\n`);
  return 1;
}

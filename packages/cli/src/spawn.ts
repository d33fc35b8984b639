// hurd spawn [--uid N] -- PROGRAM ARGS: runs a real Linux program as a Hurd
// process (a child of this command's process) and stays with it, passing
// signals, until it ends; its Hurd exit status is this command's.
import { client, portAt, Rights } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { runProgram, W, describeStatus } from "@hurdmesh/libhurd";
import { CliError, connect, NAMES } from "./session.js";

export async function spawnCmd(argv: string[], o: { uid?: string; hurd?: string; quiet?: boolean }): Promise<number> {
  if (argv.length === 0) throw new CliError("usage: hurd spawn [--uid N] -- PROGRAM [ARGS...]");
  const c = await connect(o.hurd, "spawn");
  try {
    let auth = 0;
    if (o.uid !== undefined) {
      const uid = Number(o.uid);
      if (!Number.isInteger(uid) || uid < 0) throw new CliError(`not a uid: ${o.uid}`);
      // auth_makeauth from the root handle: effective and available uid N (and gid N).
      const rep = await client(c.task, AuthDefinition, NAMES.auth).makeAuth({ otherHandles: [], euids: [uid], auids: [uid, uid], egids: [uid], agids: [uid, uid] });
      auth = portAt(rep, rep.newhandle);
    }
    const run = await runProgram(c.me, argv, { attach: c.attach, auth: auth || undefined });
    if (!o.quiet) process.stderr.write(`hurd: ${argv[0]} is pid ${run.pid}\n`);
    // A Ctrl-C here goes to the program, as a shell's foreground job.
    process.on("SIGINT", () => run.child.kill("SIGINT"));
    process.on("SIGTERM", () => run.child.kill("SIGTERM"));
    const status = await run.done;
    if (!o.quiet) process.stderr.write(`hurd: pid ${run.pid} ${describeStatus(status)}\n`);
    void Rights;
    return W.ifexited(status) ? W.exitstatus(status) : 128 + W.termsig(status);
  } finally {
    await c.close();
  }
}

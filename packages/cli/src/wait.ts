// hurd wait PID: waits for the process through a handle (not its parent, so
// it does not reap) and prints how it ended; the exit status is ours.
import { describeStatus, W } from "@hurdmesh/libhurd";
import { UsageError } from "./errors.js";
import { connect } from "./session.js";

export async function wait(target: string, o: { hurd?: string; json?: boolean; quiet?: boolean }): Promise<number> {
  const pid = Number(target);
  if (!Number.isInteger(pid) || pid <= 0) throw new UsageError(`not a pid: ${target}`);
  const c = await connect(o.hurd, "wait");
  try {
    const h = await c.me.open(pid);
    // From here the process cannot end unseen, nor its pid be reused under us: say so, as spawn says its pid.
    if (!o.quiet) process.stderr.write(`hurd: waiting for pid ${pid}\n`);
    const r = await h.wait();
    await h.close();
    if (o.json) console.log(JSON.stringify({ pid, status: r.status, description: describeStatus(r.status) }));
    else console.log(`${pid} ${describeStatus(r.status)}`);
    return W.ifexited(r.status) ? W.exitstatus(r.status) : 128 + W.termsig(r.status);
  } finally {
    await c.close();
  }
}

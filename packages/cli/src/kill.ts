// hurd kill and hurd killall. killall is race-free: it takes a handle on
// each matching process incarnation (pid and serial from one listing) and
// signals through the handle, so a pid recycled meanwhile is never hit.
import { signalNumber, isErrnoLike } from "./util.js";
import { CliError, connect } from "./session.js";
import { allProcs } from "./list.js";

export async function kill(target: string, o: { signal?: string; hurd?: string }): Promise<void> {
  const sig = signalNumber(o.signal ?? "TERM");
  const pid = Number(target);
  if (!Number.isInteger(pid) || pid === 0) throw new CliError(`not a pid or -pgrp: ${target}`);
  const c = await connect(o.hurd, "kill");
  try {
    await c.me.kill(pid, sig);
  } finally {
    await c.close();
  }
}

export async function killall(name: string, o: { signal?: string; hurd?: string; json?: boolean }): Promise<number> {
  const sig = signalNumber(o.signal ?? "TERM");
  const c = await connect(o.hurd, "killall");
  try {
    const procs = await allProcs(c.me);
    const base = (s: string) => s.split(/\s+/)[0]!.split("/").pop();
    const targets = procs.filter((p) => p.pid !== c.me.pid && !(p.state & 0x100) && (base(p.command) === name || base(p.exe) === name));
    let signalled = 0;
    const results: Array<{ pid: number; serial: number; result: string }> = [];
    for (const p of targets) {
      try {
        const h = await c.me.open(p.pid, p.serial);
        try {
          await h.signal(sig);
          signalled++;
          results.push({ pid: p.pid, serial: p.serial, result: "signalled" });
        } finally {
          await h.close();
        }
      } catch (e) {
        // Gone since the listing (ESRCH), or not ours (EPERM): skipped, never another process.
        results.push({ pid: p.pid, serial: p.serial, result: isErrnoLike(e) });
      }
    }
    if (o.json) for (const r of results) console.log(JSON.stringify(r));
    if (signalled === 0) throw new CliError(`${name}: no process found`);
    return signalled;
  } finally {
    await c.close();
  }
}

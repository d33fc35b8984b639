// What the kernel's resource accounting costs (quota.ts: every task, name
// and queued message charged up the namespace chain and checked against
// the hurds' limits): the brokered Ping RPC and the process lifecycle with
// accounting on, as every kernel runs, and off (a kernel made with
// benchOnlyNoAccounting), on the in-process hub and on NATS (authorization
// on, as deployed). Subjects are interleaved, so on and off share the
// machine's conditions; main's targets judge on against off.
import { WNOHANG } from "@hurdmesh/libhurd";
import { bootRig, type Rig as BootedRig } from "../rig.js";
import type { Subject } from "../harness.js";
import { PING, rig, type Rig as PingRig } from "./kernel.js";
import { LIFECYCLE, lifecycle } from "./proc.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

export type AccountingMode = "on" | "off";
export const accountingName = (what: string, mode: AccountingMode) => `${what} | accounting ${mode}`;

export const accounting: RowGroup = {
  name: "accounting",
  needsNats: true,
  async open(ctx: BenchContext): Promise<Opened> {
    const pings: PingRig[] = [];
    const lives: BootedRig[] = [];
    const subjects: Subject[] = [];
    try {
      for (const kind of ["local", "nats"] as const)
        for (const mode of ["on", "off"] as const) {
          const ko = { benchOnlyNoAccounting: mode === "off" };
          const p = await rig(kind, ctx, ko);
          pings.push(p);
          const l = await bootRig(kind, ctx, ctx.log, ko);
          lives.push(l);
          subjects.push({ name: accountingName(PING, mode), bus: kind, call: p.ping });
          subjects.push({ name: accountingName(LIFECYCLE, mode), bus: kind, call: lifecycle(l) });
        }
    } catch (e) {
      await close(pings, lives);
      throw e;
    }
    return { subjects, close: () => close(pings, lives) };
  },
};

async function close(pings: PingRig[], lives: BootedRig[]): Promise<void> {
  for (const p of pings) await p.close().catch(() => {});
  for (const l of lives) {
    // Reap what the last turns left behind, then stop.
    while (await l.parent.wait(-1, WNOHANG).catch(() => null));
    await l.close().catch(() => {});
  }
}

// The kernel's log's cost (issue 18; docs/kernel-log.md): the brokered Ping
// and the process lifecycle on NATS with the kernel leading with its log on
// JetStream (hurd-kernel --journal: every burst of traps appended and
// acknowledged before anything it caused is sent) beside the same without
// it, interleaved in one run on the same nats-server. On the bench's
// anonymous server, which runs JetStream, for both.
import { bootRig, NATS_AUTH_OFF } from "../rig.js";
import { lifecycle, LIFECYCLE } from "./proc.js";
import { PING, rig } from "./kernel.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

/** A row's name with the log on or off. */
export function failoverName(what: string, log: "on" | "off"): string {
  return `${what}, kernel log ${log}`;
}

export const failover: RowGroup = {
  name: "failover",
  async open(ctx: BenchContext): Promise<Opened> {
    const say = (l: string) => ctx.log(`kernel: ${l}`);
    const pingOff = await rig(NATS_AUTH_OFF, ctx);
    const pingOn = await rig(NATS_AUTH_OFF, ctx, { journal: true });
    const lifeOff = await bootRig(NATS_AUTH_OFF, ctx, say);
    const lifeOn = await bootRig(NATS_AUTH_OFF, ctx, say, { journal: true });
    return {
      subjects: [
        { name: failoverName(PING, "off"), bus: NATS_AUTH_OFF, call: pingOff.ping },
        { name: failoverName(PING, "on"), bus: NATS_AUTH_OFF, call: pingOn.ping },
        { name: failoverName(LIFECYCLE, "off"), bus: NATS_AUTH_OFF, call: lifecycle(lifeOff) },
        { name: failoverName(LIFECYCLE, "on"), bus: NATS_AUTH_OFF, call: lifecycle(lifeOn) },
      ],
      async close() {
        for (const r of [lifeOff, lifeOn]) await r.close();
        await pingOff.close();
        await pingOn.close();
      },
    };
  },
};

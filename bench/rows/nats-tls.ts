// What NATS's TLS costs (issue 15): the brokered Ping and the process
// lifecycle on a nats-server with authorization and TLS (as compose and
// Kubernetes run it: operator mode, TLS only, every connection checking the
// certificate against a private CA), with authorization and no TLS (as
// `hurd up --nats` runs it on loopback), and with neither, interleaved in
// one run so that the ratios hold on a noisy machine. Its TLS nats-server
// is its own, started here and stopped with the group.
import { WNOHANG } from "@hurdmesh/libhurd";
import { startSecuredNats } from "../nats.js";
import { bootRig, NATS_AUTH_OFF } from "../rig.js";
import { PING, rig } from "./kernel.js";
import { LIFECYCLE, lifecycle } from "./proc.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

/** The bus labels of this group's rows. */
export const AUTH_TLS = "nats, auth+TLS";
export const AUTH_NO_TLS = "nats, auth, no TLS";
export const NEITHER = "nats, no auth, no TLS";

export const natsTls: RowGroup = {
  name: "nats-tls",
  async open(ctx: BenchContext): Promise<Opened> {
    const server = await startSecuredNats({ tls: true });
    const tlsCtx = { ...ctx, natsAuth: { url: server.url, keys: server.keys } };
    const opened: Array<{ close(): Promise<void> }> = [];
    try {
      const pingTls = await rig("nats", tlsCtx, { tls: server.tls });
      opened.push(pingTls);
      const pingAuth = await rig("nats", ctx);
      opened.push(pingAuth);
      const pingOff = await rig(NATS_AUTH_OFF, ctx);
      opened.push(pingOff);
      const lifeTls = await bootRig("nats", tlsCtx, ctx.log, { tls: server.tls });
      const lifeAuth = await bootRig("nats", ctx, ctx.log);
      const lifeOff = await bootRig(NATS_AUTH_OFF, ctx, ctx.log);
      for (const r of [lifeTls, lifeAuth, lifeOff])
        opened.push({
          async close() {
            // Reap what the last turns left behind, then stop.
            while (await r.parent.wait(-1, WNOHANG).catch(() => null));
            await r.close();
          },
        });
      return {
        subjects: [
          { name: PING, bus: AUTH_TLS, call: pingTls.ping },
          { name: PING, bus: AUTH_NO_TLS, call: pingAuth.ping },
          { name: PING, bus: NEITHER, call: pingOff.ping },
          { name: LIFECYCLE, bus: AUTH_TLS, call: lifecycle(lifeTls) },
          { name: LIFECYCLE, bus: AUTH_NO_TLS, call: lifecycle(lifeAuth) },
          { name: LIFECYCLE, bus: NEITHER, call: lifecycle(lifeOff) },
        ],
        async close() {
          for (const o of opened) await o.close().catch(() => {});
          await server.stop();
        },
      };
    } catch (e) {
      for (const o of opened) await o.close().catch(() => {});
      await server.stop();
      throw e;
    }
  },
};

// The baseline: nats.js request-reply (default options) with a 16-byte
// payload against a responder on its own connection to the same nats-server.
// Everything the kernel rows add is measured against this.
import { connect } from "@nats-io/transport-node";
import type { RowGroup } from "./types.js";

export const RAW_NATS = "raw NATS request-reply 16B";

export const rawNats: RowGroup = {
  name: "raw-nats",
  needsNats: true,
  async open(ctx) {
    const responder = await connect({ servers: ctx.natsUrl, name: "bench-responder" });
    const requester = await connect({ servers: ctx.natsUrl, name: "bench-requester" });
    const subject = "bench.raw.echo";
    responder.subscribe(subject, { callback: (_e, m) => void m.respond(m.data) });
    await responder.flush();
    const payload = new Uint8Array(16);
    return {
      subjects: [{ name: RAW_NATS, bus: "nats", call: () => requester.request(subject, payload, { timeout: 5000 }) }],
      async close() {
        await requester.close();
        await responder.close();
      },
    };
  },
};

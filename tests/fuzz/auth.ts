// auth, fuzzed: every Auth RPC from two unprivileged tasks, each holding
// a handle of its own and both holding one rendezvous port, so that
// auth_user_authenticate and auth_server_authenticate meet, miss, time out
// and interleave in every order a batch's concurrency gives them. At a
// batch's end both tasks die; every handle they made must go (auth's
// handle count back to its baseline once the no-senders notifications are
// in), auth's space must hold no right of theirs, and the kernel's books
// must balance.
import { MsgType, PortRight } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import type { BusKind } from "../harness.js";
import { World, type Party } from "../auth/world.js";
import { Violation, settles, type FuzzTarget } from "./core.js";
import { checkBooks, rpcCase, rpcTable, sendRpcs, type RpcCase } from "./rpc.js";

const TABLE = rpcTable([{ name: "Auth", def: AuthDefinition }]);

export interface AuthWorld {
  w: World;
  handles: number;
  refs: string[];
  n: number;
}

export const authTarget: FuzzTarget<AuthWorld, RpcCase> = {
  name: "auth",
  batchSize: 512,
  async start(kind: BusKind) {
    // Short waits: an unmatched rendezvous holds its caller until then.
    const w = await World.start(kind, { rendezvousWaitMs: 50, maxRendezvousWaitMs: 200, deadNameGraceMs: 20 });
    return { w, handles: w.auth.handleCount, refs: await w.authRefs(), n: 0 };
  },
  entries: () => TABLE.entries,
  message: () => rpcCase(TABLE, 2),
  async run(aw, batch, stats) {
    const { w } = aw;
    // The baseline of this batch: a leak of an earlier one (while shrinking) is not this one's.
    aw.handles = w.auth.handleCount;
    aw.refs = await w.authRefs();
    const n = aw.n++;
    const p = await w.party(`fuzz-user-${n}`);
    const q = await w.party(`fuzz-server-${n}`);
    const parties: Party[] = [p, q];
    try {
      const hp = await w.handle(p, { euids: [1000 + (n % 5)], auids: [1000], egids: [100], agids: [] });
      const hq = await w.handle(q, { euids: [0], auids: [], egids: [], agids: [] });
      // The rendezvous port: p's receive right, a send right of it in q's space.
      const rv = await p.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
      await w.give(p, rv, MsgType.MSG_TYPE_MAKE_SEND, q);
      await sendRpcs(
        w.h.kernel,
        TABLE,
        [
          { task: p.task, dests: { Auth: [hp] } },
          { task: q.task, dests: { Auth: [hq] } },
        ],
        batch,
        stats,
        { timeoutMs: 150, inFlight: 32 },
      );
    } finally {
      for (const x of parties) {
        await w.boot.task.taskTerminate(x.port).catch(() => {});
        await w.boot.task.deallocate(x.port).catch(() => {});
      }
    }
  },
  async check(aw) {
    const { w } = aw;
    await settles(
      () => w.auth.handleCount === aw.handles,
      "auth's handle count did not return to its baseline once the fuzzers' rights were gone",
      () => `baseline ${aw.handles}, now ${w.auth.handleCount}`,
    );
    let now: string[] = [];
    await settles(
      async () => (now = await w.authRefs()).join(" ") === aw.refs.join(" "),
      "auth's space holds rights of tasks that are gone",
      () => `baseline [${aw.refs.join(" ")}], now [${now.join(" ")}]`,
    );
    const ids = await w.authc(w.boot.task, w.root).getIds({}, { timeoutMs: 3000 });
    if (!ids.euids.includes(0)) throw new Violation("auth no longer answers the root handle with uid 0");
    checkBooks(w.h.kernel, "after an auth batch");
  },
  close: (aw) => aw.w.close(),
};

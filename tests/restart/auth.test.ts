// auth restarts in place: its process goes (as SIGKILL would leave it: no
// goodbye, the task's lease lapses) in the middle of a load of makeauth and
// getids, a new process attaches to the same task and rebuilds from its
// store (JetStream on NATS, memory in process), and every handle a caller
// holds answers with its ids as before; every call of the load either
// completed or failed with a clear error, none hung.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { client, HurdError, MsgType, portAt, type Task } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { JetStreamStoreLog } from "@hurdmesh/mach/nats";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { Auth, LogAuthStore, MemoryAuthStore, type AuthStore } from "@hurdmesh/auth";
import { busKinds, natsBus, natsKeys, startHurd, until, type Hurd } from "../harness.js";

// Short so that a round's lapse comes soon, long enough that the test's own
// tasks (boot, the load's caller) keep theirs on a loaded machine.
const LEASE = 1000;
const GRACE = 4000;
/** Restarts per bus in the default suite. */
const ROUNDS = Number(process.env.HURD_RESTART_ROUNDS ?? 20);
/** Errors a caller of a restarting server may see: each says the server went, none is a hang. */
const CLEAR = new Set(["MIG_SERVER_DIED", "KERN_INVALID_TASK"]);

for (const kind of busKinds) {
  describe(`auth restart in place (${kind} bus)`, () => {
    let h: Hurd;
    let boot: Task;
    let store: AuthStore;
    /** A new process's store: on NATS a log writer of its own (each new one fences the one before), in memory the same map. */
    let storeOf: () => Promise<AuthStore> = async () => store;
    let authTask: Task;
    let auth: Auth;
    let ids: { taskId: number; token: string; port: number };
    let root = 0;
    /** The store's own connection (NATS), closed after. */
    let storeBus: { close(): Promise<void> } | null = null;
    before(async () => {
      h = await startHurd(kind, { leaseMs: LEASE, restartGraceMs: GRACE });
      boot = await h.task("boot");
      const r = await boot.taskCreate("auth");
      ids = { taskId: r.taskId, token: r.token, port: r.task };
      authTask = await h.attach(r.taskId, r.token, { hold: true });
      await authTask.call("taskSetEssential", { task: 0, essential: true });
      // auth's store user reaches auth's bucket only (the subject map's "store" role).
      const system = h.kernel.config.system;
      if (kind === "nats") {
        const sb = await natsBus(system, { kind: "store", hurd: "", server: "auth" });
        storeBus = sb;
        storeOf = async () => new LogAuthStore(await JetStreamStoreLog.open(sb.nc, system, "", "auth", { inboxPrefix: natsKeys() ? inboxOf(system, { kind: "store", hurd: "", server: "auth" }) : undefined }));
        store = await storeOf();
      } else store = new MemoryAuthStore();
      auth = await Auth.start(authTask, {}, store);
      assert.equal(auth.restarted, false);
      root = (await boot.extractRight(r.task, auth.root, MsgType.MSG_TYPE_MAKE_SEND)).name;
    });
    after(async () => {
      await h.close();
      await storeBus?.close();
    });

    it(`keeps every handle through ${ROUNDS} restarts under a makeauth/getids load; every call completes or fails clearly`, async () => {
      const authc = (t: Task, name: number) => client(t, AuthDefinition, name);
      /** Handles a caller got: its name in boot's space -> the euid it asked for. */
      const held = new Map<number, number>();
      const failures = new Map<string, number>();
      let calls = 0;
      let euid = 1000;
      let stop = false;
      const note = async (e: unknown) => {
        const n = HurdError.from(e).errno;
        failures.set(n, (failures.get(n) ?? 0) + 1);
        // A call that fails without a round trip (the caller's own task gone)
        // would spin the loop on microtasks alone and starve every timer:
        // yield, and stop the load if the caller itself is gone.
        if (boot.detached) {
          stop = true;
          throw new Error(`the load's own task (boot) was ended: ${(e as Error).message}`);
        }
        await new Promise((r) => setImmediate(r));
      };
      const worker = async () => {
        while (!stop) {
          const want = euid++;
          calls++;
          try {
            const rep = await authc(boot, root).makeAuth({ euids: [want], auids: [want], egids: [100], agids: [] });
            held.set(portAt(rep, rep.newhandle), want);
          } catch (e) {
            await note(e);
          }
          const some = [...held.keys()];
          const pick = some[want % some.length];
          if (pick !== undefined) {
            calls++;
            try {
              const g = await authc(boot, pick).getIds({});
              assert.deepEqual(g.euids, [held.get(pick)]);
            } catch (e) {
              await note(e);
            }
          }
        }
      };
      const load = Promise.all([worker(), worker(), worker(), worker()]);
      const rounds = async () => {
        for (let round = 0; round < ROUNDS; round++) {
          await until(() => held.size >= (round + 1) * 20, 20_000, "some handles made");
          // The process goes as SIGKILL leaves it: no detach, its lease lapses.
          authTask.abandon();
          const t0 = Date.now();
          await until(() => h.kernel.lapsed.size === 1, LEASE * 10, "the lapse");
          authTask = await h.attach(ids.taskId, ids.token, { hold: true });
          auth = await Auth.start(authTask, {}, await storeOf());
          assert.equal(auth.restarted, true);
          assert.equal(authTask.id, ids.taskId);
          assert.ok(Date.now() - t0 < GRACE);
        }
      };
      // A failed round must not leave the load running (the file would never end).
      try {
        await rounds();
      } finally {
        stop = true;
        await load;
      }
      for (const [n] of failures) assert.ok(CLEAR.has(n), `a call failed with ${n}: ${JSON.stringify([...failures])}`);
      // Every handle a caller holds answers with its ids.
      for (const [name, euid] of held) assert.deepEqual((await authc(boot, name).getIds({})).euids, [euid]);
      // auth's table is the callers' handles and the root, nothing more (a
      // handle whose reply was lost went at the restart).
      assert.equal(auth.handleCount, held.size + 1, `failures ${JSON.stringify([...failures])} over ${calls} calls`);
      // A handle whose last send right goes is freed by the new process.
      const [first] = held.keys();
      await boot.deallocate(first!);
      await until(() => auth.handleCount === held.size, 5000, "no-senders on the restarted auth");
    });
  });
}

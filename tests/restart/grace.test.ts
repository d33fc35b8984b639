// Restart in place, the kernel's side (services/kernel/src/reincarnation.ts):
// an essential task outlives its process for the restart grace, its ports
// queuing, and a new process attaches to it with the same token; one
// process holds a task at a time; past the grace the task dies as before.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, NotifyId, type Received, type Task } from "@hurdmesh/mach";
import { DeadNameNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { busKinds, startHurd, until, type Hurd } from "../harness.js";
import { inbox, nth, rejectsWith } from "../kernel/kit.js";

const LEASE = 300;
const GRACE = 1200;

/** Answers every request on `name` with its own body (a server's reply, MOVE_SEND_ONCE). */
function echo(t: Task, name: number): void {
  t.receive(name, (m: Received) => {
    t.send({ destination: m.reply, destinationDisposition: MsgType.MSG_TYPE_MOVE_SEND_ONCE, id: m.id + 100, body: m.body });
  });
}

for (const kind of busKinds) {
  describe(`restart grace (${kind} bus)`, () => {
    let h: Hurd;
    let client: Task;
    before(async () => {
      h = await startHurd(kind, { leaseMs: LEASE, restartGraceMs: GRACE });
      client = await h.task("client");
    });
    after(async () => {
      await h.close();
    });

    /** An essential server task with one service port the client holds a send right to. */
    async function server(name: string) {
      const r = await client.taskCreate(name);
      const s = await h.attach(r.taskId, r.token);
      await s.call("taskSetEssential", { task: 0, essential: true });
      const svc = await s.allocate();
      const send = (await client.extractRight(r.task, svc, MsgType.MSG_TYPE_MAKE_SEND)).name;
      return { s, svc, send, taskPort: r.task, taskId: r.taskId, token: r.token };
    }

    it("an essential task outlives its process: its port queues a request through the lapse, and a new process attaching with the same token answers it on the same name", async () => {
      const x = await server("srv-restart");
      echo(x.s, x.svc);
      assert.equal(new TextDecoder().decode((await client.rpc(x.send, 7000, new TextEncoder().encode("before"))).body), "before");
      x.s.abandon();
      await until(() => h.kernel.lapsed.has(h.kernel.tasks.get(x.taskId)!), 3000, "the lapse");
      // Sent to a task with no process: it waits in the port's queue.
      const answer = client.rpc(x.send, 7000, new TextEncoder().encode("during"), { timeoutMs: 5000 });
      // Held until its handler is set: the queued request is the first delivery.
      const s2 = await h.attach(x.taskId, x.token, { hold: true });
      assert.equal(s2.id, x.taskId);
      echo(s2, x.svc);
      s2.resume();
      assert.equal(new TextDecoder().decode((await answer).body), "during");
      assert.equal(h.kernel.lapsed.size, 0);
      // The new holder keeps the task past several leases (its heartbeats count).
      await new Promise((r) => setTimeout(r, LEASE * 3));
      assert.ok(h.kernel.tasks.has(x.taskId));
      assert.equal(new TextDecoder().decode((await client.rpc(x.send, 7000, new TextEncoder().encode("after"))).body), "after");
    });

    it("one process holds a task at a time: a second attach while the holder's lease is fresh is EBUSY; a non-essential task attaches again as before", async () => {
      const x = await server("srv-busy");
      await rejectsWith(h.attach(x.taskId, x.token), "EBUSY");
      assert.ok(!x.s.detached, "the holder keeps the task");
      const r = await client.taskCreate("plain");
      await h.attach(r.taskId, r.token);
      await h.attach(r.taskId, r.token);
    });

    it("a request the dead process had taken (its reply right in the task's space) is answered MIG_SERVER_DIED at the lapse, not left to its deadline", async () => {
      const x = await server("srv-owed");
      const got = inbox(x.s, x.svc);
      const t0 = Date.now();
      const answer = client.rpc(x.send, 7001, new Uint8Array(0), { timeoutMs: 30_000 });
      await nth(got, 1, "the request in the server's hands");
      x.s.abandon();
      await rejectsWith(answer, "MIG_SERVER_DIED");
      assert.ok(Date.now() - t0 < 10_000);
    });

    it("a new process that takes the task before the sweep has lapsed it (a late sweep, a loaded machine) still has the dead one's owed replies answered MIG_SERVER_DIED", async () => {
      const x = await server("srv-early");
      const got = inbox(x.s, x.svc);
      const answer = client.rpc(x.send, 7002, new Uint8Array(0), { timeoutMs: 8000 });
      // Awaited from the start: the attach below answers it, and on a loaded
      // machine the answer may come before the attach's own reply does.
      const died = rejectsWith(answer, "MIG_SERVER_DIED");
      await nth(got, 1, "the request in the server's hands");
      x.s.abandon();
      // The sweep as late as it gets under load: it never sees this task,
      // whose holder was last heard from more than a lease ago.
      const kt = h.kernel.tasks.get(x.taskId)!;
      h.kernel.leased.delete(kt);
      kt.lastSeen = h.kernel.now() - LEASE - 1;
      const s2 = await h.attach(x.taskId, x.token);
      assert.equal(h.kernel.lapsed.has(kt), false, "taken without a lapse");
      await died;
      // The new holder serves the same name.
      echo(s2, x.svc);
      assert.equal(new TextDecoder().decode((await client.rpc(x.send, 7000, new TextEncoder().encode("after"))).body), "after");
    });

    it("a process stalled past its lease whose task a newer process took handles nothing it gets after the stall: it asks the kernel, sees another holder and ends", async () => {
      const x = await server("srv-stalled");
      let old = 0;
      x.s.receive(x.svc, () => void old++);
      // A SIGSTOP, in-process: its heartbeats stop, its subscription stays
      // (on the bus both processes get the task's deliveries), and its clock
      // says the stall is past the lease the moment it runs again.
      clearInterval((x.s as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
      await until(() => h.kernel.lapsed.has(h.kernel.tasks.get(x.taskId)!), 3000, "the lapse");
      const s2 = await h.attach(x.taskId, x.token);
      echo(s2, x.svc);
      (x.s as unknown as { lastBeat: number }).lastBeat = Date.now() - 10 * LEASE;
      assert.equal(new TextDecoder().decode((await client.rpc(x.send, 7000, new TextEncoder().encode("after"))).body), "after");
      // Over NATS with authorization on, the newer process's login (minted
      // anew) revokes the older's, and nats-server closes its connection: it
      // hears nothing more either way.
      await until(() => x.s.detached || x.s.bus.closed, 3000, "the stalled process to end");
      assert.equal(old, 0, "the stalled process handled a request the newer one serves");
      assert.ok(!s2.detached);
      assert.equal(new TextDecoder().decode((await client.rpc(x.send, 7000, new TextEncoder().encode("again"))).body), "again");
    });

    it("a process stalled past its lease whose task nobody took takes it back and handles what waited", async () => {
      const x = await server("srv-paused");
      echo(x.s, x.svc);
      clearInterval((x.s as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
      await until(() => h.kernel.lapsed.has(h.kernel.tasks.get(x.taskId)!), 3000, "the lapse");
      // Queued while no process holds the task; the stalled one is told of it when it takes the task back.
      const answer = client.rpc(x.send, 7000, new TextEncoder().encode("queued"), { timeoutMs: 5000 });
      // SIGCONT: its heartbeat runs again, long after the last one.
      (x.s as unknown as { lastBeat: number }).lastBeat = Date.now() - 10 * LEASE;
      (x.s as unknown as { startHeartbeat(): void }).startHeartbeat();
      await until(() => !h.kernel.lapsed.has(h.kernel.tasks.get(x.taskId)!), 3000, "the stalled process to take its task back");
      assert.equal(new TextDecoder().decode((await answer).body), "queued");
      assert.ok(!x.s.detached);
    });

    it("answers about its task asked before it took the task back and heard after (lapsed, or the old attach's holder) change nothing: it neither attaches again nor ends", async () => {
      const x = await server("srv-late-answers");
      echo(x.s, x.svc);
      const before = await x.s.taskInfo(0);
      assert.equal(before.attached, true);
      clearInterval((x.s as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
      await until(() => h.kernel.lapsed.has(h.kernel.tasks.get(x.taskId)!), 3000, "the lapse");
      // What the daemon's periodic task_info (daemon.ts) may have in flight as the process takes its task back.
      const lapsed = await x.s.taskInfo(0);
      assert.equal(lapsed.attached, false);
      (x.s as unknown as { lastBeat: number }).lastBeat = Date.now() - 10 * LEASE;
      (x.s as unknown as { startHeartbeat(): void }).startHeartbeat();
      await until(() => !h.kernel.lapsed.has(h.kernel.tasks.get(x.taskId)!), 3000, "the process to take its task back");
      const now = await x.s.taskInfo(0);
      assert.ok(now.holder > before.holder, `a new attach number (${before.holder} -> ${now.holder})`);
      assert.equal(await x.s.heldAsSaid(lapsed), false);
      assert.equal(await x.s.heldAsSaid(before), false);
      assert.ok(!x.s.detached, "the process that took its task back goes on");
      assert.equal((await x.s.taskInfo(0)).holder, now.holder, "and did not attach again");
      assert.equal(new TextDecoder().decode((await client.rpc(x.send, 7000, new TextEncoder().encode("still"))).body), "still");
    });

    it("past the grace the task is terminated as any task whose lease expired: holders of its task port get a dead name", async () => {
      const x = await server("srv-gone");
      const n = await client.allocate();
      const box = inbox(client, n);
      await client.requestNotification(x.taskPort, NotifyId.NOTIFY_DEAD_NAME, n, 0);
      const t0 = Date.now();
      x.s.abandon();
      const m = await (async () => {
        await until(() => box.length > 0, LEASE * 4 + GRACE * 3, "the dead name");
        return box[0]!;
      })();
      assert.equal(DeadNameNotification.decode(m.body).name, x.taskPort);
      const took = Date.now() - t0;
      assert.ok(took >= GRACE, `ended ${took} ms after its process went; the grace is ${GRACE} ms`);
      assert.equal(h.kernel.tasks.has(x.taskId), false);
      await rejectsWith(h.attach(x.taskId, x.token), "KERN_INVALID_TASK");
    });
  });
}

// Launching boot servers that run in containers of their own. Init cannot
// start a process in another container, so each server's container waits on
// the bus (hurd.<system>.launch.<hurd>.<server>) and init hands it the task
// it made (a LaunchOrder: id, token, host port name, and with NATS
// authorization the task's own NATS user; proto/hurd/boot/v1), as the
// Hurd's boot script hands a server its ports on the command line. Until
// the container is up nobody answers, and init asks again: containers may
// start in any order. With authorization on, only init's task may send its
// hurd's orders and only the named server's container may take one.
//
// Restart in place (issue 17): once a server runs, init keeps probing its
// subject (`relaunch`). A probe is answered only when the server's
// container waits again (its process died; the restart policy started it
// again): then init mints the task a fresh login (the first one has
// expired, or is the dead process's) and re-issues the order with
// `restart`, and the new process re-attaches to the same task within the
// kernel's restart grace and carries on from its store.
import { Errno, HurdError, type Bus } from "@hurdmesh/mach";
import { subjectsOf } from "@hurdmesh/mach/internal";
import type { Launcher, LaunchPorts } from "@hurdmesh/init";
import { LaunchOrder, LaunchReply } from "@hurdmesh/proto/hurd/boot/v1/boot";
import type { NatsCredentialsOf } from "../launchers.js";

export { LaunchOrder };

/** A restarted server answers once it re-attached (after the dead process's lease, at most the kernel's grace) and read its state back. */
const RESTART_ANSWER_MS = 150_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const answer = (r: Partial<LaunchReply>) => LaunchReply.encode(LaunchReply.fromPartial(r)).finish();

/** init's side: servers named in `remote` are launched over the bus, the rest by `local`. */
export class BusLauncher implements Launcher {
  constructor(
    private readonly bus: Bus,
    private readonly o: {
      system: string;
      hurd: string;
      remote: string[];
      local: Launcher;
      /** With NATS authorization on: the launched task's own NATS user, which the order carries. */
      credentials?: NatsCredentialsOf;
      /** With NATS authorization on: the user each server writes its state through with (BootClaimReply's), by server. */
      stores?: Record<string, { jwt: string; seed: string; expires: number } | undefined>;
      /** Probe each launched server's subject this often and re-issue its order when its container waits again; 0: never (the default). */
      relaunchMs?: number;
      timeoutMs?: number;
      log?: (l: string) => void;
    },
  ) {}

  private stopped = false;
  /** Re-issues no more orders (the hurd is going down: a container that waits again waits for the next boot). */
  stop(): void {
    this.stopped = true;
  }

  private async order(name: string, taskId: number, token: string, ports: LaunchPorts, restart: boolean): Promise<Uint8Array> {
    // Minted now, for this process: a login revokes the task's previous one.
    const nats = this.o.credentials ? await this.o.credentials(taskId, token) : null;
    return LaunchOrder.encode(LaunchOrder.fromPartial({ taskId, token, hostPriv: ports.hostPriv, nats: nats ?? undefined, store: this.o.stores?.[name], restart })).finish();
  }

  async launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void> {
    if (!this.o.remote.includes(name)) return this.o.local.launch(name, taskId, token, ports);
    const subject = subjectsOf(this.o.system).launch(this.o.hurd, name);
    const order = await this.order(name, taskId, token, ports, false);
    await this.send(name, subject, order);
    if (this.o.relaunchMs) void this.relaunch(name, subject, taskId, token, ports, this.o.relaunchMs);
  }

  /** Until stopped: a container waiting again on `subject` gets the order again, with a fresh login and `restart`. */
  private async relaunch(name: string, subject: string, taskId: number, token: string, ports: LaunchPorts, every: number): Promise<void> {
    const probe = LaunchOrder.encode(LaunchOrder.fromPartial({ probe: true })).finish();
    while (!this.stopped) {
      await sleep(every);
      if (this.stopped) return;
      try {
        // Nobody answers while the server runs (its container took its order and stopped listening).
        await this.bus.request(subject, probe, 5_000);
      } catch {
        continue;
      }
      if (this.stopped) return;
      this.o.log?.(`the ${name} container waits again: re-issuing its launch order on task ${taskId} (restart in place)`);
      try {
        await this.send(name, subject, await this.order(name, taskId, token, ports, true), RESTART_ANSWER_MS);
        this.o.log?.(`${name} restarted in place on task ${taskId}`);
      } catch (e) {
        this.o.log?.(`${name}'s restart in place failed: ${(e as Error).message}`);
      }
    }
  }

  /** `answerMs`: how long the server may take to start (a restarted one first waits for its dead process's lease to lapse). */
  private async send(name: string, subject: string, order: Uint8Array, answerMs = 15_000): Promise<void> {
    const deadline = Date.now() + (this.o.timeoutMs ?? 120_000);
    let said = false;
    for (;;) {
      try {
        const a = LaunchReply.decode(await this.bus.request(subject, order, answerMs));
        if (a.errno === 0) return;
        throw new HurdError(a.errno, `${name} refused its launch: ${a.error}`);
      } catch (e) {
        const h = HurdError.from(e);
        // Nobody waits yet (its container is starting): ask again.
        if (h.code !== Errno.MACH_SEND_INVALID_DEST || Date.now() > deadline) throw h;
        if (!said) this.o.log?.(`waiting for the ${name} container (${subject})`);
        said = true;
        await sleep(250);
      }
    }
  }
}

/**
 * A server container's side: waits for one launch order, runs `start` with
 * it, and answers init. One order only: a server runs one task for its
 * life, and its container is restarted for the next boot.
 */
export function awaitLaunch(bus: Bus, subject: string, start: (o: LaunchOrder) => Promise<void>): Promise<LaunchOrder> {
  return new Promise((resolve, reject) => {
    let taken = false;
    const sub = bus.subscribe(subject, (_s, data, reply) => {
      if (taken || !reply) return;
      let order: LaunchOrder;
      try {
        order = parseOrder(data);
        // Asked whether anyone waits: yes, and still waiting.
        if (order.probe) {
          bus.publish(reply, answer({}));
          return;
        }
      } catch (e) {
        const h = HurdError.from(e);
        bus.publish(reply, answer({ errno: h.code, error: h.message }));
        return;
      }
      taken = true;
      sub.unsubscribe();
      start(order).then(
        () => {
          bus.publish(reply, answer({}));
          resolve(order);
        },
        (e) => {
          const h = HurdError.from(e);
          bus.publish(reply, answer({ errno: h.code, error: h.message }));
          reject(h);
        },
      );
    });
  });
}

function parseOrder(data: Uint8Array): LaunchOrder {
  let v: LaunchOrder;
  try {
    v = LaunchOrder.decode(data);
  } catch (e) {
    throw new HurdError(Errno.EINVAL, "a launch order is a hurd.boot.v1.LaunchOrder", { cause: e });
  }
  if (v.probe) return v;
  if (!(v.taskId > 0) || !v.token) throw new HurdError(Errno.EINVAL, "a launch order needs taskId and token");
  return v;
}

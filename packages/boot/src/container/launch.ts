// Launching boot servers that run in containers of their own. Init cannot
// start a process in another container, so each server's container waits on
// the bus (hurd.<system>.launch.<hurd>.<server>) and init hands it the task
// it made (a LaunchOrder: id, token, host port name, and with NATS
// authorization the task's own NATS user; proto/hurd/boot/v1), as the
// Hurd's boot script hands a server its ports on the command line. Until
// the container is up nobody answers, and init asks again: containers may
// start in any order. With authorization on, only init's task may send its
// hurd's orders and only the named server's container may take one.
import { Errno, HurdError, type Bus } from "@hurdmesh/mach";
import { subjectsOf } from "@hurdmesh/mach/internal";
import type { Launcher, LaunchPorts } from "@hurdmesh/init";
import { LaunchOrder, LaunchReply } from "@hurdmesh/proto/hurd/boot/v1/boot";
import type { NatsCredentialsOf } from "../launchers.js";

export { LaunchOrder };

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
      timeoutMs?: number;
      log?: (l: string) => void;
    },
  ) {}

  async launch(name: string, taskId: number, token: string, ports: LaunchPorts): Promise<void> {
    if (!this.o.remote.includes(name)) return this.o.local.launch(name, taskId, token, ports);
    const subject = subjectsOf(this.o.system).launch(this.o.hurd, name);
    const nats = this.o.credentials ? await this.o.credentials(taskId, token) : null;
    const order = LaunchOrder.encode(LaunchOrder.fromPartial({ taskId, token, hostPriv: ports.hostPriv, nats: nats ?? undefined })).finish();
    const deadline = Date.now() + (this.o.timeoutMs ?? 120_000);
    let said = false;
    for (;;) {
      try {
        const a = LaunchReply.decode(await this.bus.request(subject, order, 15_000));
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
  if (!(v.taskId > 0) || !v.token) throw new HurdError(Errno.EINVAL, "a launch order needs taskId and token");
  return v;
}

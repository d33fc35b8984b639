import { Errno, HurdError, type Bus, type BusSubscription } from "@hurdmesh/mach";
import { AttachRequest, CallReply, MachDefinition, Trap, type AttachReply } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { methods } from "@hurdmesh/mach";
import { dispatch } from "./calls.js";
import type { Kernel } from "./kernel.js";
import type { KTask } from "./task.js";

const ATTACH = methods(MachDefinition).byKey.get("attach")!.msgid;

/** The reply a task gets when it attaches: what it needs to run. */
export function attachReply(k: Kernel, t: KTask): AttachReply {
  const self = t.space.byPort.get(t.self);
  const boot = t.bootstrap ? t.space.byPort.get(t.bootstrap) : undefined;
  return {
    taskId: t.id,
    taskSelf: self ? self.name : 0,
    bootstrap: boot ? boot.name : 0,
    namespaceId: t.ns.id,
    system: k.config.system,
    leaseMs: k.config.leaseMs,
  };
}

/**
 * The kernel's bus side: every trap arrives on hurd.<system>.kernel.trap,
 * carries the task's id and token, and is routed (sends) or answered (calls).
 * A trap with a bad token is logged and dropped, never routed.
 */
export class TrapServer {
  private sub: BusSubscription | null = null;
  readonly subject: string;
  constructor(
    private readonly kernel: Kernel,
    private readonly bus: Bus,
  ) {
    this.subject = `hurd.${kernel.config.system}.kernel.trap`;
    kernel.bus = bus;
  }

  start(): void {
    this.sub = this.bus.subscribe(this.subject, (_s, data, reply) => this.onTrap(data, reply));
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }

  private answer(reply: string | undefined, code: number, bytes: Uint8Array, detail = ""): void {
    if (!reply || this.bus.closed) return;
    this.bus.publish(reply, CallReply.encode({ code, reply: bytes, detail }).finish());
  }

  private onTrap(data: Uint8Array, reply: string | undefined): void {
    const k = this.kernel;
    let trap: Trap;
    try {
      trap = Trap.decode(data);
    } catch {
      k.stats.rejectedTraps++;
      k.log(`malformed trap (${data.length} bytes) dropped`);
      this.answer(reply, Errno.MIG_BAD_ARGUMENTS, new Uint8Array(0), "malformed trap");
      return;
    }
    const t = k.authenticate(trap.task, trap.token);
    if (!t) {
      k.stats.rejectedTraps++;
      k.log(`trap for task ${trap.task} with a missing or wrong token rejected`);
      this.answer(reply, Errno.KERN_INVALID_TASK, new Uint8Array(0), "unknown task or wrong token");
      return;
    }
    if (trap.send) {
      k.touch(t);
      if (trap.credit) k.credit(t, trap.credit);
      try {
        k.send(t, trap.send);
        this.answer(reply, 0, new Uint8Array(0));
      } catch (e) {
        const he = HurdError.from(e);
        k.stats.sendFailures++;
        if (reply) this.answer(reply, he.code, new Uint8Array(0), he.message);
        else k.reportSendFailed(t, trap.send.seq, he.code, 0);
      }
      return;
    }
    if (trap.call) {
      try {
        let out: Uint8Array;
        if (trap.call.msgid === ATTACH) {
          const req = AttachRequest.decode(trap.call.request);
          k.attach(t, null, req.window);
          out = MachDefinition.methods.attach.responseType.encode(attachReply(k, t)).finish();
        } else {
          k.touch(t);
          if (trap.credit) k.credit(t, trap.credit);
          out = dispatch(k, t, trap.call.msgid, trap.call.request);
        }
        this.answer(reply, 0, out);
      } catch (e) {
        const he = HurdError.from(e);
        this.answer(reply, he.code, new Uint8Array(0), he.message);
      }
      return;
    }
    k.touch(t);
    if (trap.credit) k.credit(t, trap.credit);
  }
}

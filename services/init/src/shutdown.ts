// Shutdown (startup_reboot) and crashes: startup_dosync to every registered
// party, newest first, each bounded; then every task of this hurd is
// terminated. `halted` resolves with the exit status for the host program.
import { client, Errno, HurdError, MsgType, optionalRight, type Context, type LogSink, type Task } from "@hurdmesh/mach";
import type { RebootRequest, RequestNotificationRequest } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { StartupNotifyDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import type { InitConfig } from "./config.js";

export class Shutdown {
  private readonly notifiees: Array<{ port: number; name: string }> = [];
  private done!: (code: number) => void;
  readonly halted = new Promise<number>((r) => (this.done = r));
  private going = false;
  procPort = 0;

  constructor(
    private readonly task: Task,
    private readonly hostPriv: number,
    private readonly config: InitConfig,
    private readonly log: LogSink,
  ) {}

  /** startup_request_notification (29001): newest registrations are told first. */
  requestNotification(req: RequestNotificationRequest, ctx: Context<unknown>): object {
    const r = ctx.right(req.notify, MsgType.MSG_TYPE_MOVE_SEND);
    ctx.keepRights = true;
    if (this.notifiees.length >= this.config.maxNotifiees) {
      this.task.deallocate(r.name).catch(() => {});
      throw new HurdError(Errno.EAGAIN, `${this.config.maxNotifiees} parties registered`);
    }
    this.notifiees.unshift({ port: r.name, name: req.name.slice(0, 64) || `port ${r.name}` });
    return {};
  }

  /** startup_reboot (29002): only with the host port. */
  reboot(req: RebootRequest, ctx: Context<unknown>): object {
    // A right, not a bare name: a number the caller wrote proves nothing, and
    // must not make init release its own right of that number.
    const ref = optionalRight(ctx.msg.ports, req.refport);
    const ok = ref !== 0 && ref === this.hostPriv;
    if (ref) this.task.deallocate(ref).catch(() => {});
    ctx.keepRights = true;
    if (!ok) throw new HurdError(Errno.EPERM, "startup_reboot needs the host port");
    // Answer first: the caller is one of the tasks about to end.
    setImmediate(() => void this.halt(0, `reboot requested (code ${req.code})`));
    return {};
  }

  crash(why: string): Promise<void> {
    this.log(`CRASH: ${why}`, "error");
    // Status 1: whoever hosts the hurd decides whether to boot it again (`hurd up --reboot-on-crash`).
    return this.halt(1, why);
  }

  private async halt(code: number, why: string): Promise<void> {
    if (this.going) return;
    this.going = true;
    this.log(`shutting down: ${why}`);
    for (const n of this.notifiees) {
      const t0 = Date.now();
      try {
        await client(this.task, StartupNotifyDefinition, n.port).dosync({ timeoutMs: this.config.dosyncTimeoutMs }, { timeoutMs: this.config.dosyncTimeoutMs });
        this.log(`  ${n.name}: synced (${Date.now() - t0} ms)`);
      } catch (e) {
        this.log(`  ${n.name}: ${(e as Error).message}`, "warn");
      }
    }
    this.log("terminating every task of this hurd");
    // NamespaceTerminate ends init's own task too: the answer may never come.
    await this.task.call("namespaceTerminate", { hostPriv: this.hostPriv }).catch(() => {});
    this.done(code);
  }
}

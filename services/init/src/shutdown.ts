// Shutdown (startup_reboot) and crashes: startup_dosync to every registered
// party, newest first, each bounded; then every task of this hurd is
// terminated. `halted` resolves with the exit status for the host program.
import { client, Errno, HurdError, MsgType, Notify, NotifyId, PortRight, optionalRight, type Context, type LogSink, type Task } from "@hurdmesh/mach";
import { DeadNameNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { RebootRequest, RequestNotificationRequest } from "@hurdmesh/proto/hurd/startup/v1/startup";
import { StartupNotifyDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import type { InitConfig } from "./config.js";

export class Shutdown {
  private readonly notifiees: Array<{ port: number; name: string }> = [];
  private done!: (code: number) => void;
  readonly halted = new Promise<number>((r) => (this.done = r));
  private going = false;
  /** A shutdown or crash is under way (it ends init's own task too). */
  get halting(): boolean {
    return this.going;
  }
  private deathPort: Promise<number> | null = null;
  procPort = 0;

  constructor(
    private readonly task: Task,
    private readonly hostPriv: number,
    private readonly config: InitConfig,
    private readonly log: LogSink,
  ) {}

  /**
   * startup_request_notification (29001): newest registrations are told
   * first. As startup.c does, init asks to hear of the party's death and
   * forgets it then: a party that registered and died would otherwise hold
   * a slot and a dead name in init's space for good.
   */
  async requestNotification(req: RequestNotificationRequest, ctx: Context<unknown>): Promise<object> {
    const r = ctx.right(req.notify, MsgType.MSG_TYPE_MOVE_SEND);
    ctx.keepRights = true;
    if (ctx.msg.ports.length > 1) this.task.dropRights({ ...ctx.msg, ports: ctx.msg.ports.filter((_p, i) => i !== req.notify) });
    if (this.notifiees.length >= this.config.maxNotifiees) {
      this.task.deallocate(r.name).catch(() => {});
      throw new HurdError(Errno.EAGAIN, `${this.config.maxNotifiees} parties registered`);
    }
    // One dead-name request per name: a port registered twice shares it.
    const watched = this.notifiees.some((n) => n.port === r.name);
    this.notifiees.unshift({ port: r.name, name: req.name.slice(0, 64) || `port ${r.name}` });
    if (!watched) {
      try {
        await this.task.requestNotification(r.name, NotifyId.NOTIFY_DEAD_NAME, await this.deaths(), 1);
      } catch (e) {
        this.forget(r.name);
        this.task.deallocate(r.name).catch(() => {});
        throw e;
      }
    }
    return {};
  }

  /** Makes the port parties' deaths are heard on, before anyone can register. */
  async start(): Promise<void> {
    await this.deaths();
  }

  /** The port dead-name notifications of registered parties arrive on. */
  private deaths(): Promise<number> {
    return (this.deathPort ??= this.task.allocate(PortRight.PORT_RIGHT_RECEIVE).then((port) => {
      this.task.receive(port, (m) => {
        this.task.dropRights(m);
        if (!m.kernel || m.id !== Notify.DEAD_NAME) return;
        const { name } = DeadNameNotification.decode(m.body);
        // The dead name holds one uref per registration, plus the notification's.
        const n = this.forget(name);
        if (n) this.task.modRefs(name, PortRight.PORT_RIGHT_DEAD_NAME, -(n + 1)).catch(() => {});
      });
      return port;
    }));
  }

  /** Drops every registration of `port` (at most maxNotifiees to look at); answers how many. */
  private forget(port: number): number {
    let n = 0;
    for (let i = this.notifiees.length - 1; i >= 0; i--)
      if (this.notifiees[i]!.port === port) {
        this.notifiees.splice(i, 1);
        n++;
      }
    return n;
  }

  /** startup_reboot (29002): only with the host port. */
  reboot(req: RebootRequest, ctx: Context<unknown>): object {
    // A right, not a bare name (MSG_TYPE_PORT_NAME): anyone can write init's
    // number for host_priv. Compared by name (same port, same name), then
    // everything the request brought is released, whatever it was: a right
    // kept here is init's for good.
    const ok = optionalRight(ctx.msg.ports, req.refport) === this.hostPriv;
    this.task.dropRights(ctx.msg);
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

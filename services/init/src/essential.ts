// Essential tasks (startup_essential_task): the death of one is the crash
// of this hurd, as in the Hurd (where startup then reboots the machine).
import { Errno, HurdError, MsgType, Notify, NotifyId, optionalRight, PortRight, type Context, type LogSink, type Task } from "@hurdmesh/mach";
import { DeadNameNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { EssentialTaskRequest } from "@hurdmesh/proto/hurd/startup/v1/startup";

export class Essentials {
  /** task port name in init's space -> the server's name. */
  private readonly byTask = new Map<number, string>();
  private readonly expected = new Set<string>();
  private readonly arrived = new Set<string>();
  private notifyPort = 0;
  private resolveAll!: () => void;
  readonly allIn = new Promise<void>((r) => (this.resolveAll = r));
  onCrash: (why: string) => void = () => {};

  constructor(
    private readonly task: Task,
    private readonly hostPriv: number,
    private readonly log: LogSink,
  ) {}

  async start(): Promise<void> {
    this.notifyPort = await this.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
    this.task.receive(this.notifyPort, (m) => {
      if (!m.kernel || m.id !== Notify.DEAD_NAME) {
        this.task.dropRights(m);
        return;
      }
      const { name } = DeadNameNotification.decode(m.body);
      const who = this.byTask.get(name);
      // The dead name carries an extra uref for the notification (Mach): drop both.
      this.task.modRefs(name, PortRight.PORT_RIGHT_DEAD_NAME, -2).catch(() => {});
      if (who) this.onCrash(`essential server ${who} (task port ${name}) died`);
    });
  }

  /**
   * Watches a task of init's own as essential (pid 1: as with Linux's PID
   * namespaces, the death of a hurd's init ends that hurd).
   */
  async watch(task: number, name: string): Promise<void> {
    this.byTask.set(task, name);
    await this.task.requestNotification(task, NotifyId.NOTIFY_DEAD_NAME, this.notifyPort, 1);
  }

  expect(...names: string[]): void {
    for (const n of names) this.expected.add(n);
  }

  missing(): string[] {
    return [...this.expected].filter((n) => !this.arrived.has(n));
  }

  /** startup_essential_task (29000): the credential must be init's host_priv. */
  async essentialTask(req: EssentialTaskRequest, ctx: Context<unknown>): Promise<object> {
    const cred = ctx.msg.ports[req.credential];
    // Same port, same name: comparing names compares ports.
    // A right, not a bare name (MSG_TYPE_PORT_NAME): anyone can write init's number for host_priv.
    if (!cred || optionalRight(ctx.msg.ports, req.credential) !== this.hostPriv) throw new HurdError(Errno.EPERM, "the credential is not the host port");
    const t = ctx.right(req.task, MsgType.MSG_TYPE_MOVE_SEND);
    ctx.keepRights = true;
    this.task.deallocate(cred.name).catch(() => {});
    const name = req.name.slice(0, 64) || `task${t.name}`;
    if (this.byTask.has(t.name)) {
      this.task.deallocate(t.name).catch(() => {});
    } else {
      this.byTask.set(t.name, name);
      await this.task.requestNotification(t.name, NotifyId.NOTIFY_DEAD_NAME, this.notifyPort, 1);
      // task_set_essential: the kernel keeps an essential task through a
      // restart of its process (its restart grace) before it dies and this
      // hurd crashes.
      await this.task.call("taskSetEssential", { task: t.name, essential: true });
    }
    this.arrived.add(name);
    this.log(`essential task ${name} registered`);
    if (this.missing().length === 0) this.resolveAll();
    return {};
  }
}

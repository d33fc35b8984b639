// The auth server (hurd/auth): serves hurd.auth.v1.Auth on every handle port
// of one task, holds the bootstrap root handle, and frees handles when their
// last send right goes.
import { DeadNameNotification, NoSendersNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { MACH_PORT_DEAD, Notify, PortRight, serve, type Context, type Received, type Server, type Task } from "@hurdmesh/mach";
import { authConfig, type AuthConfig } from "./config.js";
import { Handle, Handles, type Ids } from "./handles.js";
import { auth_getids, auth_makeauth } from "./makeauth.js";
import { Rendezvous } from "./rendezvous.js";
import { Reaper } from "./reap.js";
import { MemoryAuthStore, type AuthImage, type AuthStore } from "./store.js";

export { authConfig, defaultAuthConfig, type AuthConfig } from "./config.js";
export { permits } from "./makeauth.js";
export type { Ids } from "./handles.js";
export { LogAuthStore, MemoryAuthStore, type AuthImage, type AuthStore } from "./store.js";

const TYPE_RECEIVE = 1 << 17;

/** The bootstrap root handle that goes to init (auth.c's main). */
export const ROOT_IDS: Ids = { euids: [0], auids: [0, 0], egids: [0], agids: [0, 0] };

/** A running auth server, with what tests and the bench look at. */
export class Auth {
  readonly server: Server<typeof AuthDefinition, Handle>;
  readonly handles: Handles;
  readonly rendezvous: Rendezvous;
  private readonly reaper: Reaper;
  /** Names the requests in progress brought (their reply right and rights): not the reaper's. */
  private readonly inFlight = new Map<number, number>();
  /** The root handle's name in auth's space (a receive right; make send rights from it). */
  root = 0;
  /** This process took over a task a previous auth process served (restart in place). */
  restarted = false;

  private constructor(
    readonly task: Task,
    readonly config: AuthConfig,
    readonly notifyPort: number,
    readonly store: AuthStore,
  ) {
    this.server = serve<typeof AuthDefinition, Handle>(task, AuthDefinition, {
      // auth_getids (25000) takes no right: any the request brought is released, as
      // MIG's server loop destroys what a routine does not take, or a caller could
      // fill auth's space (a dead name per right, once its port dies).
      getIds: (_req, ctx) => {
        ctx.task.dropRights(ctx.msg);
        return auth_getids(ctx.object);
      },
      makeAuth: (req, ctx) => this.track(ctx, () => auth_makeauth(this.handles, config, req, ctx)),
      userAuthenticate: (req, ctx) => this.track(ctx, () => this.rendezvous.auth_user_authenticate(req, ctx)),
      serverAuthenticate: (req, ctx) => this.track(ctx, () => this.rendezvous.auth_server_authenticate(req, ctx)),
    });
    this.handles = new Handles(task, this.server, config, store);
    this.rendezvous = new Rendezvous(task, this.handles, notifyPort, config);
    this.reaper = new Reaper(
      task,
      this.handles,
      () => this.rendezvous.names(new Set([notifyPort, task.self, task.bootstrap, ...this.inFlight.keys()])),
      () => this.rendezvous.takeHanded(),
    );
    this.server.onNotify = (m, _o, port) => this.onHandleNotify(m, port);
    task.receive(notifyPort, (m) => this.onNotify(m));
    // A reply auth sent could not go (its caller died or gave up): whatever
    // it carried is back in auth's space. See reap.ts.
    task.onSendFailed = () => this.reaper.soon();
  }

  /** Serves auth on `task` and creates the root handle. */
  static async start(task: Task, config: Partial<AuthConfig> = {}, store: AuthStore = new MemoryAuthStore()): Promise<Auth> {
    const image = await store.open(task.id);
    const notifyPort = image ? image.notifyPort : await task.allocate(PortRight.PORT_RIGHT_RECEIVE);
    const a = new Auth(task, authConfig(config, task.window), notifyPort, store);
    if (image) await a.adopt(image);
    // The handlers are set: what queued for this task while it had no process flows now.
    task.resume();
    await a.handles.warm();
    if (!image) {
      // The root handle has no send right until init is given one: the audit of
      // unanswered makeauth replies must not take it for one.
      a.root = await a.handles.create(ROOT_IDS, { audited: false });
      await store.putSelf(a.root, notifyPort);
    }
    return a;
  }

  /**
   * Takes over from a previous process of this task: its handles, found by
   * name in auth's space (their no-senders requests are the kernel's, still
   * armed). A stored handle whose port is gone is forgotten; a receive right
   * the store does not know (the old process's armed pool, its reply ports)
   * is destroyed: no caller was ever given a send right to it.
   */
  private async adopt(image: AuthImage): Promise<void> {
    this.restarted = true;
    this.root = image.root;
    const { names, types } = await this.task.names();
    const receive = new Set<number>();
    for (let i = 0; i < names.length; i++) if (types[i]! & TYPE_RECEIVE) receive.add(names[i]!);
    // A handle whose makeauth reply never left (the process died between the
    // write and the reply) has no send right and never will: it goes too.
    // One kernel call per handle, a window's worth at a time, once per restart.
    const stored = [...image.handles];
    for (let i = 0; i < stored.length; i += this.task.window) {
      await Promise.all(
        stored.slice(i, i + this.task.window).map(async ([name, ids]) => {
          let live = receive.delete(name);
          if (live && name !== image.root) {
            const st = await this.task.call("portGetReceiveStatus", { name }).catch(() => null);
            live = st !== null && (st.srights || st.mscount !== 0);
            if (!live) await this.task.destroy(name).catch(() => {});
          }
          if (live) this.handles.adopt(name, ids);
          else await Promise.resolve(this.store.deleteHandle(name)).catch(() => {});
        }),
      );
    }
    receive.delete(this.notifyPort);
    for (const name of receive) await this.task.destroy(name).catch(() => {});
  }

  /** Runs a handler with its request's names marked as in use. */
  private async track<R>(ctx: Context<Handle>, fn: () => Promise<R>): Promise<R> {
    const names = [ctx.msg.reply, ...ctx.msg.ports.map((p) => p.name)].filter((n) => n !== 0 && n !== MACH_PORT_DEAD);
    for (const n of names) this.inFlight.set(n, (this.inFlight.get(n) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      for (const n of names) {
        const c = this.inFlight.get(n)! - 1;
        if (c > 0) this.inFlight.set(n, c);
        else this.inFlight.delete(n);
      }
    }
  }

  get handleCount(): number {
    return this.handles.count;
  }

  get pending(): { users: number; servers: number } {
    return { users: this.rendezvous.users.size, servers: this.rendezvous.servers.size };
  }

  /** No-senders on a handle; anything else the kernel sends a handle port is dropped. */
  private async onHandleNotify(m: Received, port: number): Promise<void> {
    if (m.id === Notify.NO_SENDERS) {
      let mscount = 0;
      try {
        mscount = NoSendersNotification.decode(m.body).mscount;
      } catch {
        // 0: ask the kernel rather than trust the body.
      }
      await this.handles.noSenders(port, mscount);
    } else this.task.dropRights(m);
  }

  /** auth's notify port: dead names of rendezvous ports; port-deleted and send-once are expected noise. */
  private onNotify(m: Received): void {
    if (!m.kernel) return this.task.refuse(m);
    if (m.id === Notify.DEAD_NAME) {
      let name: number;
      try {
        name = DeadNameNotification.decode(m.body).name;
      } catch {
        return;
      }
      this.rendezvous.deadName(name);
    }
    this.task.dropRights(m);
  }

  /**
   * Winds auth down (shutdown, tests): waiting rendezvous fail EINTR, sweeps
   * stop, the armed pool is released. Handles stay until the task detaches
   * (auth's space, and every handle in it, dies with it). Idempotent.
   */
  async close(): Promise<void> {
    this.rendezvous.close();
    this.reaper.close();
    this.task.unreceive(this.notifyPort);
    await this.handles.close();
  }
}

/**
 * Serves auth on `task` and creates the bootstrap root handle
 * {euids [0], auids [0,0], egids [0], agids [0,0]}; answers its name in the
 * task's space (a receive right: whoever boots the system makes the send
 * right for init from it).
 */
export async function startAuth(task: Task, config: Partial<AuthConfig> = {}): Promise<number> {
  return (await Auth.start(task, config)).root;
}

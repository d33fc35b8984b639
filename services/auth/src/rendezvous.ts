// The reauthentication rendezvous: auth_user_authenticate (auth.defs 25002)
// and auth_server_authenticate (25003). A user and a server each send auth a
// send right to the user's fresh port R; in auth's space both arrive under
// one name (the kernel's same-name rule), which is the key that pairs them
// (auth.c's pending_users and pending_servers hash tables).
import { Errno, HurdError, MACH_PORT_DEAD, MsgType, NotifyId, PortRight, type Context, type ReceivedPort, type Task } from "@hurdmesh/mach";
import type { ServerAuthenticateReply, ServerAuthenticateRequest, UserAuthenticateReply, UserAuthenticateRequest } from "@hurdmesh/proto/hurd/auth/v1/auth";
import type { AuthConfig } from "./config.js";
import type { Handle, Handles, Ids } from "./handles.js";

/** The right a server gave for the user: a name in auth's space and its type. */
interface NewPort {
  name: number;
  type: MsgType;
}

interface Waiter<T> {
  timer: NodeJS.Timeout;
  resolve(v: T): void;
  reject(e: Error): void;
}

/** A user waiting for its server: what it presented. */
interface UserWait extends Waiter<NewPort> {
  ids: Ids;
}
/** A server waiting for its user: the port it offers. */
interface ServerWait extends Waiter<Ids> {
  newport: NewPort;
}

const after = () => new Promise<void>((r) => setImmediate(r));

export class Rendezvous {
  /** Users waiting, by R's name in auth's space. */
  readonly users = new Map<number, UserWait>();
  /** Servers waiting, by R's name in auth's space. */
  readonly servers = new Map<number, ServerWait>();
  /** Servers' ports between the pairing and the user's reply that carries them. */
  private readonly handing = new Map<number, number>();
  /** The last servers' ports handed to users: where a failed reply would leave one behind (reap.ts). */
  private readonly handed: number[] = [];

  constructor(
    private readonly task: Task,
    private readonly handles: Handles,
    /** auth's port for dead-name notifications. */
    private readonly notify: number,
    private readonly config: AuthConfig,
  ) {}

  /**
   * R's name in auth's space. It must be a send right to a port that is not
   * auth's own: a bare name (MSG_TYPE_PORT_NAME) is a number anyone can
   * write, so it is never taken as a rendezvous, nor is a handle or a dead name.
   */
  private rendezvousOf(ctx: Context<Handle>, index: number): number {
    const p = ctx.msg.ports[index];
    if (!p) throw new HurdError(Errno.EINVAL, `rendezvous names right ${index}, but the request carries ${ctx.msg.ports.length}`);
    if (p.type !== MsgType.MSG_TYPE_MOVE_SEND) throw new HurdError(Errno.EINVAL, `rendezvous is a ${MsgType[p.type] ?? p.type}, not a send right`);
    if (p.name === 0 || p.name === MACH_PORT_DEAD) throw new HurdError(Errno.EINVAL, "rendezvous port is dead or null");
    if (p.name === this.notify || this.handles.lookup(p.name)) throw new HurdError(Errno.EINVAL, "rendezvous is a port of auth's own, not the user's");
    return p.name;
  }

  /** The server's offered port: a send or send-once right, null, or a dead name passed through. */
  private newportOf(ctx: Context<Handle>, index: number, rendezvous: number): NewPort {
    if (index === rendezvous) throw new HurdError(Errno.EINVAL, "newport and rendezvous are the same right");
    const p = ctx.msg.ports[index];
    if (!p) throw new HurdError(Errno.EINVAL, `newport names right ${index}, but the request carries ${ctx.msg.ports.length}`);
    if (p.type === MsgType.MSG_TYPE_PORT_NAME && p.name === 0) return { name: 0, type: MsgType.MSG_TYPE_MOVE_SEND };
    if (p.type !== MsgType.MSG_TYPE_MOVE_SEND && p.type !== MsgType.MSG_TYPE_MOVE_SEND_ONCE) throw new HurdError(Errno.EINVAL, `newport is a ${MsgType[p.type] ?? p.type}, not a send or send-once right`);
    return { name: p.name, type: p.type };
  }

  private waitMs(asked: number): number {
    return asked > 0 ? Math.min(asked, this.config.maxRendezvousWaitMs) : this.config.rendezvousWaitMs;
  }

  /** Releases what a paired rendezvous holds of R: one uref from each side. */
  private releasePair(name: number): void {
    this.task.modRefs(name, PortRight.PORT_RIGHT_SEND, -2).catch(() => {
      // R died meanwhile: its urefs are now dead-name urefs.
      this.task.deallocate(name).catch(() => {});
      this.task.deallocate(name).catch(() => {});
    });
  }

  /** Rights a request carried beyond those named by its fields (a crafted message): dropped on success. */
  private dropOthers(ctx: Context<Handle>, keep: number[]): void {
    if (ctx.msg.ports.length <= keep.length) return;
    const ports: ReceivedPort[] = ctx.msg.ports.filter((_p, i) => !keep.includes(i));
    this.task.dropRights({ ...ctx.msg, ports });
  }

  /**
   * Tells the kernel to report R's death to auth's notify port (sync 1: at
   * once if it is already dead). The previous request's send-once right, if
   * R's name already carried one, comes back and is dropped.
   */
  private watch(name: number, fail: (e: Error) => void): void {
    this.task.requestNotification(name, NotifyId.NOTIFY_DEAD_NAME, this.notify, 1).then(
      (prev) => {
        if (prev !== 0 && prev !== MACH_PORT_DEAD) this.task.deallocate(prev).catch(() => {});
      },
      (e) => fail(new HurdError(Errno.EINVAL, "rendezvous port cannot be watched", { cause: e })),
    );
  }

  /**
   * A waiter under `name` in `map`, bounded in number and in time, removed
   * from the map whatever ends it.
   */
  private wait<T, W extends Waiter<T>>(map: Map<number, W>, name: number, asked: number, side: string, extra: Omit<W, keyof Waiter<T>>): Promise<T> {
    if (map.has(name)) throw new HurdError(Errno.EBUSY, `a ${side} already waits on this rendezvous`);
    if (map.size >= this.config.maxPendingPerSide) throw new HurdError(Errno.EAGAIN, `${map.size} ${side}s already wait (the bound)`);
    const ms = this.waitMs(asked);
    return new Promise<T>((resolve, reject) => {
      const w = { ...extra, resolve, reject } as W;
      const end = (e: Error) => {
        if (map.get(name) !== w) return;
        map.delete(name);
        clearTimeout(w.timer);
        w.reject(e);
      };
      w.timer = setTimeout(() => end(new HurdError(Errno.ETIMEDOUT, `no ${side === "user" ? "server" : "user"} came to the rendezvous within ${ms} ms`)), ms);
      map.set(name, w);
      const grace = this.config.deadNameGraceMs;
      if (grace >= ms) return;
      const arm = setTimeout(() => {
        if (map.get(name) === w) this.watch(name, end);
      }, grace);
      // The grace timer goes with the waiter.
      const settle = () => clearTimeout(arm);
      const { resolve: res, reject: rej } = w;
      w.resolve = (v: T) => (settle(), res(v));
      w.reject = (e: Error) => (settle(), rej(e));
    });
  }

  /** auth_user_authenticate (auth.defs 25002): the user side; answers the server's newport. */
  async auth_user_authenticate(req: UserAuthenticateRequest, ctx: Context<Handle>): Promise<UserAuthenticateReply> {
    const name = this.rendezvousOf(ctx, req.rendezvous);
    const ids = ctx.object.ids;
    let newport: NewPort;
    const s = this.servers.get(name);
    if (s) {
      this.servers.delete(name);
      clearTimeout(s.timer);
      this.releasePair(name);
      s.resolve(ids);
      newport = s.newport;
      this.hand(newport.name);
      // auth.c answers the server first: its reply is sent in this turn's
      // microtasks, ours only after them.
      await after();
    } else {
      newport = await this.wait<NewPort, UserWait>(this.users, name, req.timeoutMs, "user", { ids } as Omit<UserWait, keyof Waiter<NewPort>>);
    }
    this.dropOthers(ctx, [req.rendezvous]);
    // The reply is sent right after this returns, in the same turn: the
    // hand-over mark can go now (see reap.ts).
    this.unhand(newport.name);
    const disposition = newport.type === MsgType.MSG_TYPE_MOVE_SEND_ONCE ? MsgType.MSG_TYPE_MOVE_SEND_ONCE : MsgType.MSG_TYPE_MOVE_SEND;
    return { newport: ctx.reply.add(newport.name, disposition) };
  }

  /** auth_server_authenticate (auth.defs 25003): the server side; answers the user's ids. */
  async auth_server_authenticate(req: ServerAuthenticateRequest, ctx: Context<Handle>): Promise<ServerAuthenticateReply> {
    const name = this.rendezvousOf(ctx, req.rendezvous);
    const newport = this.newportOf(ctx, req.newport, req.rendezvous);
    let ids: Ids;
    const u = this.users.get(name);
    if (u) {
      this.users.delete(name);
      clearTimeout(u.timer);
      this.releasePair(name);
      ids = u.ids;
      this.hand(newport.name);
      // The user is woken after this reply has gone (setImmediate runs after it).
      setImmediate(() => u.resolve(newport));
    } else {
      ids = await this.wait<Ids, ServerWait>(this.servers, name, req.timeoutMs, "server", { newport } as Omit<ServerWait, keyof Waiter<Ids>>);
    }
    this.dropOthers(ctx, [req.rendezvous, req.newport]);
    return { euids: [...ids.euids], auids: [...ids.auids], egids: [...ids.egids], agids: [...ids.agids] };
  }

  /**
   * R died (a dead-name notification for `name`). The notification brought
   * one uref of the dead name, released here; a waiter fails EINVAL and the
   * runtime releases its own uref with the failed request.
   */
  deadName(name: number): void {
    this.task.deallocate(name).catch(() => {});
    const err = () => new HurdError(Errno.EINVAL, "the rendezvous port died while waiting");
    const u = this.users.get(name);
    if (u) {
      this.users.delete(name);
      clearTimeout(u.timer);
      u.reject(err());
    }
    const s = this.servers.get(name);
    if (s) {
      this.servers.delete(name);
      clearTimeout(s.timer);
      s.reject(err());
    }
  }

  /** Fails every waiter (shutdown). */
  close(): void {
    for (const map of [this.users, this.servers] as Map<number, Waiter<unknown>>[]) {
      for (const [name, w] of map) {
        map.delete(name);
        clearTimeout(w.timer);
        w.reject(new HurdError(Errno.EINTR, "auth is shutting down"));
      }
    }
  }

  private hand(name: number): void {
    this.handing.set(name, (this.handing.get(name) ?? 0) + 1);
  }
  private unhand(name: number): void {
    if (this.handed.push(name) > 256) this.handed.shift();
    const n = (this.handing.get(name) ?? 0) - 1;
    if (n > 0) this.handing.set(name, n);
    else this.handing.delete(name);
  }

  /** Servers' ports handed over lately (candidates for the sweep after a failed reply). */
  takeHanded(): number[] {
    return this.handed.splice(0);
  }

  /** Names auth holds for rendezvous, waiting or being handed over (not to be reaped). */
  names(into: Set<number>): Set<number> {
    for (const n of this.users.keys()) into.add(n);
    for (const [n, s] of this.servers) into.add(n).add(s.newport.name);
    for (const n of this.handing.keys()) into.add(n);
    return into;
  }
}

import { MsgType, type Received, type ReceivedPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { Errno, HurdError } from "./errors.js";
import { methods, type MethodInfo, type ServiceDef } from "./msgid.js";
import { Rights, withRights } from "./rights.js";
import { MACH_PORT_DEAD, type Task } from "./task.js";

/** What a handler knows of the request beyond its body. */
export interface Context<O> {
  task: Task;
  /** The object the receiving port stands for (libports' port info). */
  object: O;
  /** The receive right's name. */
  port: number;
  msg: Received;
  /** The right a body field names by index; throws EINVAL when absent or of another type. */
  right(index: number, type?: MsgType): ReceivedPort;
  /** Rights to send with the reply; body fields hold the indexes this returns. */
  reply: Rights;
  /** Set by the handler to keep the request's rights after an error (rare). */
  keepRights: boolean;
}

type Methods<D extends ServiceDef> = D["methods"];
type Req<M> = M extends { requestType: { decode(b: Uint8Array): infer R } } ? R : never;
type Res<M> = M extends { responseType: { fromPartial(o: infer P): unknown } } ? P : never;

export type Impl<D extends ServiceDef, O> = {
  [K in keyof Methods<D>]?: (req: Req<Methods<D>[K]>, ctx: Context<O>) => Res<Methods<D>[K]> | Promise<Res<Methods<D>[K]>>;
};

/** Kernel notifications arriving on served ports (no-senders, dead-name, ...). */
export type NotifyHandler<O> = (m: Received, object: O | undefined, port: number) => void | Promise<void>;

/**
 * Serves a port interface on any number of receive rights, each standing for
 * an object, as libports does. Requests are decoded, dispatched by MIG id,
 * and answered on their reply right with id + 100; an error answers with its
 * code and releases the rights the request brought. Notifications are
 * believed only when the kernel marks them as its own.
 */
export class Server<D extends ServiceDef, O> {
  private readonly objects = new Map<number, O>();
  private readonly byId: Map<number, MethodInfo>;
  onNotify: NotifyHandler<O> | null = null;
  /** Requests that failed to decode or threw: for tests and health. */
  readonly stats = { requests: 0, errors: 0 };

  constructor(
    readonly task: Task,
    readonly def: D,
    private readonly impl: Impl<D, O>,
  ) {
    this.byId = methods(def).byId;
  }

  /** Serves `port` (a receive right of this task) as `object`. */
  add(port: number, object: O): void {
    this.objects.set(port, object);
    this.task.receive(port, (m) => this.dispatch(m));
  }

  remove(port: number): O | undefined {
    const o = this.objects.get(port);
    this.objects.delete(port);
    this.task.unreceive(port);
    return o;
  }

  lookup(port: number): O | undefined {
    return this.objects.get(port);
  }

  get size(): number {
    return this.objects.size;
  }

  private async dispatch(m: Received): Promise<void> {
    const object = this.objects.get(m.local);
    if (m.kernel) {
      if (this.onNotify) {
        try {
          await this.onNotify(m, object, m.local);
        } catch {
          // A notification handler's failure must not stop the server.
        }
      } else this.task.dropRights(m);
      return;
    }
    this.stats.requests++;
    const info = this.byId.get(m.id);
    if (!info || object === undefined) {
      this.stats.errors++;
      this.task.refuse(m, info ? Errno.EOPNOTSUPP : Errno.MIG_BAD_ID);
      return;
    }
    const fn = (this.impl as Record<string, ((req: unknown, ctx: Context<O>) => unknown) | undefined>)[info.key];
    const ctx: Context<O> = {
      task: this.task,
      object,
      port: m.local,
      msg: m,
      reply: new Rights(),
      keepRights: false,
      right(index, type) {
        const p = m.ports[index];
        if (!p || (type !== undefined && p.type !== type) || p.name === 0)
          throw new HurdError(Errno.EINVAL, `request carries no ${type ? MsgType[type] : "right"} at index ${index}`);
        return p;
      },
    };
    let out: Uint8Array;
    try {
      if (!fn) throw new HurdError(Errno.EOPNOTSUPP, `${info.path} is not implemented`);
      let req: unknown;
      try {
        req = withRights(info.def.requestType.decode(m.body), m.ports);
      } catch (e) {
        throw new HurdError(Errno.MIG_BAD_ARGUMENTS, `malformed ${info.def.name} request`, { cause: e });
      }
      const res = await fn(req, ctx);
      out = info.def.responseType.encode(info.def.responseType.fromPartial((res ?? {}) as object)).finish();
    } catch (e) {
      const he = HurdError.from(e);
      this.stats.errors++;
      if (!ctx.keepRights) this.task.dropRights(m);
      this.task.dropRights({ ...m, ports: ctx.reply.ports.map((p) => ({ name: p.name, type: p.disposition === MsgType.MSG_TYPE_MOVE_RECEIVE ? MsgType.MSG_TYPE_MOVE_RECEIVE : MsgType.MSG_TYPE_MOVE_SEND })).filter((_p, i) => isMove(ctx.reply.ports[i]!.disposition)) });
      if (!info.simple) this.answer(m, m.id + 100, he.code, new TextEncoder().encode(he.message), []);
      return;
    }
    if (!info.simple) this.answer(m, m.id + 100, 0, out, ctx.reply.ports);
  }

  private answer(m: Received, id: number, code: number, body: Uint8Array, ports: Rights["ports"]): void {
    if (!m.reply || m.reply === MACH_PORT_DEAD || this.task.detached) return;
    this.task.send({
      destination: m.reply,
      destinationDisposition: m.replyType === MsgType.MSG_TYPE_MOVE_SEND_ONCE ? MsgType.MSG_TYPE_MOVE_SEND_ONCE : MsgType.MSG_TYPE_COPY_SEND,
      id,
      code,
      body,
      ports,
      traceparent: m.traceparent,
    });
  }
}

function isMove(d: MsgType): boolean {
  return d === MsgType.MSG_TYPE_MOVE_SEND || d === MsgType.MSG_TYPE_MOVE_SEND_ONCE || d === MsgType.MSG_TYPE_MOVE_RECEIVE;
}

/** Serves `def` with `impl`; add ports with `server.add(port, object)`. */
export function serve<D extends ServiceDef, O>(task: Task, def: D, impl: Impl<D, O>): Server<D, O> {
  return new Server(task, def, impl);
}

import { MsgType, type Received, type ReceivedPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { Errno, HurdError } from "./errors.js";
import { methods, type MethodInfo, type ServiceDef } from "./msgid.js";
import { Rights, withRights } from "./rights.js";
import { MACH_PORT_DEAD, type Task } from "./task.js";
import { encode } from "./wire.js";
import { metricsHooks, tracingHooks, type RpcSeries } from "./hooks.js";
import { NO_TRACE_CONTEXT } from "./trace-context.js";

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

/**
 * The Context of one request. A class rather than an object literal with a
 * closure: one allocation per request instead of four, and the reply's
 * Rights are only made when a handler asks for them. (`right` is a method:
 * call it on the context, do not detach it.)
 */
class RequestContext<O> implements Context<O> {
  keepRights = false;
  port: number;
  private rights: Rights | null = null;
  constructor(
    public task: Task,
    public object: O,
    public msg: Received,
  ) {
    this.port = msg.local;
  }
  get reply(): Rights {
    return (this.rights ??= new Rights());
  }
  set reply(r: Rights) {
    this.rights = r;
  }
  /** The reply's rights, without creating an empty Rights. */
  get replyPorts(): Rights["ports"] {
    return this.rights ? this.rights.ports : NO_PORTS;
  }
  right(index: number, type?: MsgType): ReceivedPort {
    const p = this.msg.ports[index];
    if (!p || (type !== undefined && p.type !== type) || p.name === 0)
      throw new HurdError(Errno.EINVAL, `request carries no ${type ? MsgType[type] : "right"} at index ${index}`);
    return p;
  }
}

const NO_PORTS: Rights["ports"] = Object.freeze([]) as unknown as Rights["ports"];
const utf8 = new TextEncoder();

type Fn<O> = (req: unknown, ctx: Context<O>) => unknown;

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
  /** rpc.server.call.duration per method, made on first use by the hook they came from. */
  private series: Map<number, RpcSeries> | null = null;
  private seriesOf: typeof metricsHooks.server = null;

  constructor(
    readonly task: Task,
    readonly def: D,
    private readonly impl: Impl<D, O>,
  ) {
    this.byId = methods(def).byId;
  }

  /**
   * Adds handlers: a server split by concern (as the Hurd's proc is) builds
   * its implementation from several parts. Later parts win for the same RPC.
   */
  implement(...parts: Impl<D, O>[]): void {
    Object.assign(this.impl, ...parts);
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

  /**
   * Handles one message. Synchronous when the handler answers synchronously
   * (the reply leaves at once and the task's credit returns without a promise
   * per request); a promise when the handler returns one, settled once the
   * reply is sent.
   */
  /**
   * Handles one message as if it had just arrived on its port. For servers
   * that hold messages back while a port changes hands (proc during a
   * reauthentication) and hand them over afterwards.
   */
  dispatch(m: Received): void | Promise<void> {
    const serve = tracingHooks.serve;
    if (serve !== null && !m.kernel) return serve(m, this.byId.get(m.id)?.path, this.traced, this.task);
    return this.dispatchNow(m, null);
  }

  /** dispatchNow for the tracing hook, made once (not a closure per request). */
  private readonly traced = (m: Received, span: unknown): void | Promise<void> => this.dispatchNow(m, span);

  /**
   * Handles a request. `span` is its server span when traced: ended where
   * the request is answered (no promise chained on the handler's for it).
   */
  private dispatchNow(m: Received, span: unknown): void | Promise<void> {
    const object = this.objects.get(m.local);
    if (m.kernel) return this.notify(m, object);
    this.stats.requests++;
    const info = this.byId.get(m.id);
    if (!info || object === undefined) {
      this.stats.errors++;
      const code = info ? Errno.EOPNOTSUPP : Errno.MIG_BAD_ID;
      this.task.refuse(m, code);
      if (span !== null) tracingHooks.end?.(span, new HurdError(code));
      return;
    }
    const fn = (this.impl as Record<string, Fn<O> | undefined>)[info.key];
    const ctx = new RequestContext(this.task, object, m);
    // The clock is read only when metrics are on (0: off).
    const t0 = metricsHooks.server !== null ? performance.now() : 0;
    let res: unknown;
    try {
      if (!fn) throw new HurdError(Errno.EOPNOTSUPP, `${info.path} is not implemented`);
      let req: unknown;
      try {
        req = withRights(info.def.requestType.decode(m.body), m.ports);
      } catch (e) {
        throw new HurdError(Errno.MIG_BAD_ARGUMENTS, `malformed ${info.def.name} request`, { cause: e });
      }
      res = fn(req, ctx);
    } catch (e) {
      return this.failed(m, info, ctx, e, span, t0);
    }
    // Promise.resolve returns a native promise as is; other thenables are adopted.
    if (isThenable(res))
      return Promise.resolve(res).then(
        (r) => this.succeeded(m, info, ctx, r, span, t0),
        (e) => this.failed(m, info, ctx, e, span, t0),
      );
    this.succeeded(m, info, ctx, res, span, t0);
  }

  /** Records a request's handling in rpc.server.call.duration (t0: when it began). */
  private served(info: MethodInfo, code: number, t0: number): void {
    const hook = metricsHooks.server;
    if (hook === null) return;
    if (this.seriesOf !== hook) {
      this.seriesOf = hook;
      this.series = new Map();
    }
    let s = this.series!.get(info.msgid);
    if (s === undefined) this.series!.set(info.msgid, (s = hook(this.task, info.path)));
    s.record((performance.now() - t0) / 1000, code);
  }

  private async notify(m: Received, object: O | undefined): Promise<void> {
    if (this.onNotify) {
      try {
        await this.onNotify(m, object, m.local);
      } catch {
        // A notification handler's failure must not stop the server.
      }
    } else this.task.dropRights(m);
  }

  private succeeded(m: Received, info: MethodInfo, ctx: RequestContext<O>, res: unknown, span: unknown, t0: number): void {
    let out: Uint8Array;
    try {
      out = encode(info.def.responseType, info.def.responseType.fromPartial((res ?? {}) as object));
    } catch (e) {
      return this.failed(m, info, ctx, e, span, t0);
    }
    if (!info.simple) this.answer(m, m.id + 100, 0, out, ctx.replyPorts);
    if (span !== null) tracingHooks.end?.(span, undefined);
    if (t0 !== 0) this.served(info, 0, t0);
  }

  /** An error answers with its code and releases the request's rights and the reply's moved ones. */
  private failed(m: Received, info: MethodInfo, ctx: RequestContext<O>, e: unknown, span: unknown, t0: number): void {
    const he = HurdError.from(e);
    this.stats.errors++;
    if (!ctx.keepRights) this.task.dropRights(m);
    const rp = ctx.replyPorts;
    if (rp.length > 0)
      this.task.dropRights({ ...m, ports: rp.map((p) => ({ name: p.name, type: p.disposition === MsgType.MSG_TYPE_MOVE_RECEIVE ? MsgType.MSG_TYPE_MOVE_RECEIVE : MsgType.MSG_TYPE_MOVE_SEND })).filter((_p, i) => isMove(rp[i]!.disposition)) });
    if (!info.simple) this.answer(m, m.id + 100, he.code, utf8.encode(he.message), NO_PORTS);
    if (span !== null) tracingHooks.end?.(span, he);
    if (t0 !== 0) this.served(info, he.code, t0);
  }

  private answer(m: Received, id: number, code: number, body: Uint8Array, ports: Rights["ports"]): void {
    if (!m.reply || m.reply === MACH_PORT_DEAD || this.task.detached) return;
    this.task.send({
      destination: m.reply,
      // The reply right is consumed by the answer, whichever kind it is (MIG moves it).
      destinationDisposition: m.replyType === MsgType.MSG_TYPE_MOVE_SEND_ONCE ? MsgType.MSG_TYPE_MOVE_SEND_ONCE : MsgType.MSG_TYPE_MOVE_SEND,
      id,
      code,
      body,
      ports,
      // A reply carries no context: the kernel knows its request by the reply right.
      traceContext: NO_TRACE_CONTEXT,
    });
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as PromiseLike<unknown>).then === "function";
}

function isMove(d: MsgType): boolean {
  return d === MsgType.MSG_TYPE_MOVE_SEND || d === MsgType.MSG_TYPE_MOVE_SEND_ONCE || d === MsgType.MSG_TYPE_MOVE_RECEIVE;
}

/** Serves `def` with `impl`; add ports with `server.add(port, object)`. */
export function serve<D extends ServiceDef, O>(task: Task, def: D, impl: Impl<D, O>): Server<D, O> {
  return new Server(task, def, impl);
}

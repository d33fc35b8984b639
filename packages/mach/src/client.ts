import { Errno, HurdError } from "./errors.js";
import { metricsHooks, type RpcSeries } from "./hooks.js";
import { methods, type ServiceDef } from "./msgid.js";
import type { Rights } from "./rights.js";
import { withRights } from "./rights.js";
import type { RpcOptions, Task } from "./task.js";
import { encode } from "./wire.js";

const NO_OPTIONS: CallOptions = Object.freeze({});

export interface CallOptions extends Omit<RpcOptions, "ports"> {
  rights?: Rights;
}

type Methods<D extends ServiceDef> = D["methods"];
type Req<M> = M extends { requestType: { fromPartial(o: infer P): unknown } } ? P : never;
type Res<M> = M extends { responseType: { decode(b: Uint8Array): infer R } } ? R : never;

/** A typed client of a port interface: one method per RPC, named as ts-proto names them. */
export type Client<D extends ServiceDef> = {
  [K in keyof Methods<D>]: (req: Req<Methods<D>[K]>, o?: CallOptions) => Promise<Res<Methods<D>[K]>>;
};

/**
 * Binds a service definition to a send right: `client(task, ProcessDefinition, procPort).getpids({})`.
 * `port` may be a function, for rights that are replaced over time (reauthentication).
 */
export function client<D extends ServiceDef>(task: Task, def: D, port: number | (() => number)): Client<D> {
  const out: Record<string, unknown> = {};
  for (const [key, info] of methods(def).byKey) {
    const m = info.def;
    // rpc.client.call.duration of this method, made on first use by the hook it came from.
    let series: RpcSeries | null = null;
    let seriesOf: typeof metricsHooks.client = null;
    const called = (t0: number, code: number) => {
      const hook = metricsHooks.client;
      if (hook === null) return;
      if (seriesOf !== hook) {
        seriesOf = hook;
        series = hook(task, info.path);
      }
      series!.record((performance.now() - t0) / 1000, code);
    };
    out[key] = async (req: object, o: CallOptions = NO_OPTIONS) => {
      const body = encode(m.requestType, m.requestType.fromPartial(req));
      const dest = typeof port === "function" ? port() : port;
      if (info.simple) {
        task.send({ destination: dest, id: info.msgid, body, ports: o.rights?.ports, traceContext: o.traceContext });
        return withRights(m.responseType.fromPartial({}), []);
      }
      // The clock is read only when metrics are on (0: off).
      const t0 = metricsHooks.client !== null ? performance.now() : 0;
      let r: Awaited<ReturnType<Task["rpc"]>>;
      try {
        // CallOptions are RpcOptions but for `rights`: copy only when there are some.
        r = await task.rpc(dest, info.msgid, body, o.rights ? { ...o, ports: o.rights.ports } : (o as RpcOptions));
      } catch (e) {
        if (t0 !== 0) called(t0, e instanceof HurdError ? e.code : Errno.EIO);
        throw e;
      }
      if (t0 !== 0) called(t0, r.code);
      if (r.id !== info.msgid + 100) {
        task.dropRights(r);
        throw new HurdError(Errno.MIG_REPLY_MISMATCH, `${info.path}: reply id ${r.id}, expected ${info.msgid + 100}`);
      }
      let res: object;
      try {
        res = m.responseType.decode(r.body);
      } catch (e) {
        task.dropRights(r);
        throw new HurdError(Errno.MIG_TYPE_ERROR, `${info.path}: malformed reply`, { cause: e });
      }
      return withRights(res, r.ports);
    };
  }
  return out as Client<D>;
}

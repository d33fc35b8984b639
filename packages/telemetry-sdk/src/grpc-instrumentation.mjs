// What register.mjs installs when tracing is on, beside the stock
// instrumentation: plain JavaScript, loaded before tsx. Two gaps made a
// gRPC client call under ESM produce no CLIENT span, or one that nothing
// downstream saw:
//
// 1. The CommonJS exports object was never patched. Under ESM the
//    instrumentation's patch reaches grpc-js through import-in-the-middle,
//    and only the wrapper's namespace gets the wrapped
//    makeGenericClientConstructor / makeClientConstructor /
//    loadPackageDefinition. grpc-js is CommonJS, and its `module.exports`
//    (what tsx hands a dynamic `import()` of it, what a default import and
//    every CommonJS dependent get) keeps index.js's getters onto
//    make-client.js, unwrapped, until some CommonJS module happens to
//    require grpc-js and require-in-the-middle patches it. Patching
//    Client.prototype.make*Request does not make up for it: make-client.js
//    copies those methods when it loads (its `requesterFuncs`), before any
//    patch, so the clients makeGenericClientConstructor builds call the
//    originals. GrpcInstrumentation below applies the same patch to
//    `module.exports` when grpc-js arrives through the ESM hook, as
//    require-in-the-middle would. Patching twice is harmless: the
//    instrumentation unwraps what it wrapped before wrapping again, so a
//    client's methods are wrapped once, one span per call, whichever
//    constructor (namespace or module.exports) built it (tested in
//    tests/tracing/register.test.ts and checked for default, named,
//    namespace, createRequire and loadPackageDefinition clients).
//
// 2. No context manager: hurdmesh does not install OTel's
//    AsyncLocalStorage one (on Node 20 its promise hooks cost every promise
//    in the process). Without one, context.with() is a no-op, so the client
//    patch's propagation.inject() saw no span and the server's span was no
//    child of the client's. SyncContextManager makes context.with() hold
//    for the synchronous extent of the call, which is all the gRPC patches
//    need (they inject while the call starts and bind their callbacks
//    explicitly). With HURD_TRACE_ASYNC_CONTEXT=1 register.mjs installs the
//    AsyncLocalStorage manager instead, the one installTracingHooks would
//    have installed (its own registration then finds one in place).
import { types } from "node:util";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { GrpcInstrumentation as StockGrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";

/** OTel's GrpcInstrumentation, also patching grpc-js's CommonJS exports when it is imported as ESM. */
export class GrpcInstrumentation extends StockGrpcInstrumentation {
  init() {
    const defs = super.init();
    for (const def of Array.isArray(defs) ? defs : [defs]) {
      const { patch, unpatch } = def;
      // import-in-the-middle calls patch with its namespace (a Proxy) whose
      // `default` is the CommonJS module.exports; require-in-the-middle
      // calls it with module.exports itself.
      const cjsOf = (exports) => {
        if (!exports || !types.isProxy(exports)) return undefined;
        const cjs = exports.default;
        return cjs && cjs !== exports && typeof cjs.makeGenericClientConstructor === "function" ? cjs : undefined;
      };
      def.patch = (exports, version) => {
        const r = patch(exports, version);
        const cjs = cjsOf(exports);
        if (cjs) patch(cjs, version);
        return r;
      };
      def.unpatch = (exports, version) => {
        const cjs = cjsOf(exports);
        if (cjs) unpatch(cjs, version);
        return unpatch(exports, version);
      };
    }
    return defs;
  }
}

/**
 * An OTel context manager for synchronous scopes: context.with(ctx, fn)
 * makes ctx active while fn runs, and nothing crosses an await. No async
 * hooks, so no cost to promises.
 */
export class SyncContextManager {
  #active = ROOT_CONTEXT;
  active() {
    return this.#active;
  }
  with(ctx, fn, thisArg, ...args) {
    const prev = this.#active;
    this.#active = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#active = prev;
    }
  }
  bind(ctx, target) {
    if (typeof target !== "function") return target;
    const manager = this;
    return function bound(...args) {
      return manager.with(ctx, target, this, ...args);
    };
  }
  enable() {
    return this;
  }
  disable() {
    this.#active = ROOT_CONTEXT;
    return this;
  }
}

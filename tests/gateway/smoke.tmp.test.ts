import { it } from "node:test";
import assert from "node:assert/strict";
import { gatewayWorld, md, call, errnoOf } from "./kit.js";
it("smoke", async () => {
  const w = await gatewayWorld("local");
  try {
    const t0 = performance.now();
    const r = await call(w.process, "getpids", {}, md(w.console));
    console.log("getpids", r, performance.now() - t0);
    const t1 = performance.now();
    console.log(await call(w.process, "getpids", {}, md(w.console)), performance.now() - t1);
    console.log(await call(w.auth, "getIds", {}, md(w.console)));
    const p2 = await call<{proc:number}>(w.process, "pid2proc", { pid: 1 }, md(w.console));
    console.log("pid2proc", p2);
    console.log(await call(w.process, "getpids", {}, md(w.console, { "hurd-port": String(p2.proc) })));
    try { await call(w.process, "getpgrp", { pid: 99999 }, md(w.console)); } catch (e) { console.log("err", (e as any).code, (e as any).details, errnoOf(e)); }
    const s = await w.spawn("victim");
    const got: number[] = [];
    s.me.signal(10, (i) => { got.push(i.signal); });
    console.log(await call(w.msg, "sigPost", { signal: 10 }, md(w.console, { "hurd-pid": String(s.me.pid) })), got);
    console.log("inflight", w.edge.gateway.inFlight);
  } finally {
    await w.close();
  }
});

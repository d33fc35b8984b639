import { it } from "node:test";
import { bootProcHurd, exitProcess } from "./kit.js";
import { until } from "../harness.js";
it("dbg", async () => {
  const ph = await bootProcHurd("local");
  const par = await ph.spawn(ph.startup, "parent");
  const a = await ph.spawn(par, "a");
  const P = ph.proc.byPid.get(par.pid)!;
  console.log("par msgport", P.msgport, "a parent", ph.proc.byPid.get(a.pid)!.parent?.pid);
  ph.proc.task.onSendFailed = (f) => console.log("sendfailed", f);
  await exitProcess(a, 0);
  await new Promise((r) => setTimeout(r, 300));
  console.log("signals", par.signals, ph.proc.stats, ph.proc.byPid.get(a.pid)?.flags);
  await ph.close();
});

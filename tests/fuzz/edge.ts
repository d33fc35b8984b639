// The kernel's gRPC edge, fuzzed as a client on the network would: every
// method of every service in EDGE_SERVICES (the Mach interface and the
// trace stream; the gateway's Hurd services join by being added there),
// called over a real HTTP/2 connection on loopback with random metadata
// (the task id and token right, wrong, missing or garbage; stray keys, a
// random traceparent and window) and random bodies (built from the request
// type, random bytes, mutated, truncated; SendTrap carries the kernel
// target's trap cases). Server streams are opened and cancelled. Each batch
// runs two fresh tasks in a namespace of their own, as the kernel target
// does, and the same checks follow: the kernel's books balance and nothing
// of the batch is left.
import fc from "fast-check";
import * as grpc from "@grpc/grpc-js";
import { Errno } from "@hurdmesh/mach";
import { methods, type MethodInfo, type ServiceDef } from "@hurdmesh/mach/internal";
import { Edge } from "@hurdmesh/kernel";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { TraceDefinition } from "@hurdmesh/proto/hurd/trace/v1/trace";
import type { BusKind } from "../harness.js";
import { type FuzzStats, type FuzzTarget } from "./core.js";
import { bodyOf, bytesOf, type Body } from "./gen.js";
import { checkKernel, kcall, kernelWorld, namesOf, trapBytes, trapCase, type KernelWorld, type Party, type TrapCase } from "./kernel.js";

/**
 * The services the edge serves, by their proto definitions. The gateway's
 * Hurd services (proc, auth, msg, startup at the edge) are added here when
 * they exist; every method of each is then fuzzed and must be reached.
 */
export const EDGE_SERVICES: ServiceDef[] = [MachDefinition, TraceDefinition];

interface EdgeMethod {
  service: ServiceDef;
  info: MethodInfo;
  path: string;
  stream: boolean;
  entry: string;
}

const METHODS: EdgeMethod[] = EDGE_SERVICES.flatMap((service) =>
  [...methods(service).byKey.values()].map((info) => ({
    service,
    info,
    path: `/${service.fullName}/${info.def.name}`,
    stream: !!info.def.responseStream,
    entry: `${service.name}.${info.key}`,
  })),
);

export interface EdgeMeta {
  task: number | "garbage" | "missing" | "huge";
  token: "own" | "other" | "none" | "garbage";
  traceparent: string | null;
  window: string | null;
  extra: Array<[string, string]>;
}

export type EdgeCase = { method: number; meta: EdgeMeta; body: Body } | { method: number; meta: EdgeMeta; trap: TrapCase };

const meta: fc.Arbitrary<EdgeMeta> = fc.record({
  task: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constantFrom("garbage" as const, "missing" as const, "huge" as const) }),
  token: fc.oneof({ weight: 12, arbitrary: fc.constant("own" as const) }, { weight: 1, arbitrary: fc.constantFrom("other" as const, "none" as const, "garbage" as const) }),
  traceparent: fc.oneof(
    { weight: 6, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: fc.constant("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") },
  ),
  window: fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom("0", "-1", "1e9", "NaN", "4096", "1"), fc.string({ maxLength: 6 })) }),
  extra: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/), fc.string({ maxLength: 20 })), { maxLength: 2 }),
});

const SEND_TRAP = METHODS.findIndex((m) => m.service === MachDefinition && m.info.key === "sendTrap");

/** The calls that end the caller or its namespace: rarer, or a batch is over after its first few calls. */
const FATAL = new Set(["detach", "namespaceTerminate", "taskTerminate"]);
const pick = (fatal: boolean) => METHODS.flatMap((m, i) => (FATAL.has(m.info.key) === fatal ? [i] : []));

export const edgeCase: fc.Arbitrary<EdgeCase> = fc
  .oneof({ weight: 60, arbitrary: fc.constantFrom(...pick(false)) }, { weight: 1, arbitrary: fc.constantFrom(...pick(true)) })
  .chain((method): fc.Arbitrary<EdgeCase> =>
    method === SEND_TRAP ? fc.record({ method: fc.constant(method), meta, trap: trapCase }) : fc.record({ method: fc.constant(method), meta, body: bodyOf(METHODS[method]!.info.def) }),
  );

const ATTACH = METHODS.findIndex((m) => m.service === MachDefinition && m.info.key === "attach");

const raw = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const same = (b: Buffer) => b;

export interface EdgeWorld {
  kw: KernelWorld;
  edge: Edge;
  client: grpc.Client;
}

function metadataOf(m: EdgeMeta, parties: Party[]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of m.extra) {
    try {
      md.set(`x-${k}`, v.replace(/[^\x20-\x7e]/g, "?"));
    } catch {
      // a key grpc-js refuses is no case
    }
  }
  const p = typeof m.task === "number" ? parties[m.task] : undefined;
  if (m.task === "garbage") md.set("hurd-task", "12abc");
  else if (m.task === "huge") md.set("hurd-task", "99999999999999999999");
  else if (p) md.set("hurd-task", String(p.k.id));
  const own = p?.token ?? "";
  const token = m.token === "own" ? own : m.token === "other" ? (parties.find((q) => q !== p)?.token ?? "") : m.token === "garbage" ? "g".repeat(43) : null;
  if (token !== null) md.set("hurd-token", token);
  if (m.traceparent !== null) md.set("traceparent", m.traceparent.replace(/[^\x20-\x7e]/g, "?"));
  if (m.window !== null) md.set("hurd-window", m.window);
  return md;
}

/** One call; answers its gRPC status code (and whether the edge's routine ran). */
function call(w: EdgeWorld, c: EdgeCase, parties: Party[], seq: number): Promise<{ code: number; hurd: number | null }> {
  const m = METHODS[c.method]!;
  const p = typeof c.meta.task === "number" ? parties[c.meta.task] : undefined;
  const names = namesOf(p?.k);
  let body = "trap" in c ? trapBytes(c.trap, parties, w.kw.kernel.config.maxBodyBytes, seq).bytes : bytesOf(m.info.def, c.body, names);
  // attach proves the task in its body, not in metadata: a well-formed one carries the claimed task's own.
  if (c.method === ATTACH && p && "body" in c && "fields" in c.body)
    body = MachDefinition.methods.attach.requestType.encode({ taskId: p.k.id, token: c.meta.token === "own" ? p.token : "", window: seq % 300 }).finish();
  const md = metadataOf(c.meta, parties);
  const hurdOf = (e: grpc.ServiceError | null | undefined) => {
    const v = e?.metadata?.get("hurd-code")[0];
    return v === undefined ? null : Number(v);
  };
  if (!m.stream)
    return new Promise((resolve) => {
      w.client.makeUnaryRequest(m.path, raw, same, Buffer.from(body), md, { deadline: Date.now() + 3000 }, (e) => resolve({ code: e ? e.code : 0, hurd: e ? hurdOf(e) : 0 }));
    });
  return new Promise((resolve) => {
    const s = w.client.makeServerStreamRequest(m.path, raw, same, Buffer.from(body), md, { deadline: Date.now() + 3000 });
    let done = false;
    const end = (code: number, hurd: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      resolve({ code, hurd });
    };
    // Open long enough for the edge to take it (attach, watch), then cancelled, as a client that goes away.
    const t = setTimeout(() => {
      s.cancel();
      end(grpc.status.CANCELLED, 0);
    }, 20);
    s.on("data", () => {});
    s.on("error", (e: grpc.ServiceError) => end(e.code, hurdOf(e)));
    s.on("end", () => end(0, 0));
  });
}

export const edgeTarget: FuzzTarget<EdgeWorld, EdgeCase> = {
  name: "edge",
  batchSize: 512,
  async start(kind: BusKind) {
    const kw = await kernelWorld(kind);
    const edge = new Edge(kw.kernel);
    const port = await edge.listen("127.0.0.1:0");
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 64 * 1024 * 1024 });
    return { kw, edge, client };
  },
  entries: () => METHODS.map((m) => m.entry),
  message: () => edgeCase,
  async run(w, batch, stats: FuzzStats) {
    const k = w.kw.kernel;
    w.kw.baseline = (await import("./audit.js")).auditKernel(k).census;
    const ns = k.newNamespace(k.root, "fuzz-edge");
    k.root.children.add(ns);
    const a = k.bootTask({ name: "edge-a", ns, hostPriv: true });
    const b = k.bootTask({ name: "edge-b", ns });
    const parties: Party[] = [
      { k: a.task, token: a.token },
      { k: b.task, token: b.token },
    ];
    await kcall(w.kw, parties[0]!, "taskForId", { hostPriv: a.hostPriv, taskId: b.task.id });
    const running = new Set<Promise<void>>();
    let seq = 1;
    for (const c of batch) {
      const m = METHODS[c.method]!;
      const good = typeof c.meta.task === "number" && c.meta.token === "own";
      stats.sent();
      const p = call(w, c, parties, seq++).then(({ code, hurd }) => {
        if (hurd !== null) stats.answered(hurd);
        else stats.answered(`grpc ${grpc.status[code]}`);
        // The edge's routine ran: an answer, a Hurd errno in the trailer (not a refused task), or a stream left open.
        if (good && (code === 0 || code === grpc.status.CANCELLED || (hurd !== null && hurd !== Errno.KERN_INVALID_TASK))) stats.reach(m.entry);
      });
      running.add(p);
      void p.finally(() => running.delete(p));
      if (running.size >= 32) await Promise.race(running);
    }
    await Promise.all(running);
    if (ns.active) k.destroyNamespace(ns, "fuzz batch over");
  },
  check: (w) => checkKernel(w.kw),
  async close(w) {
    w.client.close();
    await w.edge.close();
    await w.kw.close();
  },
};

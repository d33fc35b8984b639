// `hurd subhurd create|ls|rm|set`: asks the subhurd manager the host of the
// root hurd serves (init's BOOT_NAMES.subhurds, handed to every command's task).
import { client, Errno, HurdError } from "@hurdmesh/mach";
import type { HurdLimits, HurdPolicy, NamespaceInfoReply } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { SubhurdDefinition } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import { CliError, connect, NAMES } from "./session.js";

async function manager(hurd = "hurd") {
  const c = await connect(hurd, "subhurd");
  return { c, m: client(c.task, SubhurdDefinition, NAMES.subhurds) };
}

/** The limit and policy options of `create` and `set`, as commander gives them. */
export interface LimitOptions {
  maxTasks?: string;
  maxPorts?: string;
  maxQueuedBytes?: string;
  maxChildren?: string;
  policy?: string;
}

const POLICIES = { "deny-new-tasks": "denyNewTasks", "kill-on-limit": "killOnLimit", closed: "closed" } as const;
const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A count: a whole number (the kernel says whether it is in range). */
function count(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new CliError(`${flag}: not a count: ${v}`);
  return Number(v);
}

/** A size: bytes, or with K, M or G (powers of 1024; KiB, MB and the like are read the same). */
export function parseSize(flag: string, v: string): number {
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(v.trim());
  const n = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n)) throw new CliError(`${flag}: not a size: ${v} (bytes, or with K, M or G)`);
  return n;
}

/** The policy list: deny-new-tasks, kill-on-limit, closed, comma-separated ("none" for none). */
function policy(v: string): HurdPolicy {
  const p: HurdPolicy = { denyNewTasks: false, killOnLimit: false, closed: false };
  for (const w of v.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (w === "none") continue;
    const key = POLICIES[w as keyof typeof POLICIES];
    if (!key) throw new CliError(`--policy: ${w} is not one of ${Object.keys(POLICIES).join(", ")}, none`);
    p[key] = true;
  }
  return p;
}

function limitsOf(o: LimitOptions): HurdLimits | undefined {
  const l: HurdLimits = {};
  if (o.maxTasks !== undefined) l.maxTasks = count("--max-tasks", o.maxTasks);
  if (o.maxPorts !== undefined) l.maxPorts = count("--max-ports", o.maxPorts);
  if (o.maxQueuedBytes !== undefined) l.maxQueuedBytes = parseSize("--max-queued-bytes", o.maxQueuedBytes);
  if (o.maxChildren !== undefined) l.maxChildren = count("--max-children", o.maxChildren);
  return Object.keys(l).length ? l : undefined;
}

function describe(i: NamespaceInfoReply | undefined): string {
  if (!i?.limits) return "";
  const l = i.limits;
  const p = i.policy;
  const pol = p ? Object.entries(POLICIES).filter(([, k]) => p[k]).map(([w]) => w) : [];
  return `tasks ${i.tasks}/${l.maxTasks}, ports ${i.ports}/${l.maxPorts}, queued ${i.queuedBytes}/${l.maxQueuedBytes} bytes, hurds ${i.children}/${l.maxChildren}, policy ${pol.join(",") || "none"}`;
}

export async function subhurdCreate(name: string, o: { parent?: string; hurd?: string } & LimitOptions): Promise<void> {
  // Bad values are refused here, before anything is booted.
  const limits = limitsOf(o);
  const pol = o.policy !== undefined ? policy(o.policy) : undefined;
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.create({ name, parent: o.parent ?? "", limits, policy: pol });
    console.log(`subhurd ${name} is up (namespace ${r.namespaceId}): hurd ps --hurd ${r.session}`);
  } catch (e) {
    if (e instanceof HurdError && e.code === Errno.MACH_SEND_INVALID_DEST) throw new CliError("this hurd manages no subhurds (only `hurd up` in embedded mode does)");
    throw e;
  } finally {
    await c.close();
  }
}

export async function subhurdSet(name: string, o: { hurd?: string } & LimitOptions): Promise<void> {
  const limits = limitsOf(o);
  const pol = o.policy !== undefined ? policy(o.policy) : undefined;
  if (!limits && !pol) throw new CliError("nothing to set: give --max-tasks, --max-ports, --max-queued-bytes, --max-children or --policy");
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.setPolicy({ name, limits, policy: pol });
    console.log(`subhurd ${name}: ${describe(r.info)}`);
  } finally {
    await c.close();
  }
}

export async function subhurdLs(o: { hurd?: string; json?: boolean }): Promise<void> {
  const { c, m } = await manager(o.hurd);
  try {
    const { subhurds } = await m.list({});
    if (o.json) for (const s of subhurds) console.log(JSON.stringify(s));
    else {
      console.log("NAME".padEnd(16) + "PARENT".padEnd(16) + "NAMESPACE  DEPTH  LIMITS");
      for (const s of subhurds) console.log(s.name.padEnd(16) + s.parent.padEnd(16) + String(s.namespaceId).padEnd(11) + String(s.depth).padEnd(7) + describe(s.info));
    }
  } finally {
    await c.close();
  }
}

export async function subhurdRm(name: string, o: { hurd?: string }): Promise<void> {
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.remove({ name });
    console.log(`removed ${r.removed.join(", ")}`);
  } finally {
    await c.close();
  }
}

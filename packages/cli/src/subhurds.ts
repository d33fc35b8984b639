// `hurd subhurd create|ls|rm|set`: asks the subhurd manager the host of the
// root hurd serves (init's BOOT_NAMES.subhurds, handed to every command's task).
import { client, Errno, HurdError } from "@hurdmesh/mach";
import type { HurdLimits, HurdPolicy, NamespaceInfoReply } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { SubhurdDefinition, type Entry } from "@hurdmesh/proto/hurd/subhurd/v1/subhurd";
import { UsageError } from "./errors.js";
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
/**
 * Booting or removing a subhurd waits on its servers: with --nats each is an
 * OS process to start (or stop), which takes far longer than the CLI's
 * default 10 s deadline on a loaded machine.
 */
const BOOT_DEADLINE = { timeoutMs: 180_000 };

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A count: a whole number (the kernel says whether it is in range). */
function count(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`${flag}: not a count: ${v}`);
  return Number(v);
}

/** A size: bytes, or with K, M or G (powers of 1024; KiB, MB and the like are read the same). */
export function parseSize(flag: string, v: string): number {
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(v.trim());
  const n = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag}: not a size: ${v} (bytes, or with K, M or G)`);
  return n;
}

/** The policy list: deny-new-tasks, kill-on-limit, closed, comma-separated ("none" for none). */
function policy(v: string): HurdPolicy {
  const p: HurdPolicy = { denyNewTasks: false, killOnLimit: false, closed: false };
  for (const w of v.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (w === "none") continue;
    const key = POLICIES[w as keyof typeof POLICIES];
    if (!key) throw new UsageError(`--policy: ${w} is not one of ${Object.keys(POLICIES).join(", ")}, none`);
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

/** Policy words set in `p`, as --policy takes them. */
function policyWords(p: HurdPolicy | undefined): string[] {
  return p ? Object.entries(POLICIES).filter(([, k]) => p[k]).map(([w]) => w) : [];
}

function describe(i: NamespaceInfoReply | undefined): string {
  if (!i?.limits) return "";
  const l = i.limits;
  return `tasks ${i.tasks}/${l.maxTasks}, ports ${i.ports}/${l.maxPorts}, queued ${i.queuedBytes}/${l.maxQueuedBytes} bytes, hurds ${i.children}/${l.maxChildren}, policy ${policyWords(i.policy).join(",") || "none"}`;
}

/**
 * One subhurd as `hurd subhurd ls` shows it: its columns' names as keys,
 * usage beside each limit (packages/cli/schema/subhurd.json).
 */
export interface SubhurdRow {
  name: string;
  parent: string;
  ns: number;
  depth: number;
  tasks: number;
  maxTasks: number;
  ports: number;
  maxPorts: number;
  queued: number;
  maxQueued: number;
  hurds: number;
  maxHurds: number;
  policy: string[];
}

function row(e: Entry): SubhurdRow {
  const i = e.info;
  const l = i?.limits;
  return {
    name: e.name,
    parent: e.parent,
    ns: e.namespaceId,
    depth: e.depth,
    tasks: i?.tasks ?? 0,
    maxTasks: l?.maxTasks ?? 0,
    ports: i?.ports ?? 0,
    maxPorts: l?.maxPorts ?? 0,
    queued: i?.queuedBytes ?? 0,
    maxQueued: l?.maxQueuedBytes ?? 0,
    hurds: i?.children ?? 0,
    maxHurds: l?.maxChildren ?? 0,
    policy: policyWords(i?.policy),
  };
}

export async function subhurdCreate(name: string, o: { parent?: string; hurd?: string } & LimitOptions): Promise<void> {
  // Bad values are refused here, before anything is booted.
  const limits = limitsOf(o);
  const pol = o.policy !== undefined ? policy(o.policy) : undefined;
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.create({ name, parent: o.parent ?? "", limits, policy: pol }, BOOT_DEADLINE);
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
  if (!limits && !pol) throw new UsageError("nothing to set: give --max-tasks, --max-ports, --max-queued-bytes, --max-children or --policy");
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
    const rows = (await m.list({})).subhurds.map(row);
    if (o.json) for (const r of rows) console.log(JSON.stringify(r));
    else {
      // Numbers right-aligned, as ps's; usage/limit in each resource's column.
      const cols: [string, (r: SubhurdRow) => string, boolean][] = [
        ["NAME", (r) => r.name, false],
        ["PARENT", (r) => r.parent, false],
        ["NS", (r) => String(r.ns), true],
        ["DEPTH", (r) => String(r.depth), true],
        ["TASKS", (r) => `${r.tasks}/${r.maxTasks}`, true],
        ["PORTS", (r) => `${r.ports}/${r.maxPorts}`, true],
        ["QUEUED", (r) => `${r.queued}/${r.maxQueued}`, true],
        ["HURDS", (r) => `${r.hurds}/${r.maxHurds}`, true],
        ["POLICY", (r) => r.policy.join(",") || "none", false],
      ];
      const cells = [cols.map(([h]) => h), ...rows.map((r) => cols.map(([, f]) => f(r)))];
      const width = cols.map((_c, i) => Math.max(...cells.map((c) => c[i]!.length)));
      for (const c of cells) console.log(c.map((v, i) => (i === c.length - 1 ? v : cols[i]![2] ? v.padStart(width[i]!) : v.padEnd(width[i]!))).join(" "));
    }
  } finally {
    await c.close();
  }
}

export async function subhurdRm(name: string, o: { hurd?: string }): Promise<void> {
  const { c, m } = await manager(o.hurd);
  try {
    const r = await m.remove({ name }, BOOT_DEADLINE);
    console.log(`removed ${r.removed.join(", ")}`);
  } finally {
    await c.close();
  }
}

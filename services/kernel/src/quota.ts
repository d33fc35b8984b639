// Resource accounting and creation policy: what each task and each hurd
// holds, charged up the namespace chain (a subhurd's usage counts against
// every hurd it is nested in, as cgroups and Zircon jobs count), and the
// policy a hurd sets on the tasks made in it (Zircon's job policy). Every
// charge walks the chain, at most maxNamespaceDepth + 1 hurds; nothing
// scans. A refusal throws before anything is changed (the callers check,
// then make), with Mach's codes: KERN_RESOURCE_SHORTAGE for a hurd's
// tasks, names and nested hurds, KERN_NO_SPACE for one task's names,
// MACH_SEND_NO_BUFFER for queued bytes, KERN_NO_ACCESS for a policy.
//
// Names are counted where they come and go (Space.insert/remove in
// objects.ts), so no path can make one uncounted; what is charged here is
// the rest: tasks, nested hurds and queued messages.
//
// A kernel made with accounting off (KernelState.accounting, for the
// bench's baseline only) charges nothing and checks no limit here but a
// space's own bound; policies still hold. What the bench compares is what
// these walks cost on the hot path.
import type { ErrnoName } from "@hurdmesh/mach";
import type { HurdLimits as HurdLimitsMsg, HurdPolicy } from "@hurdmesh/proto/hurd/mach/v1/mach";
import type { HurdLimits } from "./config.js";
import type { KMsg, KTask, Namespace, Space } from "./objects.js";
import { err, type KernelState } from "./state.js";

/** HurdPolicy as bits on a Namespace. */
export const POLICY_DENY_NEW_TASKS = 1;
export const POLICY_KILL_ON_LIMIT = 2;
export const POLICY_CLOSED = 4;

/**
 * What a queued message is charged: its body, plus what the kernel keeps
 * for it (the message, about 250 bytes, and each right in it, about 32),
 * so that a flood of empty messages is bounded too.
 */
export const MSG_COST = 256;
export const RIGHT_COST = 32;

export function queuedCost(m: KMsg): number {
  return m.body.length + MSG_COST + (m.rights !== null ? m.rights.length * RIGHT_COST : 0);
}

/**
 * The most bytes a delivery of this message can encode to (hurd.mach.v1.Delivery
 * around Received): the body and trace context, at most 12 bytes per right,
 * and at most 128 for every other field with its tag and length. What the
 * kernel accepts must fit in one message on its bus (copyinMessage).
 */
export function deliveryBound(bodyLength: number, rights: number, traceContextLength: number): number {
  return bodyLength + traceContextLength + rights * 12 + 128;
}

// ---------------------------------------------------------------- refusals

/**
 * The error for a limit of `ns` that `offender` ran into. A hurd whose
 * policy kills on a limit gets the offender terminated instead, once the
 * call that ran into it has been undone (task.ts, settleOffender).
 */
function limitHit(k: KernelState, offender: KTask | null, ns: Namespace | null, code: ErrnoName, detail: string): Error {
  if (offender !== null && ns !== null && ns.policy & POLICY_KILL_ON_LIMIT && offender.active) k.offender = offender;
  return err(code, detail);
}

function who(ns: Namespace): string {
  return ns.parent === null ? "the root hurd" : `hurd ${ns.label} (namespace ${ns.id})`;
}

// ---------------------------------------------------------------- names

/** Whether `sp` may take one more name: its task's and every enclosing hurd's limit. */
export function roomForName(k: KernelState, sp: Space): boolean {
  if (sp.entries.size >= k.config.maxNamesPerTask) return false;
  if (!k.accounting) return true;
  for (let n: Namespace | null = sp.ns; n !== null; n = n.parent) if (n.ports >= n.maxPorts) return false;
  return true;
}

/** Refuses a new name in `sp` (for a call made by `offender`) when there is no room. */
export function needName(k: KernelState, sp: Space, offender: KTask | null): void {
  if (sp.entries.size >= k.config.maxNamesPerTask) throw limitHit(k, offender, sp.ns, "KERN_NO_SPACE", `${k.config.maxNamesPerTask} names in one space`);
  if (!k.accounting) return;
  for (let n: Namespace | null = sp.ns; n !== null; n = n.parent)
    if (n.ports >= n.maxPorts) throw limitHit(k, offender, n, "KERN_RESOURCE_SHORTAGE", `${who(n)} holds ${n.maxPorts} port names`);
}

// ---------------------------------------------------------------- tasks and hurds

/**
 * task_create's checks, before anything is made: the policy of every hurd
 * the new task would live in (the parent's hurd `ns` and those enclosing
 * it), and room for one more task in each; with `newHurd`, room for one
 * more nested hurd too. `caller` is null for a task the kernel makes itself
 * (boot tasks), which no "closed" policy keeps out.
 */
export function checkNewTask(k: KernelState, caller: KTask | null, ns: Namespace, newHurd: boolean): void {
  for (let n: Namespace | null = ns; n !== null; n = n.parent) {
    if (n.policy & POLICY_DENY_NEW_TASKS) throw err("KERN_NO_ACCESS", `${who(n)} denies new tasks`);
    if (n.policy & POLICY_CLOSED && caller !== null && !within(caller.ns, n)) throw err("KERN_NO_ACCESS", `${who(n)} is closed to tasks from outside`);
    if (!k.accounting) continue;
    if (n.ntasks >= n.maxTasks) throw limitHit(k, caller, n, "KERN_RESOURCE_SHORTAGE", `${who(n)} has ${n.maxTasks} tasks`);
    if (newHurd && n.nchildren >= n.maxChildren) throw limitHit(k, caller, n, "KERN_RESOURCE_SHORTAGE", `${who(n)} has ${n.maxChildren} nested hurds`);
  }
}

/** Whether `inner` is `outer` or nested in it. */
export function within(inner: Namespace, outer: Namespace): boolean {
  for (let n: Namespace | null = inner; n !== null; n = n.parent) if (n === outer) return true;
  return false;
}

export function chargeTask(k: KernelState, ns: Namespace): void {
  if (k.accounting) for (let n: Namespace | null = ns; n !== null; n = n.parent) n.ntasks++;
}

export function unchargeTask(k: KernelState, ns: Namespace): void {
  if (k.accounting) for (let n: Namespace | null = ns; n !== null; n = n.parent) n.ntasks--;
}

/** Links a new hurd into its parent once something lives in it: one more nested hurd for every ancestor. */
export function linkNamespace(k: KernelState, ns: Namespace): void {
  if (ns.linked || ns.parent === null) return;
  ns.linked = true;
  ns.parent.children.add(ns);
  k.namespaces.set(ns.id, ns);
  for (let n: Namespace | null = ns.parent; n !== null; n = n.parent) n.nchildren++;
}

export function unlinkNamespace(k: KernelState, ns: Namespace): void {
  if (!ns.linked || ns.parent === null) return;
  ns.linked = false;
  ns.parent.children.delete(ns);
  k.namespaces.delete(ns.id);
  for (let n: Namespace | null = ns.parent; n !== null; n = n.parent) n.nchildren--;
}

// ---------------------------------------------------------------- queued messages

/**
 * Charges a message about to wait in a queue to `payer` (the sender; for a
 * reply, the task that asked for it) and its hurds, or refuses it with
 * MACH_SEND_NO_BUFFER when one of their limits would be passed. A message
 * handed straight to its receiver is never charged.
 */
export function chargeQueued(k: KernelState, m: KMsg, payer: KTask): void {
  if (!k.accounting) return;
  const cost = queuedCost(m);
  if (payer.queuedBytes + cost > k.config.maxQueuedBytesPerTask)
    throw limitHit(k, payer, payer.ns, "MACH_SEND_NO_BUFFER", `task ${payer.id} has ${payer.queuedBytes} bytes queued (limit ${k.config.maxQueuedBytesPerTask})`);
  for (let n: Namespace | null = payer.ns; n !== null; n = n.parent)
    if (n.queuedBytes + cost > n.maxQueuedBytes) throw limitHit(k, payer, n, "MACH_SEND_NO_BUFFER", `${who(n)} has ${n.queuedBytes} bytes queued (limit ${n.maxQueuedBytes})`);
  payer.queuedBytes += cost;
  for (let n: Namespace | null = payer.ns; n !== null; n = n.parent) n.queuedBytes += cost;
  m.payer = payer;
  m.charged = cost;
}

/** The message left its queue (delivered, failed or destroyed): its bytes are given back. */
export function unchargeQueued(m: KMsg): void {
  const cost = m.charged;
  const payer = m.payer!;
  m.charged = 0;
  m.payer = null;
  payer.queuedBytes -= cost;
  for (let n: Namespace | null = payer.ns; n !== null; n = n.parent) n.queuedBytes -= cost;
}

// ---------------------------------------------------------------- limits and policy

const LIMIT_KEYS = ["maxTasks", "maxPorts", "maxQueuedBytes", "maxChildren"] as const;
/** The least a hurd may be given: a hurd needs a task and a name to exist; it may forbid queuing and nesting. */
const LIMIT_MIN: HurdLimits = { maxTasks: 1, maxPorts: 1, maxQueuedBytes: 0, maxChildren: 0 };

export function limitsOf(ns: Namespace): HurdLimits {
  return { maxTasks: ns.maxTasks, maxPorts: ns.maxPorts, maxQueuedBytes: ns.maxQueuedBytes, maxChildren: ns.maxChildren };
}

/** The root hurd's limits are the kernel's totals. */
export function setRootLimits(k: KernelState, root: Namespace): void {
  root.maxTasks = k.config.maxTasks;
  root.maxPorts = k.config.maxPorts;
  root.maxQueuedBytes = k.config.maxQueuedBytes;
  root.maxChildren = k.config.maxHurds;
}

/**
 * Checks limits asked for a hurd nested in `parent` (unset fields: `base`)
 * and answers the limits it would have. A value is a whole number at least
 * LIMIT_MIN and at most the parent's own limit: a hurd nested in another
 * can never hold more than it, since everything is charged to both.
 */
export function resolveLimits(parent: Namespace, base: HurdLimits, asked: HurdLimitsMsg | undefined): HurdLimits {
  const out = { ...base };
  for (const key of LIMIT_KEYS) {
    const v = asked?.[key];
    const cap = parent[key];
    if (v === undefined || v === null) {
      out[key] = Math.min(base[key], cap);
      continue;
    }
    if (!Number.isSafeInteger(v) || v < LIMIT_MIN[key]) throw err("KERN_INVALID_VALUE", `${key} ${v}: at least ${LIMIT_MIN[key]}`);
    if (v > cap) throw err("KERN_INVALID_VALUE", `${key} ${v} is above ${who(parent)}'s own ${cap}`);
    out[key] = v;
  }
  return out;
}

export function setLimits(ns: Namespace, l: HurdLimits): void {
  ns.maxTasks = l.maxTasks;
  ns.maxPorts = l.maxPorts;
  ns.maxQueuedBytes = l.maxQueuedBytes;
  ns.maxChildren = l.maxChildren;
}

export function policyBits(p: HurdPolicy | undefined): number {
  if (!p) return 0;
  return (p.denyNewTasks ? POLICY_DENY_NEW_TASKS : 0) | (p.killOnLimit ? POLICY_KILL_ON_LIMIT : 0) | (p.closed ? POLICY_CLOSED : 0);
}

export function policyOf(bits: number): HurdPolicy {
  return { denyNewTasks: !!(bits & POLICY_DENY_NEW_TASKS), killOnLimit: !!(bits & POLICY_KILL_ON_LIMIT), closed: !!(bits & POLICY_CLOSED) };
}

/**
 * namespace_set_policy's rule: through its own host port (`own`) a hurd may
 * only tighten (add policy bits, lower limits), so a subhurd cannot undo
 * what its parent set; an ancestor's host port may change anything within
 * the parent's limits.
 */
export function setPolicy(ns: Namespace, own: boolean, policy: HurdPolicy | undefined, limits: HurdLimitsMsg | undefined): void {
  const bits = policy ? policyBits(policy) : ns.policy;
  if (own && ns.policy & ~bits) throw err("KERN_NO_ACCESS", "a hurd may only add to its own policy (its parent may lift it)");
  const cur = limitsOf(ns);
  let next = cur;
  if (limits) {
    if (ns.parent !== null) next = resolveLimits(ns.parent, cur, limits);
    else {
      // The root hurd has no parent to bound it: its limits may only go down.
      next = { ...cur };
      for (const key of LIMIT_KEYS) {
        const v = limits[key];
        if (v === undefined || v === null) continue;
        if (!Number.isSafeInteger(v) || v < LIMIT_MIN[key]) throw err("KERN_INVALID_VALUE", `${key} ${v}: at least ${LIMIT_MIN[key]}`);
        next[key] = v;
      }
    }
    if (own) for (const key of LIMIT_KEYS) if (next[key] > cur[key]) throw err("KERN_NO_ACCESS", `a hurd may only lower its own ${key} (its parent may raise it)`);
  }
  setLimits(ns, next);
  ns.policy = bits;
}

export function namespaceInfoOf(ns: Namespace) {
  return {
    namespaceId: ns.id,
    limits: limitsOf(ns),
    policy: policyOf(ns.policy),
    tasks: ns.ntasks,
    ports: ns.ports,
    queuedBytes: ns.queuedBytes,
    children: ns.nchildren,
    depth: ns.depth,
  };
}

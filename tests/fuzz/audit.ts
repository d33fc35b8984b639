// The kernel's books, audited from outside between traps: every send and
// send-once right a port counts (srights, sorights) must be held by
// someone — a name in a space, a message queued or waiting, a notification
// request, a task's special port, a namespace's proc notify port — and
// every space's two maps must agree. The kernel handles one trap at a time
// and completes it, so between two traps the books balance exactly; a
// count off by one is a right leaked (a port that never dies, no-senders
// never sent) or one released twice (a no-senders too early).
import type { Kernel, KTask } from "@hurdmesh/kernel";

type KPort = KTask["self"];
type KMsg = KPort["queue"][number];
type Entry = ReturnType<KTask["space"]["entries"]["get"]> & object;
type Ns = KTask["ns"];

const TYPE_SEND = 1 << 16;
const TYPE_RECEIVE = 1 << 17;
const TYPE_SEND_ONCE = 1 << 18;
const TYPE_PORT_SET = 1 << 19;
const TYPE_DEAD_NAME = 1 << 20;
const R_SEND = 17;
const R_SEND_ONCE = 18;
const R_RECEIVE = 16;

export interface KernelCensus {
  tasks: number;
  names: number;
  ports: number;
  queued: number;
  blocked: number;
  namespaces: number;
}

/** Audits `k`; answers what disagrees (empty when the books balance) and what it counted. */
export function auditKernel(k: Kernel, maxProblems = 10): { problems: string[]; census: KernelCensus } {
  const problems: string[] = [];
  const bad = (s: string) => {
    if (problems.length < maxProblems) problems.push(s);
  };
  const s = new Map<KPort, number>();
  const so = new Map<KPort, number>();
  const seen = new Set<KPort>();
  const work: KPort[] = [];
  const visit = (p: KPort | null | undefined) => {
    if (p && !seen.has(p)) {
      seen.add(p);
      work.push(p);
    }
  };
  const add = (m: Map<KPort, number>, p: KPort | null | undefined) => {
    if (!p) return;
    m.set(p, (m.get(p) ?? 0) + 1);
    visit(p);
  };
  let names = 0;
  let queued = 0;
  let blocked = 0;
  for (const t of k.tasks.values()) {
    if (!t.active) bad(`task ${t.id} listed but not active`);
    visit(t.self);
    add(s, t.bootstrap);
    add(s, t.exception);
    const sp = t.space;
    let indexed = 0;
    for (const [name, e] of sp.entries) {
      names++;
      if (e.name !== name) bad(`task ${t.id}: entry ${e.name} filed under ${name}`);
      entryAudit(t, e, bad);
      // A right to a dead port is a dead name in waiting (Mach turns it lazily): still counted on the port.
      if (e.bits & TYPE_SEND) add(s, e.port);
      if (e.bits & TYPE_SEND_ONCE) add(so, e.port);
      if (e.bits & TYPE_RECEIVE) visit(e.port);
      if (e.dnrequest) add(so, e.dnrequest);
      if (e.port && e.bits & (TYPE_SEND | TYPE_RECEIVE)) {
        indexed++;
        if (sp.byPort.get(e.port) !== e) bad(`task ${t.id}: name ${name} holds port ${e.port.id} but byPort says ${sp.byPort.get(e.port)?.name}`);
      }
    }
    if (sp.byPort.size !== indexed) bad(`task ${t.id}: byPort has ${sp.byPort.size} ports, the entries ${indexed}`);
  }
  const spaces = new Set<Ns>();
  const walk = (ns: Ns) => {
    spaces.add(ns);
    visit(ns.hostPriv);
    add(s, ns.notify);
    for (const c of ns.children) walk(c);
  };
  walk(k.root);
  const inMsg = (m: KMsg) => {
    if (m.destType === R_SEND) add(s, m.dest);
    else if (m.destType === R_SEND_ONCE) add(so, m.dest);
    if (m.reply) {
      if (m.replyType === R_SEND) add(s, m.reply);
      else if (m.replyType === R_SEND_ONCE) add(so, m.reply);
    }
    if (m.rights)
      for (const r of m.rights) {
        if (r.type === R_SEND) add(s, r.port);
        else if (r.type === R_SEND_ONCE) add(so, r.port);
        else if (r.type === R_RECEIVE) visit(r.port);
      }
  };
  while (work.length) {
    const p = work.pop()!;
    add(so, p.nsrequest);
    add(so, p.pdrequest);
    for (let i = p.qhead; i < p.queue.length; i++) {
      queued++;
      inMsg(p.queue[i]!);
    }
    if (p.blocked)
      for (const b of p.blocked) {
        blocked++;
        inMsg(b.msg);
      }
    if (!p.active && p.msgcount) bad(`dead port ${p.id} still queues ${p.msgcount} messages`);
    if (p.receiver && !p.receiver.active) bad(`port ${p.id}'s receiver task ${p.receiver.id} is dead`);
    if (p.receiver && !(p.receiver.space.byPort.get(p)?.bits! & TYPE_RECEIVE)) bad(`port ${p.id}'s receiver task ${p.receiver.id} does not hold its receive right`);
  }
  for (const p of seen) {
    const ws = s.get(p) ?? 0;
    const wso = so.get(p) ?? 0;
    // A dead port's counts are no longer kept (nothing can be sent to it): only a live one must balance.
    if (!p.active) continue;
    if (p.srights !== ws) bad(`port ${p.id}: srights ${p.srights}, held ${ws}`);
    if (p.sorights !== wso) bad(`port ${p.id}: sorights ${p.sorights}, held ${wso}`);
  }
  if (k.undo.length) bad(`undo log holds ${k.undo.length} entries between traps`);
  if (k.deletedLater.length) bad(`${k.deletedLater.length} port-deleted notifications owed between traps`);
  if (k.delivering) bad(`delivering is ${k.delivering} between traps`);
  if (k.leased.size > k.tasks.size) bad(`${k.leased.size} leases for ${k.tasks.size} tasks`);
  return { problems, census: { tasks: k.tasks.size, names, ports: seen.size, queued, blocked, namespaces: spaces.size } };
}

function entryAudit(t: KTask, e: Entry, bad: (s: string) => void): void {
  const kinds = e.bits & (TYPE_SEND | TYPE_RECEIVE | TYPE_SEND_ONCE | TYPE_PORT_SET | TYPE_DEAD_NAME);
  if (!kinds) bad(`task ${t.id}: name ${e.name} holds nothing`);
  if (e.bits & TYPE_DEAD_NAME && kinds !== TYPE_DEAD_NAME) bad(`task ${t.id}: dead name ${e.name} holds more (${kinds.toString(16)})`);
  if (e.bits & TYPE_SEND_ONCE && kinds !== TYPE_SEND_ONCE) bad(`task ${t.id}: send-once name ${e.name} holds more (${kinds.toString(16)})`);
  if (e.bits & (TYPE_SEND | TYPE_DEAD_NAME) && !(e.urefs >= 1)) bad(`task ${t.id}: name ${e.name} with ${e.urefs} urefs`);
  if (!(e.bits & (TYPE_SEND | TYPE_DEAD_NAME)) && e.urefs !== 0) bad(`task ${t.id}: name ${e.name} (${kinds.toString(16)}) with ${e.urefs} urefs`);
  if (e.bits & (TYPE_SEND | TYPE_RECEIVE | TYPE_SEND_ONCE) && !e.port) bad(`task ${t.id}: name ${e.name} has no port`);
  if (e.bits & TYPE_RECEIVE && e.port && e.port.receiver !== t) bad(`task ${t.id}: receive right ${e.name} but port ${e.port.id}'s receiver is ${e.port.receiver?.id}`);
  if (e.bits & TYPE_PORT_SET && !e.members) bad(`task ${t.id}: port set ${e.name} without members`);
}

// Keeping a hurd's process tree drawable: a browser lays out and draws a
// few thousand nodes at interactive speed, not tens of thousands. So the
// tree is cut in two places, and what is cut is drawn as one node that says
// how many processes it stands for (the side panel lists them on demand):
//
//   - under each process, its first VIEW_BOUNDS.perParent children by pid
//     are nodes, the rest one group node ("N more, pids a–b");
//   - over the whole view, once VIEW_BOUNDS.maxNodes processes are nodes
//     (walking each hurd's tree breadth first, root hurd first), every
//     process not reached yet joins one group per hurd.
//
// A hurd of 10,000 processes under one parent is thus 12 nodes and a
// group; 10,000 in a deep chain are 1,500 nodes and a group.
import type { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import type { WebGroup, WebHurd, WebProc } from "./types.js";

export const VIEW_BOUNDS = {
  /** Children of one process shown one by one; the rest are one group. */
  perParent: 12,
  /** Processes shown one by one over the whole view; the rest are a group per hurd. */
  maxNodes: 1500,
};

const PI_STOPPED = 0x1;
const PI_SESSLD = 0x20;
const PI_ZOMBIE = 0x100;
const PI_TRACED = 0x200;

/** procps's STAT letters, as `hurd ps` prints them. */
export function statOf(state: number): string {
  let s = state & PI_ZOMBIE ? "Z" : state & PI_STOPPED ? "T" : state & PI_TRACED ? "t" : "S";
  if (state & PI_SESSLD) s += "s";
  return s;
}

export function webProc(hurd: string, p: ProcInfo, now: number): WebProc {
  return {
    id: `${hurd}/${p.pid}`,
    hurd,
    pid: p.pid,
    ppid: p.ppid,
    pgid: p.pgrp,
    sid: p.session,
    uid: p.owned ? p.owner : -1,
    stat: statOf(p.state),
    ageMs: p.startMs ? Math.max(0, now - p.startMs) : 0,
    command: p.command || p.exe || "?",
    taskId: p.taskId,
    serial: p.serial,
  };
}

/**
 * One hurd's processes as the view shows them, within `budget` nodes
 * (what is left of VIEW_BOUNDS.maxNodes); answers the hurd and the nodes it used.
 */
export function viewOf(name: string, parent: string, namespaceId: number, procs: ProcInfo[], budget: number, now = Date.now(), bounds = VIEW_BOUNDS): { hurd: WebHurd; used: number } {
  const byPid = new Map<number, ProcInfo>();
  for (const p of procs) byPid.set(p.pid, p);
  const kids = new Map<number, ProcInfo[]>();
  const roots: ProcInfo[] = [];
  for (const p of procs) {
    if (p.ppid === p.pid || !byPid.has(p.ppid)) roots.push(p);
    else {
      let k = kids.get(p.ppid);
      if (k === undefined) kids.set(p.ppid, (k = []));
      k.push(p);
    }
  }
  roots.sort((a, b) => a.pid - b.pid);
  const shown: WebProc[] = [];
  const groups: WebGroup[] = [];
  /** Pids drawn as nodes or counted in a per-parent group. */
  const accounted = new Set<number>();
  const queue: ProcInfo[] = [...roots];
  for (let i = 0; i < queue.length && shown.length < budget; i++) {
    const p = queue[i]!;
    shown.push(webProc(name, p, now));
    accounted.add(p.pid);
    const cs = (kids.get(p.pid) ?? []).sort((a, b) => a.pid - b.pid);
    for (const c of cs.slice(0, bounds.perParent)) queue.push(c);
    const rest = cs.slice(bounds.perParent);
    if (rest.length > 0) {
      // A group stands for its members' descendants too.
      const members = subtree(rest, kids);
      for (const m of members) accounted.add(m.pid);
      groups.push({ id: `${name}/+${p.pid}`, hurd: name, parent: `${name}/${p.pid}`, count: members.length, minPid: rest[0]!.pid, maxPid: rest[rest.length - 1]!.pid });
    }
  }
  // What the budget did not reach: one group under the hurd.
  let left = 0;
  let minPid = Infinity;
  let maxPid = -Infinity;
  for (const p of procs) {
    if (accounted.has(p.pid)) continue;
    left++;
    minPid = Math.min(minPid, p.pid);
    maxPid = Math.max(maxPid, p.pid);
  }
  if (left > 0) groups.push({ id: `${name}/+rest`, hurd: name, parent: "", count: left, minPid, maxPid });
  return { hurd: { name, parent, namespaceId, total: procs.length, procs: shown, groups }, used: shown.length };
}

/** `ps` and their descendants. */
function subtree(ps: ProcInfo[], kids: Map<number, ProcInfo[]>): ProcInfo[] {
  const out: ProcInfo[] = [];
  const stack = [...ps];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    for (const c of kids.get(p.pid) ?? []) stack.push(c);
  }
  return out;
}

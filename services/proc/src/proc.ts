// The process table's objects, as proc/proc.h has them: processes, process
// groups, sessions, login collections. Kept lean (links instead of sets
// where a process has few relations) so a million processes fit in proc.

import type { Handle } from "./handles.js";
import type { Waiter } from "./wait.js";

/** Process flags (struct proc's p_* bits). */
export const P = {
  EXEC: 1 << 0,
  STOPPED: 1 << 1,
  WAITED: 1 << 2,
  EXITING: 1 << 3,
  TRACED: 1 << 4,
  NOSTOPCLD: 1 << 5,
  PARENTSET: 1 << 6,
  DEADMSG: 1 << 7,
  IMPORTANT: 1 << 8,
  CONTINUED: 1 << 9,
  DEAD: 1 << 10,
  LOGINLEADER: 1 << 11,
  /** The task namespace root (proc_make_task_namespace). */
  NSROOT: 1 << 12,
  /** Reaped: no longer in the tables. */
  REAPED: 1 << 13,
} as const;

export interface Rusage {
  utimeUs: number;
  stimeUs: number;
  maxrssKb: number;
  msgsnd: number;
  msgrcv: number;
}

export class Login {
  constructor(public name: string) {}
}

export class Session {
  readonly pgrps = new Set<Pgrp>();
  /** The session port (proc_getsidport): a receive right no one listens on. */
  sidport = 0;
  constructor(readonly sid: number) {}
}

export class Pgrp {
  readonly members = new Set<Proc>();
  /** Members whose parent is in another pgrp of the same session: 0 means orphaned. */
  linked = 0;
  constructor(
    readonly pgid: number,
    public session: Session,
  ) {}
}

export class Proc {
  flags = 0;
  /** The task port's name in proc's space (0 while unbound, e.g. pid 1 before set_init_task). */
  task = 0;
  taskId = 0;
  /** The process port (a receive right of proc's), made when first asked for. */
  port = 0;
  parent: Proc | null = null;
  firstChild: Proc | null = null;
  nextSibling: Proc | null = null;
  prevSibling: Proc | null = null;
  pgrp: Pgrp | null = null;
  login: Login;
  /** Effective then available uids; the Hurd's proc keeps no gids. */
  uids: readonly number[] = NOIDS;
  msgport = 0;
  status = 0;
  sigcode = 0;
  argvAddr = 0;
  envpAddr = 0;
  startCode = 0;
  endCode = 0;
  entry = 0;
  exe = "";
  /** argv and envp themselves (NUL-separated), when the process registered them. */
  args: Uint8Array | null = null;
  env: Uint8Array | null = null;
  rusage: Rusage | null = null;
  childRusage: Rusage | null = null;
  waiters: Waiter[] | null = null;
  msgportWaiters: Array<() => void> | null = null;
  handles: Handle[] | null = null;
  /** For a process in a task namespace: its root (Hurd semantics of proc_make_task_namespace). */
  nsRoot: Proc | null = null;
  nsNotify = 0;
  readonly startMs = Date.now();
  /** 0 for a process of this hurd; else the id of the nested hurd (subhurd) it runs in. */
  ns = 0;
  constructor(
    readonly pid: number,
    readonly serial: number,
    login: Login,
  ) {
    this.login = login;
  }

  has(f: number): boolean {
    return (this.flags & f) !== 0;
  }

  get dead(): boolean {
    return (this.flags & P.DEAD) !== 0;
  }

  *children(): Generator<Proc> {
    for (let c = this.firstChild; c; c = c.nextSibling) yield c;
  }
}

/** Whether p's pgrp is orphaned: no member has its parent in another pgrp of the session (POSIX). */
export function isOrphaned(p: Proc): boolean {
  return !!p.pgrp && p.pgrp.linked === 0;
}

export const NOIDS: readonly number[] = Object.freeze([]);
export const ROOT_IDS: readonly number[] = Object.freeze([0, 0]);

/** check_uid: the process holds `uid`, or uid 0, among all its ids. */
export function checkUid(p: Proc, uid: number): boolean {
  for (const u of p.uids) if (u === uid || u === 0) return true;
  return false;
}

/**
 * check_owner (2021 rule): a may act on b if a is b; a has ids and is root;
 * or b has ids and every id of b is held by a. Unowned processes (no ids)
 * are reachable by root only.
 */
export function checkOwner(a: Proc, b: Proc): boolean {
  if (a === b) return true;
  if (a.uids.length === 0) return false;
  if (a.uids.includes(0)) return true;
  if (b.uids.length === 0) return false;
  for (const u of b.uids) if (!a.uids.includes(u)) return false;
  return true;
}

export function addChild(parent: Proc, c: Proc): void {
  c.parent = parent;
  c.prevSibling = null;
  c.nextSibling = parent.firstChild;
  if (parent.firstChild) parent.firstChild.prevSibling = c;
  parent.firstChild = c;
}

export function removeChild(c: Proc): void {
  const p = c.parent;
  if (!p) return;
  if (c.prevSibling) c.prevSibling.nextSibling = c.nextSibling;
  else if (p.firstChild === c) p.firstChild = c.nextSibling;
  if (c.nextSibling) c.nextSibling.prevSibling = c.prevSibling;
  c.parent = null;
  c.nextSibling = null;
  c.prevSibling = null;
}

// Process lifecycle and identity (mgt.c): child, reassign, the mark bits,
// task and pid lookups, exit and task death, reparenting, init's task.
import { CLD, Errno, HurdError, SIG, W, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { newids, postSignal } from "./msg.js";
import { joinPgrp, reparent } from "./pgrp.js";
import { P, checkOwner, checkUid, isOrphaned, type Proc } from "./proc.js";
import { HURD_PID_STARTUP, type ProcServer, type PortObject } from "./server.js";
import { addRusage, childChanged, failWaiters, recheckWaiters } from "./wait.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

/**
 * The process for a task right proc holds, creating it when the task is of
 * proc's own namespace and proc has not heard of it yet (the new-task
 * notification may still be on its way). A task of another hurd gets no pid
 * here: that is what keeps subhurds out of this proc's table.
 */
export async function taskProcess(srv: ProcServer, task: number): Promise<Proc> {
  // Consumes one uref of `task`: kept when it becomes the process's task
  // right, released when proc already holds the task under that name.
  const known = srv.byTask.get(task);
  if (known) {
    srv.drop(task);
    return known;
  }
  let info;
  try {
    info = await srv.task.taskInfo(task);
  } catch {
    srv.drop(task);
    throw new HurdError(Errno.ESRCH, "not a live task");
  }
  const again = srv.byTask.get(task) ?? srv.byTaskId.get(info.taskId);
  if (again) {
    if (!again.task) srv.bindTask(again, task, info.taskId);
    else srv.drop(task);
    return again;
  }
  if (info.namespaceId !== srv.task.namespaceId) {
    // A subhurd of ours is visible (downward, as Linux PID namespaces);
    // a sibling's or an ancestor's task gets no pid here.
    if (!info.namespacePath.includes(srv.task.namespaceId)) {
      srv.drop(task);
      throw new HurdError(Errno.ESRCH, `task ${info.taskId} belongs to another hurd`);
    }
    return nestedProcess(srv, task, info.taskId, info.parentId, info.namespaceId);
  }
  return srv.createProcess(task, info.taskId);
}

/**
 * p takes over stub's task and process port; p's old task is terminated and
 * its old port destroyed; the stub vanishes without a SIGCHLD. Until the new
 * image registers a message port, proc_getmsgport on p waits (DEADMSG).
 */
export function reassignTo(srv: ProcServer, p: Proc, stub: Proc): void {
  const oldTask = p.task;
  const stubPort = stub.port;
  const newTask = stub.task;
  const newTaskId = stub.taskId;
  stub.port = 0;
  stub.task = 0;
  srv.byTask.delete(newTask);
  srv.byTaskId.delete(newTaskId);
  srv.reap(stub);
  srv.bindTask(p, newTask, newTaskId);
  if (oldTask) {
    srv.task.taskTerminate(oldTask).catch(() => {});
    srv.drop(oldTask);
  }
  if (stubPort) {
    if (p.port) srv.destroyPort(p.port);
    p.port = stubPort;
    srv.server.add(stubPort, { kind: "proc", p });
  }
  if (p.msgport) srv.drop(p.msgport);
  p.msgport = 0;
  p.flags |= P.DEADMSG;
  if (stub.args && !p.args) p.args = stub.args;
  srv.touch(p);
}

/**
 * A process of a hurd nested in this one: it gets a pid here too (one pid
 * per level, as Linux), under its creator when this proc knows it, but
 * nobody here adopts it, it is in no group a kill(0) reaches, and it is
 * reaped as soon as it dies (its own hurd's proc does the waiting).
 */
export function nestedProcess(srv: ProcServer, task: number, taskId: number, parentTaskId: number, ns: number, name?: string): Proc {
  const creator = parentTaskId ? srv.byTaskId.get(parentTaskId) : undefined;
  const p = srv.createProcess(task, taskId, undefined, creator && !creator.dead ? creator : undefined);
  p.ns = ns;
  p.flags |= P.PARENTSET;
  // Its argv lives in its own hurd's proc; here it goes by its kernel task name.
  if (name !== undefined) p.exe = name;
  else
    srv.task
      .taskInfo(task)
      .then((i) => {
        if (p.exe || p.has(P.REAPED)) return;
        p.exe = i.name;
        srv.touch(p);
        srv.commitSoon();
      })
      .catch(() => {});
  return p;
}

/** Tells a parent about a child's state change: wakes its waits and sends SIGCHLD. */
export function alertParent(srv: ProcServer, c: Proc, code: number): void {
  const parent = c.parent;
  childChanged(srv, c);
  if (!parent || parent.dead) return;
  if ((code === CLD.STOPPED || code === CLD.CONTINUED) && parent.has(P.NOSTOPCLD)) return;
  postSignal(srv, parent, SIG.CHLD, code, parent);
}

/**
 * The process's task is gone (or the process was reassigned away): it
 * becomes a zombie for its parent, its children go to init (or to its
 * namespace root), and everything it held is released. A task that died
 * without proc_mark_exit is reported as killed by SIGKILL.
 */
export function processExited(srv: ProcServer, p: Proc): void {
  if (p.dead) return;
  srv.touch(p);
  if (!p.has(P.EXITING)) {
    p.status = W.exitcode(0, SIG.KILL);
    p.sigcode = -1;
  }
  p.flags |= P.DEAD;
  // A stop already reported (WAITED) must not hide the exit: the Hurd's
  // process_has_exited clears p_waited too.
  p.flags &= ~(P.STOPPED | P.CONTINUED | P.WAITED);
  failWaiters(p);
  for (const w of p.msgportWaiters ?? []) w();
  p.msgportWaiters = null;
  // At death, not at reaping: a zombie's process port is already a dead name to its holders.
  srv.releasePorts(p);
  // Children go to the namespace root if there is one, else to init; zombies among them alert the new parent.
  const heir = p.nsRoot && !p.nsRoot.dead && p.nsRoot !== p ? p.nsRoot : srv.init;
  let zombies = false;
  for (let c = p.firstChild; c; ) {
    const next = c.nextSibling;
    reparent(srv, c, heir);
    newids(srv, c);
    if (c.dead) zombies = true;
    c = next;
  }
  if (zombies) postSignal(srv, heir, SIG.CHLD, CLD.EXITED, heir);
  if (zombies) for (let c = heir.firstChild; c; c = c.nextSibling) if (c.dead) childChanged(srv, c);
  for (const h of p.handles ?? []) {
    h.died(p);
    srv.journal?.handle(h.port);
  }
  if (p.has(P.NSROOT)) killNamespace(srv, p);
  const parent = p.parent;
  if (parent) recheckWaiters(parent);
  // Namespace members are reaped at once (no zombies in the outer proc), as are orphans of a dead tree.
  if ((p.nsRoot && p.nsRoot !== p) || p.ns !== 0) {
    srv.reap(p);
    return;
  }
  if (!parent || parent === p) {
    srv.reap(p);
    return;
  }
  alertParent(srv, p, p.sigcode === -1 ? CLD.KILLED : CLD.EXITED);
}

/** The root of a task namespace died: every task of the namespace is terminated (Hurd semantics). */
function killNamespace(srv: ProcServer, root: Proc): void {
  for (const q of srv.byPid.values()) if (q.nsRoot === root && q !== root && q.task) srv.task.taskTerminate(q.task).catch(() => {});
}

export function mgt(srv: ProcServer): H {
  return {
    /** proc_child (24012): the caller becomes the parent; once per task. */
    async child(req, ctx) {
      const parent = srv.caller(ctx);
      const c = await taskProcess(srv, srv.taskArg(ctx, req.child));
      if (c.ns !== 0) throw new HurdError(Errno.EPERM, `pid ${c.pid} runs in a nested hurd`);
      if (c.has(P.PARENTSET)) throw new HurdError(Errno.EBUSY, `pid ${c.pid} already has a parent`);
      if (c === parent) throw new HurdError(Errno.EINVAL, "a process cannot be its own child");
      // Two unparented processes could otherwise adopt each other and leave
      // a cycle that no walk up the tree (login collections, reparenting)
      // ever leaves; the Hurd's proc_child does not check and loops there.
      for (let a = parent.parent; a && a !== a.parent; a = a.parent) if (a === c) throw new HurdError(Errno.EINVAL, `pid ${c.pid} is an ancestor of the caller`);
      if (parent.dead) throw new HurdError(Errno.EOPNOTSUPP, "caller died");
      // RLIMIT_NPROC: the child becomes a process of the parent's uid; past
      // the limit fork fails EAGAIN (root is exempt, as on Linux).
      const uid = parent.uids.length ? parent.uids[0]! : -1;
      if (uid > 0 && (c.uids[0] ?? -1) !== uid && srv.procsOf(uid) >= srv.config.maxProcsPerUid)
        throw new HurdError(Errno.EAGAIN, `uid ${uid} has ${srv.config.maxProcsPerUid} processes (RLIMIT_NPROC)`);
      c.flags |= P.PARENTSET;
      reparent(srv, c, parent);
      c.login = parent.login;
      srv.setUids(c, parent.uids);
      if (!c.exe) c.exe = parent.exe;
      if (!c.startCode && !c.endCode) {
        c.startCode = parent.startCode;
        c.endCode = parent.endCode;
      }
      c.nsRoot = parent.has(P.NSROOT) ? parent : parent.nsRoot;
      if (parent.pgrp) joinPgrp(srv, c, parent.pgrp);
      newids(srv, c);
      return {};
    },

    /**
     * proc_reassign (24014): exec into a new task. The stub process made for
     * newtask hands over its process port; the old task is terminated.
     */
    async reassign(req, ctx) {
      const p = srv.caller(ctx);
      const stub = await taskProcess(srv, srv.taskArg(ctx, req.newtask));
      if (stub === p) throw new HurdError(Errno.EINVAL, "newtask is the caller's own task");
      if (stub.ns !== 0) throw new HurdError(Errno.ESRCH, "newtask belongs to another hurd");
      if (stub.has(P.PARENTSET) || stub.firstChild) throw new HurdError(Errno.EINVAL, "newtask already has a process life of its own");
      reassignTo(srv, p, stub);
      return {};
    },

    /** proc_setowner (24015): obsolete since the 2021 reauthentication, as in the Hurd. */
    setowner() {
      throw new HurdError(Errno.EOPNOTSUPP, "proc_setowner is obsolete: use proc_reauthenticate");
    },

    /** proc_getpids (24016). */
    getpids(_req, ctx) {
      const p = srv.caller(ctx);
      return { pid: p.pid, ppid: p.parent?.pid ?? p.pid, orphaned: isOrphaned(p) };
    },

    /** proc_set_arg_locations (24017). */
    setArgLocations(req, ctx) {
      const p = srv.caller(ctx);
      p.argvAddr = req.argv;
      p.envpAddr = req.envp;
      return {};
    },

    /** proc_get_arg_locations (24018): the Hurd dereferences a NULL caller here; hurdmesh answers EOPNOTSUPP. */
    getArgLocations(_req, ctx) {
      const p = srv.caller(ctx);
      return { argv: p.argvAddr, envp: p.envpAddr };
    },

    /** proc_mark_stop (24023). */
    markStop(req, ctx) {
      const p = srv.caller(ctx);
      p.flags |= P.STOPPED;
      p.flags &= ~(P.WAITED | P.CONTINUED);
      p.status = W.stopcode(req.signo);
      p.sigcode = req.sigcode;
      // No orphan check here: SIGHUP+SIGCONT are for a pgrp that *becomes*
      // orphaned with stopped members (POSIX; the Hurd's mark_stop sends
      // nothing else). Stopping inside an already orphaned pgrp (pgrp 1,
      // where every unparented task lives) must not hang up all of it.
      alertParent(srv, p, CLD.STOPPED);
      return {};
    },

    /** proc_mark_cont (24024). */
    markCont(_req, ctx) {
      const p = srv.caller(ctx);
      p.flags &= ~(P.STOPPED | P.WAITED);
      p.flags |= P.CONTINUED;
      alertParent(srv, p, CLD.CONTINUED);
      return {};
    },

    /** proc_mark_exit (24025): the status the parent will see; the task's death follows. */
    async markExit(req, ctx) {
      const p = srv.caller(ctx);
      if (W.ifstopped(req.status)) throw new HurdError(Errno.EINVAL, "a stop status is not an exit status");
      if (p.has(P.EXITING)) throw new HurdError(Errno.EBUSY, "already exiting");
      p.flags |= P.EXITING;
      p.status = req.status;
      p.sigcode = req.sigcode;
      // Mach keeps no accounting after death: sample the task now.
      if (p.task) {
        try {
          const ti = await srv.task.taskInfo(p.task);
          p.rusage = addRusage(null, { utimeUs: 0, stimeUs: 0, maxrssKb: 0, msgsnd: ti.messagesSent, msgrcv: ti.messagesReceived });
        } catch {
          // The task is already gone; its death notice will follow.
        }
      }
      return {};
    },

    /** proc_mark_exec (24026). */
    markExec(_req, ctx) {
      srv.caller(ctx).flags |= P.EXEC;
      return {};
    },

    /** proc_mark_traced (24027). */
    markTraced(_req, ctx) {
      srv.caller(ctx).flags |= P.TRACED;
      return {};
    },

    /** proc_mod_stopchild (24028). */
    modStopchild(req, ctx) {
      const p = srv.caller(ctx);
      if (req.doit) p.flags &= ~P.NOSTOPCLD;
      else p.flags |= P.NOSTOPCLD;
      return {};
    },

    /** proc_pid2task (24029): zombies answer a null task; needs check_owner. */
    async pid2task(req, ctx) {
      const c = srv.caller(ctx);
      const p = srv.pidFind(req.pid);
      if (!checkOwner(c, p)) throw new HurdError(Errno.EPERM, `pid ${req.pid} belongs to someone else`);
      if (p.dead) return { task: 0 };
      const task = await srv.taskOf(p);
      return { task: task ? ctx.reply.copySend(task) : 0 };
    },

    /** proc_task2pid (24030). */
    async task2pid(req, ctx) {
      return { pid: (await taskProcess(srv, srv.taskArg(ctx, req.task))).pid };
    },

    /** proc_task2proc (24031): anyone holding the task port may have its process port. */
    async task2proc(req, ctx) {
      const p = await taskProcess(srv, srv.taskArg(ctx, req.task));
      return { proc: ctx.reply.makeSend(await srv.portOf(p)) };
    },

    /** proc_proc2task (24032). */
    proc2task(_req, ctx) {
      const p = srv.caller(ctx);
      return { task: p.task ? ctx.reply.copySend(p.task) : 0 };
    },

    /** proc_pid2proc (24033): as proc_pid2task. */
    async pid2proc(req, ctx) {
      const c = srv.caller(ctx);
      const p = srv.pidFind(req.pid);
      if (!checkOwner(c, p)) throw new HurdError(Errno.EPERM, `pid ${req.pid} belongs to someone else`);
      if (p.dead) return { proc: 0 };
      return { proc: ctx.reply.makeSend(await srv.portOf(p)) };
    },

    /**
     * proc_set_init_task (24052): startup binds the reserved pid 1 to its first
     * userland task; an entry proc made for that task meanwhile is dropped.
     */
    async setInitTask(req, ctx) {
      const c = srv.caller(ctx);
      const name = srv.taskArg(ctx, req.task);
      if (c.pid !== HURD_PID_STARTUP) {
        srv.drop(name);
        throw new HurdError(Errno.EPERM, "only startup (pid 2) binds init's task");
      }
      const info = await srv.task.taskInfo(name).catch(() => null);
      if (!info) {
        srv.drop(name);
        throw new HurdError(Errno.ESRCH, "not a live task");
      }
      const dup = srv.byTask.get(name) ?? srv.byTaskId.get(info.taskId);
      if (dup && dup !== srv.init) {
        srv.byTask.delete(name);
        srv.byTaskId.delete(info.taskId);
        dup.task = 0;
        dup.taskId = 0;
        srv.reap(dup);
      } else if (dup === srv.init) srv.drop(name);
      srv.bindTask(srv.init, name, info.taskId);
      return {};
    },

    /** proc_mark_important (24053): root, or a child of startup. */
    markImportant(_req, ctx) {
      const p = srv.caller(ctx);
      if (!checkUid(p, 0) && p.parent !== srv.startup) throw new HurdError(Errno.EPERM, "needs root or startup as parent");
      p.flags |= P.IMPORTANT;
      return {};
    },

    /** proc_is_important (24054). */
    isImportant(_req, ctx) {
      return { essential: srv.caller(ctx).has(P.IMPORTANT) };
    },

    /** proc_set_code (24055). */
    setCode(req, ctx) {
      const p = srv.caller(ctx);
      p.startCode = req.startCode;
      p.endCode = req.endCode;
      return {};
    },

    /** proc_get_code (24056). */
    getCode(_req, ctx) {
      const p = srv.caller(ctx);
      return { startCode: p.startCode, endCode: p.endCode };
    },

    /** proc_set_exe (24058). */
    setExe(req, ctx) {
      const p = srv.caller(ctx);
      if (req.path.length > 1024) throw new HurdError(Errno.EINVAL, "path longer than 1024");
      p.exe = req.path;
      return {};
    },

    /** proc_get_exe (24059). */
    getExe(req, ctx) {
      srv.caller(ctx);
      return { path: srv.pidFind(req.pid).exe };
    },

    /** proc_set_entry (24060). */
    setEntry(req, ctx) {
      srv.caller(ctx).entry = req.entry;
      return {};
    },

    /** proc_get_entry (24061): the Hurd dereferences a NULL caller here; hurdmesh answers EOPNOTSUPP. */
    getEntry(_req, ctx) {
      return { entry: srv.caller(ctx).entry };
    },

    /** proc_getchildren_rusage (24065). */
    getchildrenRusage(_req, ctx) {
      return { childrenRusage: srv.caller(ctx).childRusage ?? undefined };
    },

    // No threads or exceptions in hurdmesh's kernel: these two have nothing to act on.
    /** proc_dostop (24021). */
    dostop(_req, ctx) {
      srv.caller(ctx);
      throw new HurdError(Errno.EOPNOTSUPP, "hurdmesh tasks have no threads to stop");
    },
    /** proc_handle_exceptions (24022). */
    handleExceptions(_req, ctx) {
      srv.caller(ctx);
      throw new HurdError(Errno.EOPNOTSUPP, "hurdmesh tasks raise no Mach exceptions");
    },
  };
}

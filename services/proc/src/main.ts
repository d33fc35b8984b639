// Starting proc on a task (the Hurd's proc/main.c): the well-known
// processes, the handlers of every concern, the namespace's new-task
// notifications, and the startup handshake (startup_procinit) when the task
// has a bootstrap port.
import { client, MsgType, PortRight, Rights, optionalRight, portAt, rightsOf, type Task } from "@hurdmesh/mach";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";
import type { ProcConfig } from "./config.js";
import { HandleTable, handleRpcs } from "./handles.js";
import { host } from "./host.js";
import { info } from "./info.js";
import { observeProc } from "./metrics.js";
import { mgt } from "./mgt.js";
import { msg, signalProcess } from "./msg.js";
import { onNamespaceNotice, onPortNotice } from "./notify.js";
import { ns } from "./ns.js";
import { pgrp } from "./pgrp.js";
import { reauth } from "./reauth.js";
import { ProcJournal } from "./journal.js";
import { rebuild, reconcile } from "./restore.js";
import { ProcServer, type Ctx } from "./server.js";
import type { ProcStore } from "./store.js";
import { waitid, waits } from "./wait.js";

export interface StartProcOptions {
  config?: Partial<ProcConfig>;
  /**
   * Without a bootstrap (startup) port: the privileged host port and auth
   * port, as names in proc's space (tests and the embedded boot).
   */
  hostPriv?: number;
  auth?: number;
  /** Register with startup as an essential task (default: when there is a startup). */
  essential?: boolean;
  /**
   * Where proc writes its tables through (journal.ts), and reads them back
   * from when it holds an image of this task (a restart in place: the task
   * was attached with `hold`). None by default: the embedded hurd keeps
   * its table in memory only, at no cost per RPC.
   */
  store?: ProcStore;
}

type Fn = (req: unknown, ctx: Ctx) => unknown;

/**
 * The RPCs that change their caller's own record (its flags, status, exec
 * data, message port, login...). Every other change is marked where the
 * tables change (ProcServer.touch and the journal's calls), so a read or a
 * fork does not rewrite its caller's record.
 */
const CALLER_CHANGES = new Set([
  "setArgLocations",
  "markStop",
  "markCont",
  "markExit",
  "markExec",
  "markTraced",
  "modStopchild",
  "markImportant",
  "setCode",
  "setExe",
  "setEntry",
  "setmsgport",
  "setprocargs",
  "makeLoginColl",
  "setlogin",
  "makeTaskNamespace",
]);

/**
 * Every RPC answers once its changes are acknowledged by the store (and a
 * read once the writes before it are: it must not show what a restart
 * could take back); once a write failed, every RPC answers EIO.
 */
function writeThrough(impl: Record<string, Fn>, journal: ProcJournal): void {
  for (const [k, fn] of Object.entries(impl)) {
    const own = CALLER_CHANGES.has(k);
    impl[k] = async (req: unknown, ctx: Ctx) => {
      journal.check();
      try {
        return await fn(req, ctx);
      } finally {
        if (own && ctx.object.kind === "proc") journal.proc(ctx.object.p.pid);
        await journal.commit();
      }
    };
  }
}

export async function startProc(task: Task, o: StartProcOptions = {}): Promise<ProcServer> {
  const srv = new ProcServer(task, o.config);
  const handles = new HandleTable();
  const image = o.store ? await o.store.open(task.id) : null;
  const journal = o.store ? new ProcJournal(srv, o.store, handles) : null;
  srv.journal = journal;
  const impl: Record<string, Fn> = Object.assign(
    {},
    mgt(srv),
    pgrp(srv),
    info(srv),
    msg(srv),
    host(srv),
    waits(srv),
    reauth(srv),
    ns(srv),
    handleRpcs(
      srv,
      handles,
      (p, s, c) => signalProcess(srv, p, s, c),
      (w, pid, opts) => waitid(srv, w, pid, opts),
    ),
  );
  if (journal) writeThrough(impl, journal);
  srv.server.implement(impl);
  srv.server.onNotify = (m, obj) => {
    if (journal?.broken) return task.dropRights(m);
    onPortNotice(srv, handles, m, obj);
    srv.commitSoon();
  };
  const onNotice = (m: Parameters<typeof onNamespaceNotice>[1]) => {
    if (journal?.broken) return task.dropRights(m);
    onNamespaceNotice(srv, m);
    srv.commitSoon();
  };
  if (image) {
    rebuild(srv, handles, image);
    srv.restarted = true;
    observeProc(srv, handles);
    task.receive(srv.notifyPort, onNotice);
    await reconcile(srv, handles, task);
    await journal!.commit();
    // The handlers are set: what queued for proc's ports while it had no process flows now.
    task.resume();
    return srv;
  }
  srv.makeBootProcesses();
  observeProc(srv, handles);

  srv.notifyPort = await task.allocate(PortRight.PORT_RIGHT_RECEIVE);
  task.receive(srv.notifyPort, onNotice);

  if (task.bootstrap) {
    // startup_procinit: hand startup its process port (pid 2); its answer
    // binds pid 2 and gives proc the auth and host ports.
    const r = new Rights();
    const procIdx = r.makeSend(await srv.portOf(srv.startup));
    const rep = await client(task, StartupDefinition, task.bootstrap).procinit({ proc: procIdx }, { rights: r, timeoutMs: 60_000 });
    const st = optionalRight(rightsOf(rep), rep.startupTask);
    if (st) {
      const ti = await task.taskInfo(st);
      srv.bindTask(srv.startup, st, ti.taskId);
    }
    srv.authPort = portAt(rep, rep.auth);
    srv.hostPriv = portAt(rep, rep.hostPriv);
    srv.deviceMaster = portAt(rep, rep.deviceMaster);
  } else {
    srv.hostPriv = o.hostPriv ?? 0;
    srv.authPort = o.auth ?? 0;
  }
  if (srv.hostPriv) await task.call("registerNewTaskNotification", { hostPriv: srv.hostPriv, notify: srv.notifyPort, notifyDisposition: MsgType.MSG_TYPE_MAKE_SEND });
  if (task.bootstrap && o.essential !== false && srv.hostPriv) {
    // startup_essential_task: proc's death is the crash of this hurd.
    const e = new Rights();
    await client(task, StartupDefinition, task.bootstrap).essentialTask({ task: e.copySend(task.self), name: "proc", credential: e.copySend(srv.hostPriv) }, { rights: e });
  }
  if (journal) {
    // A fresh start: the whole table is the first image (what an earlier boot left is gone, store.open saw to it).
    journal.everything();
    await journal.commit();
  }
  task.resume();
  return srv;
}

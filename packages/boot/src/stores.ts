// Where auth and proc write their state through when they run as OS
// processes or containers of their own on NATS (restart in place, issue
// 17): their bucket on JetStream, one per server and hurd, reached as the
// server's store user (with NATS authorization on; the task's own user may
// not) or over the task's own connection (authorization off). Both keep
// their state as a log on it (LogAuthStore: auth's handles; LogProcStore:
// proc's table), one message per batch, fenced against an old process of
// the same task. Used by daemon.ts (ProcessLauncher)
// and container/main.ts (compose, Kubernetes).
import { LogAuthStore, MemoryAuthStore, type Auth, type AuthStore } from "@hurdmesh/auth";
import { LogProcStore, type ProcServer, type ProcStore } from "@hurdmesh/proc";
import { createLogger, StoreFencedError, type Task } from "@hurdmesh/mach";
import { inboxOf } from "@hurdmesh/mach/internal";
import { JetStreamStoreLog, NatsBus } from "@hurdmesh/mach/nats";
import type { UserCredentials } from "@hurdmesh/mach/nats-auth";

/** Exit code of a server whose store failed: its launcher (or its container's restart policy) starts it again in place, from what the store acknowledged. */
export const EX_STORE_FAILED = 75;

export interface ServerStoreOptions {
  url: string;
  system: string;
  /** The server's task: its hurd names the bucket; its bus is used when there is no store user. */
  task: Task;
  /** The server's store user; null: the task's own connection (authorization off). */
  storeCreds: UserCredentials | null;
  /** A restarted process: without a store it must not start afresh on a running hurd. */
  restart: boolean;
}

/**
 * auth's or proc's store: its bucket, or, when the nats-server has no
 * JetStream, auth's handles in memory and proc's table nowhere (then a
 * restart has nothing to carry on from: a restarted process refuses to start).
 */
export async function serverStores(name: string, o: ServerStoreOptions): Promise<{ authStore?: AuthStore; procStore?: ProcStore }> {
  if (name !== "auth" && name !== "proc") return {};
  const hurd = o.task.hurd === o.system ? "" : o.task.hurd;
  const connection = async () => {
    if (o.storeCreds) {
      const inboxPrefix = inboxOf(o.system, { kind: "store", hurd, server: name });
      const sbus = await NatsBus.connect(o.url, { name: `hurd-${name} store`, credentials: o.storeCreds, inboxPrefix });
      return { nc: sbus.nc, inboxPrefix };
    }
    return { nc: (o.task.bus as NatsBus).nc, inboxPrefix: undefined };
  };
  const what = name === "auth" ? "auth's handles" : "proc's table";
  try {
    const c = await connection();
    const log = await JetStreamStoreLog.open(c.nc, o.system, hurd, name, { inboxPrefix: c.inboxPrefix });
    return name === "auth" ? { authStore: new LogAuthStore(log) } : { procStore: new LogProcStore(log) };
  } catch (e) {
    if (o.restart) throw new Error(`cannot restart in place: no JetStream to read ${what} back from (${(e as Error).message})`, { cause: e });
    createLogger(`hurd-${name}`, { hurd: o.system }).warn(`${what} in memory only, a restart of this process cannot carry on: ${(e as Error).message}`);
    return name === "auth" ? { authStore: new MemoryAuthStore() } : {};
  }
}

/**
 * What a running proc or auth does when its store fails: its store log may
 * no longer be what it thinks (proc: its memory is ahead of it), so it
 * answers EIO and exits EX_STORE_FAILED to be started again from what was
 * acknowledged; refused because a newer process of its task opened the log
 * (this one was stopped, not dead), it is the old one and exits 0, so that
 * nothing starts a third.
 */
export function superviseStore(server: unknown, o: { system: string; task: Task; exit: (code: number) => void }): void {
  const journal = (server as Partial<ProcServer>).journal;
  const authStore = (server as Partial<Auth>).store;
  const who = journal ? "proc" : "auth";
  const watched = (journal ?? (authStore && "onBroken" in authStore ? authStore : null)) as { onBroken?: ((e: Error) => void) | null; broken?: Error | null } | null;
  if (!watched) return;
  const log = createLogger(`hurd-${who}`, { hurd: o.system });
  watched.onBroken = (e) => {
    if (e instanceof StoreFencedError) {
      log.warn(`a newer process of task ${o.task.id} holds ${who}'s store: this old one exits (${e.message})`);
      setTimeout(() => o.exit(0), 100);
      return;
    }
    log.error(`its store failed (${e.message}): exiting to restart in place`);
    setTimeout(() => o.exit(EX_STORE_FAILED), 100);
  };
  // A write that failed while the server started (auth's adopt forgets dead handles) came before anyone listened.
  if (watched.broken) watched.onBroken(watched.broken);
}

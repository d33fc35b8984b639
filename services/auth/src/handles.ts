// Auth handles: ports whose receive rights auth holds, each carrying four id
// vectors (auth/auth.c's struct authhandle). A handle lives while someone
// holds a send right to it; the kernel's no-senders notification frees it,
// so auth's memory follows the handles in use, not the handles ever made.
import { Errno, HurdError, NotifyId, PortRight, type Server, type Task } from "@hurdmesh/mach";
import type { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import type { AuthConfig } from "./config.js";
import type { AuthStore } from "./store.js";

/** A handle's ids: effective and available uids and gids. Duplicates kept, vectors may be empty. */
export interface Ids {
  readonly euids: readonly number[];
  readonly auids: readonly number[];
  readonly egids: readonly number[];
  readonly agids: readonly number[];
}

/** The object served on one handle port. Its ids never change after creation. */
export class Handle {
  constructor(readonly ids: Ids) {}
}

/** Copies and freezes ids, so no caller can change a handle after the fact. */
export function freezeIds(ids: Ids): Ids {
  return Object.freeze({
    euids: Object.freeze([...ids.euids]),
    auids: Object.freeze([...ids.auids]),
    egids: Object.freeze([...ids.egids]),
    agids: Object.freeze([...ids.agids]),
  });
}

export const NO_IDS: Ids = freezeIds({ euids: [], auids: [], egids: [], agids: [] });

/** Ports kept allocated and armed ahead of need, so makeauth costs no kernel call on its path. */
const POOL = 16;
/** How many of the latest handles the audit looks at: a failed reply is reported at once, so it is among them. */
const RECENT = 256;

/**
 * The table of live handles (libports' class of auth ports). Ports are made
 * with a no-senders request (MAKE_SEND_ONCE on the port itself, sync 1), so
 * the first send right made for the handle arms it and the last one to go
 * frees it.
 */
export class Handles {
  private readonly pool: number[] = [];
  private refilling: Promise<void> | null = null;
  private closed = false;
  /** The last handles made for makeauth replies, for the audit after a failed reply. */
  private readonly recent: number[] = [];
  private recentAt = 0;

  constructor(
    private readonly task: Task,
    private readonly server: Server<typeof AuthDefinition, Handle>,
    private readonly config: AuthConfig,
    private readonly store: AuthStore,
  ) {}

  get count(): number {
    return this.server.size;
  }

  /** Ports armed ahead of need (they are names in auth's space too). */
  get pooled(): number {
    return this.pool.length;
  }

  lookup(name: number): Handle | undefined {
    return this.server.lookup(name);
  }

  /** Creates a handle and answers its name in auth's space (the caller makes the send right). */
  async create(ids: Ids, o: { audited?: boolean } = {}): Promise<number> {
    if (this.server.size >= this.config.maxHandles) throw new HurdError(Errno.EAGAIN, `${this.config.maxHandles} auth handles alive`);
    const name = this.pool.pop() ?? (await this.armed());
    const frozen = freezeIds(ids);
    this.server.add(name, new Handle(frozen));
    // Written through before the name goes out in a reply: a restarted auth
    // knows every handle a caller could hold.
    try {
      await this.store.putHandle(name, frozen);
    } catch (e) {
      this.server.remove(name);
      await this.task.destroy(name).catch(() => {});
      throw HurdError.from(e);
    }
    if (o.audited !== false) {
      this.recent[this.recentAt] = name;
      this.recentAt = (this.recentAt + 1) % RECENT;
    }
    if (this.pool.length < POOL / 2) void this.refill();
    return name;
  }

  /** A fresh receive right with its no-senders request in place. */
  private async armed(): Promise<number> {
    const name = await this.task.allocate(PortRight.PORT_RIGHT_RECEIVE);
    try {
      await this.task.requestNotification(name, NotifyId.NOTIFY_NO_SENDERS, name, 1);
    } catch (e) {
      await this.task.destroy(name).catch(() => {});
      throw e;
    }
    return name;
  }

  private refill(): Promise<void> {
    this.refilling ??= (async () => {
      try {
        while (!this.closed && this.pool.length < POOL) this.pool.push(await this.armed());
      } catch {
        // The kernel said no (names exhausted, detached): makeauth will say why.
      } finally {
        this.refilling = null;
      }
    })();
    return this.refilling;
  }

  /** Fills the pool; start-up waits for it so the first makeauth is as fast as the rest. */
  async warm(): Promise<void> {
    await this.refill();
  }

  /**
   * No-senders arrived on a handle (libports' ports_do_mach_notify_no_senders).
   * auth makes exactly one send right per handle (its makeauth reply), so a
   * make-send count of 1 in the notification means that right is gone and
   * no other was ever made: the handle is freed at once. Otherwise a task
   * holding auth's task port made rights of its own (boot with the root
   * handle) and may have made one after the notification left: auth asks the
   * kernel, and renews the request instead if a send right exists (sync =
   * the count seen, so it fires at once if that right is already gone too).
   */
  async noSenders(name: number, mscount: number): Promise<void> {
    if (!this.server.lookup(name)) return;
    let status: { srights: boolean; mscount: number } | null = null;
    if (mscount !== 1) {
      try {
        status = await this.task.call("portGetReceiveStatus", { name });
      } catch {
        status = null;
      }
    }
    if (status?.srights) {
      try {
        await this.task.requestNotification(name, NotifyId.NOTIFY_NO_SENDERS, name, status.mscount);
        return;
      } catch {
        // Cannot re-arm: fall through and free it rather than leak it.
      }
    }
    await this.forget(name);
  }

  /**
   * A handle goes: out of the store first (a restart between the two finds
   * a key without a live port and drops it; never a port without a key).
   */
  private async forget(name: number): Promise<void> {
    this.server.remove(name);
    try {
      await this.store.deleteHandle(name);
    } catch {
      // The restart's reconciliation drops a key whose port is gone.
    }
    await this.task.destroy(name).catch(() => {});
  }

  /** A handle a previous process of auth's task made, found again by its name (a restart). */
  adopt(name: number, ids: Ids): void {
    this.server.add(name, new Handle(freezeIds(ids)));
  }

  /**
   * Frees recent handles that no send right was ever made for: their
   * makeauth reply (which carried the MAKE_SEND) never left, because the
   * caller's reply port was dead, and no no-senders will ever come for them.
   */
  async audit(): Promise<void> {
    const names = this.recent.splice(0);
    this.recentAt = 0;
    for (const name of names) {
      if (!this.server.lookup(name)) continue;
      try {
        const st = await this.task.call("portGetReceiveStatus", { name });
        if (st.mscount !== 0 || st.srights) continue;
      } catch {
        continue;
      }
      await this.forget(name);
    }
  }

  /** Drops the armed pool (shutdown). Live handles die with auth's space. */
  async close(): Promise<void> {
    this.closed = true;
    await this.refilling;
    const names = this.pool.splice(0);
    await Promise.all(names.map((n) => this.task.destroy(n).catch(() => {})));
  }
}

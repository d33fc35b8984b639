// A small system for the auth suites: a kernel on one bus, a boot task that
// creates the others (so it holds their task ports, as the Hurd's bootstrap
// does), auth serving on its own task, and helpers to hand rights around.
import assert from "node:assert/strict";
import { client, Errno, HurdError, MsgType, PortRight, portAt, type Client, type ErrnoName, type Task } from "@hurdmesh/mach";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { Auth, type AuthConfig, type Ids } from "@hurdmesh/auth";
import { startHurd, until, type BusKind, type Hurd } from "../harness.js";

export { until };

/** A task and its task port in boot's space (0 for boot itself). */
export interface Party {
  task: Task;
  port: number;
}

export const TYPE_SEND = 1 << 16;
export const TYPE_RECEIVE = 1 << 17;
export const TYPE_SEND_ONCE = 1 << 18;
export const TYPE_DEAD_NAME = 1 << 20;

let chosen = 0x4000_0000;

export class World {
  private constructor(
    readonly h: Hurd,
    readonly boot: Party,
    readonly authParty: Party,
    readonly auth: Auth,
    /** boot's send right to the root handle. */
    readonly root: number,
  ) {}

  /** The kernel's log lines (lease expiries and the like), for failure messages. */
  readonly log: string[] = [];

  static async start(kind: BusKind, config: Partial<AuthConfig> = {}): Promise<World> {
    const h = await startHurd(kind);
    const lines: string[] = [];
    const kernelLog = h.kernel.events.log;
    h.kernel.events.log = (l) => {
      if (lines.length < 100) lines.push(l);
      kernelLog(l);
    };
    const boot: Party = { task: await h.task("boot"), port: 0 };
    const authParty = await World.child(h, boot, "auth");
    const auth = await Auth.start(authParty.task, config);
    const root = (await boot.task.extractRight(authParty.port, auth.root, MsgType.MSG_TYPE_MAKE_SEND)).name;
    const w = new World(h, boot, authParty, auth, root);
    w.log.push(...lines);
    h.kernel.events.log = (l) => {
      if (w.log.length < 100) w.log.push(l);
      kernelLog(l);
    };
    return w;
  }

  private static async child(h: Hurd, boot: Party, name: string, o: { timeoutMs?: number } = {}): Promise<Party> {
    const r = await boot.task.taskCreate(name);
    return { task: await h.attach(r.taskId, r.token, { timeoutMs: o.timeoutMs }), port: r.task };
  }

  /** A new task, created by boot. */
  party(name: string, o: { timeoutMs?: number } = {}): Promise<Party> {
    return World.child(this.h, this.boot, name, o);
  }

  /** Moves or copies the right `name` of `from` to `to`; answers its name in `to`'s space. */
  async give(from: Party, name: number, disp: MsgType, to: Party): Promise<number> {
    let right = name;
    let moved = disp;
    if (from !== this.boot) {
      const x = await this.boot.task.extractRight(from.port, name, disp);
      if (to === this.boot) return x.name;
      right = x.name;
      moved = x.type === MsgType.MSG_TYPE_MOVE_SEND_ONCE ? MsgType.MSG_TYPE_MOVE_SEND_ONCE : MsgType.MSG_TYPE_MOVE_SEND;
    }
    const at = chosen++;
    await this.boot.task.insertRight(to.port, at, right, moved);
    return at;
  }

  /** A new handle with `ids`, made by boot from root and moved to `to` (a name in `to`'s space). */
  async handle(to: Party, ids: Partial<Ids>): Promise<number> {
    const res = await this.authc(this.boot.task, this.root).makeAuth({ euids: [], auids: [], egids: [], agids: [], ...ids } as never);
    return this.give(this.boot, portAt(res, res.newhandle), MsgType.MSG_TYPE_MOVE_SEND, to);
  }

  authc(t: Task, handle: number): Client<typeof AuthDefinition> {
    return client(t, AuthDefinition, handle);
  }

  /** Whether a's name and b's name denote one port (they meet under one name in boot's space). */
  async same(a: Party, an: number, adisp: MsgType, b: Party, bn: number, bdisp: MsgType): Promise<boolean> {
    const x = (await this.boot.task.extractRight(a.port, an, adisp)).name;
    const y = (await this.boot.task.extractRight(b.port, bn, bdisp)).name;
    await this.boot.task.deallocate(x);
    await this.boot.task.deallocate(y);
    return x === y;
  }

  /** How many names auth's space holds. */
  async authNames(): Promise<number> {
    return (await this.auth.task.names()).names.length;
  }

  /**
   * The rights auth holds other than bare receive rights, with their urefs:
   * send, send-once and dead names. Receive rights are its handles and its
   * pool of armed ports, counted by handleCount instead.
   */
  async authRefs(): Promise<string[]> {
    const t = this.auth.task;
    const { names, types } = await t.names();
    const out: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const n = names[i]!;
      if (!(types[i]! & (TYPE_SEND | TYPE_SEND_ONCE | TYPE_DEAD_NAME))) continue;
      const refs: number[] = [];
      try {
        for (const r of [PortRight.PORT_RIGHT_SEND, PortRight.PORT_RIGHT_SEND_ONCE, PortRight.PORT_RIGHT_DEAD_NAME]) refs.push(await t.getRefs(n, r));
      } catch {
        continue; // gone meanwhile
      }
      // The type without its dead-name-request bit: auth arms one on a waiting R after a grace period.
      out.push(`${n}:${(types[i]! & 0x7fffffff).toString(16)}:${refs.join(",")}`);
    }
    return out.sort();
  }

  /** Waits until auth's rights settle back to `before` (notifications and drops are asynchronous). */
  async authSpaceIs(before: string[], what = "auth's rights to return to their baseline"): Promise<void> {
    let now: string[] = [];
    try {
      await until(async () => {
        now = await this.authRefs();
        return now.join(" ") === before.join(" ");
      }, 3000, what);
    } catch (e) {
      assert.deepEqual(now, before, `${what} (${(e as Error).message})`);
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.auth.close();
    await this.h.close();
  }
}

/** Asserts that `p` rejects with the HurdError `code`; answers the error. */
export async function rejectsWith(p: Promise<unknown>, code: ErrnoName): Promise<HurdError> {
  let err: HurdError | null = null;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HurdError, `expected a HurdError, got ${String(e)}`);
    assert.equal((e as HurdError).errno, code, (e as HurdError).message);
    err = e as HurdError;
    return true;
  });
  return err!;
}

export const code = (name: ErrnoName): number => Errno[name];

/** ids with every vector present (the request type wants them all). */
export function ids(o: Partial<Ids>): { euids: number[]; auids: number[]; egids: number[]; agids: number[] } {
  return { euids: [...(o.euids ?? [])], auids: [...(o.auids ?? [])], egids: [...(o.egids ?? [])], agids: [...(o.agids ?? [])] };
}

// Model-based runs for the kernel: random sequences of mach_port_allocate,
// insert_right, extract_right, mod_refs, deallocate, destroy, a send that
// carries a right, its receipt, dead-name and no-senders requests, and a
// task's death, run against the real kernel over the bus and against a
// small reference model of Mach's rules — one name per port per space (send
// and receive share it), user references, rights that become dead names
// when their port dies (with the request's extra uref), dead-name,
// port-deleted, no-senders and send-once notifications — and compared
// after every command, so that wrong state is caught, not only crashes.
import fc from "fast-check";
import { Errno, HurdError, LocalHub, MsgType, NotifyId, PortRight, Task, type Bus, type Received } from "@hurdmesh/mach";
import { Kernel, TrapServer, type KTask } from "@hurdmesh/kernel";
import { DeadNameNotification, PortDeletedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { natsBus, type BusKind } from "../harness.js";
import { auditKernel } from "./audit.js";
import { Violation, type FuzzStats, type FuzzTarget } from "./core.js";
import { FUZZ_KERNEL_CONFIG } from "./kernel.js";

const TYPE_SEND = 1 << 16;
const TYPE_RECEIVE = 1 << 17;
const TYPE_DEAD_NAME = 1 << 20;
const MAX_UREFS = FUZZ_KERNEL_CONFIG.maxUrefs!;

type Who = 0 | 1;

/** A name in a model space. `port` is the model's port number (null for a dead name). */
interface MEntry {
  port: number | null;
  send: number;
  recv: boolean;
  dead: number;
  /** A dead-name request on this name (its notifications go to task 0's notify port). */
  dn: boolean;
  /** The name is the task's own or the other's task port, or the notify port: commands leave it alone. */
  fixed: boolean;
}

interface MPort {
  alive: boolean;
  receiver: Who | null;
  /** A no-senders request (notify: task 0's notify port). */
  ns: boolean;
  /** A task port (kernel-held receive right): whose. */
  taskOf: Who | null;
}

/** The reference model: two spaces, the ports, and the notifications task 0 must have received. */
export class Model {
  spaces: [Map<number, MEntry>, Map<number, MEntry>] = [new Map(), new Map()];
  ports: MPort[] = [];
  alive: [boolean, boolean] = [true, true];
  /** Notifications owed to task 0's notify port, as "id:name" (name 0 when the body carries none). */
  owed: string[] = [];

  nameOf(t: Who, port: number): number | undefined {
    for (const [n, e] of this.spaces[t]) if (e.port === port && (e.send || e.recv)) return n;
    return undefined;
  }

  sendersOf(port: number): number {
    let n = 0;
    for (const sp of this.spaces) for (const e of sp.values()) if (e.port === port && e.send) n++;
    return n;
  }

  /** A send right went away (a name's last uref or a task's death): no-senders if it was the last. */
  released(port: number): void {
    const p = this.ports[port]!;
    if (p.alive && p.ns && this.sendersOf(port) === 0) {
      p.ns = false;
      this.owed.push(`70:0`);
    }
  }

  /** Removes a name; a dead-name request on it becomes a port-deleted notification. */
  removeName(t: Who, name: number): void {
    const e = this.spaces[t].get(name)!;
    this.spaces[t].delete(name);
    if (e.dn) this.owed.push(`65:${t === 0 ? name : 0}`);
  }

  /** A port dies: every right to it becomes a dead name; requests on it are answered. */
  kill(port: number): void {
    const p = this.ports[port]!;
    if (!p.alive) return;
    p.alive = false;
    p.receiver = null;
    if (p.ns) {
      p.ns = false;
      this.owed.push(`71:0`);
    }
    for (const t of [0, 1] as Who[])
      for (const [name, e] of this.spaces[t]) {
        if (e.port !== port) continue;
        if (e.send) {
          e.dead = e.send + (e.dn ? 1 : 0);
          if (e.dn) this.owed.push(`72:${t === 0 ? name : 0}`);
          e.send = 0;
          e.port = null;
          e.dn = false;
          e.recv = false;
        } else this.spaces[t].delete(name);
      }
  }

  /** Task t dies: its space goes (its receive rights kill their ports, its send rights are released). */
  die(t: Who): void {
    this.alive[t] = false;
    const sp = this.spaces[t];
    const entries = [...sp];
    this.spaces[t] = new Map();
    for (const [, e] of entries) {
      if (e.port === null) continue;
      // As ipc_right_clean: the name's send right goes first (a no-senders
      // request fires if it was the last), then its receive right.
      if (e.send) this.released(e.port);
      if (e.recv) this.kill(e.port);
    }
    for (let i = 0; i < this.ports.length; i++) if (this.ports[i]!.taskOf === t) this.kill(i);
  }
}

/** The real system: the kernel, the two tasks attached over the bus, what task 0's notify port got. */
export interface Real {
  k: Kernel;
  tasks: [Task, Task];
  /** Each task's name for the other's task port. */
  taskPort: [number, number];
  notify: number;
  got: string[];
  /** Messages each task received on its own receive rights, in order. */
  inbox: [Received[], Received[]];
  stats: FuzzStats;
}

const kt = (r: Real, t: Who): KTask | undefined => r.k.tasks.get(r.tasks[t].id);

/** Compares the model with the kernel's spaces: every name, its kind and its urefs; nothing more. */
function compare(m: Model, r: Real, after: string): void {
  for (const t of [0, 1] as Who[]) {
    if (!m.alive[t]) continue;
    const sp = kt(r, t)?.space;
    if (!sp) throw new Violation(`${after}: task ${t} is gone from the kernel but alive in the model`);
    for (const [name, e] of m.spaces[t]) {
      const re = sp.lookup(name);
      if (!re) throw new Violation(`${after}: task ${t} name ${name} missing (model: ${JSON.stringify(e)})`);
      const want = (e.send ? TYPE_SEND : 0) | (e.recv ? TYPE_RECEIVE : 0) | (e.dead ? TYPE_DEAD_NAME : 0);
      const bits = re.bits & (TYPE_SEND | TYPE_RECEIVE | TYPE_DEAD_NAME | (1 << 18) | (1 << 19));
      if (bits !== want) throw new Violation(`${after}: task ${t} name ${name} is ${bits.toString(16)}, model ${want.toString(16)} (${JSON.stringify(e)})`);
      const urefs = e.send || e.dead;
      if ((e.send || e.dead) && re.urefs !== urefs) throw new Violation(`${after}: task ${t} name ${name} has ${re.urefs} urefs, model ${urefs}`);
    }
    for (const name of sp.entries.keys())
      if (!m.spaces[t].has(name) && !r.tasks[t].detached && !runtimeName(r, t, name))
        throw new Violation(`${after}: task ${t} holds name ${name} (type ${sp.entries.get(name)!.bits.toString(16)}) the model does not`);
  }
}

/** Names the runtime itself made (reply ports of RPCs): none here, kernel calls are traps. */
function runtimeName(_r: Real, _t: Who, _name: number): boolean {
  return false;
}

const settle = async (r: Real) => {
  // Two round trips through the kernel for both tasks: what was sent before has been delivered.
  for (let i = 0; i < 2; i++) for (const t of r.tasks) if (!t.detached) await t.names().catch(() => {});
};

/** The kernel's answer checked against the model's, and counted by errno as every target's are. */
async function expectCode(stats: FuzzStats, p: Promise<unknown>, code: number | null, what: string): Promise<unknown> {
  try {
    const v = await p;
    stats.answered(0);
    if (code !== null && code !== 0) throw new Violation(`${what}: succeeded, the model says ${code}`);
    return v;
  } catch (e) {
    if (e instanceof Violation) throw e;
    const got = e instanceof HurdError ? e.code : -1;
    stats.answered(e instanceof HurdError ? e.code : "not a HurdError");
    if (code === null) throw new Violation(`${what}: failed ${got} (${(e as Error).message}), the model says it succeeds`);
    if (got !== code) throw new Violation(`${what}: failed ${got}, the model says ${code}`);
    return undefined;
  }
}

/** Picks a name of t by index among the model's non-fixed names (or 0 when none). */
function pickName(m: Model, t: Who, i: number, f: (e: MEntry) => boolean = () => true): number {
  const names = [...m.spaces[t]].filter(([, e]) => !e.fixed && f(e)).map(([n]) => n);
  return names.length ? names[i % names.length]! : 0;
}

type Cmd = fc.AsyncCommand<Model, Real>;
const who = fc.constantFrom<Who>(0, 1);

class Allocate implements Cmd {
  constructor(readonly t: Who) {}
  check = (m: Readonly<Model>) => m.alive[this.t];
  async run(m: Model, r: Real) {
    r.stats.reach("allocate");
    const name = await r.tasks[this.t].allocate(PortRight.PORT_RIGHT_RECEIVE);
    if (m.spaces[this.t].has(name)) throw new Violation(`allocate gave task ${this.t} name ${name}, which it already holds`);
    m.ports.push({ alive: true, receiver: this.t, ns: false, taskOf: null });
    m.spaces[this.t].set(name, { port: m.ports.length - 1, send: 0, recv: true, dead: 0, dn: false, fixed: false });
    compare(m, r, this.toString());
  }
  toString = () => `allocate(${this.t})`;
}

/** insert_right (t puts a right of its own into u's space) or extract_right (t takes one of u's). */
class Move implements Cmd {
  constructor(
    readonly op: "insert" | "extract",
    readonly t: Who,
    readonly i: number,
    readonly disp: MsgType,
  ) {}
  check = (m: Readonly<Model>) => m.alive[0] && m.alive[1];
  async run(m: Model, r: Real) {
    r.stats.reach(this.op);
    const t = this.t;
    const u = (1 - t) as Who;
    const [src, dst] = this.op === "insert" ? [t, u] : [u, t];
    const name = pickName(m, src, this.i);
    const e = m.spaces[src].get(name);
    // What the copyin takes, by Mach's rules.
    // In the kernel's order: the name, then (insert) a port the target already names, then the right the disposition needs.
    let code: number | null = null;
    const port = e?.port ?? null;
    const at = this.op === "insert" ? 0x70000 + (nextAt++ % 0x10000) : 0;
    // extract_right of a name the target lacks answers KERN_INVALID_RIGHT here, where gnumach's
    // ipc_right_lookup_write says KERN_INVALID_NAME; tests/kernel/malformed.test.ts pins the kernel's answer.
    if (!e) code = this.op === "extract" ? Errno.KERN_INVALID_RIGHT : Errno.KERN_INVALID_NAME;
    else if (this.op === "insert" && port !== null && m.nameOf(dst, port) !== undefined) code = Errno.KERN_RIGHT_EXISTS;
    else if (this.disp === MsgType.MSG_TYPE_MAKE_SEND && !e.recv) code = Errno.KERN_INVALID_RIGHT;
    else if (this.disp !== MsgType.MSG_TYPE_MAKE_SEND && !e.send && !e.dead) code = Errno.KERN_INVALID_RIGHT;
    const what = `${this} on name ${name}`;
    const call =
      this.op === "insert"
        ? r.tasks[t].insertRight(r.taskPort[t], at, name, this.disp)
        : r.tasks[t].extractRight(r.taskPort[t], name, this.disp).then((x) => x.name);
    const got = (await expectCode(r.stats, call, code, what)) as number | undefined;
    if (code !== null) return compare(m, r, what);
    // The source gives up a uref (move) or keeps everything (copy, make).
    if (this.disp === MsgType.MSG_TYPE_MOVE_SEND) {
      if (e!.send) {
        if (--e!.send === 0 && !e!.recv) m.removeName(src, name);
      } else if (--e!.dead === 0) m.removeName(src, name);
    }
    const to = this.op === "insert" ? at : got!;
    if (port === null) {
      // A dead name travels as a dead name (insert) or MACH_PORT_DEAD (extract).
      if (this.op === "insert") m.spaces[dst].set(to, { port: null, send: 0, recv: false, dead: 1, dn: false, fixed: false });
      else if (to !== 0xffffffff) throw new Violation(`${what}: a dead name extracted as ${to}, not MACH_PORT_DEAD`);
      return compare(m, r, what);
    }
    if (!m.ports[port]!.alive) {
      if (to !== 0xffffffff && this.op === "extract") throw new Violation(`${what}: a right to a dead port extracted as ${to}`);
      return compare(m, r, what);
    }
    const existing = m.nameOf(dst, port);
    if (existing !== undefined && existing !== to) throw new Violation(`${what}: task ${dst} got name ${to} for a port it names ${existing}`);
    const de = m.spaces[dst].get(to);
    if (de) {
      if (de.send) de.send = Math.min(de.send + 1, MAX_UREFS);
      else de.send = 1;
    } else m.spaces[dst].set(to, { port, send: 1, recv: false, dead: 0, dn: false, fixed: false });
    compare(m, r, what);
  }
  toString = () => `${this.op}(${this.t}, ${this.i}, ${MsgType[this.disp]})`;
}
let nextAt = 0;

class ModRefs implements Cmd {
  constructor(
    readonly t: Who,
    readonly i: number,
    readonly dead: boolean,
    readonly delta: number,
  ) {}
  check = (m: Readonly<Model>) => m.alive[this.t];
  async run(m: Model, r: Real) {
    r.stats.reach("modRefs");
    const name = pickName(m, this.t, this.i, (e) => (this.dead ? e.dead > 0 : e.send > 0));
    const e = m.spaces[this.t].get(name);
    const have = e ? (this.dead ? e.dead : e.send) : 0;
    let code: number | null = null;
    if (!e) code = Errno.KERN_INVALID_NAME;
    else if (!have) code = Errno.KERN_INVALID_RIGHT;
    else if (have + this.delta < 0) code = Errno.KERN_INVALID_VALUE;
    else if (have + this.delta > MAX_UREFS) code = Errno.KERN_UREFS_OVERFLOW;
    const what = `${this} on name ${name}`;
    await expectCode(r.stats, r.tasks[this.t].modRefs(name, this.dead ? PortRight.PORT_RIGHT_DEAD_NAME : PortRight.PORT_RIGHT_SEND, this.delta), code, what);
    if (code === null) {
      if (this.dead) {
        e!.dead += this.delta;
        if (!e!.dead) m.removeName(this.t, name);
      } else {
        e!.send += this.delta;
        if (!e!.send) {
          const port = e!.port!;
          if (!e!.recv) m.removeName(this.t, name);
          else e!.dn = false;
          m.released(port);
        }
      }
    }
    await settle(r);
    compare(m, r, what);
  }
  toString = () => `modRefs(${this.t}, ${this.i}, ${this.dead ? "DEAD_NAME" : "SEND"}, ${this.delta})`;
}

class Deallocate implements Cmd {
  constructor(
    readonly t: Who,
    readonly i: number,
  ) {}
  check = (m: Readonly<Model>) => m.alive[this.t];
  async run(m: Model, r: Real) {
    r.stats.reach("deallocate");
    const name = pickName(m, this.t, this.i);
    const e = m.spaces[this.t].get(name);
    const code = !e ? Errno.KERN_INVALID_NAME : !e.send && !e.dead ? Errno.KERN_INVALID_RIGHT : null;
    await expectCode(r.stats, r.tasks[this.t].deallocate(name), code, `${this} on ${name}`);
    if (code === null) {
      if (e!.send) {
        if (--e!.send === 0) {
          const port = e!.port!;
          if (!e!.recv) m.removeName(this.t, name);
          else e!.dn = false;
          m.released(port);
        }
      } else if (--e!.dead === 0) m.removeName(this.t, name);
    }
    await settle(r);
    compare(m, r, `${this} on ${name}`);
  }
  toString = () => `deallocate(${this.t}, ${this.i})`;
}

class Destroy implements Cmd {
  constructor(
    readonly t: Who,
    readonly i: number,
  ) {}
  check = (m: Readonly<Model>) => m.alive[this.t];
  async run(m: Model, r: Real) {
    r.stats.reach("destroy");
    const name = pickName(m, this.t, this.i);
    const e = m.spaces[this.t].get(name);
    await expectCode(r.stats, r.tasks[this.t].destroy(name), e ? null : Errno.KERN_INVALID_NAME, `${this} on ${name}`);
    if (e) {
      m.removeName(this.t, name);
      if (e.port !== null) {
        // As ipc_right_destroy: a name's last send right fires the no-senders
        // request before its receive right destroys the port (which would
        // answer the request with a send-once notification instead).
        if (e.send) m.released(e.port);
        if (e.recv) m.kill(e.port);
      }
    }
    await settle(r);
    compare(m, r, `${this} on ${name}`);
  }
  toString = () => `destroy(${this.t}, ${this.i})`;
}

/** t sends to a port it holds a send right to, carrying one of its rights; the receiver gets it (mach_msg receive). */
class Send implements Cmd {
  constructor(
    readonly t: Who,
    readonly d: number,
    readonly c: number,
    readonly disp: MsgType,
  ) {}
  check = (m: Readonly<Model>) => m.alive[0] && m.alive[1];
  async run(m: Model, r: Real) {
    const dest = pickName(m, this.t, this.d, (e) => e.send > 0 && e.port !== null && m.ports[e.port]!.alive && m.ports[e.port]!.receiver !== null);
    const carry = pickName(m, this.t, this.c, (e) => e.port !== null);
    if (!dest || !carry || dest === carry) return;
    const de = m.spaces[this.t].get(dest)!;
    const ce = m.spaces[this.t].get(carry)!;
    const to = m.ports[de.port!]!.receiver!;
    if (this.disp === MsgType.MSG_TYPE_MAKE_SEND ? !ce.recv : !ce.send) return;
    if (this.disp === MsgType.MSG_TYPE_MOVE_SEND && ce.send === 1 && carry === dest) return;
    r.stats.reach("send");
    const box = r.inbox[to];
    const before = box.length;
    r.tasks[this.t].send({ destination: dest, id: 4242, ports: [{ name: carry, disposition: this.disp }] });
    const port = ce.port!;
    if (this.disp === MsgType.MSG_TYPE_MOVE_SEND && --ce.send === 0 && !ce.recv) m.removeName(this.t, carry);
    const end = Date.now() + 3000;
    while (box.length === before) {
      if (Date.now() > end) throw new Violation(`${this}: the message never reached task ${to}`);
      await new Promise((res) => setTimeout(res, 1));
    }
    r.stats.reach("receive");
    const got = box[box.length - 1]!.ports[0]!;
    if (got.type !== MsgType.MSG_TYPE_MOVE_SEND) throw new Violation(`${this}: arrived as ${MsgType[got.type]}, not a send right`);
    const existing = m.nameOf(to, port);
    if (existing !== undefined && existing !== got.name) throw new Violation(`${this}: task ${to} got name ${got.name} for a port it names ${existing}`);
    const e = m.spaces[to].get(got.name);
    if (e) e.send = e.send ? Math.min(e.send + 1, MAX_UREFS) : 1;
    else m.spaces[to].set(got.name, { port, send: 1, recv: false, dead: 0, dn: false, fixed: false });
    await settle(r);
    compare(m, r, this.toString());
  }
  toString = () => `send(${this.t}, ${this.d}, ${this.c}, ${MsgType[this.disp]})`;
}

/** Task 0 asks for a dead-name notification on one of its send rights, or a no-senders one on a receive right. */
class Request implements Cmd {
  constructor(
    readonly kind: "dead" | "nosenders",
    readonly i: number,
  ) {}
  check = (m: Readonly<Model>) => m.alive[0];
  async run(m: Model, r: Real) {
    // Dead-name requests on send rights alone (a name that also holds the receive right is the port's end, not a watcher's).
    const name = pickName(m, 0, this.i, (e) => (this.kind === "dead" ? e.send > 0 && !e.recv && !e.dn : e.recv && !m.ports[e.port!]!.ns));
    if (!name) return;
    const e = m.spaces[0].get(name)!;
    r.stats.reach(this.kind === "dead" ? "requestDeadName" : "requestNoSenders");
    const prev = await r.tasks[0].requestNotification(name, this.kind === "dead" ? NotifyId.NOTIFY_DEAD_NAME : NotifyId.NOTIFY_NO_SENDERS, r.notify, 0);
    if (prev) throw new Violation(`${this} on ${name}: a previous request came back (${prev})`);
    if (this.kind === "dead") e.dn = true;
    else {
      m.ports[e.port!]!.ns = true;
      m.released(e.port!);
    }
    await settle(r);
    compare(m, r, `${this} on ${name}`);
  }
  toString = () => `request(${this.kind}, ${this.i})`;
}

/** Task 1 dies (task_terminate by task 0): its rights go as Mach says. */
class Death implements Cmd {
  check = (m: Readonly<Model>) => m.alive[0] && m.alive[1];
  async run(m: Model, r: Real) {
    r.stats.reach("taskDeath");
    await r.tasks[0].taskTerminate(r.taskPort[0]);
    m.die(1);
    await settle(r);
    compare(m, r, "death(1)");
  }
  toString = () => "death(1)";
}

const disp = fc.constantFrom(MsgType.MSG_TYPE_COPY_SEND, MsgType.MSG_TYPE_MAKE_SEND, MsgType.MSG_TYPE_MOVE_SEND);
const idx = fc.nat({ max: 31 });

// Rights must be made and spread before they can be sent, watched and
// killed: the commands that make them come up more often (fc.commands picks
// among its arbitraries evenly, so those are listed more than once).
const making = fc.oneof({ weight: 3, arbitrary: fc.constant(MsgType.MSG_TYPE_MAKE_SEND) }, { weight: 2, arbitrary: disp });
const allocate = who.map((t) => new Allocate(t));
const move = fc.tuple(fc.constantFrom("insert" as const, "extract" as const), who, idx, making).map(([op, t, i, d]) => new Move(op, t, i, d));
const send = fc.tuple(who, idx, idx, making).map(([t, d, c, x]) => new Send(t, d, c, x));
const request = fc.tuple(fc.constantFrom("dead" as const, "nosenders" as const), idx).map(([k, i]) => new Request(k, i));

/** The command sequences of the model-based runs; `replayPath` replays a shrunk one (fast-check prints it in the counterexample). */
export const commands = (replayPath?: string) => fc.commands(
  [
    allocate,
    allocate,
    move,
    move,
    move,
    move,
    send,
    send,
    send,
    request,
    request,
    fc.tuple(who, idx, fc.boolean(), fc.constantFrom(-2, -1, 0, 1, 2, MAX_UREFS)).map(([t, i, dead, delta]) => new ModRefs(t, i, dead, delta)),
    fc.tuple(who, idx).map(([t, i]) => new Deallocate(t, i)),
    fc.tuple(who, idx).map(([t, i]) => new Destroy(t, i)),
    fc.constant(new Death()),
  ],
  { maxCommands: 60, replayPath },
);

export const MODEL_ENTRIES = ["allocate", "insert", "extract", "modRefs", "deallocate", "destroy", "send", "receive", "requestDeadName", "requestNoSenders", "taskDeath"];

export interface ModelWorld {
  kind: BusKind;
  k: Kernel;
  kbus: Bus;
  hub: LocalHub;
  trap: TrapServer;
  buses: Bus[];
  n: number;
}

/** One run of commands: two fresh tasks in a namespace of their own, compared with a fresh model. */
export async function modelRun(w: ModelWorld, cmds: Iterable<Cmd>, stats: FuzzStats): Promise<void> {
  const { k } = w;
  const ns = k.newNamespace(k.root, `model${w.n++}`);
  k.root.children.add(ns);
  // On NATS each task as a party that may use any subject of the system (the kernel checks no inboxes: it mints no users here).
  const connect = async () => (w.kind === "local" ? w.hub.connect() : await natsBus(k.config.system));
  const boots = [k.bootTask({ name: "model-0", ns, hostPriv: true }), k.bootTask({ name: "model-1", ns })];
  const buses = [await connect(), await connect()];
  const tasks = (await Promise.all(boots.map((b, i) => Task.attach({ bus: buses[i]!, system: k.config.system, taskId: b.task.id, token: b.token, timeoutMs: 5000 })))) as [Task, Task];
  try {
    const m = new Model();
    const taskPort0 = await tasks[0].taskForId(boots[0]!.hostPriv, boots[1]!.task.id);
    const AT = 0x50000;
    await tasks[0].insertRight(taskPort0, AT, tasks[0].self, MsgType.MSG_TYPE_COPY_SEND);
    const notify = await tasks[0].allocate(PortRight.PORT_RIGHT_RECEIVE);
    const r: Real = { k, tasks, taskPort: [taskPort0, AT], notify, got: [], inbox: [[], []], stats };
    tasks[0].receive(notify, (msg) => {
      const name = msg.id === 72 ? DeadNameNotification.decode(msg.body).name : msg.id === 65 ? PortDeletedNotification.decode(msg.body).name : 0;
      r.got.push(`${msg.id}:${name}`);
      tasks[0].dropRights(msg);
    });
    // Everything each task receives elsewhere is a test message: kept, its rights left where they arrived.
    for (const t of [0, 1] as Who[]) tasks[t].onUnhandled = (msg) => void r.inbox[t].push(msg);
    // The model starts from what the kernel says the spaces hold now: their fixed names.
    const self0 = m.ports.push({ alive: true, receiver: null, ns: false, taskOf: 0 }) - 1;
    const self1 = m.ports.push({ alive: true, receiver: null, ns: false, taskOf: 1 }) - 1;
    m.ports.push({ alive: true, receiver: 0, ns: false, taskOf: null });
    const host = m.ports.push({ alive: true, receiver: null, ns: false, taskOf: null }) - 1;
    const fixed = (port: number, send: number, recv = false): MEntry => ({ port, send, recv, dead: 0, dn: false, fixed: true });
    m.spaces[0].set(tasks[0].self, fixed(self0, 1));
    m.spaces[0].set(taskPort0, fixed(self1, 1));
    m.spaces[0].set(notify, fixed(2, 0, true));
    m.spaces[0].set(boots[0]!.hostPriv, fixed(host, 1));
    m.spaces[1].set(tasks[1].self, fixed(self1, 1));
    m.spaces[1].set(AT, fixed(self0, 1));
    compare(m, r, "setup");
    await fc.asyncModelRun(() => ({ model: m, real: r }), cmds);
    await settle(r);
    stats.sent();
    const want = [...m.owed].sort();
    const got = [...r.got].sort();
    if (want.join(" ") !== got.join(" ")) throw new Violation(`notifications: task 0 received [${got.join(" ")}], the model owes [${want.join(" ")}]`);
  } finally {
    if (ns.active) k.destroyNamespace(ns, "model run over");
    for (const b of buses) await b.close();
  }
  const a = auditKernel(k);
  if (a.problems.length) throw new Violation(`kernel books after a model run:\n${a.problems.join("\n")}`);
  if (a.census.tasks !== 0 || a.census.queued !== 0) throw new Violation(`a model run left ${a.census.tasks} tasks and ${a.census.queued} queued messages`);
}

/** The model-based runs as a fuzz target: a batch is one sequence of commands. */
export const modelTarget: FuzzTarget<ModelWorld, never> = {
  name: "kernel-model",
  batchSize: 60,
  async start(kind) {
    const k = new Kernel({ system: `mdl${process.pid}x${Date.now() % 100000}`, ...FUZZ_KERNEL_CONFIG }, { log: () => {} });
    const hub = new LocalHub();
    const kbus = kind === "local" ? hub.connect() : await natsBus(k.config.system, { kind: "kernel" });
    const trap = new TrapServer(k, kbus);
    trap.start();
    await kbus.flush();
    return { kind, k, kbus, hub, trap, buses: [], n: 0 };
  },
  entries: () => MODEL_ENTRIES,
  message: () => fc.constant(undefined as never),
  batchOf: (_w, o) => commands(o.replayPath),
  async run(w, batch, stats) {
    const cmds = batch as unknown as Iterable<Cmd>;
    let n = 0;
    for (const _ of cmds) n++;
    stats.sent(Math.max(0, n - 1));
    await modelRun(w, cmds, stats);
  },
  check: async () => {},
  async close(w) {
    w.trap.stop();
    w.k.close();
    await w.kbus.close();
  },
};

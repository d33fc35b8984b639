import type { Port } from "./port.js";

/** mach_port_type_t bits. */
export const TYPE_SEND = 1 << 16;
export const TYPE_RECEIVE = 1 << 17;
export const TYPE_SEND_ONCE = 1 << 18;
export const TYPE_PORT_SET = 1 << 19;
export const TYPE_DEAD_NAME = 1 << 20;
export const TYPE_DNREQUEST = 0x80000000;

export const MACH_PORT_NULL = 0;
export const MACH_PORT_DEAD = 0xffffffff;

/** One name in one space. */
export interface Entry {
  name: number;
  /** The port (null for a port set or a dead name). */
  port: Port | null;
  bits: number;
  /** User references of the send right or the dead name. */
  urefs: number;
  /** The send-once right's port that a dead-name request on this name goes to. */
  dnrequest: Port | null;
  /** Members, for a port set. */
  members: Set<Port> | null;
}

/**
 * A task's IPC space. Send and receive rights for one port always share one
 * name (byPort finds it in O(1)); every send-once right gets a name of its own.
 * Names are never reused within a space, so a stale name can only be unknown,
 * never another right.
 */
export class Space {
  readonly entries = new Map<number, Entry>();
  readonly byPort = new Map<Port, Entry>();
  private nextName = 1;
  active = true;

  newName(): number {
    let n = this.nextName++;
    if (n === MACH_PORT_DEAD) {
      // 4 billion names in one task: start again past the live ones.
      this.nextName = 1;
      n = this.nextName++;
    }
    while (this.entries.has(n)) n = this.nextName++;
    return n;
  }

  insert(e: Entry): void {
    this.entries.set(e.name, e);
    if (e.port && e.bits & (TYPE_SEND | TYPE_RECEIVE)) this.byPort.set(e.port, e);
  }

  remove(e: Entry): void {
    this.entries.delete(e.name);
    if (e.port && this.byPort.get(e.port) === e) this.byPort.delete(e.port);
  }
}

export function newEntry(name: number, port: Port | null, bits: number, urefs: number): Entry {
  return { name, port, bits, urefs, dnrequest: null, members: null };
}

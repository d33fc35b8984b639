import { MsgType, type MsgPort, type ReceivedPort } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { Errno, HurdError } from "./errors.js";
import { MACH_PORT_DEAD, MACH_PORT_NULL } from "./task.js";

/**
 * Collects the rights a request or reply carries. Body fields hold the index
 * this returns, as MIG port arguments map to descriptors:
 *   const r = new Rights(); await proc.child({ childTask: r.copySend(task) }, { rights: r });
 */
export class Rights {
  readonly ports: MsgPort[] = [];
  add(name: number, disposition: MsgType): number {
    this.ports.push({ name, disposition });
    return this.ports.length - 1;
  }
  copySend(name: number): number {
    return this.add(name, MsgType.MSG_TYPE_COPY_SEND);
  }
  moveSend(name: number): number {
    return this.add(name, MsgType.MSG_TYPE_MOVE_SEND);
  }
  makeSend(name: number): number {
    return this.add(name, MsgType.MSG_TYPE_MAKE_SEND);
  }
  makeSendOnce(name: number): number {
    return this.add(name, MsgType.MSG_TYPE_MAKE_SEND_ONCE);
  }
  moveSendOnce(name: number): number {
    return this.add(name, MsgType.MSG_TYPE_MOVE_SEND_ONCE);
  }
  moveReceive(name: number): number {
    return this.add(name, MsgType.MSG_TYPE_MOVE_RECEIVE);
  }
}

const RIGHTS = Symbol("hurdmesh.rights");

/** Attaches the received rights to a decoded message object. */
export function withRights<T extends object>(o: T, ports: ReceivedPort[]): T {
  // Most messages carry no rights, and rightsOf answers [] for an object
  // without them: skip defineProperty, which takes V8 off its fast path.
  if (ports.length === 0) return o;
  Object.defineProperty(o, RIGHTS, { value: ports, enumerable: false });
  return o;
}

/** The rights that arrived with a reply or request decoded by the runtime. */
export function rightsOf(o: object): ReceivedPort[] {
  return ((o as Record<symbol, unknown>)[RIGHTS] as ReceivedPort[] | undefined) ?? [];
}

/** The name in this task's space of the right at `index` (0 when absent). */
export function portAt(o: object, index: number): number {
  return rightsOf(o)[index]?.name ?? 0;
}

/**
 * The name of the right at `index` of a message's rights, for a port
 * argument that may be null (MIG's MACH_PORT_NULL): MACH_PORT_NULL when there
 * is none there — an index past the rights, a null or dead name, or a bare
 * name (MSG_TYPE_PORT_NAME), which is a number anyone can write and never a
 * right to keep or release. For a request's rights (ctx.msg.ports) and a
 * reply's (rightsOf(reply)). With `type`, a right of another kind is EINVAL,
 * as Context.right answers for an index that names no fitting right.
 */
export function optionalRight(ports: readonly ReceivedPort[], index: number, type?: MsgType): number {
  const p = ports[index];
  if (!p || p.type === MsgType.MSG_TYPE_PORT_NAME || p.name === MACH_PORT_NULL || p.name === MACH_PORT_DEAD) return MACH_PORT_NULL;
  if (type !== undefined && p.type !== type) throw new HurdError(Errno.EINVAL, `right ${index} is a ${MsgType[p.type] ?? p.type}, not a ${MsgType[type]}`);
  return p.name;
}

import { MsgType, type MsgPort, type ReceivedPort } from "@hurdmesh/proto/hurd/mach/v1/mach";

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

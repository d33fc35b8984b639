import type { Namespace } from "./namespace.js";
import type { Port } from "./port.js";
import { Space } from "./space.js";

let nextTaskId = 1;

/** Where a task's deliveries go: a bus subject, or a gRPC stream at the edge. */
export type Sink = (delivery: Uint8Array, local: number) => void;

/** A task as the kernel knows it. */
export class KTask {
  readonly id = nextTaskId++;
  readonly space = new Space();
  readonly createdMs = Date.now();
  active = true;
  /** The kernel port (task_self); its kobject is this task. */
  self!: Port;
  bootstrap: Port | null = null;
  exception: Port | null = null;
  /** Messages the kernel may still push before the task returns credit. */
  credit = 0;
  /** Ports with queued messages waiting for credit (stale entries are skipped). */
  ready: Port[] = [];
  readyHead = 0;
  sink: Sink | null = null;
  attached = false;
  lastSeen = 0;
  essential = false;
  sent = 0;
  received = 0;
  readonly tokenBytes: Buffer;
  /** The subject prefix of this task's deliveries. */
  readonly subject: string;
  constructor(
    readonly ns: Namespace,
    readonly parentId: number,
    public name: string,
    readonly token: string,
    system: string,
  ) {
    this.subject = `hurd.${system}.rcv.${this.id}.`;
    this.tokenBytes = Buffer.from(token);
  }
}

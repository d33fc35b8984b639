import type { Port } from "./port.js";
import type { TaskEvents } from "@hurdmesh/mach/internal";
import type { KTask } from "./task.js";

let nextNamespaceId = 1;

/**
 * A hurd: the root one or a subhurd. Tasks are created inside one; its proc
 * registers on its privileged host port and hears of its tasks only.
 */
export class Namespace {
  readonly id = nextNamespaceId++;
  readonly depth: number;
  readonly tasks = new Set<KTask>();
  readonly children = new Set<Namespace>();
  /** The port new-task / task-terminated notifications go to (a send right the kernel holds). */
  notify: Port | null = null;
  active = true;
  /**
   * Events of tasks of nested hurds not yet sent to this hurd's proc (see
   * Kernel.nestedEvent); made on first use, reused after every send.
   */
  events: TaskEvents | null = null;
  constructor(
    readonly parent: Namespace | null,
    readonly hostPriv: Port,
    readonly label: string,
  ) {
    this.depth = parent ? parent.depth + 1 : 0;
  }
}

// What auth writes through so that a new process of its task can carry on
// (restart in place; the kernel's reincarnation.ts keeps the task): its
// handles' ids by the name of their port in auth's space, and the names of
// its own ports. The rights are not copied: they stay in the kernel, in
// auth's space, and the restarted auth finds them by these names. A write
// is acknowledged before the RPC that caused it is answered.
import type { KeyValue } from "@hurdmesh/mach";
import type { Ids } from "./handles.js";

/** What a previous process of this task left. */
export interface AuthImage {
  /** The root handle's name (a receive right). */
  root: number;
  /** auth's notify port (rendezvous dead names). */
  notifyPort: number;
  /** Handle port name -> its ids. */
  handles: Map<number, Ids>;
}

export interface AuthStore {
  /**
   * The image a previous process of task `taskId` left, or null: then this
   * is a fresh start, and whatever an earlier boot left is forgotten.
   */
  open(taskId: number): Promise<AuthImage | null>;
  /** auth's own ports, once at a fresh start. */
  putSelf(root: number, notifyPort: number): Promise<void> | void;
  putHandle(name: number, ids: Ids): Promise<void> | void;
  deleteHandle(name: number): Promise<void> | void;
}

/**
 * The embedded default: the image lives in this process, so writes cost a
 * map operation and nothing survives the process (nothing changes for a
 * hurd in one process). Tests restart auth on it within one process.
 */
export class MemoryAuthStore implements AuthStore {
  private taskId = 0;
  private image: AuthImage = { root: 0, notifyPort: 0, handles: new Map() };

  async open(taskId: number): Promise<AuthImage | null> {
    if (this.taskId === taskId && this.image.notifyPort !== 0) return { ...this.image, handles: new Map(this.image.handles) };
    this.taskId = taskId;
    this.image = { root: 0, notifyPort: 0, handles: new Map() };
    return null;
  }
  putSelf(root: number, notifyPort: number): void {
    this.image.root = root;
    this.image.notifyPort = notifyPort;
  }
  putHandle(name: number, ids: Ids): void {
    this.image.handles.set(name, ids);
  }
  deleteHandle(name: number): void {
    this.image.handles.delete(name);
  }
}

const SELF = "self";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** On a key-value bucket (JetStream on NATS): "self" -> {task, root, notify}; "h<name>" -> ids. */
export class KvAuthStore implements AuthStore {
  private taskId = 0;
  constructor(private readonly kv: KeyValue) {}

  async open(taskId: number): Promise<AuthImage | null> {
    this.taskId = taskId;
    const all = await this.kv.entries();
    const self = all.get(SELF);
    const me = self ? (JSON.parse(dec.decode(self)) as { task: number; root: number; notify: number }) : null;
    if (!me || me.task !== taskId) {
      // Another task's (an earlier boot's): start from nothing.
      if (all.size) await this.kv.purge();
      return null;
    }
    const handles = new Map<number, Ids>();
    for (const [k, v] of all) if (k.startsWith("h")) handles.set(Number(k.slice(1)), JSON.parse(dec.decode(v)) as Ids);
    return { root: me.root, notifyPort: me.notify, handles };
  }
  putSelf(root: number, notifyPort: number): Promise<void> {
    return this.kv.put(SELF, enc.encode(JSON.stringify({ task: this.taskId, root, notify: notifyPort })));
  }
  putHandle(name: number, ids: Ids): Promise<void> {
    return this.kv.put(`h${name}`, enc.encode(JSON.stringify(ids)));
  }
  deleteHandle(name: number): Promise<void> {
    return this.kv.delete(`h${name}`);
  }
}

// Small helpers shared by the kernel conformance suites (tests/kernel/*.test.ts).
// Everything drives the kernel as a user would: through Task calls and messages.
import assert from "node:assert/strict";
import { Errno, HurdError, MsgType, PortRight, type ErrnoName, type Received, type Task } from "@hurdmesh/mach";
import { until, type Hurd } from "../harness.js";

export { MsgType, PortRight };

/** Collects every message arriving on the receive right `name` of `t`. */
export function inbox(t: Task, name: number): Received[] {
  const got: Received[] = [];
  t.receive(name, (m) => {
    got.push(m);
  });
  return got;
}

/** Waits until `box` holds at least `n` messages; answers the `n`th. */
export async function nth(box: Received[], n = 1, what = "message"): Promise<Received> {
  await until(() => box.length >= n, 3000, what);
  return box[n - 1]!;
}

/** A child task of `parent`, attached: `port` is its task port in the parent's space. */
export async function child(h: Hurd, parent: Task, name: string, o: { window?: number; timeoutMs?: number } = {}): Promise<{ task: Task; port: number }> {
  const r = await parent.taskCreate(name);
  const task = await h.attach(r.taskId, r.token, o);
  return { task, port: r.task };
}

let chosen = 0x40000;
/**
 * Gives the task behind `taskPort` (a task port in `from`'s space) the right
 * `name` of `from` with disposition `disp`; answers the name it has there.
 */
export async function give(from: Task, taskPort: number, name: number, disp: MsgType): Promise<number> {
  const at = chosen++;
  await from.insertRight(taskPort, at, name, disp);
  return at;
}

/** Asserts that `p` rejects with the HurdError `code`. */
export async function rejectsWith(p: Promise<unknown>, code: ErrnoName): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HurdError, `expected a HurdError, got ${String(e)}`);
    assert.equal((e as HurdError).errno, code);
    return true;
  });
}

export const code = (name: ErrnoName): number => Errno[name];

/** send urefs under `name` (0 when it holds no send right). */
export const sendRefs = (t: Task, name: number) => t.getRefs(name, PortRight.PORT_RIGHT_SEND);
export const deadRefs = (t: Task, name: number) => t.getRefs(name, PortRight.PORT_RIGHT_DEAD_NAME);

/** The task's names and types as a sorted "name:type" list, for before/after comparisons. */
export async function spaceOf(t: Task): Promise<string[]> {
  const { names, types } = await t.names();
  return names.map((n, i) => `${n}:${types[i]!.toString(16)}`).sort();
}

/** A fuller picture of a task's space: names, types and every ref count. */
export async function snapshot(t: Task): Promise<string[]> {
  const { names, types } = await t.names();
  const out: string[] = [];
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    const refs = [];
    for (const r of [PortRight.PORT_RIGHT_SEND, PortRight.PORT_RIGHT_RECEIVE, PortRight.PORT_RIGHT_SEND_ONCE, PortRight.PORT_RIGHT_DEAD_NAME]) refs.push(await t.getRefs(n, r));
    out.push(`${n}:${types[i]!.toString(16)}:${refs.join(",")}`);
  }
  return out.sort();
}

export const TYPE_SEND = 1 << 16;
export const TYPE_RECEIVE = 1 << 17;
export const TYPE_SEND_ONCE = 1 << 18;
export const TYPE_PORT_SET = 1 << 19;
export const TYPE_DEAD_NAME = 1 << 20;
export const TYPE_DNREQUEST = 0x80000000;
export const DEAD = 0xffffffff;

/** Resolves after `ms`: only for proving that something did NOT happen. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A promise with its resolver outside: a handler that settles when the test says so. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

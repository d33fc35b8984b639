import { HurdError } from "@hurdmesh/mach";
import { signalNumber as sn } from "@hurdmesh/libhurd";
import { CliError } from "./session.js";

export function signalNumber(s: string): number {
  const n = sn(s);
  if (n === undefined) throw new CliError(`unknown signal ${s}`);
  return n;
}

export function isErrnoLike(e: unknown): string {
  return e instanceof HurdError ? e.errno : (e as Error).message;
}

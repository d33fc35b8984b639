import { HurdError } from "@hurdmesh/mach";

/** The errno name of a Hurd error, or the message of any other. */
export function isErrnoLike(e: unknown): string {
  return e instanceof HurdError ? e.errno : (e as Error).message;
}

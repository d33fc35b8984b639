// Readiness, said to whoever started this program on a pipe of its own
// (as systemd's sd_notify, on an inherited descriptor): `hurd up --nats`
// starts the kernel and init with HURD_READY_FD=3 and waits for one JSON
// line there, instead of matching their log lines, whose words and format
// are free to change.

/** The environment variable naming the descriptor (unset: nobody is waiting). */
export const READY_FD_ENV = "HURD_READY_FD";

/** Writes `{"ready":true, ...info}` once to HURD_READY_FD and closes it; nothing when unset. */
export async function notifyReady(info: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const fd = Number(env[READY_FD_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return;
  delete env[READY_FD_ENV];
  const { closeSync, writeSync } = await import("node:fs");
  try {
    writeSync(fd, `${JSON.stringify({ ready: true, ...info })}\n`);
    closeSync(fd);
  } catch {
    // The starter went away: there is nobody left to tell.
  }
}

// hurd keys: the secrets a deployment needs. nats-config prints a
// nats-server configuration with NATS authorization for a hurd (operator
// mode, the hurd's account preloaded, nobody anonymous) and keeps the keys
// behind it in the state directory (0600), where `hurd up --nats URL` finds
// them. The configuration holds JWTs only, which are public; the keys file
// holds the seeds that sign them, which are not.
import { existsSync, rmSync } from "node:fs";
import { CliError } from "./errors.js";
import { natsKeysPath } from "./session.js";

/**
 * The NATS keys file of `hurd`: `given` (--nats-keys), else HURD_NATS_KEYS,
 * which must exist; else the state directory's, made on first use.
 */
export async function natsKeysFor(hurd: string, given?: string): Promise<{ keysFile: string; created: boolean }> {
  const named = given ?? process.env.HURD_NATS_KEYS;
  if (named) {
    if (!existsSync(named)) throw new CliError(`no NATS keys at ${named}`);
    return { keysFile: named, created: false };
  }
  const path = natsKeysPath(hurd);
  if (existsSync(path)) return { keysFile: path, created: false };
  const { makeFabricKeys, writeFabricKeys } = await import("@hurdmesh/mach/nats-auth");
  writeFabricKeys(path, makeFabricKeys(hurd));
  return { keysFile: path, created: true };
}

export async function natsConfig(o: { host: string; port: string; jetstream?: string; new?: boolean; hurd: string }): Promise<void> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new CliError(`not a port: ${o.port}`);
  const { fabricServerConfig, makeFabricKeys, readFabricKeys, writeFabricKeys } = await import("@hurdmesh/mach/nats-auth");
  // The state directory's keys, whatever HURD_NATS_KEYS says: this command is what makes them.
  const path = natsKeysPath(o.hurd);
  if (o.new) rmSync(path, { force: true });
  const created = !existsSync(path);
  if (created) writeFabricKeys(path, makeFabricKeys(o.hurd, { jetstream: !!o.jetstream }));
  const keys = readFabricKeys(path);
  if (o.jetstream && !keys.jetstream) throw new CliError(`the keys in ${path} were made without JetStream: run again with --new`);
  process.stdout.write(fabricServerConfig(keys, { host: o.host, port, jetstreamDir: o.jetstream }));
  process.stderr.write(`hurd: ${created ? "new NATS keys in" : "NATS keys kept in"} ${path} (mode 0600); then: hurd up --hurd ${o.hurd} --nats nats://${o.host}:${port}\n`);
}

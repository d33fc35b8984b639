// The kernel's limits from its environment, so that compose and the
// Kubernetes overlays can set them without a command line of their own:
// the kernel's totals (which are the root hurd's limits) and the limits a
// new subhurd gets when `hurd subhurd create` names none. Unset variables
// keep config.ts's defaults; a value that is not a whole number (sizes may
// end in K, M or G, powers of 1024) stops the kernel at start, never later.
import type { HurdLimits, KernelConfig } from "./config.js";

const TOTALS = {
  HURD_MAX_TASKS: "maxTasks",
  HURD_MAX_PORTS: "maxPorts",
  HURD_MAX_QUEUED_BYTES: "maxQueuedBytes",
  HURD_MAX_HURDS: "maxHurds",
  HURD_MAX_NAMES_PER_TASK: "maxNamesPerTask",
  HURD_MAX_QUEUED_BYTES_PER_TASK: "maxQueuedBytesPerTask",
} as const;

const SUBHURD = {
  HURD_SUBHURD_MAX_TASKS: "maxTasks",
  HURD_SUBHURD_MAX_PORTS: "maxPorts",
  HURD_SUBHURD_MAX_QUEUED_BYTES: "maxQueuedBytes",
  HURD_SUBHURD_MAX_CHILDREN: "maxChildren",
} as const;

const UNIT: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

function count(name: string, raw: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(raw.trim());
  const v = m ? Number(m[1]) * UNIT[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(v)) throw new Error(`${name}=${raw}: not a whole number (sizes may end in K, M or G)`);
  return v;
}

/** What the environment sets of KernelConfig's limits (kernelConfig checks the rest). */
export function limitsFromEnv(env: NodeJS.ProcessEnv): Partial<KernelConfig> {
  const out: Partial<Record<(typeof TOTALS)[keyof typeof TOTALS], number>> = {};
  for (const [name, key] of Object.entries(TOTALS)) if (env[name]) out[key] = count(name, env[name]);
  const sub: Partial<HurdLimits> = {};
  for (const [name, key] of Object.entries(SUBHURD)) if (env[name]) sub[key] = count(name, env[name]);
  return Object.keys(sub).length > 0 ? { ...out, hurdLimits: sub as HurdLimits } : out;
}

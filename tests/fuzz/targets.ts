// The fuzz targets by name, as `npm run fuzz -- --target NAME` and the
// short test runs take them. A new entry point (the gateway's Hurd services
// at the edge) joins by adding a target here, or a service to the edge
// target's table (edge.ts, EDGE_SERVICES).
import type { FuzzTarget } from "./core.js";
import { kernelTarget } from "./kernel.js";

export const TARGETS: Record<string, () => Promise<FuzzTarget<any, any>>> = {
  kernel: async () => kernelTarget,
  "kernel-model": async () => (await import("./model.js")).modelTarget,
  proc: async () => (await import("./proc.js")).procTarget,
  auth: async () => (await import("./auth.js")).authTarget,
  startup: async () => (await import("./startup.js")).startupTarget,
  edge: async () => (await import("./edge.js")).edgeTarget,
};

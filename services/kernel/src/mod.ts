export { Kernel, type BootTask, type BootTaskOptions, type KernelEvents } from "./kernel.js";
export { kernelConfig, defaultKernelConfig, type KernelConfig } from "./config.js";
export { TrapServer } from "./trap.js";
export type { KTask } from "./task.js";
export type { Namespace } from "./namespace.js";
export { Edge } from "./edge.js";
export { TraceBus, type TraceBusOptions } from "./trace-bus.js";

export { Kernel, type KernelOptions } from "./kernel.js";
export type { KernelEvents } from "./state.js";
export type { BootTask, BootTaskOptions } from "./task.js";
export { kernelConfig, defaultKernelConfig, type KernelConfig } from "./config.js";
export { TrapServer } from "./trap.js";
export type { KTask } from "./task.js";
export type { Namespace } from "./namespace.js";
export { Edge } from "./edge.js";
export { TraceBus, type TraceBusOptions } from "./trace-bus.js";

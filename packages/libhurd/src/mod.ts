// libhurd: what a program links to be a Hurd process.
export { Process, ProcessHandle, CHILD_NAMES, type ForkedChild, type SignalHandler, type SignalInfo, type WaitStatus, type ProcClient } from "./process.js";
export { runProgram, type RunOptions, type Running } from "./spawn.js";
export { SIG, NSIG, W, WNOHANG, WUNTRACED, WCONTINUED, WNOWAIT, WEXITED, signalNumber, signalName, describeStatus, defaultAction } from "./signals.js";
export { attachFromEnv, workloadEnv, type EnvAttach } from "./env.js";

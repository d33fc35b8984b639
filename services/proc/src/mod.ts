export { startProc, type StartProcOptions } from "./main.js";
export { ProcServer, HURD_PID_INIT, HURD_PID_STARTUP, HURD_PID_KERNEL, HURD_PID_PROC } from "./server.js";
export { defaultProcConfig, type ProcConfig } from "./config.js";
export { PI, PI_FETCH_TASKINFO } from "./info.js";
export { KvProcStore, LogProcStore, MemoryProcStore, ProcBatch, type ProcImage, type ProcStore } from "./store.js";
export type { ProcJournal } from "./journal.js";

export { BOOT_SERVERS, startBootServer, type BootServer, type BootServerOptions } from "./servers.js";
export { InProcessLauncher, ProcessLauncher } from "./launchers.js";
export { Runsystem, type RunsystemOptions } from "./runsystem.js";
export { awaitLaunch, BusLauncher, type LaunchOrder } from "./container/launch.js";

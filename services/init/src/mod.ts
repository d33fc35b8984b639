export { Init, BOOT_NAMES, type Console, type Booted, type InitOptions, type Launcher, type LaunchPorts } from "./boot.js";
export { defaultInitConfig, type InitConfig } from "./config.js";
export { bootSubhurd, type Subhurd } from "./subhurd.js";
export { serveSubhurds, type ManagerOptions } from "./manager.js";

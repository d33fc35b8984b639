export type { Bus, BusHandler, BusSubscription } from "./types.js";
export { LocalHub, LocalConnection, matches } from "./local.js";
export { NatsBus } from "./nats.js";

export { up, type UpOptions } from "./up.js";
export { connect, readSession, sessionPath, NAMES, type Session, type Connected } from "./session.js";

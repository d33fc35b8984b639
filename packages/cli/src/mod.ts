export { up, type UpOptions } from "./up.js";
export { connect, readSession, sessionPath, type Session, type Connected } from "./session.js";

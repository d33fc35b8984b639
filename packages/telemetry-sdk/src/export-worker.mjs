// The export worker's entry. A worker thread does not inherit its parent's
// `--import tsx`, so it registers tsx itself before loading the TypeScript.
import { register } from "tsx/esm/api";

register();
await import("./export-worker.ts");

// The export worker's entry (record-sink.ts starts it). Built, beside the
// compiled export-worker.js in dist/, it loads that. In src/ (the tests run
// the sources) a worker thread does not inherit its parent's `--import tsx`,
// so it registers tsx itself before loading the TypeScript.
import { existsSync } from "node:fs";

const compiled = new URL("./export-worker.js", import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("./export-worker.ts");
}

#!/usr/bin/env node
// The `hurd` command: the compiled CLI (dist/, built by `npm ci` or `npm run
// build`) in this process. V8's compile cache makes every run after the
// first skip parsing and compiling the modules it loads; source maps make
// stack traces name .ts lines. Both before the first import of the program.
import module from "node:module";

module.enableCompileCache?.();
// Our code's maps only (Node >= 22.14): dependencies' maps cost every start
// a parse (about 15 ms of CPU for grpc-js's at `hurd ps`) for frames of no interest.
if (module.setSourceMapsSupport) module.setSourceMapsSupport(true, { nodeModules: false });
else process.setSourceMapsEnabled(true);
await import("../dist/main.js");

#!/usr/bin/env node
// The kernel as its own process (services/kernel/src/main.ts, compiled):
//   hurd-kernel --nats nats://127.0.0.1:4222 --grpc 127.0.0.1:7400 --boot init --boot-file /tmp/boot.json
import module from "node:module";

module.enableCompileCache?.();
// Our code's maps only (Node >= 22.14): dependencies' maps cost every start
// a parse (about 15 ms of CPU for grpc-js's at `hurd ps`) for frames of no interest.
if (module.setSourceMapsSupport) module.setSourceMapsSupport(true, { nodeModules: false });
else process.setSourceMapsEnabled(true);
await import("../dist/main.js");

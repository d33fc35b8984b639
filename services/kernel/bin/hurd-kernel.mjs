#!/usr/bin/env node
// The kernel as its own process (services/kernel/src/main.ts, compiled):
//   hurd-kernel --nats nats://127.0.0.1:4222 --grpc 127.0.0.1:7400 --boot init --boot-file /tmp/boot.json
import module from "node:module";

module.enableCompileCache?.();
process.setSourceMapsEnabled(true);
await import("../dist/main.js");

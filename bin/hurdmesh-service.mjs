#!/usr/bin/env node
// The container image's entry point: `hurdmesh-service ROLE [ARGS…]`.
//   kernel     the kernel and its gRPC edge (@hurdmesh/kernel/main)
//   init       the startup server, pid 1 and the session file (container roles)
//   proc, auth the boot servers init launches over the bus
//   otlp-sink  a small OTLP receiver that keeps spans for tests to query
//   hurd       the `hurd` command
// Compiled JavaScript (the workspaces' dist/), in this process: one command
// per role, no second Node. OpenTelemetry's gRPC instrumentation hook
// (register.mjs, which does nothing unless tracing is on) is loaded before
// anything loads grpc-js, as `node --import` would.
import module from "node:module";

module.enableCompileCache?.();
// Our code's maps only (Node >= 22.14): dependencies' maps cost every start
// a parse (about 15 ms of CPU for grpc-js's at `hurd ps`) for frames of no interest.
if (module.setSourceMapsSupport) module.setSourceMapsSupport(true, { nodeModules: false });
else process.setSourceMapsEnabled(true);

const roles = {
  kernel: ["@hurdmesh/kernel/main", false],
  init: ["@hurdmesh/boot/container", true],
  proc: ["@hurdmesh/boot/container", true],
  auth: ["@hurdmesh/boot/container", true],
  "otlp-sink": ["@hurdmesh/telemetry-sdk/otlp-sink/main", false],
  hurd: ["@hurdmesh/cli/main", false],
};
const [role, ...rest] = process.argv.slice(2);
const entry = roles[role ?? ""];
if (!entry) {
  console.error(`usage: hurdmesh-service ${Object.keys(roles).join("|")} [ARGS…]`);
  process.exit(2);
}
const [program, keepRole] = entry;
// In a container the edge must listen beyond loopback to be published.
if (role === "kernel") process.env.HURD_GRPC ??= "0.0.0.0:7400";
const file = new URL(import.meta.resolve(program)).pathname;
process.argv = [process.argv[0], file, ...(keepRole ? [role] : []), ...rest];
await import("@hurdmesh/telemetry-sdk/register");
await import(program);

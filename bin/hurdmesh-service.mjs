#!/usr/bin/env node
// The container image's entry point: `hurdmesh-service ROLE [ARGS…]`.
//   kernel     the kernel and its gRPC edge (services/kernel/src/main.ts)
//   init       the startup server, pid 1 and the session file (container roles)
//   proc, auth the boot servers init launches over the bus
//   otlp-sink  a small OTLP receiver that keeps spans for tests to query
//   hurd       the `hurd` command
// TypeScript runs through tsx's loader, registered here rather than with
// `node --import` so the image needs one command per role; OpenTelemetry's
// gRPC instrumentation hook, when tracing is on, is registered before
// anything loads grpc-js, as `node --import` would.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

const root = fileURLToPath(new URL("..", import.meta.url));
const roles = {
  kernel: ["services/kernel/src/main.ts", false],
  init: ["services/init/src/container/main.ts", true],
  proc: ["services/init/src/container/main.ts", true],
  auth: ["services/init/src/container/main.ts", true],
  "otlp-sink": ["packages/telemetry-sdk/src/otlp-sink/main.ts", false],
  hurd: ["packages/cli/src/main.ts", false],
};
const [role, ...rest] = process.argv.slice(2);
const entry = roles[role ?? ""];
if (!entry) {
  console.error(`usage: hurdmesh-service ${Object.keys(roles).join("|")} [ARGS…]`);
  process.exit(2);
}
const [file, keepRole] = entry;
// In a container the edge must listen beyond loopback to be published.
if (role === "kernel") process.env.HURD_GRPC ??= "0.0.0.0:7400";
process.argv = [process.argv[0], `${root}${file}`, ...(keepRole ? [role] : []), ...rest];
const hook = `${root}packages/telemetry-sdk/src/register.mjs`;
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT && process.env.OTEL_SDK_DISABLED !== "true" && existsSync(hook)) await import(hook);
register();
await import(`${root}${file}`);

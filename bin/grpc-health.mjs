#!/usr/bin/env node
// A gRPC health probe (grpc.health.v1.Health/Check) for Docker's
// HEALTHCHECK and compose: exit 0 when the server says SERVING.
//   grpc-health.mjs [HOST:PORT] [SERVICE]
// The address defaults to HURD_HEALTH_PROBE, else the port of
// HURD_HEALTH_ADDR (boot servers, 7401) or HURD_GRPC (the kernel, 7400) on
// 127.0.0.1. Plain JavaScript with grpc-js and no tsx: a probe runs every
// few seconds and must start fast.
import * as grpc from "@grpc/grpc-js";

const port = (a) => a?.match(/:(\d+)$/)?.[1];
const role = process.env.HURD_GRPC && !process.env.HURD_HEALTH_ADDR ? port(process.env.HURD_GRPC) : port(process.env.HURD_HEALTH_ADDR) ?? "7401";
const addr = process.argv[2] ?? process.env.HURD_HEALTH_PROBE ?? `127.0.0.1:${role}`;
const service = process.argv[3] ?? "";

// HealthCheckRequest { string service = 1; } and HealthCheckResponse { ServingStatus status = 1; } by hand:
// two fields are not worth a proto loader at every probe.
const encode = (s) => {
  const b = Buffer.from(s, "utf8");
  return b.length ? Buffer.concat([Buffer.from([0x0a, b.length]), b]) : Buffer.alloc(0);
};
const decode = (b) => (b.length >= 2 && b[0] === 0x08 ? b[1] : 0);
const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

const c = new grpc.Client(addr, grpc.credentials.createInsecure());
c.makeUnaryRequest("/grpc.health.v1.Health/Check", encode, decode, service, new grpc.Metadata(), { deadline: Date.now() + 2500 }, (err, status) => {
  c.close();
  if (err) {
    console.error(`${addr}: ${err.details || err.message}`);
    process.exit(1);
  }
  console.log(`${addr}${service ? ` ${service}` : ""}: ${STATUS[status] ?? status}`);
  process.exit(status === 1 ? 0 : 1);
});

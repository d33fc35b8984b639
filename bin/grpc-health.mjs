#!/usr/bin/env node
// A gRPC health probe (grpc.health.v1.Health/Check) for Docker's
// HEALTHCHECK and compose: exit 0 when the server says SERVING.
//   grpc-health.mjs [HOST:PORT] [SERVICE]
// Without an address: HURD_HEALTH_PROBE if set, else the boot servers'
// health port (HURD_HEALTH_ADDR's, default 7401) on 127.0.0.1 and, if
// nothing listens there, the kernel's edge (HURD_GRPC's port, default 7400):
// the image's one HEALTHCHECK serves every role. Plain JavaScript with
// grpc-js and no tsx: a probe runs every few seconds and must start fast.
import * as grpc from "@grpc/grpc-js";

const port = (a) => a?.match(/:(\d+)$/)?.[1];
const given = process.argv[2] ?? process.env.HURD_HEALTH_PROBE;
const candidates = given
  ? [given]
  : [`127.0.0.1:${port(process.env.HURD_HEALTH_ADDR) ?? "7401"}`, `127.0.0.1:${port(process.env.HURD_GRPC) ?? "7400"}`];
const service = process.argv[3] ?? "";

// HealthCheckRequest { string service = 1; } and HealthCheckResponse { ServingStatus status = 1; } by hand:
// two fields are not worth a proto loader at every probe.
const encode = (s) => {
  const b = Buffer.from(s, "utf8");
  return b.length ? Buffer.concat([Buffer.from([0x0a, b.length]), b]) : Buffer.alloc(0);
};
const decode = (b) => (b.length >= 2 && b[0] === 0x08 ? b[1] : 0);
const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function check(addr) {
  return new Promise((resolve) => {
    const c = new grpc.Client(addr, grpc.credentials.createInsecure());
    c.makeUnaryRequest("/grpc.health.v1.Health/Check", encode, decode, service, new grpc.Metadata(), { deadline: Date.now() + 2500 }, (err, status) => {
      c.close();
      resolve({ addr, err, status });
    });
  });
}

let r;
for (const addr of candidates) {
  r = await check(addr);
  // Only "nothing listens here" moves on to the next candidate.
  if (!(r.err && r.err.code === grpc.status.UNAVAILABLE)) break;
}
if (r.err) {
  console.error(`${r.addr}: ${r.err.details || r.err.message}`);
  process.exit(1);
}
console.log(`${r.addr}${service ? ` ${service}` : ""}: ${STATUS[r.status] ?? r.status}`);
process.exit(r.status === 1 ? 0 : 1);

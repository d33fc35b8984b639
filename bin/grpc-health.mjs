#!/usr/bin/env node
// A gRPC health probe (grpc.health.v1.Health/Check) for Docker's
// HEALTHCHECK and compose: exit 0 when the server says SERVING.
//   grpc-health.mjs [HOST:PORT] [SERVICE]
// Without an address: HURD_HEALTH_PROBE if set, else the boot servers'
// health port (HURD_HEALTH_ADDR's, default 7401) on 127.0.0.1 and, if
// nothing listens there, the kernel's edge (HURD_GRPC's port, default 7400):
// the image's one HEALTHCHECK serves every role. HURD_HEALTH_CA_FILE: the
// server speaks TLS with a certificate from that CA (the kernel's edge in
// docker compose), checked as any client checks it.
import { readFileSync } from "node:fs";
import { connect } from "node:http2";

const port = (a) => a?.match(/:(\d+)$/)?.[1];
const given = process.argv[2] ?? process.env.HURD_HEALTH_PROBE;
const candidates = given
  ? [given]
  : [`127.0.0.1:${port(process.env.HURD_HEALTH_ADDR) ?? "7401"}`, `127.0.0.1:${port(process.env.HURD_GRPC) ?? "7400"}`];
const service = process.argv[3] ?? "";
const ca = process.env.HURD_HEALTH_CA_FILE ? readFileSync(process.env.HURD_HEALTH_CA_FILE) : null;

// HealthCheckRequest { string service = 1; } and HealthCheckResponse
// { ServingStatus status = 1; } by hand, in gRPC's length-prefixed framing
// over node's own HTTP/2: loading grpc-js costs a probe more CPU than the
// check itself, and a probe runs in every container every few seconds.
const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
const field = Buffer.from(service, "utf8");
if (field.length > 127) {
  console.error("a service name this probe sends is under 128 bytes");
  process.exit(2);
}
const msg = field.length ? Buffer.concat([Buffer.from([0x0a, field.length]), field]) : Buffer.alloc(0);
const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);

/** Resolves { addr, refused, err, status }. */
function check(addr) {
  return new Promise((resolve) => {
    const done = (r) => {
      clearTimeout(timer);
      session.destroy();
      resolve({ addr, ...r });
    };
    const timer = setTimeout(() => done({ err: "no answer within 2.5 s" }), 2500);
    // servername "": no SNI for an address (RFC 6066); the certificate is still checked against the host dialled.
    const session = ca ? connect(`https://${addr}`, { ca, ALPNProtocols: ["h2"], servername: "" }) : connect(`http://${addr}`);
    const failed = (e) => done({ refused: e.code === "ECONNREFUSED" || /ECONNREFUSED/.test(e.message), err: e.message });
    session.on("error", failed);
    const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
    const chunks = [];
    // A trailers-only answer (an error) has grpc-status in its headers.
    let trailers = {};
    req.on("response", (h) => (trailers = h));
    req.on("data", (c) => chunks.push(c));
    req.on("trailers", (t) => (trailers = t));
    req.on("error", failed);
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const grpcStatus = trailers["grpc-status"] ?? "";
      if (grpcStatus !== "0") return done({ err: `grpc-status ${grpcStatus || "missing"} ${decodeURIComponent(trailers["grpc-message"] ?? "")}`.trim() });
      // One frame: 5-byte prefix, then field 1 as a varint (absent means UNKNOWN).
      const m = body.subarray(5);
      done({ status: m.length >= 2 && m[0] === 0x08 ? m[1] : 0 });
    });
    req.end(frame);
  });
}

let r;
for (const addr of candidates) {
  r = await check(addr);
  // Only "nothing listens here" moves on to the next candidate.
  if (!r.refused) break;
}
if (r.err) {
  console.error(`${r.addr}: ${r.err}`);
  process.exit(1);
}
console.log(`${r.addr}${service ? ` ${service}` : ""}: ${STATUS[r.status] ?? r.status}`);
process.exit(r.status === 1 ? 0 : 1);

// TLS at the kernel's gRPC edge. Tokens cross the edge in every call's
// metadata (the console's is root-equivalent), so an edge reachable from
// another host speaks TLS; plaintext is for loopback only (the embedded
// `hurd up` default), which nobody but this host can listen to. A client
// trusts the CA the session file (or HURD_EDGE_CA) carries, nothing else:
// a private CA, made by `hurd up` (nats-auth's tls.ts) or given.
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { Errno, HurdError } from "../errors.js";
import type { CertFiles } from "./cert-reload.js";

/** The edge's certificate and key (PEM), and the CA clients check it against. */
export interface EdgeTls {
  certPem: string;
  keyPem: string;
  /** Where they were read from, watched for renewals (cert-reload.ts); absent: served as given until the process ends. */
  files?: CertFiles;
}

/** The host part of host:port ("[::1]:7400" -> "::1"). */
export function hostOf(address: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(address) ?? /^([^:]*)(?::\d+)?$/.exec(address);
  return m ? m[1]! : address;
}

/** Whether an address is reachable from this host only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(address: string): boolean {
  const h = hostOf(address).toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1";
}

/**
 * The server side: TLS with `tls`; plaintext only on a loopback address,
 * or where the operator says so (`insecure`: docker compose and Kubernetes,
 * until their certificates are wired). EINVAL for plaintext anywhere else
 * (the tokens in its calls would cross the network in clear).
 */
export function edgeServerCredentials(address: string, tls?: EdgeTls | null, insecure = false): grpc.ServerCredentials {
  if (tls?.files) return tls.files.credentials();
  if (tls) return grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.certPem), private_key: Buffer.from(tls.keyPem) }], false);
  if (!isLoopback(address) && !insecure)
    throw new HurdError(Errno.EINVAL, `the gRPC edge on ${address} is not a loopback address: it needs TLS (a certificate and key: --grpc-cert/--grpc-key, HURD_GRPC_CERT/HURD_GRPC_KEY), or --grpc-insecure (HURD_GRPC_INSECURE=1) to send tokens in clear`);
  return grpc.ServerCredentials.createInsecure();
}

/** The client side: TLS checked against `caPem` when given; plaintext (loopback) otherwise. */
export function edgeChannelCredentials(caPem?: string | null): grpc.ChannelCredentials {
  return caPem ? grpc.credentials.createSsl(Buffer.from(caPem)) : grpc.credentials.createInsecure();
}

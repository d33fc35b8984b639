// The standard gRPC health service (grpc.health.v1) for a server that runs
// in its own container: Docker's HEALTHCHECK, compose's service_healthy and
// Kubernetes' grpc probes all ask it. It lives in the runtime, beside the
// other transports, so that a server reports its health without importing
// grpc-js itself; it is its own export path (@hurdmesh/mach/health) so that
// only a process that serves it loads grpc-js. What "" (the overall service)
// means is the caller's: a boot server's container, for one, says SERVING
// while it waits to be launched, since init launches it only once it is up.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";

export type Status = "SERVING" | "NOT_SERVING";

export interface HealthServer {
  readonly port: number;
  set(status: Status, service?: string): void;
  close(): Promise<void>;
}

export async function serveHealth(addr: string, services: string[] = []): Promise<HealthServer> {
  const statuses: Record<string, Status> = { "": "NOT_SERVING" };
  for (const s of services) statuses[s] = "NOT_SERVING";
  const health = new HealthImplementation(statuses);
  const server = new grpc.Server();
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    port,
    set: (status, service = "") => health.setStatus(service, status),
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // A probe stuck mid-call must not hold the container's exit up.
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000).unref();
      }),
  };
}

// The standard gRPC health service (grpc.health.v1) for a boot server that
// runs in its own container: Docker's HEALTHCHECK, compose's service_healthy
// and Kubernetes' grpc probes all ask it. The overall service ("") says
// whether the container does its job: waiting to be launched counts, since
// init launches the server only once the container is up.
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

// gRPC server reflection (grpc.reflection.v1 and v1alpha, what grpcurl
// asks), built on its first call. @grpc/reflection analyses every proto of
// the package definition when it is constructed and loads its own protos
// with proto-loader: about 130 ms of CPU, the largest part of the edge's
// start and of `hurd up`, for a service a person asks once in a while.
// The methods are registered under their paths at once; the first stream
// (or the first message to decode) builds the real service and hands over.
import { createRequire } from "node:module";
import type * as grpc from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";

const require = createRequire(import.meta.url);

/** The methods ReflectionService.addToServer registers (both reflection versions). */
export const REFLECTION_PATHS = ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"];

interface Method {
  handler: grpc.handleBidiStreamingCall<unknown, unknown>;
  serialize: grpc.serialize<unknown>;
  deserialize: grpc.deserialize<unknown>;
}

/** Serves reflection on `server` for the package `load()` answers, loaded on first use. */
export function serveReflectionLazily(server: grpc.Server, load: () => PackageDefinition): void {
  let methods: Map<string, Method> | null = null;
  const method = (path: string): Method => {
    if (!methods) {
      const m = new Map<string, Method>();
      const { ReflectionService } = require("@grpc/reflection") as typeof import("@grpc/reflection");
      // addToServer only calls addService: take the definitions it gives.
      const capture = {
        addService(service: grpc.ServiceDefinition, impl: Record<string, Function>) {
          for (const [name, attrs] of Object.entries(service)) {
            const fn = impl[name] ?? impl[attrs.originalName ?? ""];
            m.set(attrs.path, { handler: fn as Method["handler"], serialize: attrs.responseSerialize, deserialize: attrs.requestDeserialize });
          }
        },
      };
      new ReflectionService(load()).addToServer(capture as unknown as grpc.Server);
      methods = m;
    }
    const found = methods.get(path);
    if (!found) throw new Error(`@grpc/reflection serves no ${path}`);
    return found;
  };
  for (const path of REFLECTION_PATHS)
    server.register<unknown, unknown>(
      path,
      (call: grpc.ServerDuplexStream<unknown, unknown>) => method(path).handler(call),
      (v) => method(path).serialize(v),
      (b) => method(path).deserialize(b),
      "bidi",
    );
}

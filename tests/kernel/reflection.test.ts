// Server reflection at the kernel's edge (what `grpcurl list` uses), built
// on its first call rather than when the edge starts: both reflection
// versions answer, and starting the edge loads no @grpc/reflection.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Edge } from "@hurdmesh/kernel";
import { startHurd, type Hurd } from "../harness.js";

const require = createRequire(import.meta.url);
const reflectionMain = require.resolve("@grpc/reflection");
const protoDir = join(dirname(reflectionMain), "../proto");

type Reflection = grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, { listServicesResponse?: { service: Array<{ name: string }> } }> };

function reflectionClient(version: "v1" | "v1alpha", address: string): Reflection {
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [protoDir], keepCase: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<string, { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => Reflection }> } };
  return new pkg.grpc.reflection[version]!.ServerReflection(address, grpc.credentials.createInsecure());
}

function listServices(c: Reflection): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = c.ServerReflectionInfo();
    s.on("data", (r) => {
      resolve((r.listServicesResponse?.service ?? []).map((x: { name: string }) => x.name).sort());
      s.end();
    });
    s.on("error", reject);
    s.write({ listServices: "*" });
  });
}

describe("gRPC server reflection at the edge", () => {
  let h: Hurd;
  let edge: Edge;
  before(async () => {
    h = await startHurd("local");
    edge = new Edge(h.kernel);
    await edge.listen("127.0.0.1:0");
  });
  after(async () => {
    await edge.close();
    await h.close();
  });

  it("is not loaded while nobody asks", () => {
    assert.equal(require.cache[reflectionMain], undefined);
  });

  for (const version of ["v1", "v1alpha"] as const) {
    it(`lists the Mach and trace services (grpc.reflection.${version})`, async () => {
      const c = reflectionClient(version, `127.0.0.1:${edge.port}`);
      try {
        const names = await listServices(c);
        assert.ok(names.includes("hurd.mach.v1.Mach"), names.join(", "));
        assert.ok(names.includes("hurd.trace.v1.Trace"), names.join(", "));
      } finally {
        c.close();
      }
    });
  }
});

// Server reflection lists every service the gateway serves, with full
// descriptors (each file with the files it imports), so that a client
// with no proto files (grpcurl, Postman) finds a Hurd server's methods
// and calls them: here a client made from nothing but what reflection
// answered calls Process/Getpids through the gateway.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type * as Protobuf from "protobufjs";
import { INTERFACES } from "@hurdmesh/mach/registry";
import { gatewayWorld, md, type GatewayWorld } from "./kit.js";

const require = createRequire(import.meta.url);
const protoDir = join(dirname(require.resolve("@grpc/reflection")), "../proto");
const protobuf = require("protobufjs") as typeof Protobuf;
const descriptor = require("protobufjs/ext/descriptor") as { FileDescriptorProto: Protobuf.Type; FileDescriptorSet: Protobuf.Type };

interface ReflectionResponse {
  listServicesResponse?: { service: Array<{ name: string }> };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}
type Reflection = grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> };

function reflectionClient(address: string): Reflection {
  const def = protoLoader.loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [protoDir], keepCase: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => Reflection } } } };
  return new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
}

/** One request on a reflection stream, its one answer. */
function ask(c: Reflection, req: object): Promise<ReflectionResponse> {
  return new Promise((resolve, reject) => {
    const s = c.ServerReflectionInfo();
    s.on("data", (r: ReflectionResponse) => {
      resolve(r);
      s.end();
    });
    s.on("error", reject);
    s.write(req);
  });
}

interface FileProto {
  name: string;
  dependency: string[];
}

/**
 * The file that declares `symbol` and every file it imports, fetched as
 * grpcurl fetches them: what comes with the file, then each import still
 * missing by its name.
 */
async function filesFor(c: Reflection, symbol: string): Promise<Map<string, { proto: FileProto; bytes: Buffer }>> {
  const got = new Map<string, { proto: FileProto; bytes: Buffer }>();
  const take = (r: ReflectionResponse, what: string) => {
    assert.ok(r.fileDescriptorResponse, `${what}: ${JSON.stringify(r.errorResponse)}`);
    for (const bytes of r.fileDescriptorResponse.fileDescriptorProto) {
      const proto = descriptor.FileDescriptorProto.decode(bytes) as unknown as FileProto;
      got.set(proto.name, { proto, bytes });
    }
  };
  take(await ask(c, { fileContainingSymbol: symbol }), symbol);
  for (let missing = [...got.values()].flatMap((f) => f.proto.dependency ?? []).filter((d) => !got.has(d)); missing.length > 0; missing = [...got.values()].flatMap((f) => f.proto.dependency ?? []).filter((d) => !got.has(d)))
    take(await ask(c, { fileByFilename: missing[0] }), missing[0]!);
  return got;
}

describe("reflection at the edge lists the Hurd's servers with full descriptors", () => {
  let w: GatewayWorld;
  let c: Reflection;
  before(async () => {
    w = await gatewayWorld("local");
    c = reflectionClient(w.address);
  });
  after(async () => {
    c.close();
    await w.close();
  });

  it("lists every gateway service beside Mach and Trace", async () => {
    const r = await ask(c, { listServices: "*" });
    const names = (r.listServicesResponse?.service ?? []).map((s) => s.name).sort();
    for (const s of [...INTERFACES.map((d) => d.fullName), "hurd.mach.v1.Mach", "hurd.trace.v1.Trace"]) assert.ok(names.includes(s), `${s} in ${names.join(", ")}`);
  });

  for (const def of INTERFACES) {
    it(`${def.fullName}: its file under its own name, with its imports, each to be had by name, down to descriptor.proto`, async () => {
      const files = await filesFor(c, def.fullName);
      const dir = def.fullName.split(".").slice(0, -1).join("/");
      const own = [...files.keys()].find((n) => n.startsWith(`${dir}/`) && n.endsWith(".proto"));
      assert.ok(own, [...files.keys()].join(", "));
      assert.ok(files.get(own)!.proto.dependency.includes("hurd/mig/v1/mig.proto"), `${own} imports mig.proto`);
      assert.ok(files.has("hurd/mig/v1/mig.proto") && files.has("google/protobuf/descriptor.proto"), [...files.keys()].join(", "));
    });
  }

  it("a client built from reflection alone calls Process/Getpids through the gateway", async () => {
    const files = await filesFor(c, "hurd.process.v1.Process.Getpids");
    const set = descriptor.FileDescriptorSet.fromObject({ file: [...files.values()].map((f) => descriptor.FileDescriptorProto.decode(f.bytes)) });
    const root = (protobuf.Root as unknown as { fromDescriptor(s: unknown): Protobuf.Root }).fromDescriptor(set);
    const m = root.lookupService("hurd.process.v1.Process").methods["Getpids"]!;
    const req = root.lookupType(m.requestType);
    const rep = root.lookupType(m.responseType);
    const client = new grpc.Client(w.address, grpc.credentials.createInsecure());
    try {
      const out = await new Promise<Record<string, unknown>>((resolve, reject) =>
        client.makeUnaryRequest(
          "/hurd.process.v1.Process/Getpids",
          (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish()),
          (b: Buffer) => rep.toObject(rep.decode(b)),
          {},
          md(w.console),
          { deadline: Date.now() + 10_000 },
          (e, v) => (e ? reject(e) : resolve(v!)),
        ),
      );
      assert.equal(out.pid, 1);
    } finally {
      client.close();
    }
  });
});

// grpc-js service definitions and clients made from ts-proto's generic
// definitions, the same ones the runtime binds to port messages. The
// generated code carries no grpc-js objects of its own: were it to, every
// stub (and so every server and the runtime on the in-process bus) would
// load grpc-js, which only the edge and its clients use.
import * as grpc from "@grpc/grpc-js";
import type { MethodDef, ServiceDef } from "../msgid.js";

const buffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * The grpc-js service definition of `def`: paths /<fullName>/<Method>,
 * messages through the generated codecs (what ts-proto's grpc-js output
 * made, keyed the same way).
 */
export function grpcServiceOf<D extends ServiceDef>(def: D): GrpcService<D> {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [key, m] of Object.entries(def.methods) as Array<[string, MethodDef]>) {
    out[key] = {
      path: `/${def.fullName}/${m.name}`,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: (v: unknown) => buffer(m.requestType.encode(v).finish()),
      requestDeserialize: (b: Buffer) => m.requestType.decode(b),
      responseSerialize: (v: unknown) => buffer(m.responseType.encode(v).finish()),
      responseDeserialize: (b: Buffer) => m.responseType.decode(b),
    };
  }
  return out as GrpcService<D>;
}

type Methods<D extends ServiceDef> = D["methods"];
type ReqOf<M> = M extends { requestType: { decode(b: Uint8Array): infer R } } ? R : never;
type RepOf<M> = M extends { responseType: { decode(b: Uint8Array): infer R } } ? R : never;

/** A service definition for grpc-js, its methods under the generic definition's keys. */
export type GrpcService<D extends ServiceDef> = grpc.ServiceDefinition & { [K in keyof Methods<D>]: grpc.MethodDefinition<ReqOf<Methods<D>[K]>, RepOf<Methods<D>[K]>> };

/** A grpc-js client of `D`: unary methods take a callback, server streams answer a readable stream. */
export type GrpcClient<D extends ServiceDef> = grpc.Client & {
  [K in keyof Methods<D>]: Methods<D>[K] extends { requestStream: false; responseStream: true }
    ? (req: ReqOf<Methods<D>[K]>, md?: grpc.Metadata, o?: grpc.CallOptions) => grpc.ClientReadableStream<RepOf<Methods<D>[K]>>
    : Methods<D>[K] extends { requestStream: false; responseStream: false }
      ? (req: ReqOf<Methods<D>[K]>, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, rep: RepOf<Methods<D>[K]>) => void) => grpc.ClientUnaryCall
      : never;
};

/** A client constructor for `def`, as ts-proto's generated XClient was. */
export function grpcClientOf<D extends ServiceDef>(def: D): new (address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) => GrpcClient<D> {
  return grpc.makeGenericClientConstructor(grpcServiceOf(def), def.name) as unknown as new (
    address: string,
    credentials: grpc.ChannelCredentials,
    options?: Partial<grpc.ClientOptions>,
  ) => GrpcClient<D>;
}

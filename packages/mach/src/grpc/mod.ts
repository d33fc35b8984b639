// The runtime at the kernel's gRPC edge (@hurdmesh/mach/edge): the bus over
// gRPC for programs outside the bus, the one errno -> gRPC status mapping,
// and grpc-js services and clients made from the generated definitions.
// Only whoever imports this path loads grpc-js.
export { EdgeBus } from "./edge-bus.js";
export { edgeChannelCredentials, edgeServerCredentials, hostOf, isLoopback, type EdgeTls } from "./tls.js";
export { CertFiles, checkCertPair, edgeTlsFromFiles, type CertFilesOptions } from "./cert-reload.js";
export { CertWatch, certReloadInterval, issuedBy, type CertWatchOptions, type WatchedPair } from "../cert-watch.js";
export { grpcStatusOf } from "./status.js";
export { grpcServiceOf, grpcClientOf, type GrpcService, type GrpcClient } from "./service.js";

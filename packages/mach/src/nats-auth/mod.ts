// NATS authorization and TLS for a hurdmesh fabric (issue 15): nkeys, JWTs
// signed natively, who may use which subject, nats-server's configuration,
// revocation, and a private CA. The kernel mints and revokes; `hurd up` and
// the deployments make the operator, accounts, configuration and certificates.
export { NKey, type NKeyKind } from "./nkeys.js";
export {
  encodeOperator,
  encodeAccount,
  encodeUser,
  nowSeconds,
  type SubjectPermissions,
  type OperatorOptions,
  type AccountOptions,
  type AccountLimits,
  type UserOptions,
} from "./jwt.js";
export { natsRoles, permissionsFor, accountUpdateSubject, TASK_MAX_SUBS, LAUNCH_ANSWER_MS, type NatsRoles, type TaskRoleOptions } from "./roles.js";
export { natsServerConfig, type ServerClusterOptions, type ServerConfigOptions, type ServerTlsFiles } from "./server-config.js";
export {
  mintUser,
  credsFile,
  parseCreds,
  userAuthenticator,
  natsConnectOptions,
  natsClientTls,
  type UserCredentials,
  type MintedUser,
  type ClientTls,
} from "./creds.js";
export { AccountRevocations, pushAccountJwt, MAX_REVOCATIONS, MAX_UPDATE_GAP_MS, MIN_UPDATE_GAP_MS, UPDATE_TIMEOUT_MS, type UpdateRequester } from "./revocation.js";
export { makeCA, issueCert, CA_DAYS, CERT_DAYS, type CertPair, type CertificateAuthority, type IssueOptions } from "./tls.js";
export {
  makeFabricKeys,
  readFabricKeys,
  writeFabricKeys,
  fabricServerConfig,
  accountClaimsOf,
  startNatsServer,
  acceptsAnonymous,
  SERVER_READY_MS,
  type FabricKeys,
  type NatsServerProcess,
} from "./fabric.js";
// issuedBy: the check hurd nats-reload gives a renewal, without loading grpc-js (../grpc/mod.ts exports it too).
export { issuedBy } from "../cert-watch.js";
export { reloadOnRenewal, watchAndReload, servedCertificate, servesPair, RELOAD_ANSWER_MS, SERVED_CERT_TIMEOUT_MS, type ReloadTarget, type ServerReload, type ServerReloadOptions } from "./server-reload.js";

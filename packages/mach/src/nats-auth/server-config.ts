// nats-server's configuration for a hurdmesh fabric: operator mode, the
// accounts preloaded into a MEMORY resolver (Debian's nats-server 2.9 has no
// auth callout; the full resolver would need a directory and a push of every
// account), no anonymous user, optionally JetStream and TLS, and a cluster
// of several servers (routes between them).
import { Errno, HurdError } from "../errors.js";

export interface ServerTlsFiles {
  certFile: string;
  keyFile: string;
  /** The CA that signed client certificates; with `verify`, the server asks clients for one. */
  caFile?: string;
  /** Require a client certificate signed by caFile (mutual TLS) besides the user JWT. */
  verify?: boolean;
}

export interface ServerConfigOptions {
  /** The operator's JWT (encodeOperator). */
  operatorJwt: string;
  /** Every account the server knows, public key -> account JWT; the system account's among them. */
  accounts: Readonly<Record<string, string>>;
  /** The system account's public key: its users may push account updates (revocations). */
  systemAccount?: string;
  host?: string;
  port?: number;
  /** JetStream's store directory; absent: no JetStream. */
  jetstreamDir?: string;
  /** TLS on the client port: every client must then speak TLS. */
  tls?: ServerTlsFiles;
  /** Largest message, bytes (nats-server's default is 1 MiB). */
  maxPayload?: number;
  /**
   * An environment variable whose value names the server (`server_name:
   * $VAR`, which nats-server substitutes when it reads the file): one text
   * for every pod of a StatefulSet, each named after its pod. A JetStream
   * cluster needs every server named, each differently.
   */
  serverNameEnv?: string;
  /** Routes to the cluster's other servers. */
  cluster?: ServerClusterOptions;
  /**
   * JetStream's fsync: "always" syncs every write before it is acknowledged.
   * nats-server 2.10 takes it; Debian bookworm's 2.9.10 refuses the field
   * (unknown field), so it is written only when asked.
   */
  syncInterval?: "always";
}

/** nats.conf strings: JSON's escaping is what the config parser reads in double quotes. */
const q = (s: string) => JSON.stringify(s);

/** A cluster's routes: how this server listens for its peers and finds them. */
export interface ServerClusterOptions {
  name: string;
  host?: string;
  port: number;
  /** Every peer's route URL (nats-route://host:port), this server's own among them: nats-server ignores a route to itself, so every peer takes the same text. */
  routes: readonly string[];
  /** The user and password a route presents and every peer requires; the routes' URLs carry them (nats-route://user:password@host:port). */
  user: string;
  password: string;
  /** TLS between peers, each verifying the other's certificate against caFile. */
  tls?: ServerTlsFiles & { caFile: string };
}

/** The text of a nats-server configuration file (`nats-server -c FILE`). */
export function natsServerConfig(o: ServerConfigOptions): string {
  const lines: string[] = [];
  if (o.serverNameEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.serverNameEnv)) throw new HurdError(Errno.EINVAL, `not an environment variable's name: ${q(o.serverNameEnv)}`);
    lines.push(`server_name: $${o.serverNameEnv}`);
  }
  lines.push(`host: ${q(o.host ?? "127.0.0.1")}`, `port: ${o.port ?? 4222}`);
  if (o.maxPayload) lines.push(`max_payload: ${o.maxPayload}`);
  lines.push(`operator: ${q(o.operatorJwt)}`);
  if (o.systemAccount) lines.push(`system_account: ${q(o.systemAccount)}`);
  lines.push("resolver: MEMORY", "resolver_preload: {");
  for (const [pub, jwt] of Object.entries(o.accounts)) lines.push(`  ${pub}: ${q(jwt)}`);
  lines.push("}");
  if (o.jetstreamDir) lines.push(`jetstream: { store_dir: ${q(o.jetstreamDir)}${o.syncInterval ? `, sync_interval: ${o.syncInterval}` : ""} }`);
  if (o.tls) {
    const t = o.tls;
    lines.push("tls: {", `  cert_file: ${q(t.certFile)}`, `  key_file: ${q(t.keyFile)}`);
    if (t.caFile) lines.push(`  ca_file: ${q(t.caFile)}`);
    if (t.verify) lines.push("  verify: true");
    lines.push("  timeout: 2", "}");
  }
  if (o.cluster) {
    const c = o.cluster;
    lines.push("cluster: {", `  name: ${q(c.name)}`, `  host: ${q(c.host ?? "0.0.0.0")}`, `  port: ${c.port}`);
    lines.push("  authorization: {", `    user: ${q(c.user)}`, `    password: ${q(c.password)}`, "    timeout: 2", "  }");
    if (c.tls) {
      // verify: a peer must show a certificate from the CA, as well as the route's password.
      lines.push("  tls: {", `    cert_file: ${q(c.tls.certFile)}`, `    key_file: ${q(c.tls.keyFile)}`, `    ca_file: ${q(c.tls.caFile)}`, "    verify: true", "    timeout: 2", "  }");
    }
    lines.push("  routes: [", ...c.routes.map((r) => `    ${q(r)}`), "  ]", "}");
  }
  return lines.join("\n") + "\n";
}

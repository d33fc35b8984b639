// nats-server's configuration for a hurdmesh fabric: operator mode, the
// accounts preloaded into a MEMORY resolver (Debian's nats-server 2.9 has no
// auth callout; the full resolver would need a directory and a push of every
// account), no anonymous user, optionally JetStream and TLS.

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
}

/** nats.conf strings: JSON's escaping is what the config parser reads in double quotes. */
const q = (s: string) => JSON.stringify(s);

/** The text of a nats-server configuration file (`nats-server -c FILE`). */
export function natsServerConfig(o: ServerConfigOptions): string {
  const lines = [`host: ${q(o.host ?? "127.0.0.1")}`, `port: ${o.port ?? 4222}`];
  if (o.maxPayload) lines.push(`max_payload: ${o.maxPayload}`);
  lines.push(`operator: ${q(o.operatorJwt)}`);
  if (o.systemAccount) lines.push(`system_account: ${q(o.systemAccount)}`);
  lines.push("resolver: MEMORY", "resolver_preload: {");
  for (const [pub, jwt] of Object.entries(o.accounts)) lines.push(`  ${pub}: ${q(jwt)}`);
  lines.push("}");
  if (o.jetstreamDir) lines.push(`jetstream: { store_dir: ${q(o.jetstreamDir)} }`);
  if (o.tls) {
    const t = o.tls;
    lines.push("tls: {", `  cert_file: ${q(t.certFile)}`, `  key_file: ${q(t.keyFile)}`);
    if (t.caFile) lines.push(`  ca_file: ${q(t.caFile)}`);
    if (t.verify) lines.push("  verify: true");
    lines.push("  timeout: 2", "}");
  }
  return lines.join("\n") + "\n";
}

// A private CA and the certificates it issues, made in process for `hurd up`
// when none are given: NATS's and the gRPC edge's server certificates, and
// client certificates where a server verifies its clients. @peculiar/x509
// builds the X.509 on Node's webcrypto (so `npm ci` suffices: no openssl
// CLI); keys are ECDSA P-256, which nats-server (Go) and grpc-js (OpenSSL)
// both take and which is made in well under a millisecond.
//
// @peculiar/x509 needs a Reflect metadata polyfill (its tsyringe registry),
// a global: it is loaded on the first certificate made, so a process that
// never makes one (a kernel given its certificates) never loads either.
import { randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type * as X509 from "@peculiar/x509";
import { Errno, HurdError } from "../errors.js";

type Keys = { publicKey: webcrypto.CryptoKey; privateKey: webcrypto.CryptoKey };

let lib: Promise<typeof X509> | null = null;
function x509lib(): Promise<typeof X509> {
  lib ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return lib;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** Validity of a CA made here: it signs a hurd's certificates for as long as the hurd's keys are kept. */
export const CA_DAYS = 3650;
/** Validity of a certificate issued here. */
export const CERT_DAYS = 825;

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface CertPair {
  certPem: string;
  keyPem: string;
}

/** A CA that can issue certificates: its certificate is what clients trust (ca_file, the session file's CA). */
export type CertificateAuthority = CertPair;

export interface IssueOptions {
  /** DNS names the certificate is valid for ("localhost", "nats", "nats.hurd.svc"). */
  dns?: readonly string[];
  /** IP addresses it is valid for ("127.0.0.1", "::1"). */
  ip?: readonly string[];
  /** Subject common name (default: the first name or address). */
  commonName?: string;
  days?: number;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

const serial = () => {
  const b = randomBytes(16);
  // Positive, as RFC 5280 wants a serial number.
  b[0] &= 0x7f;
  return b.toString("hex");
};

const cnSafe = (s: string) => s.replace(/[,+="\\<>;#]/g, "_");

async function newKeys(): Promise<Keys> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as Keys;
}

/** A new private CA. */
export async function makeCA(o: { name?: string; days?: number } = {}): Promise<CertificateAuthority> {
  const x509 = await x509lib();
  const keys = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${cnSafe(o.name ?? "hurdmesh CA")}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (o.days ?? CA_DAYS) * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: pemKey(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)) };
}

/**
 * A certificate signed by `ca`, for servers and clients alike (both
 * extended key usages: the same pair may serve NATS and dial it), valid for
 * the names and addresses given. EINVAL without any, or for a bad address.
 */
export async function issueCert(ca: CertificateAuthority, o: IssueOptions): Promise<CertPair> {
  const dns = o.dns ?? [];
  const ip = o.ip ?? [];
  if (!dns.length && !ip.length) throw new HurdError(Errno.EINVAL, "a certificate names at least one DNS name or IP address");
  for (const a of ip) if (!isIP(a)) throw new HurdError(Errno.EINVAL, `${JSON.stringify(a)} is not an IP address`);
  const x509 = await x509lib();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey("pkcs8", Buffer.from(ca.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64"), ALG, false, ["sign"]);
  const keys = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${cnSafe(o.commonName ?? dns[0] ?? ip[0])}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (o.days ?? CERT_DAYS) * DAY_MS),
    signingKey: caKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([...dns.map((value) => ({ type: "dns" as const, value })), ...ip.map((value) => ({ type: "ip" as const, value }))]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: pemKey(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)) };
}

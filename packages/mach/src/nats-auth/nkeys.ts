// NATS nkeys (operator, account, user) held as node:crypto Ed25519 keys.
//
// An nkey seed is a 32-byte Ed25519 seed, base32-encoded with a role prefix
// and a CRC; a public key is the Ed25519 public key encoded the same way.
// @nats-io/nkeys does that encoding, but its key pairs do every Ed25519
// operation in pure JavaScript (tweetnacl): deriving a public key costs ~25
// ms and a signature ~30 ms on these machines, where node:crypto takes
// ~0.05 ms and ~0.08 ms. The kernel makes a user key and signs a JWT for
// every task it creates over NATS, so the keys here are native KeyObjects
// and nkeys only encodes and decodes them (nkeys.test.ts checks both agree).
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { Prefix } from "@nats-io/nkeys";
import { Codec } from "@nats-io/nkeys/lib/codec.js";
import { Errno, HurdError } from "../errors.js";

/** The nkey roles hurdmesh uses: the operator signs accounts, an account signs its users. */
export type NKeyKind = "operator" | "account" | "user";

const PREFIX: Record<NKeyKind, Prefix> = { operator: Prefix.Operator, account: Prefix.Account, user: Prefix.User };
const KIND = new Map<number, NKeyKind>([
  [Prefix.Operator, "operator"],
  [Prefix.Account, "account"],
  [Prefix.User, "user"],
]);

/** PKCS#8 DER of an Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

const te = new TextEncoder();
const td = new TextDecoder();

function encodePublic(kind: NKeyKind, raw: Uint8Array): string {
  return td.decode(Codec.encode(PREFIX[kind], raw));
}

/** An nkey pair: its encoded public key and seed, and the native key that signs. */
export class NKey {
  private constructor(
    readonly kind: NKeyKind,
    /** "O…", "A…" or "U…": what JWTs name as issuer and subject. */
    readonly publicKey: string,
    /** "SO…", "SA…" or "SU…": the secret, as .creds files and nats.js authenticators take it. */
    readonly seed: string,
    private readonly key: KeyObject,
  ) {}

  /** A fresh random key. */
  static create(kind: NKeyKind): NKey {
    const { privateKey } = generateKeyPairSync("ed25519");
    // JWK is the cheapest export that yields both raw halves (d: seed, x: public).
    const jwk = privateKey.export({ format: "jwk" });
    const seed = Buffer.from(jwk.d!, "base64url");
    return new NKey(kind, encodePublic(kind, Buffer.from(jwk.x!, "base64url")), td.decode(Codec.encodeSeed(PREFIX[kind], seed)), privateKey);
  }

  /** The key of 32 seed bytes drawn elsewhere (a kernel whose random bytes are in its log: a standby makes the same key). */
  static fromRaw(kind: NKeyKind, raw: Uint8Array): NKey {
    if (raw.length !== 32) throw new HurdError(Errno.EINVAL, `an nkey seed is 32 bytes, not ${raw.length}`);
    return NKey.fromSeed(td.decode(Codec.encodeSeed(PREFIX[kind], raw)), kind);
  }

  /** The key of an encoded seed; `kind`, when given, is checked. EINVAL for a malformed seed or another role's. */
  static fromSeed(seed: string, kind?: NKeyKind): NKey {
    let raw: Uint8Array;
    let prefix: number;
    try {
      ({ buf: raw, prefix } = Codec.decodeSeed(te.encode(seed.trim())));
    } catch (e) {
      throw new HurdError(Errno.EINVAL, "not an nkey seed", { cause: e });
    }
    const k = KIND.get(prefix);
    if (!k) throw new HurdError(Errno.EINVAL, "an nkey seed of a role hurdmesh does not use");
    if (kind && k !== kind) throw new HurdError(Errno.EINVAL, `an nkey seed of an ${k}, not of an ${kind}`);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: "der", type: "pkcs8" });
    const x = key.export({ format: "jwk" }).x!;
    return new NKey(k, encodePublic(k, Buffer.from(x, "base64url")), seed.trim(), key);
  }

  /** An Ed25519 signature of `data` (64 bytes). */
  sign(data: Uint8Array): Buffer {
    return sign(null, data, this.key);
  }
}

import { createPrivateKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from "node:crypto";

type KeyGenArgs =
  | ["rsa", { modulusLength: number; publicExponent?: number }]
  | ["ec", { namedCurve: string }]
  | ["ed25519"];

/**
 * A fresh private key from OpenSSL, as a KeyObject that no key-generation job owns.
 *
 * Node 20 can deadlock when a KeyObject returned by generateKeyPairSync is exported (e.g. to
 * JWK): the export holds the key's mutex while allocating, a garbage collection then destroys
 * the finished generation job, and the job's destructor takes the same mutex (seen here with
 * RSA, under load). Encoding inside the job and re-importing the DER gives a key whose data is
 * not shared with any job, so later exports are safe.
 */
export function generatePrivateKey(...args: KeyGenArgs): KeyObject {
  const [type, opts] = args;
  const pke = { type: "pkcs8", format: "der" } as const;
  const pub = { type: "spki", format: "der" } as const;
  // The overloads of generateKeyPairSync want literal types; one call per family keeps them.
  let der: Buffer;
  switch (type) {
    case "rsa":
      der = generateKeyPairSync("rsa", { modulusLength: opts!.modulusLength, publicExponent: opts!.publicExponent, privateKeyEncoding: pke, publicKeyEncoding: pub }).privateKey;
      break;
    case "ec":
      der = generateKeyPairSync("ec", { namedCurve: opts!.namedCurve, privateKeyEncoding: pke, publicKeyEncoding: pub }).privateKey;
      break;
    case "ed25519":
      der = generateKeyPairSync("ed25519", { privateKeyEncoding: pke, publicKeyEncoding: pub }).privateKey;
      break;
  }
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

/** generateKeyPairSync with JWK encodings, which Node takes (keyObject.export's formats) and @types/node does not list. */
const generateJwkPair = generateKeyPairSync as unknown as (
  type: "x25519",
  options: { privateKeyEncoding: { format: "jwk" }; publicKeyEncoding: { format: "jwk" } },
) => { privateKey: JsonWebKey };

/** An X25519 key pair's JWK members (RFC 8037), base64url. */
export interface X25519Jwk {
  readonly d: string;
  readonly x: string;
}

/**
 * A fresh X25519 key pair as JWK members, encoded inside the generation job as
 * generatePrivateKey's DER is (so no KeyObject of the job's is ever exported): the key object
 * made from them needs neither an ASN.1 decode nor an export, about 0.7 ms less than
 * generatePrivateKey's round trip for the first key pair of a process (one per connection).
 */
export function generateX25519Jwk(): X25519Jwk {
  const jwk = { format: "jwk" } as const;
  const { d, x } = generateJwkPair("x25519", { privateKeyEncoding: jwk, publicKeyEncoding: jwk }).privateKey;
  return { d: d ?? "", x: x ?? "" };
}

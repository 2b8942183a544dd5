import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { constant_time_memcmp, dropbear_exit } from "@dropbear-ts/dbutil";

import { genrandom } from "./dbrandom.js";
import { generatePrivateKey } from "./keygen.js";

// The X25519 / Ed25519 surface Dropbear takes from TweetNaCl, done by OpenSSL instead. OpenSSL
// only takes keys as ASN.1, so raw 32-byte values are wrapped in fixed DER prefixes
// (RFC 8410): the encodings differ only in the algorithm OID and the key bytes at the end.

/** Length of an X25519 scalar, point or shared secret. @dropbear kex.h CURVE25519_LEN */
export const CURVE25519_LEN = 32;

const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function rawKey(prefix: Buffer, raw: Uint8Array, what: string): Buffer {
  if (raw.length < CURVE25519_LEN) {
    dropbear_exit(`Bad ${what}`);
  }
  return Buffer.concat([prefix, raw.subarray(0, CURVE25519_LEN)]);
}

function x25519Private(n: Uint8Array): KeyObject {
  return createPrivateKey({
    key: rawKey(X25519_PKCS8_PREFIX, n, "curve25519"),
    format: "der",
    type: "pkcs8",
  });
}

function x25519Public(p: Uint8Array): KeyObject {
  return createPublicKey({ key: rawKey(X25519_SPKI_PREFIX, p, "curve25519"), format: "der", type: "spki" });
}

/** Decode a JWK's base64url member of a key node:crypto generated (always present). */
function jwkBytes(value: string | undefined): Buffer {
  return Buffer.from(value ?? "", "base64url");
}

/**
 * q = X25519(n, p) (RFC 7748 §5): n is clamped by OpenSSL as the function requires. OpenSSL
 * refuses to return an all-zero result (a low-order p); q is then zero-filled, so the caller's
 * all-zero check rejects it exactly as it would Dropbear's output.
 * @dropbear curve25519.c dropbear_curve25519_scalarmult
 */
export function dropbear_curve25519_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void {
  let out: Buffer;
  try {
    out = diffieHellman({ privateKey: x25519Private(n), publicKey: x25519Public(p) });
  } catch {
    q.fill(0, 0, CURVE25519_LEN);
    return;
  }
  q.set(out);
}

/** An ephemeral X25519 key pair as raw 32-byte strings. */
export interface Curve25519Keypair {
  readonly priv: Buffer;
  readonly pub: Buffer;
}

/**
 * A fresh X25519 key pair from OpenSSL (what kex-x25519.c's gen_kexcurve25519_param makes with
 * genrandom and a base-point multiply).
 */
export function curve25519Keypair(): Curve25519Keypair {
  const privateKey = generatePrivateKey("x25519");
  const jwk = privateKey.export({ format: "jwk" });
  return { priv: jwkBytes(jwk.d), pub: jwkBytes(jwk.x) };
}

const ZEROES = Buffer.alloc(CURVE25519_LEN);

/**
 * The X25519 shared secret of our private scalar and the peer's public value. A peer value of
 * the wrong length, or one giving the all-zero secret (RFC 8731 §3 requires that check), ends
 * the session with Dropbear's "Bad curve25519" (the checks of kexcurve25519_derive).
 */
export function curve25519SharedSecret(priv: Uint8Array, pub_them: Uint8Array): Buffer {
  if (pub_them.length !== CURVE25519_LEN) {
    dropbear_exit("Bad curve25519");
  }
  const out = Buffer.alloc(CURVE25519_LEN);
  dropbear_curve25519_scalarmult(out, priv, pub_them);
  if (constant_time_memcmp(ZEROES, out, CURVE25519_LEN) === 0) {
    dropbear_exit("Bad curve25519");
  }
  return out;
}

function ed25519Private(sk: Uint8Array): KeyObject {
  return createPrivateKey({
    key: rawKey(ED25519_PKCS8_PREFIX, sk, "ed25519 key"),
    format: "der",
    type: "pkcs8",
  });
}

/**
 * Make an Ed25519 key: sk gets a random 32-byte seed, pk the public key derived from it.
 * @dropbear curve25519.c dropbear_ed25519_make_key
 */
export function dropbear_ed25519_make_key(pk: Uint8Array, sk: Uint8Array): void {
  genrandom(sk, CURVE25519_LEN);
  const jwk = createPublicKey(ed25519Private(sk)).export({ format: "jwk" });
  pk.set(jwkBytes(jwk.x));
}

/**
 * Sign m[0..mlen) with the seed sk into s (64 bytes) and return the signature length (C
 * returns it through `slen`). pk is accepted for the C signature's sake; OpenSSL derives it.
 * @dropbear curve25519.c dropbear_ed25519_sign
 */
export function dropbear_ed25519_sign(
  m: Uint8Array,
  mlen: number,
  s: Uint8Array,
  sk: Uint8Array,
  _pk: Uint8Array,
): number {
  const sig = sign(null, m.subarray(0, mlen), ed25519Private(sk));
  s.set(sig);
  return sig.length;
}

/**
 * Check the first 64 bytes of s as a signature of m[0..mlen) by pk: 0 if valid, -1 if not
 * (including a short signature or a public key that is not a curve point).
 * @dropbear curve25519.c dropbear_ed25519_verify
 */
export function dropbear_ed25519_verify(
  m: Uint8Array,
  mlen: number,
  s: Uint8Array,
  slen: number,
  pk: Uint8Array,
): number {
  if (slen < 64 || s.length < 64 || pk.length < CURVE25519_LEN) {
    return -1;
  }
  try {
    const key = createPublicKey({
      key: rawKey(ED25519_SPKI_PREFIX, pk, "ed25519 key"),
      format: "der",
      type: "spki",
    });
    return verify(null, m.subarray(0, mlen), key, s.subarray(0, 64)) ? 0 : -1;
  } catch {
    return -1;
  }
}

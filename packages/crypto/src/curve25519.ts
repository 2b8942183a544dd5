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
import { generateX25519Jwk } from "./keygen.js";

// The X25519 / Ed25519 surface Dropbear takes from TweetNaCl, done by OpenSSL instead. Raw
// 32-byte keys go to node:crypto as JWK (RFC 8037), which Node hands to OpenSSL's raw-key
// functions: about ten times cheaper than its ASN.1 decoders for the DER forms (RFC 8410, fixed
// prefixes before the key bytes), ~50 µs against ~480 for a private key and ~15 against ~120 for
// a public one, the first call in a process twice that, several per connection. A private key
// as JWK needs its public half too; where that is not at hand (an X25519 scalar alone) or does
// not belong to it (Node 24 refuses such a pair where Node 20 ignores the public half), the DER
// form is used.

/** Length of an X25519 scalar, point or shared secret. @dropbear kex.h CURVE25519_LEN */
export const CURVE25519_LEN = 32;

const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** The first 32 bytes of raw, a key's; shorter input is `what`'s fatal error. */
function key32(raw: Uint8Array, what: string): Buffer {
  if (raw.length < CURVE25519_LEN) {
    dropbear_exit(`Bad ${what}`);
  }
  return Buffer.from(raw.buffer, raw.byteOffset, CURVE25519_LEN);
}

function rawKey(prefix: Buffer, raw: Uint8Array, what: string): Buffer {
  return Buffer.concat([prefix, key32(raw, what)]);
}

/** A key's 32 bytes in base64url, as a JWK member. */
function jwkMember(raw: Uint8Array, what: string): string {
  return key32(raw, what).toString("base64url");
}

/** A public X25519 or Ed25519 key from its 32 raw bytes. */
function okpPublic(crv: "X25519" | "Ed25519", raw: Uint8Array, what: string): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv, x: jwkMember(raw, what) }, format: "jwk" });
}

/** The key objects of the X25519 key pairs curve25519Keypair made, by their private bytes. */
const keypairObjects = new WeakMap<Uint8Array, KeyObject>();

/**
 * Our X25519 scalar as a key: at its first use the one its key pair was made as (then dropped,
 * so the secret is not kept past the key exchange that burns the bytes), else from the bytes.
 */
function x25519Private(n: Uint8Array): KeyObject {
  const made = keypairObjects.get(n);
  if (made !== undefined) {
    keypairObjects.delete(n);
    return made;
  }
  return createPrivateKey({
    key: rawKey(X25519_PKCS8_PREFIX, n, "curve25519"),
    format: "der",
    type: "pkcs8",
  });
}

function x25519Public(p: Uint8Array): KeyObject {
  return okpPublic("X25519", p, "curve25519");
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
  const { d, x } = generateX25519Jwk();
  const priv = jwkBytes(d);
  keypairObjects.set(priv, createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x }, format: "jwk" }));
  return { priv, pub: jwkBytes(x) };
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

/** An Ed25519 private key from its seed alone (OpenSSL derives the public half). */
function ed25519Private(sk: Uint8Array): KeyObject {
  return createPrivateKey({
    key: rawKey(ED25519_PKCS8_PREFIX, sk, "ed25519 key"),
    format: "der",
    type: "pkcs8",
  });
}

/** An Ed25519 public key from its 32 raw bytes. */
export function ed25519PublicKey(pk: Uint8Array): KeyObject {
  return okpPublic("Ed25519", pk, "ed25519 key");
}

/**
 * An Ed25519 private key from its seed and the public key stored beside it; a public key that
 * is not the seed's gives the seed's own (as from the seed alone).
 */
export function ed25519PrivateKey(sk: Uint8Array, pk: Uint8Array): KeyObject {
  const d = jwkMember(sk, "ed25519 key");
  try {
    return createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d, x: jwkMember(pk, "ed25519 key") }, format: "jwk" });
  } catch {
    return ed25519Private(sk);
  }
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
 * returns it through `slen`). pk is the public key stored with the seed, as C takes it.
 * `keyObject`: the caller's node:crypto key made from sk and pk (ed25519PrivateKey) and kept
 * with the key, so a key that signs again is not imported again.
 * @dropbear curve25519.c dropbear_ed25519_sign
 */
export function dropbear_ed25519_sign(
  m: Uint8Array,
  mlen: number,
  s: Uint8Array,
  sk: Uint8Array,
  pk: Uint8Array,
  keyObject: KeyObject = ed25519PrivateKey(sk, pk),
): number {
  const sig = sign(null, m.subarray(0, mlen), keyObject);
  s.set(sig);
  return sig.length;
}

/** The order L of Ed25519's base point, little-endian (RFC 8032 §5.1). */
const ED25519_L = Buffer.from("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", "hex");
/** The field prime p = 2^255 - 19, little-endian. */
const FIELD_PRIME = Buffer.from("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex");

/**
 * 0 if the signature's S (32 bytes, little-endian) is below L, else -1: RFC 8032 §5.1.7, so
 * that S + L is not a second valid signature. OpenSSL checks this too; kept so the rule does
 * not depend on its version. Verification only, so variable time is fine.
 * @dropbear curve25519.c s_lt_l
 */
function s_lt_l(s: Uint8Array): number {
  for (let i = 31; i >= 0; i--) {
    if (s[i] < ED25519_L[i]) {
      return 0;
    }
    if (s[i] > ED25519_L[i]) {
      return -1;
    }
  }
  return -1;
}

/**
 * 0 if a public key's y (its low 255 bits; the top bit is x's sign) is below p, else -1:
 * RFC 8032 §5.1.3. OpenSSL 3.0 reduces a y of p or more instead, so the non-canonical
 * encoding y + p of a key (possible for y < 19, such as the neutral point's y = 1) verified
 * where Dropbear 2026.94 refuses it. Verification only, so variable time is fine.
 * @dropbear curve25519.c y_lt_p
 */
function y_lt_p(pk: Uint8Array): number {
  for (let i = 31; i >= 0; i--) {
    const y = i === 31 ? pk[i] & 0x7f : pk[i];
    if (y < FIELD_PRIME[i]) {
      return 0;
    }
    if (y > FIELD_PRIME[i]) {
      return -1;
    }
  }
  return -1;
}

/**
 * Check the first 64 bytes of s as a signature of m[0..mlen) by pk: 0 if valid, -1 if not
 * (including a short signature, an S not below L, or a public key that is not a curve point
 * in its canonical encoding). `keyObject`: the caller's kept node:crypto key for pk
 * (ed25519PublicKey), as for dropbear_ed25519_sign.
 * @dropbear curve25519.c dropbear_ed25519_verify
 */
export function dropbear_ed25519_verify(
  m: Uint8Array,
  mlen: number,
  s: Uint8Array,
  slen: number,
  pk: Uint8Array,
  keyObject?: KeyObject,
): number {
  if (slen < 64 || s.length < 64 || pk.length < CURVE25519_LEN) {
    return -1;
  }
  if (s_lt_l(s.subarray(32, 64)) === -1 || y_lt_p(pk) === -1) {
    return -1;
  }
  try {
    return verify(null, m.subarray(0, mlen), keyObject ?? ed25519PublicKey(pk), s.subarray(0, 64)) ? 0 : -1;
  } catch {
    return -1;
  }
}

import { bytes_to_mp } from "@dropbear-ts/crypto";
import { constants, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { LOG_WARNING, TRACE, dropbear_exit, dropbear_log } from "@dropbear-ts/dbutil";
import {
  type buffer,
  buf_getint,
  buf_getmpint,
  buf_getptr,
  buf_incrpos,
  buf_putbytes,
  buf_putint,
  buf_putmpint,
  buf_putstring,
} from "@dropbear-ts/buffer";
import { MIN_RSA_KEYLEN, SSH_SIGNKEY_RSA, SSH_SIGNKEY_RSA_LEN } from "@dropbear-ts/options";
import { bigintBitLength, bigintByteLength, bigintToBytes, bigintToJwk, jwkToBigint, mod, modInverse, usedBytes } from "./mp.js";
import {
  DROPBEAR_SIGNATURE_RSA_SHA1,
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNATURE_RSA_SHA512,
  type signature_type,
  signature_name_from_type,
} from "./signkey.js";

/**
 * An RSA key: public (n, e) and, for a private key, d, p, q. node:crypto key objects are
 * built from the numbers on first use and cached. @dropbear rsa.h dropbear_RSA_Key
 */
export class dropbear_RSA_Key {
  n = 0n;
  e = 0n;
  d: bigint | null = null;
  p: bigint | null = null;
  q: bigint | null = null;
  pubKeyObject: KeyObject | null = null;
  privKeyObject: KeyObject | null = null;
}

/** @dropbear rsa.h dropbear_rsa_key */
export type dropbear_rsa_key = dropbear_RSA_Key;

/**
 * Read "ssh-rsa", e, n (the caller has checked the name). null, with Dropbear's warning, for
 * a modulus under MIN_RSA_KEYLEN bits or an exponent over 64 bits. @dropbear rsa.c buf_get_rsa_pub_key
 */
export function buf_get_rsa_pub_key(buf: buffer): dropbear_rsa_key | null {
  TRACE("enter buf_get_rsa_pub_key");
  buf_incrpos(buf, 4 + SSH_SIGNKEY_RSA_LEN);
  const e = buf_getmpint(buf);
  if (e === null) {
    return null;
  }
  const n = buf_getmpint(buf);
  if (n === null) {
    return null;
  }
  if (bigintBitLength(n) < MIN_RSA_KEYLEN) {
    dropbear_log(LOG_WARNING, "RSA key too short");
    return null;
  }
  // OpenSSL's limit, so no key in use is refused.
  if (bigintBitLength(e) > 64) {
    dropbear_log(LOG_WARNING, "RSA key bad e");
    return null;
  }
  const key = new dropbear_RSA_Key();
  key.e = e;
  key.n = n;
  return key;
}

/**
 * The public part then d, p, q. A file that ends after d predates Dropbear 0.33 and exits.
 * @dropbear rsa.c buf_get_rsa_priv_key
 */
export function buf_get_rsa_priv_key(buf: buffer): dropbear_rsa_key | null {
  TRACE("enter buf_get_rsa_priv_key");
  const key = buf_get_rsa_pub_key(buf);
  if (key === null) {
    return null;
  }
  key.d = buf_getmpint(buf);
  if (key.d === null) {
    return null;
  }
  if (buf.pos === buf.len) {
    dropbear_exit("RSA key format is ancient");
  }
  key.p = buf_getmpint(buf);
  if (key.p === null) {
    return null;
  }
  key.q = buf_getmpint(buf);
  if (key.q === null) {
    return null;
  }
  return key;
}

/** Forget the key's numbers and cached key objects. @dropbear rsa.c rsa_key_free */
export function rsa_key_free(key: dropbear_rsa_key | null): void {
  if (key === null) {
    return;
  }
  key.d = key.p = key.q = null;
  key.pubKeyObject = key.privKeyObject = null;
}

/** string "ssh-rsa", mpint e, mpint n. @dropbear rsa.c buf_put_rsa_pub_key */
export function buf_put_rsa_pub_key(buf: buffer, key: dropbear_rsa_key): void {
  buf_putstring(buf, SSH_SIGNKEY_RSA, SSH_SIGNKEY_RSA_LEN);
  buf_putmpint(buf, key.e);
  buf_putmpint(buf, key.n);
}

/** The public part, then d, p, q (p and q only when present). @dropbear rsa.c buf_put_rsa_priv_key */
export function buf_put_rsa_priv_key(buf: buffer, key: dropbear_rsa_key): void {
  buf_put_rsa_pub_key(buf, key);
  if (key.d === null) {
    dropbear_exit("Not a private RSA key");
  }
  buf_putmpint(buf, key.d);
  if (key.p !== null) {
    buf_putmpint(buf, key.p);
  }
  if (key.q !== null) {
    buf_putmpint(buf, key.q);
  }
}

/** node:crypto's digest for an RSA signature type, or null for a type RSA cannot make. */
function rsaHash(sigtype: signature_type): string | null {
  switch (sigtype) {
    case DROPBEAR_SIGNATURE_RSA_SHA256:
      return "sha256";
    case DROPBEAR_SIGNATURE_RSA_SHA512:
      return "sha512";
    case DROPBEAR_SIGNATURE_RSA_SHA1:
      // Reached only when DROPBEAR_RSA_SHA1 made the name known.
      return "sha1";
    default:
      return null;
  }
}

/** The public key as a node:crypto key (cached). Throws if node:crypto refuses the numbers. */
export function rsaPublicKeyObject(key: dropbear_rsa_key): KeyObject {
  if (key.pubKeyObject === null) {
    key.pubKeyObject = createPublicKey({
      key: { kty: "RSA", n: bigintToJwk(key.n), e: bigintToJwk(key.e) },
      format: "jwk",
    });
  }
  return key.pubKeyObject;
}

/**
 * The private key as a node:crypto key (cached), with the CRT values node:crypto wants
 * derived from d, p, q. Throws if they are missing or inconsistent.
 */
export function rsaPrivateKeyObject(key: dropbear_rsa_key): KeyObject {
  const { d, p, q } = key;
  if (d === null || p === null || q === null || p < 2n || q < 2n) {
    throw new Error("not a private RSA key");
  }
  // OpenSSL signs through p and q (CRT) in Montgomery form, which needs an odd modulus: with
  // a damaged prime made even node:crypto took the key and then failed every signature, and
  // the session ended with "RSA error". Such keys are refused here, where a loader skips them,
  // also when node:crypto read the key itself (PKCS#8). Odd primes that are not n's factors
  // (a damaged odd prime, a multi-prime key's first two) still sign: OpenSSL checks its CRT
  // result and falls back to d. Dropbear, whose exponent blinding uses p and q, would only
  // make signatures the peer refuses with either.
  if ((p & 1n) === 0n || (q & 1n) === 0n || (key.n & 1n) === 0n) {
    throw new Error("bad RSA primes");
  }
  if (key.privKeyObject === null) {
    const qi = modInverse(q, p);
    if (qi === null) {
      throw new Error("bad RSA primes");
    }
    key.privKeyObject = createPrivateKey({
      key: {
        kty: "RSA",
        n: bigintToJwk(key.n),
        e: bigintToJwk(key.e),
        d: bigintToJwk(d),
        p: bigintToJwk(p),
        q: bigintToJwk(q),
        dp: bigintToJwk(mod(d, p - 1n)),
        dq: bigintToJwk(mod(d, q - 1n)),
        qi: bigintToJwk(qi),
      },
      format: "jwk",
    });
  }
  return key.privKeyObject;
}

/** A dropbear_rsa_key from a node:crypto RSA key, private or public; null for another kind. */
export function rsaKeyFromKeyObject(ko: KeyObject): dropbear_rsa_key | null {
  if (ko.asymmetricKeyType !== "rsa") {
    return null;
  }
  const jwk = ko.export({ format: "jwk" });
  const n = jwkToBigint(jwk.n);
  const e = jwkToBigint(jwk.e);
  if (n === null || e === null) {
    return null;
  }
  const key = new dropbear_RSA_Key();
  key.n = n;
  key.e = e;
  key.d = jwkToBigint(jwk.d);
  key.p = jwkToBigint(jwk.p);
  key.q = jwkToBigint(jwk.q);
  if (ko.type === "private") {
    key.privKeyObject = ko;
  } else {
    key.pubKeyObject = ko;
  }
  return key;
}

/**
 * Check a PKCS#1 v1.5 signature: uint32 length (at most the modulus size), then the
 * signature, taken as the rest of `buf` like Dropbear does. False if it does not verify.
 * @dropbear rsa.c buf_rsa_verify
 */
export function buf_rsa_verify(buf: buffer, key: dropbear_rsa_key, sigtype: signature_type, data_buf: buffer): boolean {
  TRACE("enter buf_rsa_verify");
  const nsize = bigintByteLength(key.n);
  const slen = buf_getint(buf);
  // Dropbear wants exactly the modulus size. PuTTY up to 0.78 drops a signature's leading zero
  // bytes (one signature in 256), so, as OpenSSH does, a shorter one is taken as zero-padded;
  // but, as OpenSSH, only a length that is the signature's own: no bytes missing or left over.
  if (slen > nsize || slen !== buf.len - buf.pos) {
    TRACE("bad size");
    return false;
  }
  const s = bytes_to_mp(buf_getptr(buf, slen));
  if (s >= key.n) {
    TRACE("s > n-1");
    return false;
  }
  const hash = rsaHash(sigtype);
  if (hash === null) {
    dropbear_exit("Non-matching signing type");
  }
  const sig = bigintToBytes(s, nsize);
  if (sig === null) {
    return false;
  }
  try {
    return verify(hash, usedBytes(data_buf), { key: rsaPublicKeyObject(key), padding: constants.RSA_PKCS1_PADDING }, sig);
  } catch {
    // node:crypto refused the key itself (an exponent OpenSSL will not use, say).
    return false;
  }
}

/**
 * Sign with PKCS#1 v1.5 and write string name, string signature (padded to the modulus
 * size). OpenSSL blinds the private operation as Dropbear does. @dropbear rsa.c buf_put_rsa_sign
 */
export function buf_put_rsa_sign(buf: buffer, key: dropbear_rsa_key, sigtype: signature_type, data_buf: buffer): void {
  TRACE("enter buf_put_rsa_sign");
  const hash = rsaHash(sigtype);
  if (hash === null) {
    dropbear_exit("Non-matching signing type");
  }
  let sig: Buffer;
  try {
    sig = sign(hash, usedBytes(data_buf), { key: rsaPrivateKeyObject(key), padding: constants.RSA_PKCS1_PADDING });
  } catch {
    dropbear_exit("RSA error");
  }
  const nsize = bigintByteLength(key.n);
  if (sig.length > nsize) {
    dropbear_exit("RSA error");
  }
  buf_putstring(buf, signature_name_from_type(sigtype));
  buf_putint(buf, nsize);
  buf_putbytes(buf, Buffer.alloc(nsize - sig.length));
  buf_putbytes(buf, sig);
  TRACE("leave buf_put_rsa_sign");
}

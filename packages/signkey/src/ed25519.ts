import type { KeyObject } from "node:crypto";
import { dropbear_ed25519_sign, dropbear_ed25519_verify, ed25519PrivateKey, ed25519PublicKey } from "@dropbear-ts/crypto";
import { TRACE, m_burn } from "@dropbear-ts/dbutil";
import { type buffer, buf_getint, buf_getptr, buf_getstring, buf_incrpos, buf_putbytes, buf_putint, buf_putstring } from "@dropbear-ts/buffer";
import { SSH_SIGNKEY_ED25519, SSH_SIGNKEY_ED25519_LEN } from "@dropbear-ts/options";
import { usedBytes } from "./mp.js";
import { signkey_type_from_name } from "./signkey.js";

/** Bytes in an Ed25519 seed or public key. @dropbear ed25519.h CURVE25519_LEN */
export const CURVE25519_LEN = 32;

/**
 * An Ed25519 key: the 32-byte secret seed (zeros for a public key) and the public key.
 * @dropbear ed25519.h dropbear_ED25519_Key
 */
export class dropbear_ED25519_Key {
  priv: Buffer = Buffer.alloc(CURVE25519_LEN);
  pub: Buffer = Buffer.alloc(CURVE25519_LEN);
  pubKeyObject: KeyObject | null = null;
  privKeyObject: KeyObject | null = null;
}

/** @dropbear ed25519.h dropbear_ed25519_key */
export type dropbear_ed25519_key = dropbear_ED25519_Key;

/**
 * Read the type name (must be `expect_keytype`: ssh-ed25519 or its sk- twin) and the 32-byte
 * public key. null on a mismatch or a wrong length. @dropbear ed25519.c buf_get_ed25519_pub_key
 */
export function buf_get_ed25519_pub_key(buf: buffer, expect_keytype: number): dropbear_ed25519_key | null {
  TRACE("enter buf_get_ed25519_pub_key");
  if (signkey_type_from_name(buf_getstring(buf)) !== expect_keytype) {
    TRACE("leave buf_get_ed25519_pub_key: mismatch key type");
    return null;
  }
  const len = buf_getint(buf);
  if (len !== CURVE25519_LEN || buf.len - buf.pos < len) {
    TRACE("leave buf_get_ed25519_pub_key: failure");
    return null;
  }
  const key = new dropbear_ED25519_Key();
  buf_getptr(buf, CURVE25519_LEN).copy(key.pub);
  buf_incrpos(buf, CURVE25519_LEN);
  return key;
}

/** Read "ssh-ed25519" then a 64-byte string: seed || public key. @dropbear ed25519.c buf_get_ed25519_priv_key */
export function buf_get_ed25519_priv_key(buf: buffer): dropbear_ed25519_key | null {
  TRACE("enter buf_get_ed25519_priv_key");
  buf_incrpos(buf, 4 + SSH_SIGNKEY_ED25519_LEN);
  const len = buf_getint(buf);
  if (len !== CURVE25519_LEN * 2 || buf.len - buf.pos < len) {
    TRACE("leave buf_get_ed25519_priv_key: failure");
    return null;
  }
  const key = new dropbear_ED25519_Key();
  buf_getptr(buf, CURVE25519_LEN).copy(key.priv);
  buf_incrpos(buf, CURVE25519_LEN);
  buf_getptr(buf, CURVE25519_LEN).copy(key.pub);
  buf_incrpos(buf, CURVE25519_LEN);
  return key;
}

/** Zero the seed and drop the cached key objects. @dropbear ed25519.c ed25519_key_free */
export function ed25519_key_free(key: dropbear_ed25519_key | null): void {
  if (key === null) {
    return;
  }
  m_burn(key.priv);
  key.pubKeyObject = key.privKeyObject = null;
}

/** string "ssh-ed25519", string pub. @dropbear ed25519.c buf_put_ed25519_pub_key */
export function buf_put_ed25519_pub_key(buf: buffer, key: dropbear_ed25519_key): void {
  buf_putstring(buf, SSH_SIGNKEY_ED25519, SSH_SIGNKEY_ED25519_LEN);
  buf_putstring(buf, key.pub, CURVE25519_LEN);
}

/** string "ssh-ed25519", then seed || pub as one 64-byte string. @dropbear ed25519.c buf_put_ed25519_priv_key */
export function buf_put_ed25519_priv_key(buf: buffer, key: dropbear_ed25519_key): void {
  buf_putstring(buf, SSH_SIGNKEY_ED25519, SSH_SIGNKEY_ED25519_LEN);
  buf_putint(buf, CURVE25519_LEN * 2);
  buf_putbytes(buf, key.priv, CURVE25519_LEN);
  buf_putbytes(buf, key.pub, CURVE25519_LEN);
}

/** The public key as a node:crypto key (cached). */
export function ed25519PublicKeyObject(key: dropbear_ed25519_key): KeyObject {
  if (key.pubKeyObject === null) {
    key.pubKeyObject = ed25519PublicKey(key.pub);
  }
  return key.pubKeyObject;
}

/** The private key as a node:crypto key (cached), from the seed and the public key beside it. */
export function ed25519PrivateKeyObject(key: dropbear_ed25519_key): KeyObject {
  if (key.privKeyObject === null) {
    key.privKeyObject = ed25519PrivateKey(key.priv, key.pub);
  }
  return key.privKeyObject;
}

/** A dropbear_ed25519_key from a node:crypto Ed25519 key, private or public; null for another kind. */
export function ed25519KeyFromKeyObject(ko: KeyObject): dropbear_ed25519_key | null {
  if (ko.asymmetricKeyType !== "ed25519") {
    return null;
  }
  const jwk = ko.export({ format: "jwk" });
  if (jwk.x === undefined) {
    return null;
  }
  const key = new dropbear_ED25519_Key();
  const pub = Buffer.from(jwk.x, "base64url");
  if (pub.length !== CURVE25519_LEN) {
    return null;
  }
  pub.copy(key.pub);
  if (jwk.d !== undefined) {
    const seed = Buffer.from(jwk.d, "base64url");
    if (seed.length !== CURVE25519_LEN) {
      return null;
    }
    seed.copy(key.priv);
    key.privKeyObject = ko;
  } else {
    key.pubKeyObject = ko;
  }
  return key;
}

/** Sign the used bytes of `data_buf`: string "ssh-ed25519", string sig (64 bytes). @dropbear ed25519.c buf_put_ed25519_sign */
export function buf_put_ed25519_sign(buf: buffer, key: dropbear_ed25519_key, data_buf: buffer): void {
  TRACE("enter buf_put_ed25519_sign");
  const data = usedBytes(data_buf);
  const s = Buffer.alloc(64);
  const slen = dropbear_ed25519_sign(data, data.length, s, key.priv, key.pub, ed25519PrivateKeyObject(key));
  buf_putstring(buf, SSH_SIGNKEY_ED25519, SSH_SIGNKEY_ED25519_LEN);
  buf_putstring(buf, s, slen);
}

/** Check a 64-byte signature over `data` (the callers have checked its length); false if it does not verify. */
export function ed25519VerifyRaw(key: dropbear_ed25519_key, data: Uint8Array, s: Uint8Array): boolean {
  return dropbear_ed25519_verify(data, data.length, s, s.length, key.pub, ed25519PublicKeyObject(key)) === 0;
}

/** Check string sig (64 bytes) over the used bytes of `data_buf`. @dropbear ed25519.c buf_ed25519_verify */
export function buf_ed25519_verify(buf: buffer, key: dropbear_ed25519_key, data_buf: buffer): boolean {
  TRACE("enter buf_ed25519_verify");
  const slen = buf_getint(buf);
  if (slen !== 64 || buf.len - buf.pos < slen) {
    TRACE("leave buf_ed25519_verify: bad size");
    return false;
  }
  return ed25519VerifyRaw(key, usedBytes(data_buf), buf_getptr(buf, slen));
}

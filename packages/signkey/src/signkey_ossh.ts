// The private key bodies inside OpenSSH's openssh-key-v1 files, for dropbearconvert.
import { LOG_ERR, dropbear_exit, dropbear_log } from "@dropbear-ts/dbutil";
import {
  type buffer,
  buf_eatstring,
  buf_getint,
  buf_getmpint,
  buf_getptr,
  buf_incrpos,
  buf_putbytes,
  buf_putint,
  buf_putmpint,
  buf_putstring,
} from "@dropbear-ts/buffer";
import { SSH_SIGNKEY_ED25519, SSH_SIGNKEY_ED25519_LEN, SSH_SIGNKEY_RSA, SSH_SIGNKEY_RSA_LEN } from "@dropbear-ts/options";
import { buf_get_ecdsa_priv_key, buf_put_ecdsa_priv_key, ecdsa_signkey_type } from "./ecdsa.js";
import { CURVE25519_LEN, buf_get_ed25519_pub_key, ed25519_key_free } from "./ed25519.js";
import { modInverse } from "./mp.js";
import { dropbear_RSA_Key, rsa_key_free } from "./rsa.js";
import { DROPBEAR_SIGNKEY_ED25519, type sign_key, signkeyEccKey, signkey_key_ptr } from "./signkey.js";

/**
 * OpenSSH's RSA body: string "ssh-rsa", mpint n, e, d, iqmp (q^-1 mod p), p, q.
 * @dropbear signkey_ossh.c buf_put_rsa_priv_ossh
 */
export function buf_put_rsa_priv_ossh(buf: buffer, akey: sign_key): void {
  const key = akey.rsakey;
  if (key === null || key.d === null || key.p === null || key.q === null) {
    dropbear_exit("RSA key is not set");
  }
  const iqmp = modInverse(key.q, key.p);
  if (iqmp === null) {
    dropbear_exit("Bignum error for iqmp\n");
  }
  buf_putstring(buf, SSH_SIGNKEY_RSA, SSH_SIGNKEY_RSA_LEN);
  buf_putmpint(buf, key.n);
  buf_putmpint(buf, key.e);
  buf_putmpint(buf, key.d);
  buf_putmpint(buf, iqmp);
  buf_putmpint(buf, key.p);
  buf_putmpint(buf, key.q);
}

/** Read OpenSSH's RSA body into `akey.rsakey` (iqmp is read and dropped). @dropbear signkey_ossh.c buf_get_rsa_priv_ossh */
export function buf_get_rsa_priv_ossh(buf: buffer, akey: sign_key): boolean {
  rsa_key_free(akey.rsakey);
  const key = new dropbear_RSA_Key();
  akey.rsakey = key;
  buf_eatstring(buf);
  const n = buf_getmpint(buf);
  const e = n === null ? null : buf_getmpint(buf);
  const d = e === null ? null : buf_getmpint(buf);
  const iqmp = d === null ? null : buf_getmpint(buf);
  const p = iqmp === null ? null : buf_getmpint(buf);
  const q = p === null ? null : buf_getmpint(buf);
  if (n === null || e === null || d === null || p === null || q === null) {
    return false;
  }
  key.n = n;
  key.e = e;
  key.d = d;
  key.p = p;
  key.q = q;
  return true;
}

/**
 * OpenSSH's Ed25519 body: string "ssh-ed25519", string pub, string (seed || pub).
 * @dropbear signkey_ossh.c buf_put_ed25519_priv_ossh
 */
export function buf_put_ed25519_priv_ossh(buf: buffer, akey: sign_key): void {
  const key = akey.ed25519key;
  if (key === null) {
    dropbear_exit("ed25519 key is not set");
  }
  buf_putstring(buf, SSH_SIGNKEY_ED25519, SSH_SIGNKEY_ED25519_LEN);
  buf_putint(buf, CURVE25519_LEN);
  buf_putbytes(buf, key.pub, CURVE25519_LEN);
  buf_putint(buf, CURVE25519_LEN * 2);
  buf_putbytes(buf, key.priv, CURVE25519_LEN);
  buf_putbytes(buf, key.pub, CURVE25519_LEN);
}

/**
 * Read OpenSSH's Ed25519 body into `akey.ed25519key`; the public key repeated after the seed
 * must match the first. @dropbear signkey_ossh.c buf_get_ed25519_priv_ossh
 */
export function buf_get_ed25519_priv_ossh(buf: buffer, akey: sign_key): boolean {
  ed25519_key_free(akey.ed25519key);
  akey.ed25519key = null;
  const key = buf_get_ed25519_pub_key(buf, DROPBEAR_SIGNKEY_ED25519);
  if (key === null) {
    dropbear_log(LOG_ERR, "Error parsing ed25519 key, pubkey");
    return false;
  }
  akey.ed25519key = key;
  const len = buf_getint(buf);
  if (len !== 2 * CURVE25519_LEN) {
    dropbear_log(LOG_ERR, "Error parsing ed25519 key, bad length");
    return false;
  }
  buf_getptr(buf, CURVE25519_LEN).copy(key.priv);
  buf_incrpos(buf, CURVE25519_LEN);
  if (!buf_getptr(buf, CURVE25519_LEN).equals(key.pub)) {
    dropbear_log(LOG_ERR, "Error parsing ed25519 key, mismatch pubkey");
    return false;
  }
  return true;
}

/** OpenSSH's ECDSA body is Dropbear's private format. @dropbear signkey_ossh.c buf_put_ecdsa_priv_ossh */
export function buf_put_ecdsa_priv_ossh(buf: buffer, key: sign_key): void {
  const eck = signkeyEccKey(key, key.type);
  if (eck === null) {
    dropbear_exit("ecdsa key is not set");
  }
  buf_put_ecdsa_priv_key(buf, eck);
}

/** Read OpenSSH's ECDSA body into the member for `key.type`. @dropbear signkey_ossh.c buf_get_ecdsa_priv_ossh */
export function buf_get_ecdsa_priv_ossh(buf: buffer, key: sign_key): boolean {
  const member = signkey_key_ptr(key.type);
  if (member !== "ecckey256" && member !== "ecckey384" && member !== "ecckey521") {
    return false;
  }
  const eck = buf_get_ecdsa_priv_key(buf);
  // A body on another curve than the public part would land in the wrong member.
  if (eck === null || ecdsa_signkey_type(eck) !== key.type) {
    key[member] = null;
    return false;
  }
  key[member] = eck;
  return true;
}

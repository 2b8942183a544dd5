import { sign, verify } from "node:crypto";
import { generatePrivateKey, bytes_to_mp } from "@dropbear-ts/crypto";
import { TRACE, dropbear_exit } from "@dropbear-ts/dbutil";
import {
  type buffer,
  buf_getint,
  buf_getmpint,
  buf_getstring,
  buf_getstringbuf,
  buf_new,
  buf_putbufstring,
  buf_putmpint,
  buf_putstring,
} from "@dropbear-ts/buffer";
import {
  type dropbear_ecc_curve,
  type ecc_key,
  buf_get_ecc_raw_pubkey,
  buf_put_ecc_raw_pubkey_string,
  curve_for_dp,
  dropbear_ecc_curves,
  eccKeyFromKeyObject,
  eccPrivateKeyObject,
  eccPublicKeyObject,
  ecc_curve_nistp256,
  ecc_curve_nistp384,
  ecc_curve_nistp521,
} from "./ecc.js";
import { bigintToBytes, usedBytes } from "./mp.js";
import {
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_NONE,
  type signkey_type,
} from "./signkey.js";

/** Curve size dropbearkey picks for "ecdsa" without -s. @dropbear ecdsa.h ECDSA_DEFAULT_SIZE */
export const ECDSA_DEFAULT_SIZE = 256;

const SK_ECDSA_NAME = "sk-ecdsa-sha2-nistp256@openssh.com";

/** Whether a type is plain ECDSA (not the sk- one). @dropbear ecdsa.c signkey_is_ecdsa */
export function signkey_is_ecdsa(type: number): boolean {
  return type === DROPBEAR_SIGNKEY_ECDSA_NISTP256 || type === DROPBEAR_SIGNKEY_ECDSA_NISTP384 || type === DROPBEAR_SIGNKEY_ECDSA_NISTP521;
}

/** The key type for an EC key's curve. @dropbear ecdsa.c ecdsa_signkey_type */
export function ecdsa_signkey_type(key: ecc_key): signkey_type {
  if (key.dp === ecc_curve_nistp256.dp) {
    return DROPBEAR_SIGNKEY_ECDSA_NISTP256;
  }
  if (key.dp === ecc_curve_nistp384.dp) {
    return DROPBEAR_SIGNKEY_ECDSA_NISTP384;
  }
  if (key.dp === ecc_curve_nistp521.dp) {
    return DROPBEAR_SIGNKEY_ECDSA_NISTP521;
  }
  return DROPBEAR_SIGNKEY_NONE;
}

/** A new private key on the curve of `bit_size` bits (256, 384, 521); other sizes exit. @dropbear ecdsa.c gen_ecdsa_priv_key */
export function gen_ecdsa_priv_key(bit_size: number): ecc_key {
  const curve = dropbear_ecc_curves.find((c) => (c.name === "nistp521" ? 521 : c.ltc_size * 8) === bit_size);
  if (!curve) {
    dropbear_exit(`Key size ${bit_size} isn't valid. Try 256 384 521 `);
  }
  const privateKey = generatePrivateKey("ec", { namedCurve: curve.dp.name });
  const key = eccKeyFromKeyObject(privateKey);
  if (key === null) {
    dropbear_exit("ECC error");
  }
  return key;
}

/** What an ECDSA key's name puts before its curve's. */
const ECDSA_NAME_PREFIX = "ecdsa-sha2-";

/**
 * Read "ecdsa-sha2-<curve>" (or the sk- name), the curve name, and the point; null if the
 * names disagree, the curve is unknown or the point is bad. @dropbear ecdsa.c buf_get_ecdsa_pub_key
 */
export function buf_get_ecdsa_pub_key(buf: buffer): ecc_key | null {
  const key_ident = buf_getstring(buf).toString("latin1");
  const identifier = buf_getstring(buf).toString("latin1");
  if (key_ident === SK_ECDSA_NAME) {
    if (identifier !== "nistp256") {
      TRACE("mismatching identifiers");
      return null;
    }
  } else if (key_ident.length !== ECDSA_NAME_PREFIX.length + identifier.length || key_ident.slice(ECDSA_NAME_PREFIX.length) !== identifier) {
    // Only the part after the prefix is compared, as C does: a caller has already matched the
    // whole name, except for an OpenSSH file's private section, where any prefix passes.
    TRACE("mismatching identifiers");
    return null;
  }
  const curve = dropbear_ecc_curves.find((c) => c.name === identifier);
  if (!curve) {
    TRACE("couldn't match ecc curve");
    return null;
  }
  const q_buf = buf_getstringbuf(buf);
  return buf_get_ecc_raw_pubkey(q_buf, curve);
}

/** The public part then mpint k. @dropbear ecdsa.c buf_get_ecdsa_priv_key */
export function buf_get_ecdsa_priv_key(buf: buffer): ecc_key | null {
  TRACE("enter buf_get_ecdsa_priv_key");
  const key = buf_get_ecdsa_pub_key(buf);
  if (key === null) {
    return null;
  }
  key.k = buf_getmpint(buf);
  if (key.k === null) {
    return null;
  }
  return key;
}

/** string "ecdsa-sha2-<curve>", string curve, string point. @dropbear ecdsa.c buf_put_ecdsa_pub_key */
export function buf_put_ecdsa_pub_key(buf: buffer, key: ecc_key): void {
  const curve = curve_for_dp(key.dp);
  buf_putstring(buf, `ecdsa-sha2-${curve.name}`);
  buf_putstring(buf, curve.name);
  buf_put_ecc_raw_pubkey_string(buf, key);
}

/** The public part then mpint k. @dropbear ecdsa.c buf_put_ecdsa_priv_key */
export function buf_put_ecdsa_priv_key(buf: buffer, key: ecc_key): void {
  buf_put_ecdsa_pub_key(buf, key);
  if (key.k === null) {
    dropbear_exit("Not a private ECDSA key");
  }
  buf_putmpint(buf, key.k);
}

/**
 * Sign with the curve's hash and write string "ecdsa-sha2-<curve>", string (mpint r, mpint s)
 * as RFC 5656 §3.1.2 lays it out. @dropbear ecdsa.c buf_put_ecdsa_sign
 */
export function buf_put_ecdsa_sign(buf: buffer, key: ecc_key, data_buf: buffer): void {
  TRACE("buf_put_ecdsa_sign");
  const curve = curve_for_dp(key.dp);
  let sig: Buffer;
  try {
    sig = sign(curve.hash_desc, usedBytes(data_buf), { key: eccPrivateKeyObject(key), dsaEncoding: "ieee-p1363" });
  } catch {
    dropbear_exit("ECC error");
  }
  const half = sig.length >>> 1;
  buf_putstring(buf, `ecdsa-sha2-${curve.name}`);
  // Enough for P-521's two mpints.
  const sigbuf = buf_new(200);
  buf_putmpint(sigbuf, bytes_to_mp(sig.subarray(0, half)));
  buf_putmpint(sigbuf, bytes_to_mp(sig.subarray(half)));
  buf_putbufstring(buf, sigbuf);
}

/**
 * Read the signature string: uint32 length then mpints r and s, which must fill it exactly.
 * @dropbear ecdsa.c buf_get_ecdsa_verify_params
 */
function buf_get_ecdsa_verify_params(buf: buffer): { r: bigint; s: bigint } | null {
  const sig_len = buf_getint(buf);
  const sig_pos = buf.pos;
  const r = buf_getmpint(buf);
  if (r === null) {
    return null;
  }
  const s = buf_getmpint(buf);
  if (s === null) {
    return null;
  }
  if (buf.pos - sig_pos !== sig_len) {
    return null;
  }
  return { r, s };
}

/** Check r, s over the used bytes of `data_buf`; false if they do not verify. @dropbear ecdsa.c buf_ecdsa_verify */
export function buf_ecdsa_verify(buf: buffer, key: ecc_key, data_buf: buffer): boolean {
  TRACE("buf_ecdsa_verify");
  const curve: dropbear_ecc_curve = curve_for_dp(key.dp);
  const params = buf_get_ecdsa_verify_params(buf);
  if (params === null) {
    return false;
  }
  const { r, s } = params;
  const n = key.dp.order;
  if (r === 0n || s === 0n || r >= n || s >= n) {
    return false;
  }
  const size = key.dp.size;
  const rb = bigintToBytes(r, size);
  const sb = bigintToBytes(s, size);
  if (rb === null || sb === null) {
    return false;
  }
  try {
    return verify(curve.hash_desc, usedBytes(data_buf), { key: eccPublicKeyObject(key), dsaEncoding: "ieee-p1363" }, Buffer.concat([rb, sb]));
  } catch {
    return false;
  }
}

import { buf_putmpint, type buffer } from "@dropbear-ts/buffer";
import { dropbear_kex_mode, type kex_ecdh_param, type sshsession } from "@dropbear-ts/core";
import { generatePrivateKey } from "@dropbear-ts/crypto";
import { dropbear_exit } from "@dropbear-ts/dbutil";
import {
  buf_get_ecc_raw_pubkey,
  buf_put_ecc_raw_pubkey_string,
  buf_put_pub_key,
  dropbear_ecc_shared_secret,
  eccKeyFromKeyObject,
  type sign_key,
} from "@dropbear-ts/signkey";
import { finish_kexhashbuf, kexOfMode } from "./common-kex.js";

/** A fresh key on the negotiated curve. @dropbear kex-ecdh.c gen_kexecdh_param */
export function gen_kexecdh_param(ses: sshsession): kex_ecdh_param {
  const curve = kexOfMode(ses, dropbear_kex_mode.DROPBEAR_KEX_ECDH).details;
  const key = eccKeyFromKeyObject(generatePrivateKey("ec", { namedCurve: curve.dp.name }));
  if (key === null) {
    dropbear_exit("ECC error");
  }
  return { key };
}

/**
 * K from the peer's point (checked to be on the curve) and our key, then K_S, Q_C, Q_S, K into
 * the exchange hash (RFC 5656 §4). @dropbear kex-ecdh.c kexecdh_comb_key
 */
export function kexecdh_comb_key(ses: sshsession, param: kex_ecdh_param, pub_them: buffer, hostkey: sign_key): void {
  const newkeys = ses.newkeys!;
  const curve = kexOfMode(ses, dropbear_kex_mode.DROPBEAR_KEX_ECDH).details;
  const Q_them = buf_get_ecc_raw_pubkey(pub_them, curve);
  if (Q_them === null) {
    dropbear_exit("ECC error");
  }
  ses.dh_K = dropbear_ecc_shared_secret(Q_them, param.key);
  const Q_C = ses.isserver ? Q_them : param.key;
  const Q_S = ses.isserver ? param.key : Q_them;
  const h = ses.kexhashbuf!;
  buf_put_pub_key(h, hostkey, newkeys.algo_hostkey);
  buf_put_ecc_raw_pubkey_string(h, Q_C);
  buf_put_ecc_raw_pubkey_string(h, Q_S);
  buf_putmpint(h, ses.dh_K);
  finish_kexhashbuf(ses);
}

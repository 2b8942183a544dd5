import { buf_putmpint, buf_putstring, type buffer } from "@dropbear-ts/buffer";
import type { kex_curve25519_param, sshsession } from "@dropbear-ts/core";
import { bytes_to_mp, curve25519Keypair, curve25519SharedSecret, CURVE25519_LEN } from "@dropbear-ts/crypto";
import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";
import { buf_put_pub_key, type sign_key } from "@dropbear-ts/signkey";
import { finish_kexhashbuf } from "./common-kex.js";

/** A fresh X25519 key pair. @dropbear kex-x25519.c gen_kexcurve25519_param */
export function gen_kexcurve25519_param(): kex_curve25519_param {
  return curve25519Keypair();
}

/** Forget the private half. @dropbear kex-x25519.c free_kexcurve25519_param */
export function free_kexcurve25519_param(param: kex_curve25519_param): void {
  m_burn(param.priv);
}

/**
 * The X25519 shared secret with the peer's 32-byte value; an all-zero result (a low-order
 * point, RFC 7748 §6.1) exits. @dropbear kex-x25519.c kexcurve25519_derive
 */
export function kexcurve25519_derive(param: kex_curve25519_param, buf_pub_them: buffer): Buffer {
  if (buf_pub_them.len !== CURVE25519_LEN) {
    dropbear_exit("Bad curve25519");
  }
  return curve25519SharedSecret(param.priv, buf_pub_them.data.subarray(0, CURVE25519_LEN));
}

/** K as an mpint, and K_S, Q_C, Q_S, K into the exchange hash (RFC 8731). @dropbear kex-x25519.c kexcurve25519_comb_key */
export function kexcurve25519_comb_key(ses: sshsession, param: kex_curve25519_param, buf_pub_them: buffer, hostkey: sign_key): void {
  const out = kexcurve25519_derive(param, buf_pub_them);
  ses.dh_K = bytes_to_mp(out);
  m_burn(out);
  const them = buf_pub_them.data.subarray(0, CURVE25519_LEN);
  const Q_C = ses.isserver ? them : param.pub;
  const Q_S = ses.isserver ? param.pub : them;
  const h = ses.kexhashbuf!;
  buf_put_pub_key(h, hostkey, ses.newkeys!.algo_hostkey);
  buf_putstring(h, Q_C);
  buf_putstring(h, Q_S);
  buf_putmpint(h, ses.dh_K);
  finish_kexhashbuf(ses);
}

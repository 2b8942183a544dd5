import { buf_putmpint } from "@dropbear-ts/buffer";
import { dropbear_kex_mode, type kex_dh_param, type sshsession } from "@dropbear-ts/core";
import { dhGenerateKeypair, dhSharedSecret } from "@dropbear-ts/crypto";
import { TRACE } from "@dropbear-ts/dbutil";
import { buf_put_pub_key, type sign_key } from "@dropbear-ts/signkey";
import { finish_kexhashbuf, kexOfMode } from "./common-kex.js";

/** A fresh DH key pair in the negotiated MODP group. @dropbear kex-dh.c gen_kexdh_param */
export function gen_kexdh_param(ses: sshsession): kex_dh_param {
  TRACE("enter gen_kexdh_vals");
  return dhGenerateKeypair(kexOfMode(ses, dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH).dh_p_bytes);
}

/**
 * K = them^priv mod p (the peer's value checked to lie in [2, p-2]), then the rest of the
 * exchange hash: K_S, e, f, K. @dropbear kex-dh.c kexdh_comb_key
 */
export function kexdh_comb_key(ses: sshsession, param: kex_dh_param, dh_pub_them: bigint, hostkey: sign_key): void {
  const newkeys = ses.newkeys!;
  ses.dh_K = dhSharedSecret(kexOfMode(ses, dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH).dh_p_bytes, param, dh_pub_them);
  const dh_e = ses.isserver ? dh_pub_them : param.pub;
  const dh_f = ses.isserver ? param.pub : dh_pub_them;
  const h = ses.kexhashbuf!;
  buf_put_pub_key(h, hostkey, newkeys.algo_hostkey);
  buf_putmpint(h, dh_e);
  buf_putmpint(h, dh_f);
  buf_putmpint(h, ses.dh_K);
  finish_kexhashbuf(ses);
}

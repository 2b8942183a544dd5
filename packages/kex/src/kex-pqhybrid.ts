import { createHash } from "node:crypto";
import {
  buf_getptr,
  buf_getptrcopy,
  buf_incrpos,
  buf_new,
  buf_putbufstring,
  buf_putbytes,
  buf_putint,
  type buffer,
} from "@dropbear-ts/buffer";
import { dropbear_kex_mode, type kex_pqhybrid_param, type sshsession } from "@dropbear-ts/core";
import { CURVE25519_LEN, type dropbear_kem_desc } from "@dropbear-ts/crypto";
import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";
import { buf_put_pub_key, type sign_key } from "@dropbear-ts/signkey";
import { finish_kexhashbuf, kexOfMode } from "./common-kex.js";
import { free_kexcurve25519_param, gen_kexcurve25519_param, kexcurve25519_derive } from "./kex-x25519.js";

function kemOf(ses: sshsession): dropbear_kem_desc {
  return kexOfMode(ses, dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID).details;
}

/** The client makes a KEM key pair and an X25519 pair; the server only X25519. @dropbear kex-pqhybrid.c gen_kexpqhybrid_param */
export function gen_kexpqhybrid_param(ses: sshsession): kex_pqhybrid_param {
  const param: kex_pqhybrid_param = { curve25519: gen_kexcurve25519_param(), concat_public: null, kem_cli_secret: null };
  if (!ses.isserver) {
    const kem = kemOf(ses);
    const pk = Buffer.alloc(kem.public_len);
    const sk = Buffer.alloc(kem.secret_len);
    kem.kem_gen(pk, sk);
    param.concat_public = buf_new(kem.public_len + CURVE25519_LEN);
    buf_putbytes(param.concat_public, pk);
    buf_putbytes(param.concat_public, param.curve25519.pub);
    param.kem_cli_secret = sk;
  }
  return param;
}

/** @dropbear kex-pqhybrid.c free_kexpqhybrid_param */
export function free_kexpqhybrid_param(param: kex_pqhybrid_param): void {
  free_kexcurve25519_param(param.curve25519);
  if (param.kem_cli_secret !== null) {
    m_burn(param.kem_cli_secret);
    param.kem_cli_secret = null;
  }
}

/**
 * Combine the KEM and X25519 secrets: K = HASH(K_PQ ‖ K_CL), kept as an SSH string, then
 * K_S, Q_C, Q_S, K into the exchange hash. The server encapsulates to the client's KEM key
 * here and builds its reply. @dropbear kex-pqhybrid.c kexpqhybrid_comb_key
 */
export function kexpqhybrid_comb_key(ses: sshsession, param: kex_pqhybrid_param, buf_pub: buffer, hostkey: sign_key): void {
  const kem = kemOf(ses);
  const hash_desc = ses.newkeys!.algo_kex!.hash_desc;
  const remote_len = ses.isserver ? kem.public_len : kem.ciphertext_len;
  const remote_pub_kem = Buffer.from(buf_getptr(buf_pub, remote_len));
  buf_incrpos(buf_pub, remote_len);
  const pub_25519 = buf_getptrcopy(buf_pub, CURVE25519_LEN);
  buf_incrpos(buf_pub, CURVE25519_LEN);
  if (buf_pub.pos !== buf_pub.len) {
    dropbear_exit("Bad sntrup");
  }

  const k_out = Buffer.alloc(kem.output_len + CURVE25519_LEN);
  if (!ses.isserver) {
    kem.kem_dec(k_out.subarray(0, kem.output_len), remote_pub_kem, param.kem_cli_secret!);
    m_burn(param.kem_cli_secret!);
    param.kem_cli_secret = null;
  } else {
    const ct = Buffer.alloc(kem.ciphertext_len);
    kem.kem_enc(ct, k_out.subarray(0, kem.output_len), remote_pub_kem);
    param.concat_public = buf_new(kem.ciphertext_len + CURVE25519_LEN);
    buf_putbytes(param.concat_public, ct);
    buf_putbytes(param.concat_public, param.curve25519.pub);
  }
  const k_cl = kexcurve25519_derive(param.curve25519, pub_25519);
  k_cl.copy(k_out, kem.output_len);
  m_burn(k_cl);

  // K is hashed as a string (not an mpint) for the hybrids.
  const digest = createHash(hash_desc.name).update(k_out).digest();
  m_burn(k_out);
  const dh_K_bytes = buf_new(4 + hash_desc.hashsize);
  buf_putint(dh_K_bytes, hash_desc.hashsize);
  buf_putbytes(dh_K_bytes, digest);
  m_burn(digest);
  ses.dh_K_bytes = dh_K_bytes.data.subarray(0, dh_K_bytes.len);

  const Q_C = ses.isserver ? buf_pub : param.concat_public!;
  const Q_S = ses.isserver ? param.concat_public! : buf_pub;
  const h = ses.kexhashbuf!;
  buf_put_pub_key(h, hostkey, ses.newkeys!.algo_hostkey);
  buf_putbufstring(h, Q_C);
  buf_putbufstring(h, Q_S);
  buf_putbytes(h, ses.dh_K_bytes);
  finish_kexhashbuf(ses);
}

import { buf_put_algolist_all } from "@dropbear-ts/algo";
import {
  buf_getmpint,
  buf_getptr,
  buf_getstringbuf,
  buf_new,
  buf_putbufstring,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_putmpint,
  buf_putstring,
  buf_setpos,
  type buffer,
} from "@dropbear-ts/buffer";
import { dropbear_kex_mode, type AlgoTables, type SvrSession, type svr_runopts } from "@dropbear-ts/core";
import { CURVE25519_LEN } from "@dropbear-ts/crypto";
import { LOG_INFO, TRACE, dropbear_exit, dropbear_log, expand_homedir_path } from "@dropbear-ts/dbutil";
import {
  ECDSA_PRIV_FILENAME,
  ED25519_PRIV_FILENAME,
  MAX_PUBKEY_SIZE,
  RSA_PRIV_FILENAME,
  SSH_MSG_EXT_INFO,
  SSH_MSG_KEXDH_REPLY,
  SSH_MSG_NEWKEYS,
  SSH_SERVER_SIG_ALGS,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import {
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP384,
  DROPBEAR_SIGNKEY_ECDSA_NISTP521,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  buf_put_ecc_raw_pubkey_string,
  buf_put_pub_key,
  buf_put_sign,
  buf_verify,
  sign_key_fingerprint,
  signkey_type_from_signature,
  signkey_generate,
  signkey_key_ptr,
  type signature_type,
  type signkey_type,
} from "@dropbear-ts/signkey";
import { disable_sig_except, readhostkey } from "@dropbear-ts/runopts";
import { kexWarmUpSteps, send_msg_newkeys } from "./common-kex.js";
import { gen_kexdh_param, kexdh_comb_key } from "./kex-dh.js";
import { gen_kexecdh_param, kexecdh_comb_key } from "./kex-ecdh.js";
import { free_kexpqhybrid_param, gen_kexpqhybrid_param, kexpqhybrid_comb_key } from "./kex-pqhybrid.js";
import { free_kexcurve25519_param, gen_kexcurve25519_param, kexcurve25519_comb_key } from "./kex-x25519.js";

/**
 * The client's KEXDH_INIT: reply with our half and the signed exchange hash, then NEWKEYS
 * (and EXT_INFO after the first). @dropbear svr-kex.c recv_msg_kexdh_init
 */
export function recv_msg_kexdh_init(ses: SvrSession): void {
  TRACE("enter recv_msg_kexdh_init");
  if (!ses.kexstate.recvkexinit) {
    dropbear_exit("Premature kexdh_init message received");
  }
  const payload = ses.payload!;
  let dh_e = 0n;
  let q_c: buffer | null = null;
  if (ses.newkeys!.algo_kex!.mode === dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH) {
    const e = buf_getmpint(payload);
    if (e === null) {
      dropbear_exit("Bad kex value");
    }
    dh_e = e;
  } else {
    q_c = buf_getstringbuf(payload);
  }
  if (payload.pos !== payload.len) {
    dropbear_exit("Bad kex value");
  }
  // Read before send_msg_newkeys, which may hand newkeys over to ses.keys.
  const sigtype = ses.newkeys!.algo_signature;
  send_msg_kexdh_reply(ses, dh_e, q_c);
  send_msg_newkeys(ses);
  if (!ses.kexstate.donesecondkex && ses.allow_ext_info) {
    send_msg_ext_info(ses);
  }
  if (!ses.kexstate.donesecondkex) {
    // After EXT_INFO, which lists them all: a rekey offers only the host key type now in use.
    disable_sig_except(ses.algos, sigtype);
  }
  ses.requirenext = SSH_MSG_NEWKEYS;
  TRACE("leave recv_msg_kexdh_init");
}

/** With -R: load, or make and save, the host key of the negotiated type. @dropbear svr-kex.c svr_ensure_hostkey */
function svr_ensure_hostkey(ses: SvrSession): void {
  const svr_opts = ses.svr_ses.svr_opts;
  const type = ses.newkeys!.algo_hostkey as signkey_type;
  const member = signkey_key_ptr(type);
  if (member !== null && svr_opts.hostkey[member] !== null) {
    return;
  }
  let fn: string;
  switch (type) {
    case DROPBEAR_SIGNKEY_RSA:
      fn = RSA_PRIV_FILENAME;
      break;
    case DROPBEAR_SIGNKEY_ECDSA_NISTP256:
    case DROPBEAR_SIGNKEY_ECDSA_NISTP384:
    case DROPBEAR_SIGNKEY_ECDSA_NISTP521:
      fn = ECDSA_PRIV_FILENAME;
      break;
    case DROPBEAR_SIGNKEY_ED25519:
      fn = ED25519_PRIV_FILENAME;
      break;
    default:
      dropbear_exit(`Couldn't read or generate hostkey for type ${type}`);
  }
  const expand_fn = expand_homedir_path(fn);
  let ok = readhostkey(expand_fn, svr_opts.hostkey, type) !== null;
  if (!ok && signkey_generate(type, 0, expand_fn, true)) {
    // Read back what we made (or what another process raced us to make).
    ok = readhostkey(expand_fn, svr_opts.hostkey, type) !== null;
    if (ok) {
      const key_buf = buf_new(MAX_PUBKEY_SIZE);
      buf_put_pub_key(key_buf, svr_opts.hostkey, type);
      buf_setpos(key_buf, 4);
      const len = key_buf.len - key_buf.pos;
      dropbear_log(LOG_INFO, `Generated hostkey ${expand_fn}, fingerprint is ${sign_key_fingerprint(buf_getptr(key_buf, len), len)}`);
    }
  }
  if (!ok) {
    dropbear_exit(`Couldn't read or generate hostkey ${expand_fn}`);
  }
}

/**
 * Our half of the exchange, K, H, and the host key's signature over H, sent as KEXDH_REPLY
 * (RFC 4253 §8, RFC 5656 §4, RFC 8731). @dropbear svr-kex.c send_msg_kexdh_reply
 */
function send_msg_kexdh_reply(ses: SvrSession, dh_e: bigint, q_c: buffer | null): void {
  TRACE("enter send_msg_kexdh_reply");
  const svr_opts = ses.svr_ses.svr_opts;
  if (svr_opts.delay_hostkey) {
    svr_ensure_hostkey(ses);
  }
  const newkeys = ses.newkeys!;
  const wp = ses.writepayload;
  const hostkey = svr_opts.hostkey;
  buf_putbyte(wp, SSH_MSG_KEXDH_REPLY);
  buf_put_pub_key(wp, hostkey, newkeys.algo_hostkey);
  switch (newkeys.algo_kex!.mode) {
    case dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH: {
      const param = gen_kexdh_param(ses);
      kexdh_comb_key(ses, param, dh_e, hostkey);
      buf_putmpint(wp, param.pub);
      break;
    }
    case dropbear_kex_mode.DROPBEAR_KEX_ECDH: {
      const param = gen_kexecdh_param(ses);
      kexecdh_comb_key(ses, param, q_c!, hostkey);
      buf_put_ecc_raw_pubkey_string(wp, param.key);
      break;
    }
    case dropbear_kex_mode.DROPBEAR_KEX_CURVE25519: {
      const param = gen_kexcurve25519_param();
      kexcurve25519_comb_key(ses, param, q_c!, hostkey);
      buf_putstring(wp, param.pub.subarray(0, CURVE25519_LEN));
      free_kexcurve25519_param(param);
      break;
    }
    case dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID: {
      const param = gen_kexpqhybrid_param(ses);
      kexpqhybrid_comb_key(ses, param, q_c!, hostkey);
      buf_putbufstring(wp, param.concat_public!);
      free_kexpqhybrid_param(param);
      break;
    }
  }
  buf_put_sign(wp, hostkey, newkeys.algo_signature as signature_type, hashBuf(ses.hash!));
  encrypt_packet(ses);
  TRACE("leave send_msg_kexdh_reply");
}

/** H as a buffer positioned at 0, as buf_put_sign and buf_verify take it. */
export function hashBuf(hash: Buffer): buffer {
  const b = buf_new(hash.length);
  buf_putbytes(b, hash);
  buf_setpos(b, 0);
  return b;
}

/** Tell the client which signature algorithms we accept for user auth (RFC 8308). @dropbear svr-kex.c send_msg_ext_info */
function send_msg_ext_info(ses: SvrSession): void {
  TRACE("enter send_msg_ext_info");
  const wp = ses.writepayload;
  buf_putbyte(wp, SSH_MSG_EXT_INFO);
  buf_putint(wp, 1);
  buf_putstring(wp, SSH_SERVER_SIG_ALGS);
  buf_put_algolist_all(wp, ses.algos.sigalgs, true);
  encrypt_packet(ses);
  TRACE("leave send_msg_ext_info");
}

/**
 * The server's kexWarmUpSteps: those, then one step per host key the server may sign with,
 * signing a throwaway hash and checking the signature (node:crypto's key objects are made
 * then, and kept on the keys). For the spare connection process, before it has a connection.
 */
export function svrKexWarmUpSteps(svr_opts: svr_runopts, algos: AlgoTables): (() => void)[] {
  const steps = kexWarmUpSteps(algos);
  for (const a of algos.sigalgs) {
    const sigtype = a.val as signature_type;
    const member = signkey_key_ptr(signkey_type_from_signature(sigtype));
    // With -R a key may not be there yet.
    if (!a.usable || member === null || svr_opts.hostkey[member] === null) {
      continue;
    }
    steps.push(() => {
      const hash = hashBuf(Buffer.alloc(64));
      const sig = buf_new(MAX_PUBKEY_SIZE);
      buf_put_sign(sig, svr_opts.hostkey, sigtype, hash);
      buf_setpos(sig, 0);
      buf_setpos(hash, 0);
      buf_verify(sig, svr_opts.hostkey, sigtype, hash);
    });
  }
  return steps;
}

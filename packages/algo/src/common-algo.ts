import {
  buf_getptr,
  buf_getstring,
  buf_incrwritepos,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_setpos,
  type buffer,
} from "@dropbear-ts/buffer";
import {
  AlgoTables,
  DROPBEAR_COMP_NONE,
  DROPBEAR_COMP_ZLIB,
  DROPBEAR_COMP_ZLIB_DELAY,
  MAC_MODE_ETM,
  dropbear_kex_mode,
} from "@dropbear-ts/core";
import type { algo_type, dropbear_kex, mac_mode } from "@dropbear-ts/core";
import type { dropbear_cipher, dropbear_cipher_mode, dropbear_hash } from "@dropbear-ts/crypto";
import {
  dh_p_14,
  dh_p_16,
  DH_P_14_LEN,
  DH_P_16_LEN,
  dropbear_aes128,
  dropbear_aes256,
  dropbear_chachapoly,
  dropbear_mode_chachapoly,
  dropbear_mode_ctr,
  dropbear_mode_gcm,
  dropbear_sha2_256,
  dropbear_sha2_512,
  mlkem768_desc,
  sha256_desc,
  sha384_desc,
  sha512_desc,
  pqKemsUsable,
  sntrup761_desc,
} from "@dropbear-ts/crypto";
import { LOG_WARNING, TRACE, dropbear_exit, dropbear_log } from "@dropbear-ts/dbutil";
import {
  DROPBEAR_RSA_SHA1,
  MAX_PROPOSED_ALGO,
  SSH_EXT_INFO_C,
  SSH_STRICT_KEX_C,
  SSH_STRICT_KEX_S,
} from "@dropbear-ts/options";
import {
  DROPBEAR_SIGNATURE_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_ECDSA_NISTP384,
  DROPBEAR_SIGNATURE_ECDSA_NISTP521,
  DROPBEAR_SIGNATURE_ED25519,
  DROPBEAR_SIGNATURE_RSA_SHA1,
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNATURE_RSA_SHA512,
  DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256,
  DROPBEAR_SIGNATURE_SK_ED25519,
  ecc_curve_nistp256,
  ecc_curve_nistp384,
  ecc_curve_nistp521,
} from "@dropbear-ts/signkey";

// The tables follow Dropbear 2026.94's order and defaults. Our additions, each listed in
// docs/deviations.md: the AES-GCM ciphers (Dropbear builds them off; they sit where Dropbear
// puts them when built), hmac-sha2-512 and the -etm@openssh.com MACs, rsa-sha2-512 signatures,
// and diffie-hellman-group16-sha512 (Dropbear builds it off).

/** Name of the kexguess2 extension. @dropbear algo.h KEXGUESS2_ALGO_NAME */
export const KEXGUESS2_ALGO_NAME = "kexguess2@matt.ucc.asn.au";

function entry<D>(name: string, val: number, data: D): algo_type<D, null>;
function entry<D, M>(name: string, val: number, data: D, mode: M): algo_type<D, M>;
function entry<D, M>(name: string, val: number, data: D, mode: M | null = null): algo_type<D, M | null> {
  return { name, val, data, usable: true, mode };
}

/** Ciphers in preference order. @dropbear common-algo.c sshciphers */
export const sshciphers: readonly algo_type<dropbear_cipher, dropbear_cipher_mode>[] = [
  entry("chacha20-poly1305@openssh.com", 0, dropbear_chachapoly, dropbear_mode_chachapoly),
  entry("aes256-gcm@openssh.com", 0, dropbear_aes256, dropbear_mode_gcm),
  entry("aes128-gcm@openssh.com", 0, dropbear_aes128, dropbear_mode_gcm),
  entry("aes256-ctr", 0, dropbear_aes256, dropbear_mode_ctr),
  entry("aes128-ctr", 0, dropbear_aes128, dropbear_mode_ctr),
];

/** MACs in preference order. @dropbear common-algo.c sshhashes */
export const sshhashes: readonly algo_type<dropbear_hash, mac_mode>[] = [
  entry("hmac-sha2-256", 0, dropbear_sha2_256),
  entry("hmac-sha2-512", 0, dropbear_sha2_512),
  entry("hmac-sha2-256-etm@openssh.com", 0, dropbear_sha2_256, MAC_MODE_ETM),
  entry("hmac-sha2-512-etm@openssh.com", 0, dropbear_sha2_512, MAC_MODE_ETM),
];

/** @dropbear common-algo.c ssh_compress */
export const ssh_compress: readonly algo_type<null>[] = [
  entry("zlib@openssh.com", DROPBEAR_COMP_ZLIB_DELAY, null),
  entry("zlib", DROPBEAR_COMP_ZLIB, null),
  entry("none", DROPBEAR_COMP_NONE, null),
];

/** @dropbear common-algo.c ssh_delaycompress */
export const ssh_delaycompress: readonly algo_type<null>[] = [
  entry("zlib@openssh.com", DROPBEAR_COMP_ZLIB_DELAY, null),
  entry("none", DROPBEAR_COMP_NONE, null),
];

/** @dropbear common-algo.c ssh_nocompress */
export const ssh_nocompress: readonly algo_type<null>[] = [entry("none", DROPBEAR_COMP_NONE, null)];

/** Signature algorithms (host keys and user keys). @dropbear common-algo.c sigalgs */
export const sigalgs: readonly algo_type<null>[] = [
  entry("ssh-ed25519", DROPBEAR_SIGNATURE_ED25519, null),
  entry("sk-ssh-ed25519@openssh.com", DROPBEAR_SIGNATURE_SK_ED25519, null),
  entry("ecdsa-sha2-nistp256", DROPBEAR_SIGNATURE_ECDSA_NISTP256, null),
  entry("ecdsa-sha2-nistp384", DROPBEAR_SIGNATURE_ECDSA_NISTP384, null),
  entry("ecdsa-sha2-nistp521", DROPBEAR_SIGNATURE_ECDSA_NISTP521, null),
  entry("sk-ecdsa-sha2-nistp256@openssh.com", DROPBEAR_SIGNATURE_SK_ECDSA_NISTP256, null),
  entry("rsa-sha2-256", DROPBEAR_SIGNATURE_RSA_SHA256, null),
  // SHA-1 RSA, off as in Dropbear (default_options.ts).
  ...(DROPBEAR_RSA_SHA1 ? [entry("ssh-rsa", DROPBEAR_SIGNATURE_RSA_SHA1, null)] : []),
  entry("rsa-sha2-512", DROPBEAR_SIGNATURE_RSA_SHA512, null),
];

/** @dropbear common-algo.c kex_dh_group14_sha256 */
export const kex_dh_group14_sha256: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH, dh_p_bytes: dh_p_14, dh_p_len: DH_P_14_LEN, hash_desc: sha256_desc };
/** @dropbear common-algo.c kex_dh_group16_sha512 */
export const kex_dh_group16_sha512: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH, dh_p_bytes: dh_p_16, dh_p_len: DH_P_16_LEN, hash_desc: sha512_desc };
/** @dropbear common-algo.c kex_ecdh_nistp256 */
export const kex_ecdh_nistp256: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_ECDH, details: ecc_curve_nistp256, hash_desc: sha256_desc };
/** @dropbear common-algo.c kex_ecdh_nistp384 */
export const kex_ecdh_nistp384: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_ECDH, details: ecc_curve_nistp384, hash_desc: sha384_desc };
/** @dropbear common-algo.c kex_ecdh_nistp521 */
export const kex_ecdh_nistp521: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_ECDH, details: ecc_curve_nistp521, hash_desc: sha512_desc };
/** @dropbear common-algo.c kex_curve25519 */
export const kex_curve25519: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_CURVE25519, hash_desc: sha256_desc };
/** @dropbear common-algo.c kex_mlkem768 */
export const kex_mlkem768: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID, details: mlkem768_desc, hash_desc: sha256_desc };
/** @dropbear common-algo.c kex_sntrup761 */
export const kex_sntrup761: dropbear_kex = { mode: dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID, details: sntrup761_desc, hash_desc: sha512_desc };

/**
 * Key exchange methods in preference order, then the pseudo-algorithms that only signal
 * extensions (kexguess2, ext-info-c, strict kex markers). @dropbear common-algo.c sshkex
 */
export const sshkex: readonly algo_type<dropbear_kex | null>[] = [
  // Not offered where this Node has no WebAssembly (--jitless), which the KEMs run in.
  { ...entry("sntrup761x25519-sha512", 0, kex_sntrup761), usable: pqKemsUsable() },
  { ...entry("sntrup761x25519-sha512@openssh.com", 0, kex_sntrup761), usable: pqKemsUsable() },
  { ...entry("mlkem768x25519-sha256", 0, kex_mlkem768), usable: pqKemsUsable() },
  entry("curve25519-sha256", 0, kex_curve25519),
  entry("curve25519-sha256@libssh.org", 0, kex_curve25519),
  entry("ecdh-sha2-nistp521", 0, kex_ecdh_nistp521),
  entry("ecdh-sha2-nistp384", 0, kex_ecdh_nistp384),
  entry("ecdh-sha2-nistp256", 0, kex_ecdh_nistp256),
  entry("diffie-hellman-group14-sha256", 0, kex_dh_group14_sha256),
  entry("diffie-hellman-group16-sha512", 0, kex_dh_group16_sha512),
  entry(KEXGUESS2_ALGO_NAME, 0, null),
  entry(SSH_EXT_INFO_C, 0, null),
  entry(SSH_STRICT_KEX_C, 0, null),
  entry(SSH_STRICT_KEX_S, 0, null),
];

/**
 * A fresh set of tables: Dropbear's defaults, or a copy of `from` (the process's tables as the
 * command line and host keys left them), since each session flips `usable` flags on its own.
 */
export function algo_tables_new(from?: AlgoTables): AlgoTables {
  const copy = <D, M>(t: readonly algo_type<D, M>[]): algo_type<D, M>[] => t.map((a) => ({ ...a }));
  const t = new AlgoTables();
  t.sshkex = copy(from?.sshkex ?? sshkex);
  t.sigalgs = copy(from?.sigalgs ?? sigalgs);
  t.sshciphers = copy(from?.sshciphers ?? sshciphers);
  t.sshhashes = copy(from?.sshhashes ?? sshhashes);
  t.ssh_compress = copy(from?.ssh_compress ?? ssh_compress);
  t.ssh_delaycompress = copy(from?.ssh_delaycompress ?? ssh_delaycompress);
  t.ssh_nocompress = copy(from?.ssh_nocompress ?? ssh_nocompress);
  return t;
}

/** Append a name-list of the usable algorithms (all, with useall). @dropbear common-algo.c buf_put_algolist_all */
export function buf_put_algolist_all(buf: buffer, localalgos: readonly algo_type[], useall: boolean): void {
  const startpos = buf.pos;
  buf_putint(buf, 0);
  let donefirst = false;
  for (const a of localalgos) {
    if (a.usable || useall) {
      if (donefirst) {
        buf_putbyte(buf, 0x2c);
      }
      donefirst = true;
      buf_putbytes(buf, Buffer.from(a.name, "latin1"));
    }
  }
  const len = buf.pos - startpos - 4;
  buf_setpos(buf, startpos);
  buf_putint(buf, len);
  TRACE(() => `algolist add ${len} '${buf_getptr(buf, len).toString("latin1")}'`);
  buf_incrwritepos(buf, len);
}

/** Append a name-list of the usable algorithms. @dropbear common-algo.c buf_put_algolist */
export function buf_put_algolist(buf: buffer, localalgos: readonly algo_type[]): void {
  buf_put_algolist_all(buf, localalgos, false);
}

/**
 * Split a peer's name-list into at most `max_count` names, scanning as Dropbear does: a NUL
 * yields no names (so nothing matches), and a comma past the `max_count`th name exits, whichever
 * comes first. Names longer than MAX_NAME_LEN are kept (they match nothing): C's check of the
 * list's length is overwritten before it takes effect, so a list of long names still negotiates.
 * @dropbear common-algo.c get_algolist
 */
function get_algolist(algolist: Buffer, max_count: number): string[] {
  if (max_count === 0) {
    return [];
  }
  let count = 1;
  for (const c of algolist) {
    if (c === 0) {
      return [];
    }
    if (c === 0x2c) {
      if (count >= max_count) {
        dropbear_exit("Too many remote algorithms");
      }
      count++;
    }
  }
  return algolist.toString("latin1").split(",");
}

/** Whether the name-list at buf's position names `algo`; buf's position is kept. @dropbear common-algo.c buf_has_algo */
export function buf_has_algo(buf: buffer, algo: string): boolean {
  const orig_pos = buf.pos;
  const remotenames = get_algolist(buf_getstring(buf), MAX_PROPOSED_ALGO);
  buf_setpos(buf, orig_pos);
  return remotenames.includes(algo);
}

/** @dropbear common-algo.c first_usable_algo */
export function first_usable_algo<A extends algo_type>(algos: readonly A[]): A | null {
  return algos.find((a) => a.usable) ?? null;
}

/** The result of buf_match_algo: C returns the entry and sets *goodguess. */
export interface AlgoMatch<A extends algo_type = algo_type> {
  algo: A | null;
  /** The first choices of both sides agreed (kexguess2: the client's first choice matched). */
  goodguess: boolean;
}

/**
 * Read the peer's name-list and pick the first of the client's preferences that the server
 * also has (RFC 4253 §7.1); the server side of the table is `localalgos` on a server.
 * @dropbear common-algo.c buf_match_algo
 */
export function buf_match_algo<A extends algo_type>(
  buf: buffer,
  localalgos: readonly A[],
  isserver: boolean,
  kexguess2: boolean,
): AlgoMatch<A> {
  const remotenames = get_algolist(buf_getstring(buf), MAX_PROPOSED_ALGO);
  // Only the usable entries: the list as our KEXINIT sent it. C keeps an unusable entry's
  // place (as NULL), so its first choice is "index 0" only where that entry is usable: a list
  // starting with entries we do not offer (the KEMs under --jitless, a host key type we lack)
  // took a right guess for a wrong one, and the two sides disagreed about the guessed packet.
  const usable = localalgos.filter((a) => a.usable);
  const localnames = usable.map((a) => a.name);
  const clinames = isserver ? remotenames : localnames;
  const servnames = isserver ? localnames : remotenames;
  for (const [i, name] of clinames.entries()) {
    const j = servnames.indexOf(name);
    if (j < 0) {
      continue;
    }
    const goodguess = kexguess2 ? i === 0 : i === 0 && j === 0;
    return { algo: usable[isserver ? j : i] ?? null, goodguess };
  }
  return { algo: null, goodguess: false };
}

/** The usable names as one comma-separated string (for -Q and messages). @dropbear common-algo.c algolist_string */
export function algolist_string(algos: readonly algo_type[]): string {
  return algos
    .filter((a) => a.usable)
    .map((a) => a.name)
    .join(",");
}

/**
 * Keep only the algorithms a user list (-c, -m, -o ...) names, in the user's order, warning
 * about names we don't have. Returns how many remain. @dropbear common-algo.c check_user_algos
 */
export function check_user_algos(user_algo_list: string, algos: algo_type[], algo_desc: string): number {
  const chosen: algo_type[] = [];
  for (const name of user_algo_list.split(",")) {
    if (chosen.length >= MAX_PROPOSED_ALGO) {
      dropbear_exit(`Too many algorithms '${user_algo_list}'`);
    }
    const match = algos.find((a) => a.name === name);
    if (match === undefined) {
      dropbear_log(LOG_WARNING, `This Dropbear program does not support '${name}' ${algo_desc} algorithm`);
    } else if (chosen.some((a) => a.name === name)) {
      TRACE(() => `Skip repeated algorithm '${name}'`);
    } else {
      chosen.push(match);
    }
  }
  algos.splice(0, algos.length, ...chosen);
  return chosen.length;
}

import type { dropbear_kem_desc, ltc_hash_descriptor } from "@dropbear-ts/crypto";
import type { dropbear_ecc_curve } from "@dropbear-ts/signkey";

// algo.h's table shapes. The descriptors they point at (ciphers, MACs, KEMs) live in the crypto
// package; the tables themselves (sshkex[], sshciphers[], ...) in the algo package.

/** One negotiable algorithm. @dropbear algo.h Algo_Type */
export interface algo_type {
  readonly name: string;
  /** A small number for this algorithm (signature types, compression), or 0. */
  readonly val: number;
  /** Algorithm-specific data: a dropbear_cipher, dropbear_hash, dropbear_kex, ... */
  readonly data: unknown;
  /** Whether we offer and accept it: user lists (-c, -m) and side markers clear it. */
  usable: boolean;
  /** For ciphers, the dropbear_cipher_mode; for MACs, the TS-only "etm" marker. */
  readonly mode: unknown;
}

/** How a kex family computes its shared secret. @dropbear algo.h dropbear_kex_mode */
export enum dropbear_kex_mode {
  DROPBEAR_KEX_NORMAL_DH,
  DROPBEAR_KEX_ECDH,
  DROPBEAR_KEX_CURVE25519,
  DROPBEAR_KEX_PQHYBRID,
}

/** A key exchange method. @dropbear algo.h dropbear_kex */
export interface dropbear_kex {
  readonly mode: dropbear_kex_mode;
  /** The MODP prime for normal DH. */
  readonly dh_p_bytes: Uint8Array | null;
  readonly dh_p_len: number;
  /** The curve for ECDH, the KEM for PQ hybrids. */
  readonly details: dropbear_ecc_curve | dropbear_kem_desc | null;
  readonly hash_desc: ltc_hash_descriptor;
}

/** Compression methods. @dropbear algo.h DROPBEAR_COMP_NONE */
export const DROPBEAR_COMP_NONE = 0;
export const DROPBEAR_COMP_ZLIB = 1;
export const DROPBEAR_COMP_ZLIB_DELAY = 2;

/**
 * One session's copies of common-algo.c's global tables (sshkex[], sigalgs[], ...): C flips
 * their `usable` flags in place per process, so each session here gets its own.
 */
export class AlgoTables {
  sshkex: algo_type[] = [];
  sigalgs: algo_type[] = [];
  sshciphers: algo_type[] = [];
  sshhashes: algo_type[] = [];
  ssh_compress: algo_type[] = [];
  ssh_delaycompress: algo_type[] = [];
  ssh_nocompress: algo_type[] = [];
}

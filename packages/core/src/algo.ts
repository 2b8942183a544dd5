import type {
  dropbear_cipher,
  dropbear_cipher_mode,
  dropbear_hash,
  dropbear_kem_desc,
  ltc_hash_descriptor,
} from "@dropbear-ts/crypto";
import type { dropbear_ecc_curve } from "@dropbear-ts/signkey";

// algo.h's table shapes. The descriptors they point at (ciphers, MACs, KEMs) live in the crypto
// package; the tables themselves (sshkex[], sshciphers[], ...) in the algo package.

/**
 * One negotiable algorithm. C's `data` and `mode` are void pointers; here each table says what
 * they hold (`D`, `M`), so whoever picks an entry reads them without casts. @dropbear algo.h Algo_Type
 */
export interface algo_type<D = unknown, M = unknown> {
  readonly name: string;
  /** A small number for this algorithm (signature types, compression), or 0. */
  readonly val: number;
  /** Algorithm-specific data: a dropbear_cipher, dropbear_hash, dropbear_kex, ... */
  readonly data: D;
  /** Whether we offer and accept it: user lists (-c, -m) and side markers clear it. */
  usable: boolean;
  /** For ciphers, the dropbear_cipher_mode; for MACs, the TS-only "etm" marker. */
  readonly mode: M;
}

/** The mark of an encrypt-then-MAC entry in sshhashes[] (its `mode`); null for plain HMAC. */
export const MAC_MODE_ETM = "etm";
/** What a sshhashes[] entry's `mode` holds. */
export type mac_mode = typeof MAC_MODE_ETM | null;

/** How a kex family computes its shared secret. @dropbear algo.h dropbear_kex_mode */
export enum dropbear_kex_mode {
  DROPBEAR_KEX_NORMAL_DH,
  DROPBEAR_KEX_ECDH,
  DROPBEAR_KEX_CURVE25519,
  DROPBEAR_KEX_PQHYBRID,
}

/**
 * A key exchange method. C keeps every family's fields in one struct (NULL where unused); here
 * `mode` picks the shape, so a DH method always has its prime and an ECDH one its curve.
 * @dropbear algo.h dropbear_kex
 */
export type dropbear_kex =
  | {
      readonly mode: dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH;
      /** The MODP prime. */
      readonly dh_p_bytes: Uint8Array;
      readonly dh_p_len: number;
      readonly hash_desc: ltc_hash_descriptor;
    }
  | {
      readonly mode: dropbear_kex_mode.DROPBEAR_KEX_ECDH;
      /** The curve. */
      readonly details: dropbear_ecc_curve;
      readonly hash_desc: ltc_hash_descriptor;
    }
  | {
      readonly mode: dropbear_kex_mode.DROPBEAR_KEX_CURVE25519;
      readonly hash_desc: ltc_hash_descriptor;
    }
  | {
      readonly mode: dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID;
      /** The post-quantum KEM combined with X25519. */
      readonly details: dropbear_kem_desc;
      readonly hash_desc: ltc_hash_descriptor;
    };

/** Compression methods. @dropbear algo.h DROPBEAR_COMP_NONE */
export const DROPBEAR_COMP_NONE = 0;
export const DROPBEAR_COMP_ZLIB = 1;
export const DROPBEAR_COMP_ZLIB_DELAY = 2;

/**
 * One session's copies of common-algo.c's global tables (sshkex[], sigalgs[], ...): C flips
 * their `usable` flags in place per process, so each session here gets its own.
 */
export class AlgoTables {
  /** The extension markers (kexguess2, ext-info, strict kex) have null data. */
  sshkex: algo_type<dropbear_kex | null>[] = [];
  sigalgs: algo_type<null>[] = [];
  sshciphers: algo_type<dropbear_cipher, dropbear_cipher_mode>[] = [];
  sshhashes: algo_type<dropbear_hash, mac_mode>[] = [];
  ssh_compress: algo_type<null>[] = [];
  ssh_delaycompress: algo_type<null>[] = [];
  ssh_nocompress: algo_type<null>[] = [];
}

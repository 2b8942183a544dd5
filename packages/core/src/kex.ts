import type { KeyObject } from "node:crypto";
import type { buffer } from "@dropbear-ts/buffer";
import type { ecc_key } from "@dropbear-ts/signkey";
import type { dropbear_kex_mode } from "./algo.js";

// kex.h's ephemeral key exchange parameters. The kex package makes and uses them; the client
// keeps its own on clientsession.kex_param between KEXDH_INIT and the reply.

/** Our ephemeral DH pair: pub is e (client) or f (server). @dropbear kex.h kex_dh_param */
export interface kex_dh_param {
  pub: bigint;
  priv: bigint;
  /** priv as the OpenSSL key that does the arithmetic (crypto's dh_groups.ts), made with the pair. */
  key?: KeyObject;
}

/** Our ephemeral ECDH key. @dropbear kex.h kex_ecdh_param */
export interface kex_ecdh_param {
  key: ecc_key;
}

/** Our ephemeral X25519 pair. @dropbear kex.h kex_curve25519_param */
export interface kex_curve25519_param {
  priv: Buffer;
  pub: Buffer;
}

/**
 * A hybrid kex's ephemeral state. `concat_public` is what we send: the client's
 * C_PK2 ‖ C_PK1, or the server's S_CT2 ‖ S_PK1. @dropbear kex.h kex_pqhybrid_param
 */
export interface kex_pqhybrid_param {
  curve25519: kex_curve25519_param;
  concat_public: buffer | null;
  /** The client's KEM secret key, kept until the server's ciphertext arrives. */
  kem_cli_secret: Buffer | null;
}

/**
 * The client's ephemeral kex state, one family at a time: C keeps one pointer per family in
 * cli_ses (dh_param, ecdh_param, curve25519_param, pqhybrid_param), at most one of them set.
 */
export type CliKexParam =
  | { mode: dropbear_kex_mode.DROPBEAR_KEX_NORMAL_DH; p: kex_dh_param }
  | { mode: dropbear_kex_mode.DROPBEAR_KEX_ECDH; p: kex_ecdh_param }
  | { mode: dropbear_kex_mode.DROPBEAR_KEX_CURVE25519; p: kex_curve25519_param }
  | { mode: dropbear_kex_mode.DROPBEAR_KEX_PQHYBRID; p: kex_pqhybrid_param };

/** One known_hosts key filed under the host the client reaches (read by the kex package's cli-kex.ts). */
export interface KnownHostKey {
  /** From an @revoked line: this key must never be accepted. */
  revoked: boolean;
  /** The key type's name as the line gives it (ssh-ed25519, ssh-rsa, ...). */
  algoname: string;
  /** The key itself, base64. */
  base64: string;
}

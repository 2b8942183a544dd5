import { createCipheriv, type Cipher } from "node:crypto";

import {
  CRYPT_ERROR,
  CRYPT_OK,
  type cipher_state,
  type dropbear_cipher,
  type dropbear_stream_mode,
  type ltc_cipher_descriptor,
} from "./algo.js";
import { EvpCipher } from "./openssl.js";

// The cipher entries and the CTR / "none" modes of common-algo.c, over node:crypto. The
// chacha20-poly1305 and GCM modes live in their own files, as in Dropbear.

/** libtomcrypt's AES, here the node:crypto "aes-*" family. */
export const aes_desc: ltc_cipher_descriptor = { name: "aes" };

/** AES with a 32-byte key. @dropbear common-algo.c dropbear_aes256 */
export const dropbear_aes256: dropbear_cipher = { cipherdesc: aes_desc, keysize: 32, blocksize: 16 };

/** AES with a 16-byte key. @dropbear common-algo.c dropbear_aes128 */
export const dropbear_aes128: dropbear_cipher = { cipherdesc: aes_desc, keysize: 16, blocksize: 16 };

/** "No encryption" (RFC 4253 "none"), in force until the first NEWKEYS. @dropbear common-algo.c dropbear_nocipher */
export const dropbear_nocipher: dropbear_cipher = { cipherdesc: null, keysize: 16, blocksize: 8 };

/** The (empty) state of the "none" mode: what a direction holds until its first keys. */
export const noneCipherState: cipher_state = Object.freeze({});

/** Copy through unchanged. @dropbear common-algo.c void_cipher */
export function void_cipher(
  input: Uint8Array,
  output: Uint8Array,
  len: number,
  _cipher_state: cipher_state,
): number {
  if (input !== output) {
    output.set(input.subarray(0, len));
  }
  return CRYPT_OK;
}

/** Nothing to key. @dropbear common-algo.c void_start */
export function void_start(
  _cipher: ltc_cipher_descriptor | null,
  _IV: Uint8Array,
  _key: Uint8Array,
  _keylen: number,
  _num_rounds: number,
): cipher_state | null {
  return noneCipherState;
}

/** The mode of dropbear_nocipher. @dropbear common-algo.c dropbear_mode_none */
export const dropbear_mode_none: dropbear_stream_mode = {
  kind: "stream",
  start: void_start,
  encrypt: void_cipher,
  decrypt: void_cipher,
};

/**
 * One direction's AES-CTR stream (libtomcrypt's symmetric_CTR). The cipher (OpenSSL's context
 * when present, else a node:crypto one) stays open for the whole key lifetime, so the keystream
 * runs on from packet to packet as SSH wants.
 */
export class symmetric_CTR {
  constructor(
    /** The node:crypto cipher; null when `evp` runs the stream. */
    readonly ctr: Cipher | null,
    /** The OpenSSL context, which encrypts in place; null on the node:crypto path. */
    readonly evp: EvpCipher | null,
  ) {}

  /** Free the OpenSSL context (see freeCipherState). */
  releaseNative(): void {
    this.evp?.free();
  }
}

/** OpenSSL's name of AES-CTR with a key of `keylen` bytes. */
const CTR_NAMES = { 16: "AES-128-CTR", 24: "AES-192-CTR", 32: "AES-256-CTR" } as const;

/**
 * Key AES-CTR with a 128-bit big-endian counter starting at IV. The key length picks
 * AES-128 or AES-256. @dropbear common-algo.c dropbear_big_endian_ctr_start
 */
export function dropbear_big_endian_ctr_start(
  _cipher: ltc_cipher_descriptor | null,
  IV: Uint8Array,
  key: Uint8Array,
  keylen: number,
  _num_rounds: number,
): cipher_state | null {
  if ((keylen !== 16 && keylen !== 24 && keylen !== 32) || key.length < keylen || IV.length < 16) {
    return null;
  }
  const evp = EvpCipher.open(CTR_NAMES[keylen], key, IV);
  if (evp !== null) {
    return new symmetric_CTR(null, evp);
  }
  return new symmetric_CTR(createCipheriv(`aes-${keylen * 8}-ctr`, key.subarray(0, keylen), IV.subarray(0, 16)), null);
}

/**
 * Run `len` bytes through the CTR keystream (encryption and decryption are the same XOR).
 * OpenSSL writes into `output`; node:crypto returns a fresh Buffer, which is copied there.
 */
function ctrCrypt(input: Uint8Array, output: Uint8Array, len: number, cipher_state: cipher_state): number {
  const state = cipher_state as symmetric_CTR;
  if (!Number.isInteger(len) || len < 0 || input.length < len || output.length < len) {
    return CRYPT_ERROR;
  }
  if (state.evp !== null) {
    return state.evp.crypt(input, output, len) ? CRYPT_OK : CRYPT_ERROR;
  }
  output.set(state.ctr!.update(input.subarray(0, len)));
  return CRYPT_OK;
}

/** The CTR mode. @dropbear common-algo.c dropbear_mode_ctr */
export const dropbear_mode_ctr: dropbear_stream_mode = {
  kind: "stream",
  start: dropbear_big_endian_ctr_start,
  encrypt: ctrCrypt,
  decrypt: ctrCrypt,
};

import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type CipherGCMTypes,
  type KeyObject,
} from "node:crypto";
import { TRACE2 } from "@dropbear-ts/dbutil";

import {
  CRYPT_ERROR,
  CRYPT_OK,
  LTC_DECRYPT,
  LTC_ENCRYPT,
  type aead_stream,
  type cipher_state,
  type dropbear_aead_mode,
  type dropbear_hash,
  type ltc_cipher_descriptor,
} from "./algo.js";
import { EvpCipher, cryptSource } from "./openssl.js";

// aes128-gcm@openssh.com / aes256-gcm@openssh.com (RFC 5647, with OpenSSH's choice that the
// negotiated MAC is ignored). The 4-byte packet length is authenticated but sent in clear; the
// 12-byte nonce is a 4-byte fixed field from key derivation and an 8-byte big-endian
// invocation counter that goes up by one per packet.

/** Bytes of the nonce fixed at key derivation. @dropbear gcm.h GCM_IVFIX_LEN */
export const GCM_IVFIX_LEN = 4;
/** Bytes of the per-packet invocation counter. @dropbear gcm.h GCM_IVCTR_LEN */
export const GCM_IVCTR_LEN = 8;
/** Whole nonce length. @dropbear gcm.h GCM_NONCE_LEN */
export const GCM_NONCE_LEN = GCM_IVFIX_LEN + GCM_IVCTR_LEN;
/** Tag length. @dropbear gcm.c GHASH_LEN */
export const GHASH_LEN = 16;

/** The implied MAC of GCM mode: only its 16-byte tag size matters. @dropbear gcm.c dropbear_ghash */
export const dropbear_ghash: dropbear_hash = { hash_desc: null, keysize: 0, hashsize: GHASH_LEN };

/** One direction's GCM key and current nonce. @dropbear gcm.h dropbear_gcm_state */
export class dropbear_gcm_state {
  /** Scratch for a received packet's tag (OpenSSL path). */
  readonly tag = Buffer.alloc(GHASH_LEN);
  /** Seals and opens packets in pieces (OpenSSL path; null on the node:crypto path). */
  readonly stream: aead_stream | null;

  constructor(
    readonly algorithm: CipherGCMTypes,
    /** The key, for a new node:crypto cipher per packet; null when `evp` holds it. */
    readonly key: KeyObject | null,
    /** The nonce for the next packet; its last 8 bytes count packets. */
    readonly iv: Buffer,
    /** The keyed OpenSSL context, re-IV'd per packet; null on the node:crypto path. */
    readonly evp: EvpCipher | null,
  ) {
    this.stream = evp !== null ? new GcmStream(this, evp) : null;
  }

  /** Free the OpenSSL context (see freeCipherState). */
  releaseNative(): void {
    this.evp?.free();
  }
}

/**
 * Key AES-GCM and take the 12-byte starting nonce from the key-derivation IV. The key length
 * picks AES-128 or AES-256. @dropbear gcm.c dropbear_gcm_start
 */
export function dropbear_gcm_start(
  _cipher: ltc_cipher_descriptor | null,
  IV: Uint8Array,
  key: Uint8Array,
  keylen: number,
  _num_rounds: number,
): cipher_state | null {
  TRACE2("enter dropbear_gcm_start");
  if ((keylen !== 16 && keylen !== 32) || key.length < keylen || IV.length < GCM_NONCE_LEN) {
    return null;
  }
  const iv = Buffer.from(IV.subarray(0, GCM_NONCE_LEN));
  const evp = EvpCipher.open(keylen === 16 ? "AES-128-GCM" : "AES-256-GCM", key.subarray(0, keylen), iv);
  const state = new dropbear_gcm_state(
    keylen === 16 ? "aes-128-gcm" : "aes-256-gcm",
    evp === null ? createSecretKey(Buffer.from(key.subarray(0, keylen))) : null,
    iv,
    evp,
  );
  TRACE2("leave dropbear_gcm_start");
  return state;
}

/** Add one to the 64-bit big-endian invocation counter, wrapping as the C loop does. */
function incrementInvocation(iv: Buffer): void {
  for (let i = GCM_NONCE_LEN - 1; i >= GCM_IVFIX_LEN; i--) {
    iv[i] = (iv[i] + 1) & 0xff;
    if (iv[i] !== 0) {
      break;
    }
  }
}

/**
 * Seal or open one packet: input[0..4) is the length (AAD, copied through unchanged),
 * input[4..len) the body, then the 16-byte tag. Opening may write the unauthenticated plaintext
 * to output before the tag is found wrong (OpenSSL decrypts in place, then checks): on
 * CRYPT_ERROR the caller must discard output, as read_packet does by ending the session. The
 * nonce advances only on success. @dropbear gcm.c dropbear_gcm_crypt
 */
export function dropbear_gcm_crypt(
  _seq: number,
  input: Uint8Array,
  output: Uint8Array,
  len: number,
  taglen: number,
  cipher_state: cipher_state,
  direction: number,
): number {
  const state = cipher_state as dropbear_gcm_state;
  if (len < 4 || taglen !== GHASH_LEN || input.length < len || output.length < len) {
    return CRYPT_ERROR;
  }
  const encrypt = direction === LTC_ENCRYPT;
  if ((encrypt ? output : input).length < len + GHASH_LEN) {
    return CRYPT_ERROR;
  }
  // Each path advances the nonce on success.
  const ok = state.stream !== null ? gcmCryptEvp(state, state.stream, input, output, len, encrypt) : gcmCryptNode(state, input, output, len, encrypt);
  return ok ? CRYPT_OK : CRYPT_ERROR;
}

/** The OpenSSL path: the whole packet through the direction's GcmStream, into output. */
function gcmCryptEvp(state: dropbear_gcm_state, stream: aead_stream, input: Uint8Array, output: Uint8Array, len: number, encrypt: boolean): boolean {
  if (!encrypt) {
    // Taken first: moving the packet to output may overwrite it when the two overlap.
    state.tag.set(input.subarray(len, len + GHASH_LEN));
  }
  const src = cryptSource(input, output, len, 4);
  return (
    stream.begin(0, output, 4, encrypt ? LTC_ENCRYPT : LTC_DECRYPT) &&
    stream.update(src.subarray(4, len), output.subarray(4, len), len - 4) &&
    stream.end(encrypt ? output.subarray(len, len + GHASH_LEN) : state.tag)
  );
}

/**
 * A packet sealed or opened in pieces (algo.ts aead_stream), on the OpenSSL path: the
 * direction's context re-IV'd, the length field as AAD, the body en- or decrypted piece by piece,
 * the tag made or checked at the end, the nonce advanced. Whole packets (gcmCryptEvp) go
 * through it too.
 */
class GcmStream implements aead_stream {
  private encrypt = false;

  constructor(
    private readonly state: dropbear_gcm_state,
    private readonly evp: EvpCipher,
  ) {}

  begin(_seq: number, packet: Uint8Array, len: number, direction: number): boolean {
    this.encrypt = direction === LTC_ENCRYPT;
    const body = packet.subarray(4, len);
    return len >= 4 && packet.length >= len && this.evp.setIv(this.state.iv, this.encrypt) && this.evp.aad(packet, 4) && this.evp.crypt(body, body, len - 4);
  }

  update(input: Uint8Array, output: Uint8Array, len: number): boolean {
    return this.evp.crypt(input, output, len);
  }

  end(tag: Uint8Array): boolean {
    const evp = this.evp;
    if (!(this.encrypt ? evp.final() && evp.getTag(tag, GHASH_LEN) : evp.setTag(tag, GHASH_LEN) && evp.final())) {
      return false;
    }
    incrementInvocation(this.state.iv);
    return true;
  }
}

/**
 * The node:crypto path: a new cipher object per packet (it cannot be re-IV'd). Opening writes
 * nothing unless the tag verifies (node:crypto compares it in constant time); the nonce
 * advances once it has.
 */
function gcmCryptNode(state: dropbear_gcm_state, input: Uint8Array, output: Uint8Array, len: number, encrypt: boolean): boolean {
  const key = state.key!;
  const aad = input.subarray(0, 4);
  const body = input.subarray(4, len);
  if (encrypt) {
    const c = createCipheriv(state.algorithm, key, state.iv, { authTagLength: GHASH_LEN });
    c.setAAD(aad);
    const ct = c.update(body);
    c.final();
    output.set(aad, 0);
    output.set(ct, 4);
    output.set(c.getAuthTag(), len);
  } else {
    const d = createDecipheriv(state.algorithm, key, state.iv, { authTagLength: GHASH_LEN });
    d.setAAD(aad);
    d.setAuthTag(input.subarray(len, len + GHASH_LEN));
    const pt = d.update(body);
    try {
      d.final();
    } catch {
      return false;
    }
    output.set(aad, 0);
    output.set(pt, 4);
  }
  incrementInvocation(state.iv);
  return true;
}

/** The packet length: in GCM it is sent in clear. @dropbear gcm.c dropbear_gcm_getlength */
export function dropbear_gcm_getlength(
  _seq: number,
  input: Uint8Array,
  len: number,
  _cipher_state: cipher_state,
): number {
  if (len < 4 || input.length < 4) {
    return -1;
  }
  return ((input[0] << 24) | (input[1] << 16) | (input[2] << 8) | input[3]) >>> 0;
}

/** The GCM mode: AEAD only, no separate encrypt/decrypt. @dropbear gcm.c dropbear_mode_gcm */
export const dropbear_mode_gcm: dropbear_aead_mode = {
  kind: "aead",
  start: dropbear_gcm_start,
  aead_crypt: dropbear_gcm_crypt,
  aead_getlength: dropbear_gcm_getlength,
  aead_mac: dropbear_ghash,
  aead_stream: (cipher_state) => (cipher_state as dropbear_gcm_state).stream,
};

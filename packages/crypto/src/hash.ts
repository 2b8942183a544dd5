import { createHmac, timingSafeEqual } from "node:crypto";

import type { cipher_state, dropbear_hash, ltc_hash_descriptor } from "./algo.js";
import { EvpHmac, freeCipherState } from "./openssl.js";

// The hashes and MACs of common-algo.c, over node:crypto. The MAC is HMAC over
// uint32(seq) || data (RFC 4253 §6.4); whether `data` is the cleartext packet
// (encrypt-and-MAC, Dropbear's only way) or the ciphertext (-etm@openssh.com) is the packet
// layer's choice, so both families share one primitive.
//
// With Node's OpenSSL (openssl.ts) each direction's MAC key gets one HMAC context, keyed once and
// reused for every packet: node:crypto's createHmac would redo the key schedule and make an
// object per packet. C redoes hmac_init per packet; here the context lives beside the key, in
// the direction's keys (key_context_directional.mac_state), and goes with them (freeKeyStates).

/** SHA-1, for the exchange hash of the legacy group14-sha1 KEX (off by default). */
export const sha1_desc: ltc_hash_descriptor = { name: "sha1", hashsize: 20, blocksize: 64 };
/** SHA-256. */
export const sha256_desc: ltc_hash_descriptor = { name: "sha256", hashsize: 32, blocksize: 64 };
/** SHA-384, the exchange hash of ecdh-sha2-nistp384. */
export const sha384_desc: ltc_hash_descriptor = { name: "sha384", hashsize: 48, blocksize: 128 };
/** SHA-512. */
export const sha512_desc: ltc_hash_descriptor = { name: "sha512", hashsize: 64, blocksize: 128 };

/** hmac-sha2-256: 32-byte key, 32-byte MAC. @dropbear common-algo.c dropbear_sha2_256 */
export const dropbear_sha2_256: dropbear_hash = { hash_desc: sha256_desc, keysize: 32, hashsize: 32 };

/** hmac-sha2-512: 64-byte key, 64-byte MAC. @dropbear common-algo.c dropbear_sha2_512 */
export const dropbear_sha2_512: dropbear_hash = { hash_desc: sha512_desc, keysize: 64, hashsize: 64 };

/** "No MAC", in force until the first NEWKEYS. @dropbear common-algo.c dropbear_nohash */
export const dropbear_nohash: dropbear_hash = { hash_desc: null, keysize: 16, hashsize: 0 };

// Scratch for the sequence number: update() copies it at once, so one buffer serves all calls.
const SEQBUF = Buffer.alloc(4);

/** An HMAC context keyed for one MAC key; evp null: node:crypto computes the MAC. */
export interface mac_state {
  readonly hash: dropbear_hash;
  readonly evp: EvpHmac | null;
}

/** A MAC key with the context made for it at its first use (a key_context_directional is one). */
export interface MacKey {
  readonly algo_mac: dropbear_hash;
  readonly mackey: Uint8Array;
  mac_state: mac_state | null;
}

/** A free-standing MacKey (tests, warm-up); its context is made at first use. */
export function macKey(algo_mac: dropbear_hash, mackey: Uint8Array): MacKey {
  return { algo_mac, mackey, mac_state: null };
}

/** The HMAC context of `key`, made (and keyed) at its first use. */
function macState(key: MacKey): mac_state {
  const hash = key.algo_mac;
  let m = key.mac_state;
  if (m === null || m.hash !== hash) {
    m?.evp?.free();
    m = { hash, evp: EvpHmac.open(hash.hash_desc!.name, key.mackey.subarray(0, hash.keysize)) };
    key.mac_state = m;
  }
  return m;
}

/**
 * Write HMAC(mackey, uint32(seqno) || data[0..len)) into output_mac, cut to the MAC's hashsize
 * bytes. The body of packet.c's make_mac; the packet layer picks key and data.
 */
export function computeMac(key: MacKey, seqno: number, data: Uint8Array, len: number, output_mac: Uint8Array): void {
  const hash = key.algo_mac;
  if (hash.hash_desc === null || hash.hashsize === 0) {
    return;
  }
  SEQBUF.writeUInt32BE(seqno >>> 0, 0);
  const evp = macState(key).evp;
  // HMAC_Final writes the whole digest: straight into output_mac when that is what it wants.
  if (evp !== null && evp.size === hash.hashsize && evp.mac(SEQBUF, data, len, output_mac)) {
    return;
  }
  const mac = createHmac(hash.hash_desc.name, key.mackey.subarray(0, hash.keysize))
    .update(SEQBUF)
    .update(data.subarray(0, len))
    .digest();
  output_mac.set(mac.subarray(0, hash.hashsize));
}

/**
 * Free what one direction's keys hold in OpenSSL (cipher contexts, the HMAC context), which
 * OpenSSL cleanses as it frees: at switch_keys for the keys replaced, at session cleanup for
 * all. A cipher state used after this fails cleanly.
 */
export function freeKeyStates(dir: { readonly cipher_state: cipher_state; mac_state: mac_state | null }): void {
  freeCipherState(dir.cipher_state);
  dir.mac_state?.evp?.free();
  dir.mac_state = null;
}

/**
 * Whether the first `len` bytes of two MACs agree, in time that depends only on `len`.
 * Inputs shorter than `len` never match.
 */
export function verifyMac(expected: Uint8Array, received: Uint8Array, len: number): boolean {
  if (expected.length < len || received.length < len) {
    return false;
  }
  return timingSafeEqual(expected.subarray(0, len), received.subarray(0, len));
}

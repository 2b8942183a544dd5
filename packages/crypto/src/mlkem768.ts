import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

import type { dropbear_kem_desc } from "./algo.js";
import { genrandom } from "./dbrandom.js";

// ML-KEM-768 (FIPS 203) for mlkem768x25519-sha256, from @noble/post-quantum (Dropbear bundles
// libcrux). The library is imported on first use (kemLoad), so programs that never negotiate
// it do not pay its ~10 ms of module loading at start-up.

/** Public (encapsulation) key length. @dropbear mlkem768.h crypto_kem_mlkem768_PUBLICKEYBYTES */
export const crypto_kem_mlkem768_PUBLICKEYBYTES = 1184;
/** Secret (decapsulation) key length. @dropbear mlkem768.h crypto_kem_mlkem768_SECRETKEYBYTES */
export const crypto_kem_mlkem768_SECRETKEYBYTES = 2400;
/** Ciphertext length. @dropbear mlkem768.h crypto_kem_mlkem768_CIPHERTEXTBYTES */
export const crypto_kem_mlkem768_CIPHERTEXTBYTES = 1088;
/** Shared secret length. @dropbear mlkem768.h crypto_kem_mlkem768_BYTES */
export const crypto_kem_mlkem768_BYTES = 32;

/** Randomness for key generation: the FIPS 203 seeds d ‖ z. */
export const MLKEM768_KEYGEN_SEED_LEN = 64;
/** Randomness for encapsulation: the FIPS 203 message m. */
export const MLKEM768_ENC_SEED_LEN = 32;

type MlKem = typeof import("@noble/post-quantum/ml-kem.js")["ml_kem768"];

let mlkem: MlKem | null = null;
let loading: Promise<void> | null = null;

/** Load the implementation once; later calls share the first promise. */
export function mlkem768Load(): Promise<void> {
  loading ??= import("@noble/post-quantum/ml-kem.js").then((m) => {
    mlkem = m.ml_kem768;
  });
  return loading;
}

function impl(): MlKem {
  if (mlkem === null) {
    dropbear_exit("mlkem768 used before mlkem768Load()");
  }
  return mlkem;
}

function checkLen(buf: Uint8Array, len: number): void {
  if (buf.length < len) {
    dropbear_exit("Bad mlkem768");
  }
}

/** Deterministic key generation from the 64-byte seed d ‖ z (FIPS 203 ML-KEM.KeyGen_internal). */
export function mlkem768KeypairFromSeed(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): number {
  checkLen(pk, crypto_kem_mlkem768_PUBLICKEYBYTES);
  checkLen(sk, crypto_kem_mlkem768_SECRETKEYBYTES);
  checkLen(seed, MLKEM768_KEYGEN_SEED_LEN);
  const keys = impl().keygen(seed.subarray(0, MLKEM768_KEYGEN_SEED_LEN));
  pk.set(keys.publicKey);
  sk.set(keys.secretKey);
  m_burn(keys.secretKey);
  return 0;
}

/**
 * Deterministic encapsulation with the 32-byte message m (FIPS 203 ML-KEM.Encaps_internal).
 * A public key failing FIPS 203's modulus check ends the session (libcrux would carry on and
 * produce a secret the peer cannot share).
 */
export function mlkem768EncFromSeed(c: Uint8Array, k: Uint8Array, pk: Uint8Array, m: Uint8Array): number {
  checkLen(c, crypto_kem_mlkem768_CIPHERTEXTBYTES);
  checkLen(k, crypto_kem_mlkem768_BYTES);
  checkLen(pk, crypto_kem_mlkem768_PUBLICKEYBYTES);
  checkLen(m, MLKEM768_ENC_SEED_LEN);
  let res: ReturnType<MlKem["encapsulate"]>;
  try {
    res = impl().encapsulate(
      pk.subarray(0, crypto_kem_mlkem768_PUBLICKEYBYTES),
      m.subarray(0, MLKEM768_ENC_SEED_LEN),
    );
  } catch {
    dropbear_exit("Bad mlkem768");
  }
  c.set(res.cipherText);
  k.set(res.sharedSecret);
  m_burn(res.sharedSecret);
  return 0;
}

/** Make a key pair from fresh randomness. @dropbear mlkem768.c crypto_kem_mlkem768_keypair */
export function crypto_kem_mlkem768_keypair(pk: Uint8Array, sk: Uint8Array): number {
  const rnd = new Uint8Array(MLKEM768_KEYGEN_SEED_LEN);
  genrandom(rnd);
  try {
    return mlkem768KeypairFromSeed(pk, sk, rnd);
  } finally {
    m_burn(rnd);
  }
}

/** Encapsulate a fresh secret to pk. @dropbear mlkem768.c crypto_kem_mlkem768_enc */
export function crypto_kem_mlkem768_enc(c: Uint8Array, k: Uint8Array, pk: Uint8Array): number {
  const rnd = new Uint8Array(MLKEM768_ENC_SEED_LEN);
  genrandom(rnd);
  try {
    return mlkem768EncFromSeed(c, k, pk, rnd);
  } finally {
    m_burn(rnd);
  }
}

/**
 * Decapsulate c with sk into k. A wrong ciphertext yields FIPS 203's implicit-rejection
 * secret, not an error. @dropbear mlkem768.c crypto_kem_mlkem768_dec
 */
export function crypto_kem_mlkem768_dec(k: Uint8Array, c: Uint8Array, sk: Uint8Array): number {
  checkLen(k, crypto_kem_mlkem768_BYTES);
  checkLen(c, crypto_kem_mlkem768_CIPHERTEXTBYTES);
  checkLen(sk, crypto_kem_mlkem768_SECRETKEYBYTES);
  let ss: Uint8Array;
  try {
    ss = impl().decapsulate(
      c.subarray(0, crypto_kem_mlkem768_CIPHERTEXTBYTES),
      sk.subarray(0, crypto_kem_mlkem768_SECRETKEYBYTES),
    );
  } catch {
    dropbear_exit("Bad mlkem768");
  }
  k.set(ss);
  m_burn(ss);
  return 0;
}

/** The KEM half of mlkem768x25519-sha256. @dropbear common-algo.c mlkem768_desc */
export const mlkem768_desc: dropbear_kem_desc = {
  public_len: crypto_kem_mlkem768_PUBLICKEYBYTES,
  secret_len: crypto_kem_mlkem768_SECRETKEYBYTES,
  ciphertext_len: crypto_kem_mlkem768_CIPHERTEXTBYTES,
  output_len: crypto_kem_mlkem768_BYTES,
  kem_gen: crypto_kem_mlkem768_keypair,
  kem_enc: crypto_kem_mlkem768_enc,
  kem_dec: crypto_kem_mlkem768_dec,
  kemLoad: mlkem768Load,
};

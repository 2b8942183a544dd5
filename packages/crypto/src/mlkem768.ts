import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

import type { dropbear_kem_desc } from "./algo.js";
import { genrandom } from "./dbrandom.js";
import { mlkem768WasmBase64 } from "./mlkem768_wasm.js";
import { instantiateWasm } from "./wasm.js";

// ML-KEM-768 (FIPS 203) for mlkem768x25519-sha256. Dropbear takes it from libcrux; ours is a
// port of that code to AssemblyScript (assembly/mlkem768.ts, which says why), run as
// WebAssembly: these wrappers copy the inputs into the module's memory, run it, copy the
// results out and zero the module's memory. The module is compiled and instantiated on first
// use (about a millisecond).

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

/** The module's exports (assembly/mlkem768.ts): the areas' addresses and the three operations. */
interface MlkemExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  readonly SEED: { readonly value: number };
  readonly PK: { readonly value: number };
  readonly SK: { readonly value: number };
  readonly CT: { readonly value: number };
  readonly SS: { readonly value: number };
  keypair(): void;
  enc(): number;
  dec(): void;
  burn(): void;
}

/** The instantiated module and views of its areas. */
interface Mlkem {
  readonly run: MlkemExports;
  readonly seed: Uint8Array;
  readonly pk: Uint8Array;
  readonly sk: Uint8Array;
  readonly ct: Uint8Array;
  readonly ss: Uint8Array;
}

let instance: Mlkem | null = null;

function mlkem(): Mlkem {
  if (instance === null) {
    const run = instantiateWasm<MlkemExports>(mlkem768WasmBase64, "mlkem768");
    const view = (area: { readonly value: number }, len: number): Uint8Array => new Uint8Array(run.memory.buffer, area.value, len);
    instance = {
      run,
      seed: view(run.SEED, MLKEM768_KEYGEN_SEED_LEN),
      pk: view(run.PK, crypto_kem_mlkem768_PUBLICKEYBYTES),
      sk: view(run.SK, crypto_kem_mlkem768_SECRETKEYBYTES),
      ct: view(run.CT, crypto_kem_mlkem768_CIPHERTEXTBYTES),
      ss: view(run.SS, crypto_kem_mlkem768_BYTES),
    };
  }
  return instance;
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
  const m = mlkem();
  m.seed.set(seed.subarray(0, MLKEM768_KEYGEN_SEED_LEN));
  m.run.keypair();
  pk.set(m.pk);
  sk.set(m.sk);
  m.run.burn();
  return 0;
}

/**
 * Deterministic encapsulation with the 32-byte message m (FIPS 203 ML-KEM.Encaps_internal).
 * A public key failing FIPS 203's modulus check ends the session (libcrux would carry on and
 * produce a secret the peer cannot share).
 */
export function mlkem768EncFromSeed(c: Uint8Array, k: Uint8Array, pk: Uint8Array, msg: Uint8Array): number {
  checkLen(c, crypto_kem_mlkem768_CIPHERTEXTBYTES);
  checkLen(k, crypto_kem_mlkem768_BYTES);
  checkLen(pk, crypto_kem_mlkem768_PUBLICKEYBYTES);
  checkLen(msg, MLKEM768_ENC_SEED_LEN);
  const m = mlkem();
  m.pk.set(pk.subarray(0, crypto_kem_mlkem768_PUBLICKEYBYTES));
  m.seed.set(msg.subarray(0, MLKEM768_ENC_SEED_LEN));
  const valid = m.run.enc() === 0;
  if (valid) {
    c.set(m.ct);
    k.set(m.ss);
  }
  m.run.burn();
  if (!valid) {
    dropbear_exit("Bad mlkem768");
  }
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
  const m = mlkem();
  m.sk.set(sk.subarray(0, crypto_kem_mlkem768_SECRETKEYBYTES));
  m.ct.set(c.subarray(0, crypto_kem_mlkem768_CIPHERTEXTBYTES));
  m.run.dec();
  k.set(m.ss);
  m.run.burn();
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
};

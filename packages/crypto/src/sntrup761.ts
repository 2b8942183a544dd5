import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

import type { dropbear_kem_desc } from "./algo.js";

// Streamlined NTRU Prime sntrup761 for sntrup761x25519-sha512, from liboqs compiled to
// WebAssembly (@oqs/liboqs-js). Instantiating the module is asynchronous and costs a few tens
// of milliseconds, so it happens on first use (kemLoad) and only once. The wasm draws its
// randomness from node:crypto's getRandomValues.
//
// liboqs-js only accepts plain Uint8Array (not Buffer, a subclass), so inputs are copied.

/** Public (encapsulation) key length. @dropbear sntrup761.h crypto_kem_sntrup761_PUBLICKEYBYTES */
export const crypto_kem_sntrup761_PUBLICKEYBYTES = 1158;
/** Secret (decapsulation) key length. @dropbear sntrup761.h crypto_kem_sntrup761_SECRETKEYBYTES */
export const crypto_kem_sntrup761_SECRETKEYBYTES = 1763;
/** Ciphertext length. @dropbear sntrup761.h crypto_kem_sntrup761_CIPHERTEXTBYTES */
export const crypto_kem_sntrup761_CIPHERTEXTBYTES = 1039;
/** Shared secret length. @dropbear sntrup761.h crypto_kem_sntrup761_BYTES */
export const crypto_kem_sntrup761_BYTES = 32;

type Sntrup761 = Awaited<ReturnType<typeof import("@oqs/liboqs-js/kem")["createSntrup761"]>>;

let kem: Sntrup761 | null = null;
let loading: Promise<void> | null = null;

/** Instantiate the WebAssembly module once; later calls share the first promise. */
export function sntrup761Load(): Promise<void> {
  loading ??= import("@oqs/liboqs-js/kem")
    .then((m) => m.createSntrup761())
    .then((k) => {
      kem = k;
    });
  return loading;
}

function impl(): Sntrup761 {
  if (kem === null) {
    dropbear_exit("sntrup761 used before sntrup761Load()");
  }
  return kem;
}

/** A plain Uint8Array copy of the first len bytes, as liboqs-js insists on. */
function plain(buf: Uint8Array, len: number): Uint8Array {
  if (buf.length < len) {
    dropbear_exit("Bad sntrup761");
  }
  const out = new Uint8Array(len);
  out.set(buf.subarray(0, len));
  return out;
}

function checkLen(buf: Uint8Array, len: number): void {
  if (buf.length < len) {
    dropbear_exit("Bad sntrup761");
  }
}

/** Make a key pair. @dropbear sntrup761.c crypto_kem_sntrup761_keypair */
export function crypto_kem_sntrup761_keypair(pk: Uint8Array, sk: Uint8Array): number {
  checkLen(pk, crypto_kem_sntrup761_PUBLICKEYBYTES);
  checkLen(sk, crypto_kem_sntrup761_SECRETKEYBYTES);
  const keys = impl().generateKeyPair();
  pk.set(keys.publicKey);
  sk.set(keys.secretKey);
  m_burn(keys.secretKey);
  return 0;
}

/** Encapsulate a fresh secret to pk. @dropbear sntrup761.c crypto_kem_sntrup761_enc */
export function crypto_kem_sntrup761_enc(c: Uint8Array, k: Uint8Array, pk: Uint8Array): number {
  checkLen(c, crypto_kem_sntrup761_CIPHERTEXTBYTES);
  checkLen(k, crypto_kem_sntrup761_BYTES);
  const res = impl().encapsulate(plain(pk, crypto_kem_sntrup761_PUBLICKEYBYTES));
  c.set(res.ciphertext);
  k.set(res.sharedSecret);
  m_burn(res.sharedSecret);
  return 0;
}

/**
 * Decapsulate c with sk into k. A wrong ciphertext yields sntrup761's implicit-rejection
 * secret, not an error. @dropbear sntrup761.c crypto_kem_sntrup761_dec
 */
export function crypto_kem_sntrup761_dec(k: Uint8Array, c: Uint8Array, sk: Uint8Array): number {
  checkLen(k, crypto_kem_sntrup761_BYTES);
  const skCopy = plain(sk, crypto_kem_sntrup761_SECRETKEYBYTES);
  try {
    const ss = impl().decapsulate(plain(c, crypto_kem_sntrup761_CIPHERTEXTBYTES), skCopy);
    k.set(ss);
    m_burn(ss);
  } finally {
    m_burn(skCopy);
  }
  return 0;
}

/** The KEM half of sntrup761x25519-sha512. @dropbear common-algo.c sntrup761_desc */
export const sntrup761_desc: dropbear_kem_desc = {
  public_len: crypto_kem_sntrup761_PUBLICKEYBYTES,
  secret_len: crypto_kem_sntrup761_SECRETKEYBYTES,
  ciphertext_len: crypto_kem_sntrup761_CIPHERTEXTBYTES,
  output_len: crypto_kem_sntrup761_BYTES,
  kem_gen: crypto_kem_sntrup761_keypair,
  kem_enc: crypto_kem_sntrup761_enc,
  kem_dec: crypto_kem_sntrup761_dec,
  kemLoad: sntrup761Load,
};

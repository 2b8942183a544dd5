import { createHash } from "node:crypto";

import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

import type { dropbear_kem_desc } from "./algo.js";
import { genrandom } from "./dbrandom.js";
import { sntrup761WasmBase64 } from "./sntrup761_wasm.js";
import { instantiateWasm } from "./wasm.js";

// Streamlined NTRU Prime sntrup761, the KEM half of sntrup761x25519-sha512, written after
// Dropbear's sntrup761.c (the "compact" implementation from SUPERCOP): the KEM's steps, hashing
// and small-polynomial work in TypeScript; the inversions, the products by a small polynomial,
// the constant-time sort and the encodings in WebAssembly written in AssemblyScript
// (assembly/sntrup761.ts says why).
//
// Ring: Z_q[x]/(x^p - x - 1) with p = 761, q = 4591; "small" polynomials have coefficients in
// {-1, 0, 1}, "short" ones are small with exactly w = 286 nonzero coefficients.
//
// Constant time: secret data never selects a branch or an array index. Choices are made with
// all-ones / all-zero masks (x >> 31 on an int32) as in the C, every loop runs a public number
// of times, and no BigInt is used. Values are kept in Int32Arrays (small numbers, so V8 keeps
// them as untagged int32). Work buffers are allocated once, reused, and zeroed after each call
// that put secrets in them. (JavaScript promises no timing, so this is as constant-time as a JIT
// allows, not a guarantee; the WebAssembly kernels run as compiled.)
//
// Randomness: Dropbear draws each 32-bit sample with its own genrandom call; we draw the 761
// samples of a Small_random / Short_random as one block of little-endian words. For a uniform
// source the two are the same distribution, and the block form is what the reference's
// known-answer tests (NIST's AES-256-CTR DRBG) assume, so the tests can reproduce them.

/** Public (encapsulation) key length. @dropbear sntrup761.h crypto_kem_sntrup761_PUBLICKEYBYTES */
export const crypto_kem_sntrup761_PUBLICKEYBYTES = 1158;
/** Secret (decapsulation) key length. @dropbear sntrup761.h crypto_kem_sntrup761_SECRETKEYBYTES */
export const crypto_kem_sntrup761_SECRETKEYBYTES = 1763;
/** Ciphertext length. @dropbear sntrup761.h crypto_kem_sntrup761_CIPHERTEXTBYTES */
export const crypto_kem_sntrup761_CIPHERTEXTBYTES = 1039;
/** Shared secret length. @dropbear sntrup761.h crypto_kem_sntrup761_BYTES */
export const crypto_kem_sntrup761_BYTES = 32;

/** Fills buf with random bytes; the tests substitute a deterministic generator. */
export type Sntrup761RandomBytes = (buf: Uint8Array) => void;

const systemRandom: Sntrup761RandomBytes = (buf) => genrandom(buf, buf.length);

/** Polynomial degree bound (a prime). @dropbear sntrup761.c p */
const p = 761;
/** Weight of short polynomials. @dropbear sntrup761.c w */
const w = 286;
/** Length of the truncated SHA-512 hashes. @dropbear sntrup761.c Hash_bytes */
const Hash_bytes = 32;
/** Bytes for a small polynomial, four coefficients a byte. @dropbear sntrup761.c Small_bytes */
const Small_bytes = (p + 3) >> 2;
/** f and 1/g, both small. @dropbear sntrup761.c SecretKeys_bytes */
const SecretKeys_bytes = 2 * Small_bytes;
/** Length of the plaintext confirmation hash ending a ciphertext. @dropbear sntrup761.c Confirm_bytes */
const Confirm_bytes = 32;
/** Encoded rounded polynomial: the ciphertext without its confirmation hash. */
const Rounded_bytes = crypto_kem_sntrup761_CIPHERTEXTBYTES - Confirm_bytes;

// ---------------------------------------------------------------------------------------------
// Work buffers, allocated once. Everything fits in int32 lanes.

const polyA = new Int32Array(p); // Fq h / c / cf
const polyB = new Int32Array(p); // Fq finv / hr / cf3
const polyC = new Int32Array(p); // Fq c (encrypt output)
const smallF = new Int32Array(p); // small f
const smallG = new Int32Array(p); // small g / e
const smallV = new Int32Array(p); // small 1/g
const smallR = new Int32Array(p); // small r (the KEM input)
const smallT = new Int32Array(p); // small ev
const sortList = new Int32Array(p);
const randomBlock = new Uint8Array(4 * p);
const randomWords = new Uint32Array(p);
const rEnc = new Uint8Array(Small_bytes);
const cNew = new Uint8Array(crypto_kem_sntrup761_CIPHERTEXTBYTES);
const cache = new Uint8Array(Hash_bytes);
const confirmInput = new Uint8Array(2 * Hash_bytes);
const sessionInput = new Uint8Array(Hash_bytes + crypto_kem_sntrup761_CIPHERTEXTBYTES);
const hashOut = new Uint8Array(Hash_bytes);

function burnAll(): void {
  for (const a of [polyA, polyB, polyC, smallF, smallG, smallV, smallR, smallT]) a.fill(0);
  for (const a of [sortList, randomWords]) a.fill(0);
  for (const a of [randomBlock, rEnc, cNew, confirmInput, sessionInput, hashOut]) m_burn(a);
}

// ---------------------------------------------------------------------------------------------
// Masks

/** All ones if x (a small int) is nonzero, else 0. @dropbear sntrup761.c crypto_int16_nonzero_mask */
function crypto_int16_nonzero_mask(x: number): number {
  return (x | -x) >> 31;
}

/** -1 if r does not have weight exactly w, else 0. @dropbear sntrup761.c Weightw_mask */
function Weightw_mask(r: Int32Array): number {
  let weight = 0;
  for (let i = 0; i < p; ++i) weight += r[i]! & 1;
  return crypto_int16_nonzero_mask(weight - w);
}

// ---------------------------------------------------------------------------------------------
// Polynomial arithmetic

// The polynomial arithmetic, the sort and the encodings run in WebAssembly (assembly/
// sntrup761.ts, which says why): each wrapper copies its inputs into the module's memory, runs
// the kernel, copies the result out and zeroes the module's memory. The module is compiled and
// instantiated on first use (under a millisecond).

/** The kernels' exports (assembly/sntrup761.ts); IN0, IN1, OUT are the areas' addresses. */
interface KernelExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  readonly IN0: { readonly value: number };
  readonly IN1: { readonly value: number };
  readonly OUT: { readonly value: number };
  readonly BYTES: { readonly value: number };
  burn(): void;
  R3_mult(): void;
  Rq_mult_small(): void;
  R3_recip(): number;
  Rq_recip3(): number;
  Rq_mult3(): void;
  R3_fromRq(): void;
  Round(): void;
  crypto_sort_uint32(): void;
  Rq_encode(): number;
  Rq_decode(): void;
  Rounded_encode(): number;
  Rounded_decode(): void;
}

/** The instantiated kernels and views of their input and output areas. */
interface Kernels {
  readonly run: KernelExports;
  readonly in0: Int32Array;
  readonly in1: Int32Array;
  readonly out: Int32Array;
  /** BYTES, as long as a public key. */
  readonly bytes: Uint8Array;
}

let kernelsInstance: Kernels | null = null;

function kernels(): Kernels {
  if (kernelsInstance === null) {
    const run = instantiateWasm<KernelExports>(sntrup761WasmBase64, "sntrup761");
    const view = (area: { readonly value: number }): Int32Array => new Int32Array(run.memory.buffer, area.value, p);
    const bytes = new Uint8Array(run.memory.buffer, run.BYTES.value, crypto_kem_sntrup761_PUBLICKEYBYTES);
    kernelsInstance = { run, in0: view(run.IN0), in1: view(run.IN1), out: view(run.OUT), bytes };
  }
  return kernelsInstance;
}

/** Runs kernel on a (and b), copies its output to out, zeroes the module's memory; returns the kernel's result. */
function runKernel(kernel: (k: KernelExports) => number | void, out: Int32Array, a: Int32Array, b?: Int32Array): number {
  const k = kernels();
  k.in0.set(a);
  if (b !== undefined) k.in1.set(b);
  const r = kernel(k.run);
  out.set(k.out);
  k.run.burn();
  return r ?? 0;
}

/** Runs an encoder on r and copies the bytes it wrote to s; zeroes the module's memory. */
function encodeKernel(kernel: (k: KernelExports) => number, s: Uint8Array, r: Int32Array): void {
  const k = kernels();
  k.in0.set(r);
  const len = kernel(k.run);
  s.set(k.bytes.subarray(0, len));
  k.run.burn();
}

/** Runs a decoder on the first len bytes of s and copies the polynomial to r; zeroes the module's memory. */
function decodeKernel(kernel: (k: KernelExports) => void, r: Int32Array, s: Uint8Array, len: number): void {
  const k = kernels();
  k.bytes.set(s.subarray(0, len));
  kernel(k.run);
  r.set(k.out);
  k.run.burn();
}

/** h = 3f in R/q. @dropbear sntrup761.c Rq_mult3 */
function Rq_mult3(h: Int32Array, f: Int32Array): void {
  runKernel((k) => k.Rq_mult3(), h, f);
}

/** Reduces an Fq polynomial coefficientwise mod 3. @dropbear sntrup761.c R3_fromRq */
function R3_fromRq(out: Int32Array, r: Int32Array): void {
  runKernel((k) => k.R3_fromRq(), out, r);
}

/** out = a minus its residue mod 3: each coefficient rounded to a multiple of 3. @dropbear sntrup761.c Round */
function Round(out: Int32Array, a: Int32Array): void {
  runKernel((k) => k.Round(), out, a);
}

/** h = f * g in R/3, both small. @dropbear sntrup761.c R3_mult */
function R3_mult(h: Int32Array, f: Int32Array, g: Int32Array): void {
  runKernel((k) => k.R3_mult(), h, f, g);
}

/** h = f * g in R/q, f an Fq polynomial and g small. @dropbear sntrup761.c Rq_mult_small */
function Rq_mult_small(h: Int32Array, f: Int32Array, g: Int32Array): void {
  runKernel((k) => k.Rq_mult_small(), h, f, g);
}

/**
 * out = 1/in in R/3; returns 0 when in is invertible, else -1 (out is then meaningless).
 * @dropbear sntrup761.c R3_recip
 */
function R3_recip(out: Int32Array, inp: Int32Array): number {
  return runKernel((k) => k.R3_recip(), out, inp);
}

/** out = 1/(3*in) in R/q; returns 0 when invertible. @dropbear sntrup761.c Rq_recip3 */
function Rq_recip3(out: Int32Array, inp: Int32Array): number {
  return runKernel((k) => k.Rq_recip3(), out, inp);
}

/**
 * x sorted as unsigned 32-bit values by a fixed network of compare-exchanges, so the order of
 * the data never shows. @dropbear sntrup761.c crypto_sort_uint32
 */
function crypto_sort_uint32(x: Int32Array): void {
  runKernel((k) => k.crypto_sort_uint32(), x, x);
}


// ---------------------------------------------------------------------------------------------
// Encoding

/** Packs a small polynomial four coefficients (+1, two bits each) to a byte. @dropbear sntrup761.c Small_encode */
function Small_encode(s: Uint8Array, f: Int32Array): void {
  let k = 0;
  for (let i = 0; i < p >> 2; ++i, k += 4) {
    s[i] = (f[k]! + 1) | ((f[k + 1]! + 1) << 2) | ((f[k + 2]! + 1) << 4) | ((f[k + 3]! + 1) << 6);
  }
  s[p >> 2] = f[k]! + 1;
}

/** Unpacks Small_encode's bytes. @dropbear sntrup761.c Small_decode */
function Small_decode(f: Int32Array, s: Uint8Array): void {
  let k = 0;
  for (let i = 0; i < p >> 2; ++i) {
    const x = s[i]!;
    f[k++] = (x & 3) - 1;
    f[k++] = ((x >> 2) & 3) - 1;
    f[k++] = ((x >> 4) & 3) - 1;
    f[k++] = ((x >> 6) & 3) - 1;
  }
  f[k] = (s[p >> 2]! & 3) - 1;
}

/** Encodes an Fq polynomial (the public key) into s. @dropbear sntrup761.c Rq_encode */
function Rq_encode(s: Uint8Array, r: Int32Array): void {
  encodeKernel((k) => k.Rq_encode(), s, r);
}

/** Decodes a public key into an Fq polynomial. @dropbear sntrup761.c Rq_decode */
function Rq_decode(r: Int32Array, s: Uint8Array): void {
  decodeKernel((k) => k.Rq_decode(), r, s, crypto_kem_sntrup761_PUBLICKEYBYTES);
}

/** Encodes a rounded polynomial (multiples of 3) as values mod (q+2)/3. @dropbear sntrup761.c Rounded_encode */
function Rounded_encode(s: Uint8Array, r: Int32Array): void {
  encodeKernel((k) => k.Rounded_encode(), s, r);
}

/** Decodes a rounded polynomial. @dropbear sntrup761.c Rounded_decode */
function Rounded_decode(r: Int32Array, s: Uint8Array): void {
  decodeKernel((k) => k.Rounded_decode(), r, s, Rounded_bytes);
}

// ---------------------------------------------------------------------------------------------
// Random polynomials and hashing

/** Fills randomWords with p little-endian 32-bit words from one randombytes call. */
function randomList(randombytes: Sntrup761RandomBytes): Uint32Array {
  randombytes(randomBlock);
  for (let i = 0, k = 0; i < p; ++i, k += 4) {
    randomWords[i] =
      randomBlock[k]! | (randomBlock[k + 1]! << 8) | (randomBlock[k + 2]! << 16) | (randomBlock[k + 3]! << 24);
  }
  randomBlock.fill(0);
  return randomWords;
}

/**
 * A short polynomial from p random words: w entries forced to ±1, the rest to 0, then sorted
 * by the random high bits, which shuffles them.
 * @dropbear sntrup761.c Short_fromlist
 */
function Short_fromlist(out: Int32Array, inp: Uint32Array): void {
  const L = sortList;
  for (let i = 0; i < w; ++i) L[i] = inp[i]! & -2;
  for (let i = w; i < p; ++i) L[i] = (inp[i]! & -3) | 1;
  crypto_sort_uint32(L);
  for (let i = 0; i < p; ++i) out[i] = (L[i]! & 3) - 1;
}

/** A uniformly random short polynomial. @dropbear sntrup761.c Short_random */
function Short_random(out: Int32Array, randombytes: Sntrup761RandomBytes): void {
  Short_fromlist(out, randomList(randombytes));
  randomWords.fill(0);
}

/** A uniformly random small polynomial (each 30-bit sample scaled into {-1, 0, 1}). @dropbear sntrup761.c Small_random */
function Small_random(out: Int32Array, randombytes: Sntrup761RandomBytes): void {
  const L = randomList(randombytes);
  for (let i = 0; i < p; ++i) out[i] = (((L[i]! & 0x3fffffff) * 3) >>> 30) - 1;
  randomWords.fill(0);
}

/** out[o..o+32) = the first 32 bytes of SHA-512(b ‖ input). @dropbear sntrup761.c Hash_prefix */
function Hash_prefix(out: Uint8Array, o: number, b: number, input: Uint8Array): void {
  const h = createHash("sha512").update(Uint8Array.of(b)).update(input).digest();
  out.set(h.subarray(0, Hash_bytes), o);
  h.fill(0);
}

// ---------------------------------------------------------------------------------------------
// The NTRU Prime core

/** h = g / (3f) with f short and g small (and invertible mod 3); ginv = 1/g mod 3. @dropbear sntrup761.c KeyGen */
function KeyGen(h: Int32Array, f: Int32Array, ginv: Int32Array, randombytes: Sntrup761RandomBytes): void {
  const g = smallG;
  const finv = polyB;
  for (;;) {
    Small_random(g, randombytes);
    // Whether g was invertible is public: a retry only shows that a discarded g was not.
    if (R3_recip(ginv, g) === 0) break;
  }
  Short_random(f, randombytes);
  Rq_recip3(finv, f);
  Rq_mult_small(h, finv, g);
}

/** c = Round(h * r). @dropbear sntrup761.c Encrypt */
function Encrypt(c: Int32Array, r: Int32Array, h: Int32Array): void {
  const hr = polyB;
  Rq_mult_small(hr, h, r);
  Round(c, hr);
}

/**
 * Recovers r from c with the secret f and 1/g; if the result is not short (c was not an honest
 * ciphertext), returns a fixed short vector instead, without branching.
 * @dropbear sntrup761.c Decrypt
 */
function Decrypt(r: Int32Array, c: Int32Array, f: Int32Array, ginv: Int32Array): void {
  const cf = polyA;
  const cf3 = polyB;
  const e = smallG;
  const ev = smallT;
  Rq_mult_small(cf, c, f);
  Rq_mult3(cf3, cf);
  R3_fromRq(e, cf3);
  R3_mult(ev, e, ginv);
  const keep = ~Weightw_mask(ev);
  for (let i = 0; i < w; ++i) r[i] = ((ev[i]! ^ 1) & keep) ^ 1;
  for (let i = w; i < p; ++i) r[i] = ev[i]! & keep;
}

/** Key generation into encoded pk and the first SecretKeys_bytes of sk. @dropbear sntrup761.c ZKeyGen */
function ZKeyGen(pk: Uint8Array, sk: Uint8Array, randombytes: Sntrup761RandomBytes): void {
  const h = polyA;
  const f = smallF;
  const v = smallV;
  KeyGen(h, f, v, randombytes);
  Rq_encode(pk, h);
  Small_encode(sk.subarray(0, Small_bytes), f);
  Small_encode(sk.subarray(Small_bytes, SecretKeys_bytes), v);
}

/** Encrypts the short r to the encoded pk, writing the rounded ciphertext to C. @dropbear sntrup761.c ZEncrypt */
function ZEncrypt(C: Uint8Array, r: Int32Array, pk: Uint8Array): void {
  const h = polyA;
  const c = polyC;
  Rq_decode(h, pk);
  Encrypt(c, r, h);
  Rounded_encode(C, c);
}

/** Decrypts the rounded ciphertext C with sk into r. @dropbear sntrup761.c ZDecrypt */
function ZDecrypt(r: Int32Array, C: Uint8Array, sk: Uint8Array): void {
  const f = smallF;
  const v = smallV;
  const c = polyC;
  Small_decode(f, sk.subarray(0, Small_bytes));
  Small_decode(v, sk.subarray(Small_bytes, SecretKeys_bytes));
  Rounded_decode(c, C);
  Decrypt(r, c, f, v);
}

/** h[o..o+32) = Hash_prefix(2, Hash_prefix(3, r_enc) ‖ cache). @dropbear sntrup761.c HashConfirm */
function HashConfirm(h: Uint8Array, o: number, r_enc: Uint8Array, cachePk: Uint8Array): void {
  const x = confirmInput;
  Hash_prefix(x, 0, 3, r_enc);
  x.set(cachePk.subarray(0, Hash_bytes), Hash_bytes);
  Hash_prefix(h, o, 2, x);
}

/** k = Hash_prefix(b, Hash_prefix(3, y) ‖ z): the session key from input y and ciphertext z. @dropbear sntrup761.c HashSession */
function HashSession(k: Uint8Array, b: number, y: Uint8Array, z: Uint8Array): void {
  const x = sessionInput;
  Hash_prefix(x, 0, 3, y);
  x.set(z.subarray(0, crypto_kem_sntrup761_CIPHERTEXTBYTES), Hash_bytes);
  Hash_prefix(hashOut, 0, b, x);
  k.set(hashOut);
}

/** Encodes r to r_enc and encrypts it to pk, with the confirmation hash, into c. @dropbear sntrup761.c Hide */
function Hide(c: Uint8Array, r_enc: Uint8Array, r: Int32Array, pk: Uint8Array, cachePk: Uint8Array): void {
  Small_encode(r_enc, r);
  ZEncrypt(c, r, pk);
  HashConfirm(c, Rounded_bytes, r_enc, cachePk);
}

/** -1 if the ciphertexts differ anywhere, 0 if equal, reading every byte. @dropbear sntrup761.c Ciphertexts_diff_mask */
function Ciphertexts_diff_mask(c: Uint8Array, c2: Uint8Array): number {
  let differentbits = 0;
  for (let i = 0; i < crypto_kem_sntrup761_CIPHERTEXTBYTES; ++i) differentbits |= c[i]! ^ c2[i]!;
  // differentbits - 1 is -1 exactly when equal, so its bit 8 is set exactly then.
  return (((differentbits - 1) >> 8) & 1) - 1;
}

// ---------------------------------------------------------------------------------------------
// The KEM

function checkLen(buf: Uint8Array, len: number): void {
  if (buf.length < len) {
    dropbear_exit("Bad sntrup761");
  }
}

/** Make a key pair. @dropbear sntrup761.c crypto_kem_sntrup761_keypair */
export function crypto_kem_sntrup761_keypair(
  pk: Uint8Array,
  sk: Uint8Array,
  randombytes: Sntrup761RandomBytes = systemRandom,
): number {
  checkLen(pk, crypto_kem_sntrup761_PUBLICKEYBYTES);
  checkLen(sk, crypto_kem_sntrup761_SECRETKEYBYTES);
  try {
    ZKeyGen(pk, sk, randombytes);
    let o = SecretKeys_bytes;
    sk.set(pk.subarray(0, crypto_kem_sntrup761_PUBLICKEYBYTES), o);
    o += crypto_kem_sntrup761_PUBLICKEYBYTES;
    randombytes(sk.subarray(o, o + Small_bytes));
    o += Small_bytes;
    Hash_prefix(sk, o, 4, pk.subarray(0, crypto_kem_sntrup761_PUBLICKEYBYTES));
  } finally {
    burnAll();
  }
  return 0;
}

/** Encapsulate a fresh secret to pk. @dropbear sntrup761.c crypto_kem_sntrup761_enc */
export function crypto_kem_sntrup761_enc(
  c: Uint8Array,
  k: Uint8Array,
  pk: Uint8Array,
  randombytes: Sntrup761RandomBytes = systemRandom,
): number {
  checkLen(c, crypto_kem_sntrup761_CIPHERTEXTBYTES);
  checkLen(k, crypto_kem_sntrup761_BYTES);
  checkLen(pk, crypto_kem_sntrup761_PUBLICKEYBYTES);
  const pub = pk.subarray(0, crypto_kem_sntrup761_PUBLICKEYBYTES);
  try {
    Hash_prefix(cache, 0, 4, pub);
    Short_random(smallR, randombytes);
    Hide(c, rEnc, smallR, pub, cache);
    HashSession(k, 1, rEnc, c);
  } finally {
    burnAll();
  }
  return 0;
}

/**
 * Decapsulate c with sk into k. A wrong ciphertext yields sntrup761's implicit-rejection
 * secret (a hash of the secret rho and c), not an error. @dropbear sntrup761.c crypto_kem_sntrup761_dec
 */
export function crypto_kem_sntrup761_dec(k: Uint8Array, c: Uint8Array, sk: Uint8Array): number {
  checkLen(k, crypto_kem_sntrup761_BYTES);
  checkLen(c, crypto_kem_sntrup761_CIPHERTEXTBYTES);
  checkLen(sk, crypto_kem_sntrup761_SECRETKEYBYTES);
  const pk = sk.subarray(SecretKeys_bytes, SecretKeys_bytes + crypto_kem_sntrup761_PUBLICKEYBYTES);
  const rhoAt = SecretKeys_bytes + crypto_kem_sntrup761_PUBLICKEYBYTES;
  const cachePk = sk.subarray(rhoAt + Small_bytes, rhoAt + Small_bytes + Hash_bytes);
  try {
    ZDecrypt(smallR, c, sk);
    Hide(cNew, rEnc, smallR, pk, cachePk);
    const mask = Ciphertexts_diff_mask(c, cNew);
    for (let i = 0; i < Small_bytes; ++i) rEnc[i] = rEnc[i]! ^ (mask & (rEnc[i]! ^ sk[rhoAt + i]!));
    HashSession(k, 1 + mask, rEnc, c);
  } finally {
    burnAll();
  }
  return 0;
}

/** The KEM half of sntrup761x25519-sha512. @dropbear common-algo.c sntrup761_desc */
export const sntrup761_desc: dropbear_kem_desc = {
  public_len: crypto_kem_sntrup761_PUBLICKEYBYTES,
  secret_len: crypto_kem_sntrup761_SECRETKEYBYTES,
  ciphertext_len: crypto_kem_sntrup761_CIPHERTEXTBYTES,
  output_len: crypto_kem_sntrup761_BYTES,
  kem_gen: (pk, sk) => crypto_kem_sntrup761_keypair(pk, sk),
  kem_enc: (c, k, pk) => crypto_kem_sntrup761_enc(c, k, pk),
  kem_dec: crypto_kem_sntrup761_dec,
};

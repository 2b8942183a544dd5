import { createHash } from "node:crypto";

import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

import type { dropbear_kem_desc } from "./algo.js";
import { genrandom } from "./dbrandom.js";

// Streamlined NTRU Prime sntrup761, the KEM half of sntrup761x25519-sha512, written in
// TypeScript after Dropbear's sntrup761.c (the "compact" implementation from SUPERCOP).
//
// Ring: Z_q[x]/(x^p - x - 1) with p = 761, q = 4591; "small" polynomials have coefficients in
// {-1, 0, 1}, "short" ones are small with exactly w = 286 nonzero coefficients.
//
// Constant time: secret data never selects a branch or an array index. Choices are made with
// all-ones / all-zero masks (x >> 31 on an int32) as in the C, every loop runs a public number
// of times, and no BigInt is used. Values are kept in Int32Arrays (small numbers, so V8 keeps
// them as untagged int32) and products go through Math.imul. Three places use double-precision
// arithmetic on integers instead, exact because every value stays far below 2^53 (and
// floating-point add, multiply and floor take the same time whatever such values are): the
// one-step reduction in Rq_recip3, the two-lanes-per-double polynomial products, and the
// 32x32-bit multiply-high of uint32_divmod_uint14 (public data only). The other speed-ups keep
// the C's arithmetic and only change the layout: R3_recip is bit-sliced, and Rq_recip3's loops
// stop at bounds that depend on the step number alone. Work buffers are allocated once, reused,
// and zeroed after each call that put secrets in them. (JavaScript promises no timing, so this
// is as constant-time as a JIT allows, not a guarantee.)
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
/** Coefficient modulus (a prime). @dropbear sntrup761.c q */
const q = 4591;
/** Weight of short polynomials. @dropbear sntrup761.c w */
const w = 286;
/** (q - 1) / 2: Fq values live in [-q12, q12]. @dropbear sntrup761.c q12 */
const q12 = (q - 1) / 2;
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
const product = new Int32Array(2 * p - 1); // unreduced products
// Rq_recip3's f, g, v, r, in doubles (see there); one spare slot each for the public bounds.
const recipF = new Float64Array(p + 2);
const recipG = new Float64Array(p + 2);
const recipV = new Float64Array(p + 2);
const recipR = new Float64Array(p + 2);
const sortList = new Int32Array(p);
const randomBlock = new Uint8Array(4 * p);
const randomWords = new Uint32Array(p);
const encR = new Uint16Array(p);
const encM = new Uint16Array(p);
const rEnc = new Uint8Array(Small_bytes);
const cNew = new Uint8Array(crypto_kem_sntrup761_CIPHERTEXTBYTES);
const cache = new Uint8Array(Hash_bytes);
const confirmInput = new Uint8Array(2 * Hash_bytes);
const sessionInput = new Uint8Array(Hash_bytes + crypto_kem_sntrup761_CIPHERTEXTBYTES);
const hashOut = new Uint8Array(Hash_bytes);

function burnAll(): void {
  for (const a of [polyA, polyB, polyC, smallF, smallG, smallV, smallR, smallT, product]) a.fill(0);
  for (const a of [recipF, recipG, recipV, recipR, sortList, randomWords]) a.fill(0);
  for (const a of [randomBlock, rEnc, cNew, confirmInput, sessionInput, hashOut]) m_burn(a);
  encR.fill(0);
  for (const a of [...levelR2, ...levelBottomR, ...levelBottomT]) a.fill(0);
}

// ---------------------------------------------------------------------------------------------
// Masks and sorting

/** All ones if x (an int32) is negative, else 0. @dropbear sntrup761.c crypto_int32_negative_mask */
function crypto_int32_negative_mask(x: number): number {
  return x >> 31;
}

/** All ones if x (a small int) is nonzero, else 0. @dropbear sntrup761.c crypto_int16_nonzero_mask */
function crypto_int16_nonzero_mask(x: number): number {
  return (x | -x) >> 31;
}

/**
 * Sorts x[0..n) ascending as signed 32-bit values with a fixed network of compare-exchanges
 * (min to the lower index, max to the higher, by masks), so the order of the data never shows.
 * @dropbear sntrup761.c crypto_sort_int32
 */
function crypto_sort_int32(x: Int32Array, n: number): void {
  if (n < 2) return;
  let top = 1;
  while (top < n - top) top += top;

  for (let stride = top; stride >= 1; stride >>= 1) {
    let i = 0;
    while (i + 2 * stride <= n) {
      for (let j = i; j < i + stride; ++j) minmaxAt(x, j, j + stride);
      i += 2 * stride;
    }
    for (let j = i; j < n - stride; ++j) minmaxAt(x, j, j + stride);

    i = 0;
    let j = 0;
    merge: for (let span = top; span > stride; span >>= 1) {
      if (j !== i) {
        for (;;) {
          if (j === n - span) continue merge;
          x[j + stride] = minChain(x, j, span, stride);
          ++j;
          if (j === i + stride) {
            i += 2 * stride;
            break;
          }
        }
      }
      while (i + stride <= n - span) {
        for (j = i; j < i + stride; ++j) x[j + stride] = minChain(x, j, span, stride);
        i += 2 * stride;
      }
      j = i;
      while (j < n - span) {
        x[j + stride] = minChain(x, j, span, stride);
        ++j;
      }
    }
  }
}

/** Compare-exchange x[a] and x[b] so that x[a] <= x[b], without a branch. */
function minmaxAt(x: Int32Array, a: number, b: number): void {
  const lo = x[a]!;
  const hi = x[b]!;
  const diff = lo ^ hi;
  let d = (hi - lo) | 0;
  d ^= diff & (d ^ hi); // sign of d is now "hi < lo", even when hi - lo overflowed
  d = (d >> 31) & diff;
  x[a] = lo ^ d;
  x[b] = hi ^ d;
}

/**
 * Runs a = x[j + stride] through compare-exchanges with x[j + r] for r = span, span/2, ...,
 * > stride, leaving the larger value of each pair in x[j + r]; returns what is left in a.
 */
function minChain(x: Int32Array, j: number, span: number, stride: number): number {
  let a = x[j + stride]!;
  for (let r = span; r > stride; r >>= 1) {
    const b = x[j + r]!;
    const diff = a ^ b;
    let d = (b - a) | 0;
    d ^= diff & (d ^ b);
    d = (d >> 31) & diff;
    a ^= d;
    x[j + r] = b ^ d;
  }
  return a;
}

/** Sorts unsigned 32-bit values by flipping the sign bit around the signed sort. @dropbear sntrup761.c crypto_sort_uint32 */
function crypto_sort_uint32(x: Int32Array, n: number): void {
  for (let j = 0; j < n; ++j) x[j] = x[j]! ^ 0x80000000;
  crypto_sort_int32(x, n);
  for (let j = 0; j < n; ++j) x[j] = x[j]! ^ 0x80000000;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic mod 3 and mod q

/** The representative of x mod 3 in {-1, 0, 1}. @dropbear sntrup761.c F3_freeze */
function F3_freeze(x: number): number {
  return x - Math.imul(3, (Math.imul(10923, x) + 16384) >> 15);
}

const q16 = Math.floor((0x10000 + q12) / q);
const q20 = Math.floor((0x100000 + q12) / q);
const q28 = Math.floor((0x10000000 + q12) / q);

/** The representative of x mod q in [-q12, q12], for |x| well inside int32. @dropbear sntrup761.c Fq_freeze */
function Fq_freeze(x: number): number {
  x -= q * (Math.imul(q16, x) >> 16);
  x -= q * (Math.imul(q20, x) >> 20);
  return x - q * ((Math.imul(q28, x) + 0x8000000) >> 28);
}

const qInverse = 1 / q;

/**
 * Fq_freeze in one step for the products of Rq_recip3 (|x| <= 2*q12^2 < 2^24): x minus q times
 * the nearest integer to x/q. In double precision x*(1/q) is within 2^-30 of x/q, which is never
 * within 1/(2q) of a half-integer, so the rounding is exact; floor compiles to one instruction,
 * and q times it (below 2^24) is exact too.
 * A test checks it against the exact remainder over that whole range.
 */
export function sntrup761FreezeWide(x: number): number {
  return x - q * Math.floor(x * qInverse + 0.5);
}

/** a1^(q-2), the inverse of a1 mod q (by a fixed chain of multiplications). @dropbear sntrup761.c Fq_recip */
function Fq_recip(a1: number): number {
  let ai = a1;
  for (let i = 1; i < q - 2; ++i) ai = Fq_freeze(Math.imul(a1, ai));
  return ai;
}

/** -1 if r does not have weight exactly w, else 0. @dropbear sntrup761.c Weightw_mask */
function Weightw_mask(r: Int32Array): number {
  let weight = 0;
  for (let i = 0; i < p; ++i) weight += r[i]! & 1;
  return crypto_int16_nonzero_mask(weight - w);
}

// ---------------------------------------------------------------------------------------------
// Polynomial arithmetic

/** Reduces an Fq polynomial coefficientwise mod 3. @dropbear sntrup761.c R3_fromRq */
function R3_fromRq(out: Int32Array, r: Int32Array): void {
  for (let i = 0; i < p; ++i) out[i] = F3_freeze(r[i]!);
}

// Products by a small polynomial run two multiplications per step in double precision: the small
// factor g is split at H = ceil(p/2) into halves packed as gPacked[j] = g[j] + 2^26 g[H+j], so
// f[i] * gPacked[j] adds f[i]g[j] to the low lane and f[i]g[H+j] to the high one. Every lane
// stays below 2^21 in size (761 products of at most 2295), so the packed sums stay exact (below
// 2^48) and split apart exactly again; no branch, no data-dependent index.
const H = (p + 1) >> 1;
const LANE = 2 ** 26;
const gPacked = new Float64Array(H);
const lanes = new Float64Array(p + H - 1);

/**
 * fg[0..2p-1) = f * g (unreduced, not yet folded), f with |coefficients| <= q12 and g small,
 * by packed schoolbook multiplication.
 */
function multiplyPacked(fg: Int32Array, f: Int32Array, g: Int32Array): void {
  for (let j = 0; j < H; ++j) gPacked[j] = g[j]! + (H + j < p ? g[H + j]! : 0) * LANE;
  lanes.fill(0);
  for (let i = 0; i < p; ++i) {
    const fi = f[i]!;
    for (let j = 0; j < H; ++j) lanes[i + j] = lanes[i + j]! + fi * gPacked[j]!;
  }
  // Low lanes are products at i + j, high lanes at i + j + H.
  fg.fill(0);
  for (let k = 0; k < p + H - 1; ++k) {
    const x = lanes[k]!;
    const hi = Math.floor(x / LANE + 0.5);
    fg[k] = fg[k]! + (x - hi * LANE);
    if (k + H < 2 * p - 1) fg[k + H] = fg[k + H]! + hi;
  }
  lanes.fill(0);
  gPacked.fill(0);
}

/** Folds a degree-(2p-2) product back into the ring with x^p = x + 1. */
function foldProduct(fg: Int32Array): void {
  for (let i = p; i < p + p - 1; ++i) {
    const t = fg[i]!;
    fg[i - p] = fg[i - p]! + t;
    fg[i - p + 1] = fg[i - p + 1]! + t;
  }
}

/** h = f * g in R/3, both small. @dropbear sntrup761.c R3_mult */
function R3_mult(h: Int32Array, f: Int32Array, g: Int32Array): void {
  const fg = product;
  multiplyPacked(fg, f, g);
  foldProduct(fg);
  for (let i = 0; i < p; ++i) h[i] = F3_freeze(fg[i]!);
}

/** h = f * g in R/q, f an Fq polynomial and g small. @dropbear sntrup761.c Rq_mult_small */
function Rq_mult_small(h: Int32Array, f: Int32Array, g: Int32Array): void {
  const fg = product;
  multiplyPacked(fg, f, g);
  foldProduct(fg);
  for (let i = 0; i < p; ++i) h[i] = Fq_freeze(fg[i]!);
}

/** h = 3f in R/q. @dropbear sntrup761.c Rq_mult3 */
function Rq_mult3(h: Int32Array, f: Int32Array): void {
  for (let i = 0; i < p; ++i) h[i] = Fq_freeze(Math.imul(3, f[i]!));
}

// R3_recip works on bit-sliced vectors: coefficient j of a vector in {-1, 0, 1} is bit j%32 of
// word j>>5 in two planes, "nonzero" (M) and "negative" (S, 0 whenever M is 0). A step then costs
// a few word operations per 32 coefficients instead of a few per coefficient.
const R3_WORDS = (p + 1 + 31) >> 5;
/** Bits of the top word that hold coefficients 0..p. */
const R3_TOPMASK = (1 << ((p + 1) & 31)) - 1;
const r3fM = new Int32Array(R3_WORDS);
const r3fS = new Int32Array(R3_WORDS);
const r3gM = new Int32Array(R3_WORDS);
const r3gS = new Int32Array(R3_WORDS);
const r3vM = new Int32Array(R3_WORDS);
const r3vS = new Int32Array(R3_WORDS);
const r3rM = new Int32Array(R3_WORDS);
const r3rS = new Int32Array(R3_WORDS);

/** Coefficient j (in {-1, 0, 1}) of the bit-sliced vector (m, s). */
function r3Get(m: Int32Array, s: Int32Array, j: number): number {
  const bm = (m[j >> 5]! >>> (j & 31)) & 1;
  const bs = (s[j >> 5]! >>> (j & 31)) & 1;
  return bm - 2 * (bm & bs);
}

/** Sets coefficient j (currently 0) of (m, s) to x in {-1, 0, 1}. */
function r3Set(m: Int32Array, s: Int32Array, j: number, x: number): void {
  m[j >> 5] = m[j >> 5]! | ((x & 1) << (j & 31));
  s[j >> 5] = s[j >> 5]! | ((x >>> 31) << (j & 31));
}

/**
 * a += c*b mod 3 on bit-sliced vectors, where c is given by two masks: cnz (all ones if c is
 * nonzero) and cneg (all ones if c = -1).
 */
function r3AddScaled(aM: Int32Array, aS: Int32Array, bM: Int32Array, bS: Int32Array, cnz: number, cneg: number): void {
  for (let k = 0; k < R3_WORDS; ++k) {
    const am = aM[k]!;
    const as = aS[k]!;
    const bm = bM[k]! & cnz;
    const bs = (bS[k]! ^ cneg) & bm;
    // Both nonzero: equal signs give -a (1+1 = -1, -1-1 = 1), opposite signs give 0.
    const same = am & bm & ~(as ^ bs);
    aM[k] = (am ^ bm) | same;
    aS[k] = (am & ~bm & as) | (bm & ~am & bs) | (same & ~as);
  }
}

/** Conditionally exchanges two word vectors: where swap is all ones. */
function swapWords(a: Int32Array, b: Int32Array, swap: number): void {
  for (let k = 0; k < R3_WORDS; ++k) {
    const t = swap & (a[k]! ^ b[k]!);
    a[k] = a[k]! ^ t;
    b[k] = b[k]! ^ t;
  }
}

/**
 * out = 1/in in R/3 by 2p-1 constant-time division steps (Bernstein-Yang); returns 0 when in
 * is invertible, else -1 (out is then meaningless).
 * @dropbear sntrup761.c R3_recip
 */
function R3_recip(out: Int32Array, inp: Int32Array): number {
  const fM = r3fM, fS = r3fS, gM = r3gM, gS = r3gS;
  const vM = r3vM, vS = r3vS, rM = r3rM, rS = r3rS;
  let delta = 1;
  for (const a of [fM, fS, gM, gS, vM, vS, rM, rS]) a.fill(0);
  r3Set(rM, rS, 0, 1);
  r3Set(fM, fS, 0, 1);
  r3Set(fM, fS, p - 1, -1);
  r3Set(fM, fS, p, -1);
  for (let i = 0; i < p; ++i) r3Set(gM, gS, p - 1 - i, inp[i]!);

  for (let loop = 0; loop < 2 * p - 1; ++loop) {
    // v = x*v: every coefficient moves up one place; the top one falls off at p + 1.
    let carryM = 0;
    let carryS = 0;
    for (let k = 0; k < R3_WORDS; ++k) {
      const m = vM[k]!;
      const s = vS[k]!;
      vM[k] = (m << 1) | carryM;
      vS[k] = (s << 1) | carryS;
      carryM = m >>> 31;
      carryS = s >>> 31;
    }
    vM[R3_WORDS - 1] = vM[R3_WORDS - 1]! & R3_TOPMASK;
    vS[R3_WORDS - 1] = vS[R3_WORDS - 1]! & R3_TOPMASK;

    const g0m = gM[0]! & 1;
    const f0m = fM[0]! & 1;
    // sign = -g0*f0: nonzero when both are, and -1 when g0 and f0 have the same sign.
    const cnz = -(g0m & f0m);
    const cneg = -(1 ^ ((gS[0]! ^ fS[0]!) & 1));
    const swap = crypto_int32_negative_mask(-delta) & -g0m;
    delta ^= swap & (delta ^ -delta);
    delta += 1;

    swapWords(fM, gM, swap);
    swapWords(fS, gS, swap);
    swapWords(vM, rM, swap);
    swapWords(vS, rS, swap);
    r3AddScaled(gM, gS, fM, fS, cnz, cneg);
    r3AddScaled(rM, rS, vM, vS, cnz, cneg);

    // g = g/x: its constant term is now 0; every coefficient moves down one place.
    for (let k = 0; k < R3_WORDS - 1; ++k) {
      gM[k] = (gM[k]! >>> 1) | (gM[k + 1]! << 31);
      gS[k] = (gS[k]! >>> 1) | (gS[k + 1]! << 31);
    }
    gM[R3_WORDS - 1] = gM[R3_WORDS - 1]! >>> 1;
    gS[R3_WORDS - 1] = gS[R3_WORDS - 1]! >>> 1;
  }

  const sign = r3Get(fM, fS, 0);
  for (let i = 0; i < p; ++i) out[i] = Math.imul(sign, r3Get(vM, vS, p - 1 - i));
  for (const a of [fM, fS, gM, gS, vM, vS, rM, rS]) a.fill(0);
  return crypto_int16_nonzero_mask(delta);
}

/**
 * out = 1/(3*in) in R/q by 2p-1 constant-time division steps; returns 0 when invertible.
 *
 * f, g, v, r are kept as doubles and every step is exact double arithmetic on integers: the
 * products and sums stay below 2*q12^2 < 2^24, and the reduction is sntrup761FreezeWide's. The
 * conditional swap becomes x + s*(y - x) with s in {0, 1} instead of a masked XOR. This is the
 * C's arithmetic, only without int/double conversions in the inner loops, and a step is its own
 * small function (rqRecipStep): V8 compiles that whole within the first few of the 2p-1 steps
 * of a fresh process, where it would otherwise run much of the first key generation in its
 * interpreter (the client's first exchange waits for that).
 * @dropbear sntrup761.c Rq_recip3
 */
function Rq_recip3(out: Int32Array, inp: Int32Array): number {
  const f = recipF;
  const g = recipG;
  const v = recipV;
  const r = recipR;
  let delta = 1;
  v.fill(0);
  r.fill(0);
  r[0] = Fq_recip(3);
  f.fill(0);
  f[0] = 1;
  f[p - 1] = -1;
  f[p] = -1;
  g.fill(0);
  for (let i = 0; i < p; ++i) g[p - 1 - i] = inp[i]!;

  for (let loop = 0; loop < 2 * p - 1; ++loop) delta = rqRecipStep(f, g, v, r, loop, delta);

  const scale = Fq_recip(f[0]!);
  for (let i = 0; i < p; ++i) out[i] = Fq_freeze(Math.imul(scale, v[p - 1 - i]!));
  return crypto_int16_nonzero_mask(delta);
}

/** Division step `loop` of Rq_recip3 on (f, g, v, r); returns the new delta. */
function rqRecipStep(f: Float64Array, g: Float64Array, v: Float64Array, r: Float64Array, loop: number, delta: number): number {
  const f0 = f[0]!;
  const g0 = g[0]!;
  const swap = crypto_int32_negative_mask(-delta) & crypto_int16_nonzero_mask(g0);
  delta ^= swap & (delta ^ -delta);
  delta += 1;
  // After the conditional swap the C computes g = f0*g - g0*f and r = f0*r - g0*v. Swapping
  // only negates those (f0*g - g0*f becomes g0*f - f0*g), so we compute them from the
  // unswapped values with a = ±f0 and b = ±g0, and only f and v take the conditional select.
  const s = -swap; // 1 when swapping, else 0
  const sgn = 1 - 2 * s;
  const a = sgn * f0;
  const b = sgn * g0;

  // Public bounds on where coefficients can be nonzero (they depend on loop only): v and r
  // hold indices 0..loop, since v moves up one place per step and r starts at 1; f and g
  // hold indices below 2p - loop, since each step shortens one of them by one (the lengths
  // add up to 2p + 1 - loop) and f never gets shorter than 1. When g has become 0 the bound
  // may undercount f, but f is then never touched again. (Math.min, not a branch, so the
  // compiled step has seen both sides from the first call.)
  const vrEnd = Math.min(loop, p);
  const fgEnd = Math.min(p, 2 * p - loop);

  let vPrev = 0;
  for (let i = 0; i <= vrEnd; ++i) {
    const vi = vPrev; // v = x*v
    vPrev = v[i]!;
    const ri = r[i]!;
    v[i] = vi + s * (ri - vi);
    r[i] = sntrup761FreezeWide(a * ri - b * vi);
  }
  // Index p + 1 is a spare slot: what falls off the top lands there and is never read.
  v[vrEnd + 1] = vPrev;

  f[0] = f0 + s * (g0 - f0);
  for (let i = 1; i <= fgEnd; ++i) {
    const fi = f[i]!;
    const gi = g[i]!;
    f[i] = fi + s * (gi - fi);
    g[i - 1] = sntrup761FreezeWide(a * gi - b * fi);
  }
  g[fgEnd] = 0;
  return delta;
}

/** out = a minus its residue mod 3: each coefficient rounded to a multiple of 3. @dropbear sntrup761.c Round */
function Round(out: Int32Array, a: Int32Array): void {
  for (let i = 0; i < p; ++i) out[i] = a[i]! - F3_freeze(a[i]!);
}

// ---------------------------------------------------------------------------------------------
// Encoding of integer vectors with per-position moduli M[i] < 2^14 (public)

/**
 * Q = floor(x / m) and r = x mod m for x < 2^32 and 0 < m < 2^14, by two multiply-high
 * estimates and a masked correction, as the C does. Writes [Q, r] to divmodOut.
 * @dropbear sntrup761.c uint32_divmod_uint14
 */
function uint32_divmod_uint14(x: number, m: number): void {
  const v = Math.floor(0x80000000 / m);
  let Q = mulHigh31(x, v);
  x -= Q * m;
  const qpart = mulHigh31(x, v);
  x -= qpart * m;
  Q += qpart;
  x -= m;
  Q += 1;
  const mask = crypto_int32_negative_mask(x | 0);
  x += mask & m;
  Q += mask;
  divmodOut[0] = Q;
  divmodOut[1] = x;
}
const divmodOut = [0, 0];

/** floor(x * v / 2^31) for x < 2^32 and v <= 2^31, exactly (the 64-bit product of the C). */
function mulHigh31(x: number, v: number): number {
  const hi = Math.floor(x / 0x10000) * v; // < 2^47
  const lo = (x & 0xffff) * v; // < 2^47
  return Math.floor((hi + Math.floor(lo / 0x10000)) / 0x8000);
}

/** x mod m for x < 2^32 and 0 < m < 2^14. @dropbear sntrup761.c uint32_mod_uint14 */
function uint32_mod_uint14(x: number, m: number): number {
  uint32_divmod_uint14(x, m);
  return divmodOut[1]!;
}

// Per-level scratch for Encode/Decode, which halve len at each level.
const levelR2: Uint16Array[] = [];
const levelM2: Uint16Array[] = [];
const levelBottomR: Uint16Array[] = [];
const levelBottomT: Uint32Array[] = [];
for (let len = p, d = 0; len > 1; len = (len + 1) >> 1, d++) {
  levelR2[d] = new Uint16Array((len + 1) >> 1);
  levelM2[d] = new Uint16Array((len + 1) >> 1);
  levelBottomR[d] = new Uint16Array(len >> 1);
  levelBottomT[d] = new Uint32Array(len >> 1);
}

/**
 * Writes R (R[i] < M[i]) to out from offset o as a mixed-radix number, pairing neighbours and
 * emitting whole bytes whenever a pair's range reaches 2^14; returns the offset reached.
 * @dropbear sntrup761.c Encode
 */
function Encode(out: Uint8Array, o: number, R: Uint16Array, M: Uint16Array, len: number, depth = 0): number {
  if (len === 1) {
    let r = R[0]!;
    let m = M[0]!;
    while (m > 1) {
      out[o++] = r & 0xff;
      r >>>= 8;
      m = (m + 255) >>> 8;
    }
    return o;
  }
  const R2 = levelR2[depth]!;
  const M2 = levelM2[depth]!;
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m0 = M[i]!;
    let r = R[i]! + R[i + 1]! * m0;
    let m = M[i + 1]! * m0;
    while (m >= 16384) {
      out[o++] = r & 0xff;
      r >>>= 8;
      m = (m + 255) >>> 8;
    }
    R2[i >> 1] = r;
    M2[i >> 1] = m;
  }
  if (i < len) {
    R2[i >> 1] = R[i]!;
    M2[i >> 1] = M[i]!;
  }
  return Encode(out, o, R2, M2, (len + 1) >> 1, depth + 1);
}

/**
 * Reads what Encode wrote for moduli M (from S at offset s) into out; every output is reduced
 * below its modulus, whatever the input bytes.
 * @dropbear sntrup761.c Decode
 */
function Decode(out: Uint16Array, S: Uint8Array, s: number, M: Uint16Array, len: number, depth = 0): void {
  if (len === 1) {
    if (M[0] === 1) out[0] = 0;
    else if (M[0]! <= 256) out[0] = uint32_mod_uint14(S[s]!, M[0]!);
    else out[0] = uint32_mod_uint14(S[s]! + (S[s + 1]! << 8), M[0]!);
    return;
  }
  const R2 = levelR2[depth]!;
  const M2 = levelM2[depth]!;
  const bottomr = levelBottomR[depth]!;
  const bottomt = levelBottomT[depth]!;
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m = M[i]! * M[i + 1]!;
    if (m > 256 * 16383) {
      bottomt[i >> 1] = 256 * 256;
      bottomr[i >> 1] = S[s]! + 256 * S[s + 1]!;
      s += 2;
      M2[i >> 1] = (((m + 255) >>> 8) + 255) >>> 8;
    } else if (m >= 16384) {
      bottomt[i >> 1] = 256;
      bottomr[i >> 1] = S[s]!;
      s += 1;
      M2[i >> 1] = (m + 255) >>> 8;
    } else {
      bottomt[i >> 1] = 1;
      bottomr[i >> 1] = 0;
      M2[i >> 1] = m;
    }
  }
  if (i < len) M2[i >> 1] = M[i]!;
  Decode(R2, S, s, M2, (len + 1) >> 1, depth + 1);
  let o = 0;
  for (i = 0; i < len - 1; i += 2) {
    const r = bottomr[i >> 1]! + bottomt[i >> 1]! * R2[i >> 1]!;
    uint32_divmod_uint14(r, M[i]!);
    const r0 = divmodOut[1]!;
    const r1 = uint32_mod_uint14(divmodOut[0]!, M[i + 1]!);
    out[o++] = r0;
    out[o++] = r1;
  }
  if (i < len) out[o++] = R2[i >> 1]!;
}

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

/** Encodes an Fq polynomial (the public key). @dropbear sntrup761.c Rq_encode */
function Rq_encode(s: Uint8Array, r: Int32Array): void {
  for (let i = 0; i < p; ++i) {
    encR[i] = r[i]! + q12;
    encM[i] = q;
  }
  Encode(s, 0, encR, encM, p);
}

/** Decodes a public key into an Fq polynomial. @dropbear sntrup761.c Rq_decode */
function Rq_decode(r: Int32Array, s: Uint8Array): void {
  encM.fill(q);
  Decode(encR, s, 0, encM, p);
  for (let i = 0; i < p; ++i) r[i] = encR[i]! - q12;
}

/** Encodes a rounded polynomial (multiples of 3) as values mod (q+2)/3. @dropbear sntrup761.c Rounded_encode */
function Rounded_encode(s: Uint8Array, r: Int32Array): void {
  for (let i = 0; i < p; ++i) {
    encR[i] = ((r[i]! + q12) * 10923) >> 15;
    encM[i] = (q + 2) / 3;
  }
  Encode(s, 0, encR, encM, p);
}

/** Decodes a rounded polynomial. @dropbear sntrup761.c Rounded_decode */
function Rounded_decode(r: Int32Array, s: Uint8Array): void {
  encM.fill((q + 2) / 3);
  Decode(encR, s, 0, encM, p);
  for (let i = 0; i < p; ++i) r[i] = encR[i]! * 3 - q12;
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
  crypto_sort_uint32(L, p);
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

/** Nothing to load any more: the KEM is plain TypeScript. */
export function sntrup761Load(): Promise<void> {
  return loaded;
}
const loaded: Promise<void> = Promise.resolve();

/** The KEM half of sntrup761x25519-sha512. @dropbear common-algo.c sntrup761_desc */
export const sntrup761_desc: dropbear_kem_desc = {
  public_len: crypto_kem_sntrup761_PUBLICKEYBYTES,
  secret_len: crypto_kem_sntrup761_SECRETKEYBYTES,
  ciphertext_len: crypto_kem_sntrup761_CIPHERTEXTBYTES,
  output_len: crypto_kem_sntrup761_BYTES,
  kem_gen: (pk, sk) => crypto_kem_sntrup761_keypair(pk, sk),
  kem_enc: (c, k, pk) => crypto_kem_sntrup761_enc(c, k, pk),
  kem_dec: crypto_kem_sntrup761_dec,
  kemLoad: sntrup761Load,
};

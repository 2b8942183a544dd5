// sntrup761's arithmetic in WebAssembly, written in AssemblyScript: the polynomial arithmetic
// (inversions, products, reductions), the constant-time sort, and the encoding of public keys
// and ciphertexts. src/sntrup761.ts
// does everything else and calls these through src/sntrup761_wasm.ts, which
// tools/build-wasm.mjs generates from this file (`npm run build:wasm`; a test checks that the
// two agree).
//
// Why not TypeScript: a fresh process runs TypeScript in V8's interpreter until its optimizing
// compiler has caught up, which for the 2p-1 division steps of an inversion was most of the
// client's first key pair (50-90 ms here, 15 ms once warm). WebAssembly is compiled to machine
// code (V8's Liftoff) before the first call: the first key pair takes about 20 ms.
//
// The arithmetic is Dropbear's sntrup761.c's: the same masks and the same fixed sequence of
// steps. The layout is not: R3_recip is bit-sliced (64 coefficients a word), Rq_recip3's loops
// stop at bounds that depend on the step number alone, and four coefficients are handled at
// once (128-bit SIMD) where the C handles one; lanes past a loop's bound compute coefficients
// that are zero or never read, so a bound may be rounded up to a multiple of four. No branch or
// memory address depends on secret data.
//
// Memory: one 64 KiB page that never grows, laid out statically. The caller copies polynomials
// into IN0/IN1 (int32 coefficients, the rest of each area zero) or bytes into BYTES, calls a
// kernel, copies OUT (or BYTES) back, then calls burn(), which zeroes every area.

const p: i32 = 761;
const q: i32 = 4591;
const q12: i32 = (q - 1) / 2;
const q16: i32 = (0x10000 + q12) / q;
const q20: i32 = (0x100000 + q12) / q;
const q28: i32 = (0x10000000 + q12) / q;

/** Room for a polynomial plus the lanes a 4-wide loop may run past its end. */
const POLY: i32 = 4 * (p + 8);

/** The caller's polynomials: IN0, IN1 in, OUT out. */
export const IN0: usize = memory.data(POLY, 16);
export const IN1: usize = memory.data(POLY, 16);
export const OUT: usize = memory.data(POLY, 16);

// Rq_recip3's f, g, r, and v with four zero lanes before it (v[-1] is read as 0).
const F: usize = memory.data(POLY, 16);
const G: usize = memory.data(POLY, 16);
const R: usize = memory.data(POLY, 16);
const V_AREA: usize = memory.data(POLY + 16, 16);
const V: usize = V_AREA + 16;
/** Unreduced products, 2p-1 coefficients and slack. */
const FG_BYTES: i32 = 4 * (2 * p + 8);
const FG: usize = memory.data(FG_BYTES, 16);

/** Room for encoded bytes: a public key (1158 bytes, the longest encoding), rounded up. */
const BYTES_LEN: i32 = 1160;
export const BYTES: usize = memory.data(BYTES_LEN, 16);
// Encode/Decode's values and moduli (u16), and their per-level scratch: a level of len values
// takes ceil(len/2) pairs of u16 (R2, M2) and floor(len/2) of Decode's u16 and u32 (bottomr,
// bottomt); the levels' lengths halve, so 2p of each is room for all.
const ENC_R: usize = memory.data(2 * p, 16);
const ENC_M: usize = memory.data(2 * p, 16);
const LEVEL_BYTES: i32 = 16 * p;
const LEVELS: usize = memory.data(LEVEL_BYTES, 16);

// R3_recip's bit-sliced vectors: coefficient j of a vector in {-1, 0, 1} is bit j%64 of word
// j>>6 in two planes, "nonzero" (M) and "negative" (S, 0 whenever M is 0).
const R3_WORDS: i32 = (p + 1 + 63) >> 6;
/** Bits of the top word that hold coefficients 0..p. */
const R3_TOPMASK: u64 = (<u64>1 << <u64>((p + 1) & 63)) - 1;
const R3_BYTES: i32 = 8 * R3_WORDS;
const R3_AREA: usize = memory.data(8 * R3_BYTES, 16);
const fM: usize = R3_AREA;
const fS: usize = R3_AREA + R3_BYTES;
const gM: usize = R3_AREA + 2 * R3_BYTES;
const gS: usize = R3_AREA + 3 * R3_BYTES;
const vM: usize = R3_AREA + 4 * R3_BYTES;
const vS: usize = R3_AREA + 5 * R3_BYTES;
const rM: usize = R3_AREA + 6 * R3_BYTES;
const rS: usize = R3_AREA + 7 * R3_BYTES;

@inline function ld(b: usize, i: i32): i32 {
  return load<i32>(b + (<usize>i << 2));
}
@inline function st(b: usize, i: i32, x: i32): void {
  store<i32>(b + (<usize>i << 2), x);
}
@inline function ld4(b: usize, i: i32): v128 {
  return v128.load(b + (<usize>i << 2));
}
@inline function st4(b: usize, i: i32, x: v128): void {
  v128.store(b + (<usize>i << 2), x);
}

/** All ones if x is negative, else 0. @dropbear sntrup761.c crypto_int32_negative_mask */
@inline function crypto_int32_negative_mask(x: i32): i32 {
  return x >> 31;
}
/** All ones if x is nonzero, else 0. @dropbear sntrup761.c crypto_int16_nonzero_mask */
@inline function crypto_int16_nonzero_mask(x: i32): i32 {
  return (x | -x) >> 31;
}

/** The representative of x mod 3 in {-1, 0, 1}. @dropbear sntrup761.c F3_freeze */
@inline function F3_freeze(x: i32): i32 {
  return x - 3 * ((10923 * x + 16384) >> 15);
}

/** The representative of x mod q in [-q12, q12], for |x| <= 2^24. @dropbear sntrup761.c Fq_freeze */
@inline function Fq_freeze(x: i32): i32 {
  x -= q * ((q16 * x) >> 16);
  x -= q * ((q20 * x) >> 20);
  return x - q * ((q28 * x + 0x8000000) >> 28);
}

/** Fq_freeze on four lanes. */
@inline function Fq_freeze4(x: v128): v128 {
  const Q = i32x4.splat(q);
  x = i32x4.sub(x, i32x4.mul(Q, i32x4.shr_s(i32x4.mul(i32x4.splat(q16), x), 16)));
  x = i32x4.sub(x, i32x4.mul(Q, i32x4.shr_s(i32x4.mul(i32x4.splat(q20), x), 20)));
  const t = i32x4.add(i32x4.mul(i32x4.splat(q28), x), i32x4.splat(0x8000000));
  return i32x4.sub(x, i32x4.mul(Q, i32x4.shr_s(t, 28)));
}

/** a1^(q-2), the inverse of a1 mod q (by a fixed chain of multiplications). @dropbear sntrup761.c Fq_recip */
function Fq_recip(a1: i32): i32 {
  let ai = a1;
  for (let i = 1; i < q - 2; ++i) ai = Fq_freeze(a1 * ai);
  return ai;
}

/** Zeroes every area: inputs, outputs and scratch. */
export function burn(): void {
  memory.fill(IN0, 0, POLY);
  memory.fill(IN1, 0, POLY);
  memory.fill(OUT, 0, POLY);
  memory.fill(F, 0, POLY);
  memory.fill(G, 0, POLY);
  memory.fill(R, 0, POLY);
  memory.fill(V_AREA, 0, POLY + 16);
  memory.fill(FG, 0, FG_BYTES);
  memory.fill(R3_AREA, 0, 8 * R3_BYTES);
  memory.fill(BYTES, 0, BYTES_LEN);
  memory.fill(ENC_R, 0, 2 * p);
  memory.fill(ENC_M, 0, 2 * p);
  memory.fill(LEVELS, 0, LEVEL_BYTES);
}

// ---------------------------------------------------------------------------------------------
// Sorting

/** Compare-exchange x[a] and x[b] so that x[a] <= x[b] (signed), without a branch. */
@inline function minmaxAt(x: usize, a: i32, b: i32): void {
  const lo = ld(x, a);
  const hi = ld(x, b);
  const diff = lo ^ hi;
  let d = hi - lo;
  d ^= diff & (d ^ hi); // sign of d is now "hi < lo", even when hi - lo overflowed
  d = (d >> 31) & diff;
  st(x, a, lo ^ d);
  st(x, b, hi ^ d);
}

/**
 * Runs a = x[j + stride] through compare-exchanges with x[j + r] for r = span, span/2, ...,
 * > stride, leaving the larger value of each pair in x[j + r]; returns what is left in a.
 */
@inline function minChain(x: usize, j: i32, span: i32, stride: i32): i32 {
  let a = ld(x, j + stride);
  for (let r = span; r > stride; r >>= 1) {
    const b = ld(x, j + r);
    const diff = a ^ b;
    let d = b - a;
    d ^= diff & (d ^ b);
    d = (d >> 31) & diff;
    a ^= d;
    st(x, j + r, b ^ d);
  }
  return a;
}

/**
 * Sorts x[0..n) ascending as signed 32-bit values with a fixed network of compare-exchanges, so
 * the order of the data never shows. @dropbear sntrup761.c crypto_sort_int32
 */
function crypto_sort_int32(x: usize, n: i32): void {
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
    for (let span = top; span > stride; span >>= 1) {
      let skip = false;
      if (j != i) {
        for (;;) {
          if (j == n - span) {
            skip = true;
            break;
          }
          st(x, j + stride, minChain(x, j, span, stride));
          ++j;
          if (j == i + stride) {
            i += 2 * stride;
            break;
          }
        }
      }
      if (skip) continue;
      while (i + stride <= n - span) {
        for (j = i; j < i + stride; ++j) st(x, j + stride, minChain(x, j, span, stride));
        i += 2 * stride;
      }
      j = i;
      while (j < n - span) {
        st(x, j + stride, minChain(x, j, span, stride));
        ++j;
      }
    }
  }
}

/** OUT = IN0[0..p) sorted as unsigned 32-bit values. @dropbear sntrup761.c crypto_sort_uint32 */
export function crypto_sort_uint32(): void {
  for (let j = 0; j < p; ++j) st(OUT, j, ld(IN0, j) ^ 0x80000000);
  crypto_sort_int32(OUT, p);
  for (let j = 0; j < p; ++j) st(OUT, j, ld(OUT, j) ^ 0x80000000);
}

// ---------------------------------------------------------------------------------------------
// Products

/** FG = IN0 * IN1 unreduced and folded into the ring (x^p = x + 1); IN1 small, IN0 at most q12. */
function product(): void {
  memory.fill(FG, 0, FG_BYTES);
  for (let i = 0; i < p; ++i) {
    const fi = i32x4.splat(ld(IN0, i));
    for (let j = 0; j < p; j += 4) st4(FG, i + j, i32x4.add(ld4(FG, i + j), i32x4.mul(fi, ld4(IN1, j))));
  }
  for (let i = p; i < p + p - 1; ++i) {
    const t = ld(FG, i);
    st(FG, i - p, ld(FG, i - p) + t);
    st(FG, i - p + 1, ld(FG, i - p + 1) + t);
  }
}

/** OUT = 3 * IN0 in R/q. @dropbear sntrup761.c Rq_mult3 */
export function Rq_mult3(): void {
  for (let i = 0; i < p; ++i) st(OUT, i, Fq_freeze(3 * ld(IN0, i)));
}

/** OUT = the Fq polynomial IN0 reduced coefficientwise mod 3. @dropbear sntrup761.c R3_fromRq */
export function R3_fromRq(): void {
  for (let i = 0; i < p; ++i) st(OUT, i, F3_freeze(ld(IN0, i)));
}

/** OUT = IN0 with each coefficient rounded to a multiple of 3. @dropbear sntrup761.c Round */
export function Round(): void {
  for (let i = 0; i < p; ++i) {
    const a = ld(IN0, i);
    st(OUT, i, a - F3_freeze(a));
  }
}

/** OUT = IN0 * IN1 in R/3, both small. @dropbear sntrup761.c R3_mult */
export function R3_mult(): void {
  product();
  for (let i = 0; i < p; ++i) st(OUT, i, F3_freeze(ld(FG, i)));
}

/** OUT = IN0 * IN1 in R/q, IN0 an Fq polynomial and IN1 small. @dropbear sntrup761.c Rq_mult_small */
export function Rq_mult_small(): void {
  product();
  for (let i = 0; i < p; ++i) st(OUT, i, Fq_freeze(ld(FG, i)));
}

// ---------------------------------------------------------------------------------------------
// Inversions

@inline function ld64(b: usize, k: i32): u64 {
  return load<u64>(b + (<usize>k << 3));
}
@inline function st64(b: usize, k: i32, x: u64): void {
  store<u64>(b + (<usize>k << 3), x);
}
/** An all-ones or all-zero i32 mask as a 64-bit one. */
@inline function mask64(m: i32): u64 {
  return <u64>(<i64>m);
}

/** Coefficient j (in {-1, 0, 1}) of the bit-sliced vector (m, s). */
@inline function r3Get(m: usize, s: usize, j: i32): i32 {
  const bm = <i32>((ld64(m, j >> 6) >> <u64>(j & 63)) & 1);
  const bs = <i32>((ld64(s, j >> 6) >> <u64>(j & 63)) & 1);
  return bm - 2 * (bm & bs);
}

/** Sets coefficient j (currently 0) of (m, s) to x in {-1, 0, 1}. */
@inline function r3Set(m: usize, s: usize, j: i32, x: i32): void {
  st64(m, j >> 6, ld64(m, j >> 6) | (<u64>(x & 1) << <u64>(j & 63)));
  st64(s, j >> 6, ld64(s, j >> 6) | (<u64>(x >>> 31) << <u64>(j & 63)));
}

/** a += c*b mod 3 on bit-sliced vectors, c given as masks: cnz (c nonzero) and cneg (c = -1). */
@inline function r3AddScaled(aM: usize, aS: usize, bM: usize, bS: usize, cnz: u64, cneg: u64): void {
  for (let k = 0; k < R3_WORDS; ++k) {
    const am = ld64(aM, k);
    const as = ld64(aS, k);
    const bm = ld64(bM, k) & cnz;
    const bs = (ld64(bS, k) ^ cneg) & bm;
    // Both nonzero: equal signs give -a (1+1 = -1, -1-1 = 1), opposite signs give 0.
    const same = am & bm & ~(as ^ bs);
    st64(aM, k, (am ^ bm) | same);
    st64(aS, k, (am & ~bm & as) | (bm & ~am & bs) | (same & ~as));
  }
}

/** Exchanges two word vectors where swap is all ones. */
@inline function swapWords(a: usize, b: usize, swap: u64): void {
  for (let k = 0; k < R3_WORDS; ++k) {
    const t = swap & (ld64(a, k) ^ ld64(b, k));
    st64(a, k, ld64(a, k) ^ t);
    st64(b, k, ld64(b, k) ^ t);
  }
}

/** One division step of R3_recip; returns the new delta. Its own function for rqRecipStep's reason. */
export function r3RecipStep(delta: i32): i32 {
  // v = x*v: every coefficient moves up one place; the top one falls off at p + 1.
  let carryM: u64 = 0;
  let carryS: u64 = 0;
  for (let k = 0; k < R3_WORDS; ++k) {
    const m = ld64(vM, k);
    const s = ld64(vS, k);
    st64(vM, k, (m << 1) | carryM);
    st64(vS, k, (s << 1) | carryS);
    carryM = m >> 63;
    carryS = s >> 63;
  }
  st64(vM, R3_WORDS - 1, ld64(vM, R3_WORDS - 1) & R3_TOPMASK);
  st64(vS, R3_WORDS - 1, ld64(vS, R3_WORDS - 1) & R3_TOPMASK);

  const g0m = <i32>(ld64(gM, 0) & 1);
  const f0m = <i32>(ld64(fM, 0) & 1);
  // sign = -g0*f0: nonzero when both are, and -1 when g0 and f0 have the same sign.
  const cnz = mask64(-(g0m & f0m));
  const cneg = mask64(-(1 ^ <i32>((ld64(gS, 0) ^ ld64(fS, 0)) & 1)));
  const swap32 = crypto_int32_negative_mask(-delta) & -g0m;
  delta ^= swap32 & (delta ^ -delta);
  delta += 1;
  const swap = mask64(swap32);

  swapWords(fM, gM, swap);
  swapWords(fS, gS, swap);
  swapWords(vM, rM, swap);
  swapWords(vS, rS, swap);
  r3AddScaled(gM, gS, fM, fS, cnz, cneg);
  r3AddScaled(rM, rS, vM, vS, cnz, cneg);

  // g = g/x: its constant term is now 0; every coefficient moves down one place.
  for (let k = 0; k < R3_WORDS - 1; ++k) {
    st64(gM, k, (ld64(gM, k) >> 1) | (ld64(gM, k + 1) << 63));
    st64(gS, k, (ld64(gS, k) >> 1) | (ld64(gS, k + 1) << 63));
  }
  st64(gM, R3_WORDS - 1, ld64(gM, R3_WORDS - 1) >> 1);
  st64(gS, R3_WORDS - 1, ld64(gS, R3_WORDS - 1) >> 1);
  return delta;
}

/**
 * OUT = 1/IN0 in R/3 by 2p-1 constant-time division steps; returns 0 when IN0 is invertible,
 * else -1 (OUT is then meaningless). @dropbear sntrup761.c R3_recip
 */
export function R3_recip(): i32 {
  let delta: i32 = 1;
  memory.fill(R3_AREA, 0, 8 * R3_BYTES);
  r3Set(rM, rS, 0, 1);
  r3Set(fM, fS, 0, 1);
  r3Set(fM, fS, p - 1, -1);
  r3Set(fM, fS, p, -1);
  for (let i = 0; i < p; ++i) r3Set(gM, gS, p - 1 - i, ld(IN0, i));

  for (let loop = 0; loop < 2 * p - 1; ++loop) delta = r3RecipStep(delta);

  const sign = r3Get(fM, fS, 0);
  for (let i = 0; i < p; ++i) st(OUT, i, sign * r3Get(vM, vS, p - 1 - i));
  return crypto_int16_nonzero_mask(delta);
}

/**
 * Division step `loop` of Rq_recip3; returns the new delta. Its own function, not inlined
 * (exported for that), so that V8 can swap in its optimized code between two of the 2p-1 steps
 * of a fresh process's first inversion instead of running them all in its baseline code.
 */
export function rqRecipStep(loop: i32, delta: i32): i32 {
  const f0 = ld(F, 0);
  const g0 = ld(G, 0);
  const swap = crypto_int32_negative_mask(-delta) & crypto_int16_nonzero_mask(g0);
  delta ^= swap & (delta ^ -delta);
  delta += 1;
  // After the conditional swap the C computes g = f0*g - g0*f and r = f0*r - g0*v. Swapping
  // only negates those, so they come from the unswapped values with a = ±f0 and b = ±g0,
  // and only f and v take the conditional select.
  const sgn = 1 + 2 * swap;
  const a = i32x4.splat(sgn * f0);
  const b = i32x4.splat(sgn * g0);
  const s = i32x4.splat(swap);

  // Public bounds (they depend on loop only): v and r hold indices 0..loop, f and g indices
  // below 2p - loop. v = x*v runs from the top down, so each chunk reads v[i-1] before the
  // chunk below overwrites it; lanes above the bound get values that never flow down.
  const vrEnd = loop < p ? loop : p;
  for (let i = (vrEnd + 1) & ~3; i >= 0; i -= 4) {
    const vi = ld4(V, i - 1);
    const ri = ld4(R, i);
    st4(V, i, v128.bitselect(ri, vi, s));
    st4(R, i, Fq_freeze4(i32x4.sub(i32x4.mul(a, ri), i32x4.mul(b, vi))));
  }

  // g = (a*g - b*f)/x and f = the select, from the bottom up; past the bound f and g are 0
  // (or g is 0 and the step changes nothing there).
  st(F, 0, f0 ^ (swap & (f0 ^ g0)));
  const fgEnd = 2 * p - loop < p ? 2 * p - loop : p;
  for (let i = 1; i <= fgEnd; i += 4) {
    const fi = ld4(F, i);
    const gi = ld4(G, i);
    st4(F, i, v128.bitselect(gi, fi, s));
    st4(G, i - 1, Fq_freeze4(i32x4.sub(i32x4.mul(a, gi), i32x4.mul(b, fi))));
  }
  st(G, fgEnd, 0);
  return delta;
}

/**
 * OUT = 1/(3*IN0) in R/q by 2p-1 constant-time division steps; returns 0 when invertible.
 * @dropbear sntrup761.c Rq_recip3
 */
export function Rq_recip3(): i32 {
  let delta: i32 = 1;
  memory.fill(F, 0, POLY);
  memory.fill(G, 0, POLY);
  memory.fill(R, 0, POLY);
  memory.fill(V_AREA, 0, POLY + 16);
  st(R, 0, Fq_recip(3));
  st(F, 0, 1);
  st(F, p - 1, -1);
  st(F, p, -1);
  for (let i = 0; i < p; ++i) st(G, p - 1 - i, ld(IN0, i));

  for (let loop = 0; loop < 2 * p - 1; ++loop) delta = rqRecipStep(loop, delta);

  const scale = Fq_recip(ld(F, 0));
  for (let i = 0; i < p; ++i) st(OUT, i, Fq_freeze(scale * ld(V, p - 1 - i)));
  return crypto_int16_nonzero_mask(delta);
}

// ---------------------------------------------------------------------------------------------
// Encoding of integer vectors with per-position moduli M[i] < 2^14 (public data)

@inline function ld16(b: usize, i: i32): u32 {
  return <u32>load<u16>(b + (<usize>i << 1));
}
@inline function st16(b: usize, i: i32, x: u32): void {
  store<u16>(b + (<usize>i << 1), <u16>x);
}

/** Decode's quotient, beside the remainder uint32_divmod_uint14 returns. */
let divmodQ: u32 = 0;

/**
 * x mod m (returned) and floor(x / m) (in divmodQ) for 0 < m < 2^14, by two multiply-high
 * estimates and a masked correction. @dropbear sntrup761.c uint32_divmod_uint14
 */
function uint32_divmod_uint14(x: u32, m: u32): u32 {
  const v: u64 = <u64>(0x80000000 / m);
  let Q: u32 = <u32>((<u64>x * v) >> 31);
  x -= Q * m;
  const qpart = <u32>((<u64>x * v) >> 31);
  x -= qpart * m;
  Q += qpart;
  x -= m;
  Q += 1;
  const mask = <u32>crypto_int32_negative_mask(<i32>x);
  x += mask & m;
  Q += mask;
  divmodQ = Q;
  return x;
}

/**
 * Writes R (R[i] < M[i], u16) to BYTES from offset o as a mixed-radix number, pairing
 * neighbours and emitting whole bytes whenever a pair's range reaches 2^14; returns the offset
 * reached. Each level's pairs go to scratch. @dropbear sntrup761.c Encode
 */
function Encode(o: i32, R: usize, M: usize, len: i32, scratch: usize): i32 {
  if (len == 1) {
    let r = ld16(R, 0);
    let m = ld16(M, 0);
    while (m > 1) {
      store<u8>(BYTES + <usize>o, <u8>r);
      o++;
      r >>= 8;
      m = (m + 255) >> 8;
    }
    return o;
  }
  const half = (len + 1) >> 1;
  const R2 = scratch;
  const M2 = scratch + (<usize>half << 1);
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m0 = ld16(M, i);
    let r = ld16(R, i) + ld16(R, i + 1) * m0;
    let m = ld16(M, i + 1) * m0;
    while (m >= 16384) {
      store<u8>(BYTES + <usize>o, <u8>r);
      o++;
      r >>= 8;
      m = (m + 255) >> 8;
    }
    st16(R2, i >> 1, r);
    st16(M2, i >> 1, m);
  }
  if (i < len) {
    st16(R2, i >> 1, ld16(R, i));
    st16(M2, i >> 1, ld16(M, i));
  }
  return Encode(o, R2, M2, half, scratch + (<usize>half << 2));
}

/**
 * Reads what Encode wrote for moduli M (from BYTES at offset s) into out; every output is
 * reduced below its modulus, whatever the input bytes. @dropbear sntrup761.c Decode
 */
function Decode(out: usize, s: i32, M: usize, len: i32, scratch: usize): void {
  if (len == 1) {
    const m = ld16(M, 0);
    if (m == 1) st16(out, 0, 0);
    else if (m <= 256) st16(out, 0, uint32_divmod_uint14(<u32>load<u8>(BYTES + <usize>s), m));
    else st16(out, 0, uint32_divmod_uint14(<u32>load<u8>(BYTES + <usize>s) + (<u32>load<u8>(BYTES + <usize>s + 1) << 8), m));
    return;
  }
  const half = (len + 1) >> 1;
  const pairs = len >> 1;
  const R2 = scratch;
  const M2 = R2 + (<usize>half << 1);
  const bottomr = M2 + (<usize>half << 1);
  const bottomt = bottomr + (<usize>pairs << 1);
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m = ld16(M, i) * ld16(M, i + 1);
    if (m > 256 * 16383) {
      store<u32>(bottomt + (<usize>(i >> 1) << 2), 256 * 256);
      st16(bottomr, i >> 1, <u32>load<u8>(BYTES + <usize>s) + 256 * <u32>load<u8>(BYTES + <usize>s + 1));
      s += 2;
      st16(M2, i >> 1, (((m + 255) >> 8) + 255) >> 8);
    } else if (m >= 16384) {
      store<u32>(bottomt + (<usize>(i >> 1) << 2), 256);
      st16(bottomr, i >> 1, <u32>load<u8>(BYTES + <usize>s));
      s += 1;
      st16(M2, i >> 1, (m + 255) >> 8);
    } else {
      store<u32>(bottomt + (<usize>(i >> 1) << 2), 1);
      st16(bottomr, i >> 1, 0);
      st16(M2, i >> 1, m);
    }
  }
  if (i < len) st16(M2, i >> 1, ld16(M, i));
  Decode(R2, s, M2, half, bottomt + (<usize>pairs << 2));
  let o = 0;
  for (i = 0; i < len - 1; i += 2) {
    const r = ld16(bottomr, i >> 1) + load<u32>(bottomt + (<usize>(i >> 1) << 2)) * ld16(R2, i >> 1);
    const r0 = uint32_divmod_uint14(r, ld16(M, i));
    const r1 = uint32_divmod_uint14(divmodQ, ld16(M, i + 1));
    st16(out, o++, r0);
    st16(out, o++, r1);
  }
  if (i < len) st16(out, o++, ld16(R2, i >> 1));
}

/** BYTES = the Fq polynomial IN0 encoded (a public key); returns its length. @dropbear sntrup761.c Rq_encode */
export function Rq_encode(): i32 {
  for (let i = 0; i < p; ++i) {
    st16(ENC_R, i, <u32>(ld(IN0, i) + q12));
    st16(ENC_M, i, q);
  }
  return Encode(0, ENC_R, ENC_M, p, LEVELS);
}

/** OUT = the Fq polynomial BYTES encodes (a public key). @dropbear sntrup761.c Rq_decode */
export function Rq_decode(): void {
  for (let i = 0; i < p; ++i) st16(ENC_M, i, q);
  Decode(ENC_R, 0, ENC_M, p, LEVELS);
  for (let i = 0; i < p; ++i) st(OUT, i, <i32>ld16(ENC_R, i) - q12);
}

/**
 * BYTES = the rounded polynomial IN0 (multiples of 3) encoded as values mod (q+2)/3; returns
 * its length. @dropbear sntrup761.c Rounded_encode
 */
export function Rounded_encode(): i32 {
  for (let i = 0; i < p; ++i) {
    st16(ENC_R, i, <u32>(((ld(IN0, i) + q12) * 10923) >> 15));
    st16(ENC_M, i, (q + 2) / 3);
  }
  return Encode(0, ENC_R, ENC_M, p, LEVELS);
}

/** OUT = the rounded polynomial BYTES encodes. @dropbear sntrup761.c Rounded_decode */
export function Rounded_decode(): void {
  for (let i = 0; i < p; ++i) st16(ENC_M, i, (q + 2) / 3);
  Decode(ENC_R, 0, ENC_M, p, LEVELS);
  for (let i = 0; i < p; ++i) st(OUT, i, <i32>ld16(ENC_R, i) * 3 - q12);
}

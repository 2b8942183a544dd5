// ML-KEM-768 (FIPS 203) in WebAssembly, written in AssemblyScript: key generation,
// encapsulation and decapsulation whole, with the SHA-3 they hash with. src/mlkem768.ts calls it
// through src/mlkem768_wasm.ts, which tools/build-wasm.mjs generates from this file (`npm run
// build:wasm`; a test checks that the two agree).
//
// Dropbear takes ML-KEM from libcrux (libcrux_mlkem768_sha3.h, generated C); this is a port of
// what that code computes, function by function where a function there has a counterpart here,
// with the same arithmetic: Montgomery and Barrett reductions, libcrux's compression formulas,
// the zeta table, the decapsulation that re-encrypts and picks its secret by mask. libcrux
// works on 16 coefficients at a time (its "vectors"); this walks the 256 of a polynomial.
//
// Why not JavaScript: a fresh connection process ran the KEM in V8's interpreter and then woke
// V8's optimizing compiler for it, which stayed resident (about 1.5 MB a process); WebAssembly
// is compiled before its first call (V8's Liftoff), and the server's connection processes keep
// it on Liftoff alone (svr-main.ts CONNECTION_V8_FLAGS).
//
// Memory: one 64 KiB page that never grows, laid out statically. The caller copies inputs into
// SEED, PK, SK or CT, calls keypair, enc or dec, copies PK/SK or CT/SS out, then calls burn(),
// which zeroes every area but the constant tables. Nothing branches on or indexes by secret
// data; rejection sampling reads the public matrix seed only.

const N: i32 = 256;
const Q: i32 = 3329;
const RANK: i32 = 3;
/** A polynomial: 256 int16 coefficients. */
const POLY: i32 = 2 * N;
/** A polynomial packed 12 bits a coefficient. */
const POLY_BYTES: i32 = 384;
const T_BYTES: i32 = RANK * POLY_BYTES;
const PK_LEN: i32 = T_BYTES + 32;
const SK_LEN: i32 = 2 * T_BYTES + 32 + 64;
const U_BYTES: i32 = RANK * 320;
const CT_LEN: i32 = U_BYTES + 128;
const SS_LEN: i32 = 32;

// ---------------------------------------------------------------------------------------------
// Constant tables, before the areas burn() zeroes.

/** Zeta^bitrev7(i) times 2^16, mod q, centred. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_polynomial_ZETAS_TIMES_MONTGOMERY_R */
const ZETAS_TIMES_MONTGOMERY_R: usize = memory.data<i16>([
  -1044, -758, -359, -1517, 1493, 1422, 287, 202, -171, 622, 1577, 182, 962, -1202, -1474, 1468,
  573, -1325, 264, 383, -829, 1458, -1602, -130, -681, 1017, 732, 608, -1542, 411, -205, -1571,
  1223, 652, -552, 1015, -1293, 1491, -282, -1544, 516, -8, -320, -666, -1618, -1162, 126, 1469,
  -853, -90, -271, 830, 107, -1421, -247, -951, -398, 961, -1508, -725, 448, -1065, 677, -1275,
  -1103, 430, 555, 843, -1251, 871, 1550, 105, 422, 587, 177, -235, -291, -460, 1574, 1653,
  -246, 778, 1159, -147, -777, 1483, -602, 1119, -1590, 644, -872, 349, 418, 329, -156, -75,
  817, 1097, 603, 610, 1322, -1285, -1465, 384, -1215, -136, 1218, -1335, -874, 220, -1187, -1659,
  -1185, -1530, -1278, 794, -1510, -854, -870, 478, -108, -308, 996, 991, 958, -1460, 1522, 1628,
], 16);

/** Keccak's round constants. */
const KECCAK_RC: usize = memory.data<u64>([
  0x0000000000000001, 0x0000000000008082, 0x800000000000808a, 0x8000000080008000,
  0x000000000000808b, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
  0x000000000000008a, 0x0000000000000088, 0x0000000080008009, 0x000000008000000a,
  0x000000008000808b, 0x800000000000008b, 0x8000000000008089, 0x8000000000008003,
  0x8000000000008002, 0x8000000000000080, 0x000000000000800a, 0x800000008000000a,
  0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
], 16);
/** Keccak's rho rotations and pi's lane order, step by step along pi's cycle from lane 1. */
const KECCAK_ROT: usize = memory.data<u8>([1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44]);
const KECCAK_PI: usize = memory.data<u8>([10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1]);

// ---------------------------------------------------------------------------------------------
// The caller's areas, then the working ones; burn() zeroes from SEED to the end of the last.

/** keypair: d ‖ z (64 bytes); enc: the message m (32 bytes). */
export const SEED: usize = memory.data(64, 16);
export const PK: usize = memory.data(PK_LEN, 16);
export const SK: usize = memory.data(SK_LEN, 16);
export const CT: usize = memory.data(CT_LEN, 16);
export const SS: usize = memory.data(SS_LEN, 16);

/** Keccak's state (25 lanes). */
const STATE: usize = memory.data(200, 16);
/** A squeezed SHAKE128 block. */
const BLOCK: usize = memory.data(168, 16);
/** Hash inputs and outputs: the longest input is z ‖ c (32 + 1088 bytes). */
const HASH_IN: usize = memory.data(32 + CT_LEN, 16);
const HASH_OUT: usize = memory.data(128, 16);
/** G's output: (rho, sigma) or (K, r). */
const G_OUT: usize = memory.data(64, 16);
/** Decapsulation's decrypted message and its re-encryption. */
const MSG: usize = memory.data(32, 16);
const CT2: usize = memory.data(CT_LEN, 16);
/** A matrix entry, made when used. */
const A_ENTRY: usize = memory.data(POLY, 16);
/** Vectors of RANK polynomials, and single polynomials. */
const VEC0: usize = memory.data(RANK * POLY, 16);
const VEC1: usize = memory.data(RANK * POLY, 16);
const VEC2: usize = memory.data(RANK * POLY, 16);
const POLY0: usize = memory.data(POLY, 16);
const POLY1: usize = memory.data(POLY, 16);
const AREAS_END: usize = POLY1 + <usize>POLY;

/** Zeroes every area a call wrote (everything but the constant tables). */
export function burn(): void {
  memory.fill(SEED, 0, AREAS_END - SEED);
}

// ---------------------------------------------------------------------------------------------
// SHA-3

@inline function lane(i: i32): u64 {
  return load<u64>(STATE + (<usize>i << 3));
}
@inline function setLane(i: i32, v: u64): void {
  store<u64>(STATE + (<usize>i << 3), v);
}

/** The Keccak-f[1600] permutation of STATE. @dropbear libcrux_mlkem768_sha3.h libcrux_sha3_generic_keccak_keccakf1600_21 */
function keccakf1600(): void {
  for (let round = 0; round < 24; round++) {
    // theta
    const c0 = lane(0) ^ lane(5) ^ lane(10) ^ lane(15) ^ lane(20);
    const c1 = lane(1) ^ lane(6) ^ lane(11) ^ lane(16) ^ lane(21);
    const c2 = lane(2) ^ lane(7) ^ lane(12) ^ lane(17) ^ lane(22);
    const c3 = lane(3) ^ lane(8) ^ lane(13) ^ lane(18) ^ lane(23);
    const c4 = lane(4) ^ lane(9) ^ lane(14) ^ lane(19) ^ lane(24);
    const d0 = c4 ^ rotl<u64>(c1, 1);
    const d1 = c0 ^ rotl<u64>(c2, 1);
    const d2 = c1 ^ rotl<u64>(c3, 1);
    const d3 = c2 ^ rotl<u64>(c4, 1);
    const d4 = c3 ^ rotl<u64>(c0, 1);
    for (let y = 0; y < 25; y += 5) {
      setLane(y, lane(y) ^ d0);
      setLane(y + 1, lane(y + 1) ^ d1);
      setLane(y + 2, lane(y + 2) ^ d2);
      setLane(y + 3, lane(y + 3) ^ d3);
      setLane(y + 4, lane(y + 4) ^ d4);
    }
    // rho and pi
    let t = lane(1);
    for (let i = 0; i < 24; i++) {
      const j = <i32>load<u8>(KECCAK_PI + <usize>i);
      const next = lane(j);
      setLane(j, rotl<u64>(t, <u64>load<u8>(KECCAK_ROT + <usize>i)));
      t = next;
    }
    // chi
    for (let y = 0; y < 25; y += 5) {
      const a0 = lane(y);
      const a1 = lane(y + 1);
      const a2 = lane(y + 2);
      const a3 = lane(y + 3);
      const a4 = lane(y + 4);
      setLane(y, a0 ^ (~a1 & a2));
      setLane(y + 1, a1 ^ (~a2 & a3));
      setLane(y + 2, a2 ^ (~a3 & a4));
      setLane(y + 3, a3 ^ (~a4 & a0));
      setLane(y + 4, a4 ^ (~a0 & a1));
    }
    // iota
    setLane(0, lane(0) ^ load<u64>(KECCAK_RC + (<usize>round << 3)));
  }
}

/** Absorbs len bytes at input into a zeroed state with padding (domain byte ds) and permutes. */
function keccakAbsorb(rate: i32, input: usize, len: i32, ds: u8): void {
  memory.fill(STATE, 0, 200);
  while (len >= rate) {
    for (let i = 0; i < rate; i++) store<u8>(STATE + <usize>i, load<u8>(STATE + <usize>i) ^ load<u8>(input + <usize>i));
    keccakf1600();
    input += <usize>rate;
    len -= rate;
  }
  for (let i = 0; i < len; i++) store<u8>(STATE + <usize>i, load<u8>(STATE + <usize>i) ^ load<u8>(input + <usize>i));
  store<u8>(STATE + <usize>len, load<u8>(STATE + <usize>len) ^ ds);
  store<u8>(STATE + <usize>(rate - 1), load<u8>(STATE + <usize>(rate - 1)) ^ 0x80);
  keccakf1600();
}

/** Squeezes len bytes to out from an absorbed state. */
function keccakSqueeze(rate: i32, out: usize, len: i32): void {
  for (;;) {
    const n = len < rate ? len : rate;
    memory.copy(out, STATE, <usize>n);
    len -= n;
    if (len === 0) return;
    out += <usize>n;
    keccakf1600();
  }
}

const SHA3_256_RATE: i32 = 136;
const SHA3_512_RATE: i32 = 72;
const SHAKE128_RATE: i32 = 168;
const SHAKE256_RATE: i32 = 136;
const SHA3_DS: u8 = 0x06;
const SHAKE_DS: u8 = 0x1f;

/** SHA3-512. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_hash_functions_portable_G */
function G(input: usize, len: i32, out: usize): void {
  keccakAbsorb(SHA3_512_RATE, input, len, SHA3_DS);
  keccakSqueeze(SHA3_512_RATE, out, 64);
}

/** SHA3-256. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_hash_functions_portable_H */
function H(input: usize, len: i32, out: usize): void {
  keccakAbsorb(SHA3_256_RATE, input, len, SHA3_DS);
  keccakSqueeze(SHA3_256_RATE, out, 32);
}

/** SHAKE256 to outLen bytes (32: J; 128: the noise of one polynomial). @dropbear libcrux_mlkem768_sha3.h libcrux_sha3_portable_shake256 */
function shake256(input: usize, len: i32, out: usize, outLen: i32): void {
  keccakAbsorb(SHAKE256_RATE, input, len, SHAKE_DS);
  keccakSqueeze(SHAKE256_RATE, out, outLen);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic mod q. Coefficients are stored as int16 and computed on as int32.

@inline function coef(p: usize, i: i32): i32 {
  return <i32>load<i16>(p + (<usize>i << 1));
}
@inline function setCoef(p: usize, i: i32, v: i32): void {
  store<i16>(p + (<usize>i << 1), <i16>v);
}
/** The low 16 bits of v, sign-extended (C's (int32_t)(int16_t)v). */
@inline function int16(v: i32): i32 {
  return (v << 16) >> 16;
}

/** value mod q, in (-q, q), for |value| < 2^15. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_portable_arithmetic_barrett_reduce_element */
@inline function barrett_reduce_element(value: i32): i32 {
  const t = value * 20159 + (1 << 25);
  const quotient = t >> 26;
  return value - quotient * Q;
}

/** value * 2^-16 mod q, in (-q, q), for |value| < q * 2^15. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_portable_arithmetic_montgomery_reduce_element */
@inline function montgomery_reduce_element(value: i32): i32 {
  const k = int16(value) * 62209;
  const k_times_modulus = int16(k) * Q;
  const c = k_times_modulus >> 16;
  const value_high = value >> 16;
  return value_high - c;
}

/** fe * fer * 2^-16 mod q. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_portable_arithmetic_montgomery_multiply_fe_by_fer */
@inline function montgomery_multiply_fe_by_fer(fe: i32, fer: i32): i32 {
  return montgomery_reduce_element(fe * fer);
}

/** fe in [0, q) for fe in (-q, q). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_traits_to_unsigned_representative_db */
@inline function to_unsigned_representative(fe: i32): i32 {
  return fe + ((fe >> 15) & Q);
}

@inline function zeta(i: i32): i32 {
  return <i32>load<i16>(ZETAS_TIMES_MONTGOMERY_R + (<usize>i << 1));
}

/** Every coefficient of p reduced into (-q, q). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_polynomial_poly_barrett_reduce_89_8b */
function poly_barrett_reduce(p: usize): void {
  for (let i = 0; i < N; i++) setCoef(p, i, barrett_reduce_element(coef(p, i)));
}

/**
 * The forward NTT in place, layers 7 to 1, then reduced (coefficients below q in magnitude
 * before; each layer adds less than q). Also for the noise polynomials, whose layer 7 libcrux
 * does with a plain product by -1600 (ntt_binomially_sampled_ring_element): the same values mod
 * q. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ntt_ntt_vector_u_9f
 */
function ntt(p: usize): void {
  let k = 0;
  for (let len = 128; len >= 2; len >>= 1) {
    for (let start = 0; start < N; start += 2 * len) {
      const z = zeta(++k);
      for (let j = start; j < start + len; j++) {
        const t = montgomery_multiply_fe_by_fer(coef(p, j + len), z);
        const a = coef(p, j);
        setCoef(p, j + len, a - t);
        setCoef(p, j, a + t);
      }
    }
  }
  poly_barrett_reduce(p);
}

/**
 * The inverse NTT in place, layers 1 to 7, reducing the sums as it goes; the result is the
 * input's transform times 128 (and, from ntt_multiply, 2^-16), which the caller's 1441
 * (2^32 / 128 mod q) undoes. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_invert_ntt_invert_ntt_montgomery_f6
 */
function invert_ntt_montgomery(p: usize): void {
  let k = 128;
  for (let len = 2; len <= 128; len <<= 1) {
    for (let start = 0; start < N; start += 2 * len) {
      const z = zeta(--k);
      for (let j = start; j < start + len; j++) {
        const a = coef(p, j);
        const b = coef(p, j + len);
        setCoef(p, j, barrett_reduce_element(a + b));
        setCoef(p, j + len, montgomery_multiply_fe_by_fer(b - a, z));
      }
    }
  }
  poly_barrett_reduce(p);
}

/**
 * acc += a * b in the NTT domain (times 2^-16): 128 products of degree-one polynomials modulo
 * X^2 - zeta. acc's coefficients stay below 2^15 for three sums of reduced inputs.
 * @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_polynomial_ntt_multiply_89_2a
 */
function ntt_multiply_add(acc: usize, a: usize, b: usize): void {
  for (let i = 0; i < N / 4; i++) {
    const z = zeta(64 + i);
    ntt_multiply_binomials(acc, a, b, z, 4 * i);
    ntt_multiply_binomials(acc, a, b, -z, 4 * i + 2);
  }
}

/** One degree-one product (coefficients i, i+1) added to acc. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_portable_ntt_ntt_multiply_binomials */
@inline function ntt_multiply_binomials(acc: usize, a: usize, b: usize, z: i32, i: i32): void {
  const a0 = coef(a, i);
  const a1 = coef(a, i + 1);
  const b0 = coef(b, i);
  const b1 = coef(b, i + 1);
  const o0 = montgomery_reduce_element(a0 * b0 + montgomery_reduce_element(a1 * b1) * z);
  const o1 = montgomery_reduce_element(a0 * b1 + a1 * b0);
  setCoef(acc, i, coef(acc, i) + o0);
  setCoef(acc, i + 1, coef(acc, i + 1) + o1);
}

// ---------------------------------------------------------------------------------------------
// Sampling

/**
 * The matrix entry A[i][j] of FIPS 203 from rho (32 bytes at rho): SHAKE128(rho ‖ j ‖ i),
 * read 12 bits at a time, values below q kept. Only the public seed decides how far it reads.
 * @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_sampling_sample_from_xof_3f
 */
function sample_from_xof(out: usize, rho: usize, i: i32, j: i32): void {
  memory.copy(HASH_IN, rho, 32);
  store<u8>(HASH_IN + 32, <u8>j);
  store<u8>(HASH_IN + 33, <u8>i);
  keccakAbsorb(SHAKE128_RATE, HASH_IN, 34, SHAKE_DS);
  let ctr = 0;
  while (ctr < N) {
    memory.copy(BLOCK, STATE, SHAKE128_RATE);
    keccakf1600();
    for (let pos = 0; pos < SHAKE128_RATE && ctr < N; pos += 3) {
      const b0 = <i32>load<u8>(BLOCK + <usize>pos);
      const b1 = <i32>load<u8>(BLOCK + <usize>pos + 1);
      const b2 = <i32>load<u8>(BLOCK + <usize>pos + 2);
      const d1 = b0 | ((b1 & 0x0f) << 8);
      const d2 = (b1 >> 4) | (b2 << 4);
      if (d1 < Q) setCoef(out, ctr++, d1);
      if (d2 < Q && ctr < N) setCoef(out, ctr++, d2);
    }
  }
}

/**
 * A noise polynomial (eta = 2) from SHAKE256(seed ‖ nonce), seed 32 bytes.
 * @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_sampling_sample_from_binomial_distribution_2_85
 */
function sample_from_binomial_distribution_2(out: usize, seed: usize, nonce: i32): void {
  memory.copy(HASH_IN, seed, 32);
  store<u8>(HASH_IN + 32, <u8>nonce);
  shake256(HASH_IN, 33, HASH_OUT, 128);
  for (let i = 0; i < N / 8; i++) {
    const t = load<u32>(HASH_OUT + (<usize>i << 2));
    const d = (t & 0x55555555) + ((t >> 1) & 0x55555555);
    for (let j = 0; j < 8; j++) {
      const a = <i32>((d >> (4 * j)) & 3);
      const b = <i32>((d >> (4 * j + 2)) & 3);
      setCoef(out, 8 * i + j, a - b);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encodings

/** 12 bits a coefficient, coefficients in (-q, q) made unsigned. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_serialize_uncompressed_ring_element_5b */
function serialize_uncompressed_ring_element(p: usize, out: usize): void {
  for (let i = 0; i < N / 2; i++) {
    const a0 = to_unsigned_representative(coef(p, 2 * i));
    const a1 = to_unsigned_representative(coef(p, 2 * i + 1));
    const o = out + <usize>(3 * i);
    store<u8>(o, <u8>a0);
    store<u8>(o + 1, <u8>((a0 >> 8) | (a1 << 4)));
    store<u8>(o + 2, <u8>(a1 >> 4));
  }
}

/** 12-bit coefficients back, as they are (0 to 4095). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_deserialize_to_uncompressed_ring_element_af */
function deserialize_to_uncompressed_ring_element(input: usize, p: usize): void {
  for (let i = 0; i < N / 2; i++) {
    const o = input + <usize>(3 * i);
    const b0 = <i32>load<u8>(o);
    const b1 = <i32>load<u8>(o + 1);
    const b2 = <i32>load<u8>(o + 2);
    setCoef(p, 2 * i, b0 | ((b1 & 0x0f) << 8));
    setCoef(p, 2 * i + 1, (b1 >> 4) | (b2 << 4));
  }
}

/** round(2^bits * fe / q) mod 2^bits, fe in [0, q), without a division. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_portable_compress_compress_ciphertext_coefficient */
@inline function compress_ciphertext_coefficient(bits: i32, fe: i32): i32 {
  let compressed = <u64>fe << <u64>bits;
  compressed += 1664;
  compressed *= 10321340;
  compressed >>= 35;
  return <i32>compressed & ((1 << bits) - 1);
}

/** round(q * fe / 2^bits). */
@inline function decompress_ciphertext_coefficient(bits: i32, fe: i32): i32 {
  return ((fe * Q) * 2 + (1 << bits)) >> (bits + 1);
}

/** The bit nearest fe * 2 / q, fe in [0, q). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_vector_portable_compress_compress_message_coefficient */
@inline function compress_message_coefficient(fe: i32): i32 {
  const shifted = 1664 - fe;
  const mask = shifted >> 15;
  const shifted_to_positive = mask ^ shifted;
  const shifted_positive_in_range = shifted_to_positive - 832;
  return (shifted_positive_in_range >> 15) & 1;
}

/** u's polynomial compressed to 10 bits a coefficient (320 bytes). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_compress_then_serialize_ring_element_u_5f */
function compress_then_serialize_ring_element_u(p: usize, out: usize): void {
  for (let i = 0; i < N / 4; i++) {
    const t0 = compress_ciphertext_coefficient(10, to_unsigned_representative(coef(p, 4 * i)));
    const t1 = compress_ciphertext_coefficient(10, to_unsigned_representative(coef(p, 4 * i + 1)));
    const t2 = compress_ciphertext_coefficient(10, to_unsigned_representative(coef(p, 4 * i + 2)));
    const t3 = compress_ciphertext_coefficient(10, to_unsigned_representative(coef(p, 4 * i + 3)));
    const o = out + <usize>(5 * i);
    store<u8>(o, <u8>t0);
    store<u8>(o + 1, <u8>((t0 >> 8) | (t1 << 2)));
    store<u8>(o + 2, <u8>((t1 >> 6) | (t2 << 4)));
    store<u8>(o + 3, <u8>((t2 >> 4) | (t3 << 6)));
    store<u8>(o + 4, <u8>(t3 >> 2));
  }
}

/** The inverse of compress_then_serialize_ring_element_u, to [0, q). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_deserialize_then_decompress_ring_element_u_34 */
function deserialize_then_decompress_ring_element_u(input: usize, p: usize): void {
  for (let i = 0; i < N / 4; i++) {
    const o = input + <usize>(5 * i);
    const b0 = <i32>load<u8>(o);
    const b1 = <i32>load<u8>(o + 1);
    const b2 = <i32>load<u8>(o + 2);
    const b3 = <i32>load<u8>(o + 3);
    const b4 = <i32>load<u8>(o + 4);
    setCoef(p, 4 * i, decompress_ciphertext_coefficient(10, b0 | ((b1 & 0x03) << 8)));
    setCoef(p, 4 * i + 1, decompress_ciphertext_coefficient(10, (b1 >> 2) | ((b2 & 0x0f) << 6)));
    setCoef(p, 4 * i + 2, decompress_ciphertext_coefficient(10, (b2 >> 4) | ((b3 & 0x3f) << 4)));
    setCoef(p, 4 * i + 3, decompress_ciphertext_coefficient(10, (b3 >> 6) | (b4 << 2)));
  }
}

/** v compressed to 4 bits a coefficient (128 bytes). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_compress_then_serialize_ring_element_v_4e */
function compress_then_serialize_ring_element_v(p: usize, out: usize): void {
  for (let i = 0; i < N / 2; i++) {
    const t0 = compress_ciphertext_coefficient(4, to_unsigned_representative(coef(p, 2 * i)));
    const t1 = compress_ciphertext_coefficient(4, to_unsigned_representative(coef(p, 2 * i + 1)));
    store<u8>(out + <usize>i, <u8>(t0 | (t1 << 4)));
  }
}

/** The inverse of compress_then_serialize_ring_element_v, to [0, q). @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_deserialize_then_decompress_ring_element_v_56 */
function deserialize_then_decompress_ring_element_v(input: usize, p: usize): void {
  for (let i = 0; i < N / 2; i++) {
    const b = <i32>load<u8>(input + <usize>i);
    setCoef(p, 2 * i, decompress_ciphertext_coefficient(4, b & 0x0f));
    setCoef(p, 2 * i + 1, decompress_ciphertext_coefficient(4, b >> 4));
  }
}

/** The 32-byte message from the polynomial's coefficients nearest q/2. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_compress_then_serialize_message_aa */
function compress_then_serialize_message(p: usize, out: usize): void {
  for (let i = 0; i < 32; i++) {
    let byte = 0;
    for (let j = 0; j < 8; j++) byte |= compress_message_coefficient(to_unsigned_representative(coef(p, 8 * i + j))) << j;
    store<u8>(out + <usize>i, <u8>byte);
  }
}

/** Each message bit as 0 or (q+1)/2. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_serialize_deserialize_then_decompress_message_0d */
function deserialize_then_decompress_message(input: usize, p: usize): void {
  for (let i = 0; i < 32; i++) {
    const b = <i32>load<u8>(input + <usize>i);
    for (let j = 0; j < 8; j++) setCoef(p, 8 * i + j, -((b >> j) & 1) & 1665);
  }
}

// ---------------------------------------------------------------------------------------------
// K-PKE

/** Zeroes a polynomial. */
function poly_zero(p: usize): void {
  memory.fill(p, 0, POLY);
}

@inline function vec(v: usize, i: i32): usize {
  return v + <usize>(i * POLY);
}

/**
 * K-PKE key generation from (rho, sigma) at G_OUT: the public key t ‖ rho to PK, the secret
 * s (NTT domain, 12 bits a coefficient) to SK. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cpa_generate_keypair_fc
 */
function ind_cpa_generate_keypair(): void {
  const rho = G_OUT;
  const sigma = G_OUT + 32;
  const s = VEC0;
  const t = VEC1;
  for (let i = 0; i < RANK; i++) {
    sample_from_binomial_distribution_2(vec(s, i), sigma, i);
    ntt(vec(s, i));
  }
  for (let i = 0; i < RANK; i++) {
    // t[i] = sum_j A[i][j] s[j] + e[i]
    poly_zero(vec(t, i));
    for (let j = 0; j < RANK; j++) {
      sample_from_xof(A_ENTRY, rho, i, j);
      ntt_multiply_add(vec(t, i), A_ENTRY, vec(s, j));
    }
    sample_from_binomial_distribution_2(POLY0, sigma, RANK + i);
    ntt(POLY0);
    compute_As_plus_e(vec(t, i), POLY0);
  }
  for (let i = 0; i < RANK; i++) {
    serialize_uncompressed_ring_element(vec(t, i), PK + <usize>(i * POLY_BYTES));
    serialize_uncompressed_ring_element(vec(s, i), SK + <usize>(i * POLY_BYTES));
  }
  memory.copy(PK + <usize>T_BYTES, rho, 32);
}

/** t (times 2^-16 from the products) back to the plain domain (1353 = 2^32 mod q), plus e, reduced. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_matrix_compute_As_plus_e_60 */
function compute_As_plus_e(t: usize, e: usize): void {
  for (let k = 0; k < N; k++) {
    const normal = montgomery_multiply_fe_by_fer(coef(t, k), 1353);
    setCoef(t, k, barrett_reduce_element(normal + coef(e, k)));
  }
}

/**
 * K-PKE encryption of the message at msg with the randomness at r, under the public key at pk,
 * to the ciphertext at ct. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cpa_encrypt_60
 */
function ind_cpa_encrypt(pk: usize, msg: usize, r: usize, ct: usize): void {
  const rho = pk + <usize>T_BYTES;
  const y = VEC0;
  const u = VEC1;
  const t = VEC2;
  for (let i = 0; i < RANK; i++) {
    sample_from_binomial_distribution_2(vec(y, i), r, i);
    ntt(vec(y, i));
  }
  // u[i] = NTT^-1(sum_j A[j][i] y[j]) + e1[i]
  for (let i = 0; i < RANK; i++) {
    poly_zero(vec(u, i));
    for (let j = 0; j < RANK; j++) {
      sample_from_xof(A_ENTRY, rho, j, i);
      ntt_multiply_add(vec(u, i), A_ENTRY, vec(y, j));
    }
    invert_ntt_montgomery(vec(u, i));
    sample_from_binomial_distribution_2(POLY0, r, RANK + i);
    add_error_reduce(vec(u, i), POLY0);
    compress_then_serialize_ring_element_u(vec(u, i), ct + <usize>(i * 320));
  }
  // v = NTT^-1(sum_i t[i] y[i]) + e2 + Decompress_1(msg)
  for (let i = 0; i < RANK; i++) deserialize_to_uncompressed_ring_element(pk + <usize>(i * POLY_BYTES), vec(t, i));
  poly_zero(POLY1);
  for (let i = 0; i < RANK; i++) ntt_multiply_add(POLY1, vec(t, i), vec(y, i));
  invert_ntt_montgomery(POLY1);
  sample_from_binomial_distribution_2(POLY0, r, 2 * RANK);
  add_error_reduce(POLY1, POLY0);
  deserialize_then_decompress_message(msg, POLY0);
  add_message_reduce(POLY1, POLY0);
  compress_then_serialize_ring_element_v(POLY1, ct + <usize>U_BYTES);
}

/** self (times 128 * 2^-16 from the products and the inverse NTT) to the plain domain, plus error, reduced. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_polynomial_add_error_reduce_89_38 */
function add_error_reduce(self: usize, error: usize): void {
  for (let k = 0; k < N; k++) {
    const normal = montgomery_multiply_fe_by_fer(coef(self, k), 1441);
    setCoef(self, k, barrett_reduce_element(normal + coef(error, k)));
  }
}

/** self plus the decompressed message, reduced (self is already plain). */
function add_message_reduce(self: usize, message: usize): void {
  for (let k = 0; k < N; k++) setCoef(self, k, barrett_reduce_element(coef(self, k) + coef(message, k)));
}

/** K-PKE decryption of the ciphertext at ct with the secret key at sk, to the 32 bytes at out. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cpa_decrypt_43 */
function ind_cpa_decrypt(sk: usize, ct: usize, out: usize): void {
  const s = VEC0;
  const u = VEC1;
  poly_zero(POLY1);
  for (let i = 0; i < RANK; i++) {
    deserialize_then_decompress_ring_element_u(ct + <usize>(i * 320), vec(u, i));
    ntt(vec(u, i));
    deserialize_to_uncompressed_ring_element(sk + <usize>(i * POLY_BYTES), vec(s, i));
    ntt_multiply_add(POLY1, vec(s, i), vec(u, i));
  }
  invert_ntt_montgomery(POLY1);
  deserialize_then_decompress_ring_element_v(ct + <usize>U_BYTES, POLY0);
  subtract_reduce(POLY0, POLY1);
  compress_then_serialize_message(POLY0, out);
}

/** v - b, with b (times 128 * 2^-16) to the plain domain first, reduced, into v. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_polynomial_subtract_reduce_89_d4 */
function subtract_reduce(v: usize, b: usize): void {
  for (let k = 0; k < N; k++) {
    const normal = montgomery_multiply_fe_by_fer(coef(b, k), 1441);
    setCoef(v, k, barrett_reduce_element(coef(v, k) - normal));
  }
}

// ---------------------------------------------------------------------------------------------
// ML-KEM

/**
 * Key generation from d ‖ z at SEED: PK, and SK = s ‖ PK ‖ H(PK) ‖ z.
 * @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cca_generate_keypair_8c
 */
export function keypair(): void {
  // (rho, sigma) = G(d ‖ k)
  memory.copy(HASH_IN, SEED, 32);
  store<u8>(HASH_IN + 32, <u8>RANK);
  G(HASH_IN, 33, G_OUT);
  ind_cpa_generate_keypair();
  memory.copy(SK + <usize>T_BYTES, PK, PK_LEN);
  H(PK, PK_LEN, SK + <usize>(T_BYTES + PK_LEN));
  memory.copy(SK + <usize>(T_BYTES + PK_LEN + 32), SEED + 32, 32);
}

/**
 * FIPS 203's check of an encapsulation key: every coefficient of t below q (so that it encodes
 * back to the same bytes). The key is public. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cca_validate_public_key_19
 */
function validate_public_key(): bool {
  for (let i = 0; i < RANK; i++) {
    deserialize_to_uncompressed_ring_element(PK + <usize>(i * POLY_BYTES), POLY0);
    for (let k = 0; k < N; k++) if (coef(POLY0, k) >= Q) return false;
  }
  return true;
}

/**
 * Encapsulation to PK with the message m at SEED: CT and the secret SS. Returns -1 (and
 * writes nothing) for a key that fails validate_public_key, else 0.
 * @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cca_encapsulate_cd
 */
export function enc(): i32 {
  if (!validate_public_key()) return -1;
  // (K, r) = G(m ‖ H(ek))
  memory.copy(HASH_IN, SEED, 32);
  H(PK, PK_LEN, HASH_IN + 32);
  G(HASH_IN, 64, G_OUT);
  ind_cpa_encrypt(PK, SEED, G_OUT + 32, CT);
  memory.copy(SS, G_OUT, SS_LEN);
  return 0;
}

/**
 * Decapsulation of CT with SK to SS: the secret re-encryption confirms, or else the implicit
 * rejection secret SHAKE256(z ‖ c), chosen by mask. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_ind_cca_decapsulate_70
 */
export function dec(): void {
  const pk = SK + <usize>T_BYTES;
  const h = pk + <usize>PK_LEN;
  const z = h + 32;
  ind_cpa_decrypt(SK, CT, MSG);
  // (K', r') = G(m' ‖ h)
  memory.copy(HASH_IN, MSG, 32);
  memory.copy(HASH_IN + 32, h, 32);
  G(HASH_IN, 64, G_OUT);
  ind_cpa_encrypt(pk, MSG, G_OUT + 32, CT2);
  // The implicit rejection secret J(z ‖ c), to HASH_OUT.
  memory.copy(HASH_IN, z, 32);
  memory.copy(HASH_IN + 32, CT, CT_LEN);
  shake256(HASH_IN, 32 + CT_LEN, HASH_OUT, 32);
  select_shared_secret_in_constant_time(compare(CT, CT2, CT_LEN), G_OUT, HASH_OUT, SS);
}

/** 0 if the len bytes at a and b agree, else 1, in time independent of where they differ. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_constant_time_ops_compare */
function compare(a: usize, b: usize, len: i32): i32 {
  let r = 0;
  for (let i = 0; i < len; i++) r |= <i32>(load<u8>(a + <usize>i) ^ load<u8>(b + <usize>i));
  return <i32>((<u32>(-r)) >> 31);
}

/** out = differ ? rejected : confirmed (32 bytes), by mask. @dropbear libcrux_mlkem768_sha3.h libcrux_ml_kem_constant_time_ops_select_shared_secret_in_constant_time */
function select_shared_secret_in_constant_time(differ: i32, confirmed: usize, rejected: usize, out: usize): void {
  const mask = -differ;
  for (let i = 0; i < SS_LEN; i++) {
    const c = <i32>load<u8>(confirmed + <usize>i);
    const r = <i32>load<u8>(rejected + <usize>i);
    store<u8>(out + <usize>i, <u8>((c & ~mask) | (r & mask)));
  }
}

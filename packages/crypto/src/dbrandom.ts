import { randomFillSync } from "node:crypto";
import { dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

import { bytes_to_mp } from "./bignum.js";

// Dropbear keeps its own SHA-256 hash pool seeded from getrandom() and /proc. Here OpenSSL's
// CSPRNG (seeded and reseeded by OpenSSL from the kernel) is the pool, so the seeding entry
// points have nothing left to do.

/**
 * Seed the generator. A no-op: OpenSSL seeds itself from the kernel and reseeds on its own,
 * including after fork. Kept so callers can follow Dropbear's start-up sequence.
 * @dropbear dbrandom.c seedrandom
 */
export function seedrandom(): void {}

/**
 * Stir extra data (Dropbear adds host key bytes) into the pool. A no-op: OpenSSL's pool needs
 * no help, and mixing predictable key material in would add nothing.
 * @dropbear dbrandom.c addrandom
 */
export function addrandom(_buf: Uint8Array, _len: number): void {}

// Every packet we send asks for 4 to 20 bytes of padding. One randomFillSync call per packet
// cost 7 % of the client's CPU under load (its fixed cost, not the bytes), so small requests
// are served from a pool filled 4 KiB at a time; bytes handed out are zeroed in the pool, so
// none is ever given twice or left lying there.
const POOL_SIZE = 4096;
const POOL_MAX_REQUEST = 256;
const pool = Buffer.alloc(POOL_SIZE);
let poolPos = POOL_SIZE;

/** Fill the first `len` bytes of buf with cryptographically strong random bytes. @dropbear dbrandom.c genrandom */
export function genrandom(buf: Uint8Array, len: number = buf.length): void {
  if (len > buf.length) {
    dropbear_exit("genrandom: buffer too small");
  }
  if (len <= 0) {
    return;
  }
  if (len > POOL_MAX_REQUEST) {
    randomFillSync(buf, 0, len);
    return;
  }
  if (poolPos + len > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  buf.set(pool.subarray(poolPos, poolPos + len));
  pool.fill(0, poolPos, poolPos + len);
  poolPos += len;
}

const MASKS = [0xff, 0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f];

/**
 * A uniformly random integer with 0 < rand < max. Draws as many bits as max has and retries
 * until the value is in range (at most two draws on average). C fills an mp_int out-parameter;
 * this returns the bigint. @dropbear dbrandom.c gen_random_mpint
 */
export function gen_random_mpint(max: bigint): bigint {
  if (max <= 1n) {
    // No integer lies strictly between 0 and max: the C loop would never end.
    dropbear_exit("gen_random_mpint: bad range");
  }
  const size_bits = max.toString(2).length;
  const len = Math.ceil(size_bits / 8);
  const randbuf = Buffer.alloc(len);
  let rand: bigint;
  do {
    genrandom(randbuf, len);
    // Keep only as many leading bits as max has, so each draw succeeds with probability > 1/2.
    randbuf[0] &= MASKS[size_bits % 8];
    rand = bytes_to_mp(randbuf, len);
  } while (!(rand < max && rand > 0n));
  m_burn(randbuf, len);
  return rand;
}

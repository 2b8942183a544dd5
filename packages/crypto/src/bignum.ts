import { buf_burn_free, buf_new, buf_putmpint } from "@dropbear-ts/buffer";
import { dropbear_exit } from "@dropbear-ts/dbutil";

// Dropbear's mp_int (libtommath) becomes a native bigint: no init/free/burn bookkeeping.
// bigints are immutable and cannot be wiped, which is the one thing m_mp_burn did.

/** Anything a byte string can be fed into: a node:crypto Hash or Hmac, or a test double. */
export interface HashUpdate {
  update(data: Uint8Array): unknown;
}

/**
 * Read `len` big-endian unsigned bytes as an integer. C fills an mp_int out-parameter; this
 * returns the bigint. @dropbear bignum.c bytes_to_mp
 */
export function bytes_to_mp(bytes: Uint8Array, len: number = bytes.length): bigint {
  if (len > bytes.length) {
    dropbear_exit("bytes_to_mp: short input");
  }
  if (len === 0) {
    return 0n;
  }
  return BigInt("0x" + Buffer.from(bytes.buffer, bytes.byteOffset, len).toString("hex"));
}

/**
 * The big-endian unsigned bytes of a non-negative integer: the minimal encoding (empty for 0),
 * or exactly `len` bytes left-padded with zeros when `len` is given (exits if it does not fit).
 */
export function mpToBytes(mp: bigint, len?: number): Buffer {
  if (mp < 0n) {
    dropbear_exit("negative bignum");
  }
  let hex = mp === 0n ? "" : mp.toString(16);
  if (hex.length & 1) {
    hex = "0" + hex;
  }
  const minimal = Buffer.from(hex, "hex");
  if (len === undefined) {
    return minimal;
  }
  if (minimal.length > len) {
    dropbear_exit("bignum too large");
  }
  const out = Buffer.alloc(len);
  minimal.copy(out, len - minimal.length);
  return out;
}

/**
 * Feed the SSH mpint encoding of mp (RFC 4251 §5, the form K takes in the exchange hash and
 * key derivation) into a running hash. C also takes the hash descriptor; a node Hash carries
 * its algorithm, so only the hash state is passed. @dropbear bignum.c hash_process_mp
 */
export function hash_process_mp(hs: HashUpdate, mp: bigint): void {
  // 4-byte length, the magnitude, and one possible 0x00 sign pad.
  const size = 4 + Math.ceil(mp.toString(16).length / 2) + 1;
  const buf = buf_new(size);
  buf_putmpint(buf, mp);
  hs.update(buf.data.subarray(0, buf.len));
  buf_burn_free(buf);
}

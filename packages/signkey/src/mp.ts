import { bytes_to_mp } from "@dropbear-ts/crypto";
// Small bigint helpers shared by the key codecs. Keys keep their numbers as bigints (the wire
// and file formats are mpints); node:crypto wants them as unsigned big-endian bytes (JWK).

/** Bits needed to write x (0 for 0), like libtommath's mp_count_bits. */
export function bigintBitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

/** Bytes needed to write x unsigned (0 for 0), like mp_ubin_size. */
export function bigintByteLength(x: bigint): number {
  return (bigintBitLength(x) + 7) >>> 3;
}

/**
 * A non-negative bigint as unsigned big-endian bytes, left-padded with zeros to `len` when
 * given. Returns null if it does not fit in `len` bytes.
 */
export function bigintToBytes(x: bigint, len?: number): Buffer | null {
  let hex = x === 0n ? "" : x.toString(16);
  if (hex.length & 1) {
    hex = "0" + hex;
  }
  const raw = Buffer.from(hex, "hex");
  if (len === undefined) {
    return raw;
  }
  if (raw.length > len) {
    return null;
  }
  const out = Buffer.alloc(len);
  raw.copy(out, len - raw.length);
  return out;
}

/** x mod m, always in [0, m). */
export function mod(x: bigint, m: bigint): bigint {
  const r = x % m;
  return r < 0n ? r + m : r;
}

/**
 * x^-1 mod m, or null when x and m share a factor or m is not above 1 (libtommath's mp_invmod
 * refuses those moduli: "mod 1" would give an RSA key a q^-1 of 0).
 */
export function modInverse(x: bigint, m: bigint): bigint | null {
  if (m <= 1n) {
    return null;
  }
  let [oldR, r] = [mod(x, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return oldR === 1n ? mod(oldS, m) : null;
}

/** base64url without padding, for JWK fields. */
export function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64url");
}

/** A bigint as a JWK number field (minimal unsigned bytes, or padded to `len`). */
export function bigintToJwk(x: bigint, len?: number): string {
  const bytes = bigintToBytes(x, len);
  if (bytes === null) {
    throw new RangeError("number too large for its field");
  }
  return b64url(bytes);
}

/** A JWK number field back to a bigint. */
export function jwkToBigint(field: string | undefined): bigint | null {
  if (field === undefined) {
    return null;
  }
  return bytes_to_mp(Buffer.from(field, "base64url"));
}

/** The bytes a buffer holds (0..len), whatever its position: what Dropbear hashes when signing. */
export function usedBytes(buf: { data: Buffer; len: number }): Buffer {
  return buf.data.subarray(0, buf.len);
}

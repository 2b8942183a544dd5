import { bytes_to_mp } from "@dropbear-ts/crypto";
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";
import { TRACE, dropbear_exit, dropbear_log, LOG_WARNING } from "@dropbear-ts/dbutil";
import { type buffer, buf_getbyte, buf_getptr, buf_incrpos, buf_incrwritepos, buf_getwriteptr, buf_putint, buf_setpos } from "@dropbear-ts/buffer";
import { bigintToBytes, bigintToJwk, mod } from "./mp.js";

/**
 * One curve's domain parameters: what libtomcrypt's ltc_ecc_set_type holds, plus the names
 * node:crypto knows it by. `size` is the field size in bytes.
 */
export interface ecc_set_type {
  readonly size: number;
  /** JWK "crv" name. */
  readonly name: "P-256" | "P-384" | "P-521";
  readonly prime: bigint;
  /** The curve's b (a is -3 for all three NIST curves). */
  readonly B: bigint;
  readonly order: bigint;
}

/** A NIST curve as Dropbear names it, with the hash ECDSA pairs with it. @dropbear ecc.h dropbear_ecc_curve */
export interface dropbear_ecc_curve {
  readonly ltc_size: number;
  readonly dp: ecc_set_type;
  /** node:crypto digest name. */
  readonly hash_desc: "sha256" | "sha384" | "sha512";
  readonly name: "nistp256" | "nistp384" | "nistp521";
}

const dp256: ecc_set_type = {
  size: 32,
  name: "P-256",
  prime: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  B: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
};
const dp384: ecc_set_type = {
  size: 48,
  name: "P-384",
  prime:
    0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
  B: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  order:
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};
const dp521: ecc_set_type = {
  size: 66,
  name: "P-521",
  prime: (1n << 521n) - 1n,
  B: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  order:
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

/** NIST P-256 with SHA-256. @dropbear ecc.c ecc_curve_nistp256 */
export const ecc_curve_nistp256: dropbear_ecc_curve = { ltc_size: 32, dp: dp256, hash_desc: "sha256", name: "nistp256" };
/** NIST P-384 with SHA-384. @dropbear ecc.c ecc_curve_nistp384 */
export const ecc_curve_nistp384: dropbear_ecc_curve = { ltc_size: 48, dp: dp384, hash_desc: "sha384", name: "nistp384" };
/** NIST P-521 with SHA-512. @dropbear ecc.c ecc_curve_nistp521 */
export const ecc_curve_nistp521: dropbear_ecc_curve = { ltc_size: 66, dp: dp521, hash_desc: "sha512", name: "nistp521" };

/** Every curve built in, smallest first. @dropbear ecc.c dropbear_ecc_curves */
export const dropbear_ecc_curves: readonly dropbear_ecc_curve[] = [ecc_curve_nistp256, ecc_curve_nistp384, ecc_curve_nistp521];

/**
 * An EC key: the public point (x, y) and, for a private key, the scalar k. The node:crypto
 * key objects are built on first use and cached; the numbers are the source of truth.
 * Mirrors libtomcrypt's ecc_key (pubkey.x/.y, k, dp).
 */
export class ecc_key {
  pubKeyObject: KeyObject | null = null;
  privKeyObject: KeyObject | null = null;

  constructor(
    public dp: ecc_set_type,
    public x: bigint,
    public y: bigint,
    public k: bigint | null = null,
  ) {}
}

/** Map domain parameters back to their Dropbear curve. @dropbear ecc.c curve_for_dp */
export function curve_for_dp(dp: ecc_set_type): dropbear_ecc_curve {
  const curve = dropbear_ecc_curves.find((c) => c.dp === dp);
  if (!curve) {
    dropbear_exit("Unknown ECC curve");
  }
  return curve;
}

/** A key with no numbers yet, on `dp`. @dropbear ecc.c new_ecc_key */
export function new_ecc_key(dp: ecc_set_type = dp256): ecc_key {
  return new ecc_key(dp, 0n, 0n);
}

/** Whether (x, y) satisfies y^2 = x^3 - 3x + b over the curve's field. @dropbear ecc.c ecc_is_point */
function ecc_is_point(key: ecc_key): boolean {
  const p = key.dp.prime;
  const lhs = mod(key.y * key.y, p);
  const rhs = mod(key.x * key.x * key.x - 3n * key.x + key.dp.B, p);
  return lhs === rhs;
}

/** The uncompressed SEC1 point 04 || x || y. */
export function eccPointBytes(key: ecc_key): Buffer {
  const size = key.dp.size;
  const out = Buffer.alloc(1 + 2 * size);
  out[0] = 4;
  const x = bigintToBytes(key.x, size);
  const y = bigintToBytes(key.y, size);
  if (x === null || y === null) {
    dropbear_exit("ECC error");
  }
  x.copy(out, 1);
  y.copy(out, 1 + size);
  return out;
}

/** The point as an SSH string: the "ephemeral public key octet string" of RFC 5656. @dropbear ecc.c buf_put_ecc_raw_pubkey_string */
export function buf_put_ecc_raw_pubkey_string(buf: buffer, key: ecc_key): void {
  const point = eccPointBytes(key);
  buf_putint(buf, point.length);
  point.copy(buf_getwriteptr(buf, point.length));
  buf_incrwritepos(buf, point.length);
}

/**
 * Read an uncompressed point filling all of `buf` (from position 0) and check it lies on
 * `curve` and is not zero. null if it does not. @dropbear ecc.c buf_get_ecc_raw_pubkey
 */
export function buf_get_ecc_raw_pubkey(buf: buffer, curve: dropbear_ecc_curve): ecc_key | null {
  TRACE("enter buf_get_ecc_raw_pubkey");
  const size = curve.dp.size;
  buf_setpos(buf, 0);
  const first = buf_getbyte(buf);
  if (first === 2 || first === 3) {
    dropbear_log(LOG_WARNING, "Dropbear doesn't support ECC point compression");
    return null;
  }
  if (first !== 4 || buf.len !== 1 + 2 * size) {
    TRACE("leave, wrong size");
    return null;
  }
  const x = bytes_to_mp(buf_getptr(buf, size));
  buf_incrpos(buf, size);
  const y = bytes_to_mp(buf_getptr(buf, size));
  buf_incrpos(buf, size);
  const key = new ecc_key(curve.dp, x, y);
  // Coordinates must be field elements: node:crypto refuses the others, so catch them here.
  if (x >= curve.dp.prime || y >= curve.dp.prime || !ecc_is_point(key)) {
    TRACE("failed, not a point");
    return null;
  }
  // SEC1 3.2.3.1: Q must not be the point at infinity.
  if (x === 0n || y === 0n) {
    TRACE("failed, zero coordinate");
    return null;
  }
  return key;
}

/** The public half as a node:crypto key (cached). Throws if node:crypto refuses the point. */
export function eccPublicKeyObject(key: ecc_key): KeyObject {
  if (key.pubKeyObject === null) {
    const size = key.dp.size;
    key.pubKeyObject = createPublicKey({
      key: { kty: "EC", crv: key.dp.name, x: bigintToJwk(key.x, size), y: bigintToJwk(key.y, size) },
      format: "jwk",
    });
  }
  return key.pubKeyObject;
}

/**
 * The private key as a node:crypto key (cached). Throws if k is missing or outside 1..order-1
 * (node:crypto takes such a k and fails, or signs wrongly, only when it signs).
 */
export function eccPrivateKeyObject(key: ecc_key): KeyObject {
  if (key.privKeyObject === null) {
    if (key.k === null) {
      throw new Error("not a private key");
    }
    if (key.k < 1n || key.k >= key.dp.order) {
      throw new Error("private value out of range");
    }
    const size = key.dp.size;
    key.privKeyObject = createPrivateKey({
      key: {
        kty: "EC",
        crv: key.dp.name,
        x: bigintToJwk(key.x, size),
        y: bigintToJwk(key.y, size),
        d: bigintToJwk(key.k, size),
      },
      format: "jwk",
    });
  }
  return key.privKeyObject;
}

/** An ecc_key from a node:crypto EC key on one of our curves, else null. */
export function eccKeyFromKeyObject(ko: KeyObject): ecc_key | null {
  if (ko.asymmetricKeyType !== "ec") {
    return null;
  }
  const jwk = ko.export({ format: "jwk" });
  const curve = dropbear_ecc_curves.find((c) => c.dp.name === jwk.crv);
  if (!curve || jwk.x === undefined || jwk.y === undefined) {
    return null;
  }
  const key = new ecc_key(
    curve.dp,
    bytes_to_mp(Buffer.from(jwk.x, "base64url")),
    bytes_to_mp(Buffer.from(jwk.y, "base64url")),
    jwk.d === undefined ? null : bytes_to_mp(Buffer.from(jwk.d, "base64url")),
  );
  if (ko.type === "private") {
    key.privKeyObject = ko;
  } else {
    key.pubKeyObject = ko;
  }
  return key;
}

/**
 * ECDH: the x coordinate of priv_key.k * pub_key, as a number. Exits ("ECC error") when the
 * keys are on different curves or the private half is missing. @dropbear ecc.c dropbear_ecc_shared_secret
 */
export function dropbear_ecc_shared_secret(pub_key: ecc_key, priv_key: ecc_key): bigint {
  if (priv_key.k === null || priv_key.dp !== pub_key.dp) {
    dropbear_exit("ECC error");
  }
  let secret: Buffer;
  try {
    secret = diffieHellman({ privateKey: eccPrivateKeyObject(priv_key), publicKey: eccPublicKeyObject(pub_key) });
  } catch {
    dropbear_exit("ECC error");
  }
  return bytes_to_mp(secret);
}

import { generatePrivateKey } from "@dropbear-ts/crypto";
import { dropbear_exit } from "@dropbear-ts/dbutil";
import { type dropbear_rsa_key, rsaKeyFromKeyObject } from "./rsa.js";

/** The public exponent of every key we make. @dropbear genrsa.c RSA_E */
export const RSA_E = 65537;

/**
 * A new RSA key of exactly `size` bits (512..4096, a multiple of 8), made by OpenSSL.
 * @dropbear genrsa.c gen_rsa_priv_key
 */
export function gen_rsa_priv_key(size: number): dropbear_rsa_key {
  if (!Number.isInteger(size) || size < 512 || size > 4096 || size % 8 !== 0) {
    dropbear_exit("Bits must satisfy 512 <= bits <= 4096, and be a multiple of 8");
  }
  const privateKey = generatePrivateKey("rsa", { modulusLength: size, publicExponent: RSA_E });
  const key = rsaKeyFromKeyObject(privateKey);
  if (key === null) {
    dropbear_exit("RSA generation failed");
  }
  return key;
}

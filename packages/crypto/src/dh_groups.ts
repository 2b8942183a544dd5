import { createDiffieHellman, type DiffieHellman } from "node:crypto";
import { dropbear_exit } from "@dropbear-ts/dbutil";

import { bytes_to_mp, mpToBytes } from "./bignum.js";
import { gen_random_mpint } from "./dbrandom.js";

// The MODP groups of RFC 3526 that Dropbear can offer. The arithmetic runs in OpenSSL through
// node:crypto's DiffieHellman; only the private exponent is chosen here, the way kex-dh.c
// chooses it.

/** Byte length of the group 14 prime. @dropbear dh_groups.h DH_P_14_LEN */
export const DH_P_14_LEN = 256;

/** The 2048-bit MODP prime (RFC 3526 §3), big-endian. @dropbear dh_groups.c dh_p_14 */
export const dh_p_14: Buffer = Buffer.from(
  "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74" +
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437" +
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed" +
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf05" +
    "98da48361c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb" +
    "9ed529077096966d670c354e4abc9804f1746c08ca18217c32905e462e36ce3b" +
    "e39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf695581718" +
    "3995497cea956ae515d2261898fa051015728e5a8aacaa68ffffffffffffffff",
  "hex",
);

/** Byte length of the group 16 prime. @dropbear dh_groups.h DH_P_16_LEN */
export const DH_P_16_LEN = 512;

/** The 4096-bit MODP prime (RFC 3526 §5), big-endian. @dropbear dh_groups.c dh_p_16 */
export const dh_p_16: Buffer = Buffer.from(
  "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74" +
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437" +
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed" +
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf05" +
    "98da48361c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb" +
    "9ed529077096966d670c354e4abc9804f1746c08ca18217c32905e462e36ce3b" +
    "e39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf695581718" +
    "3995497cea956ae515d2261898fa051015728e5a8aaac42dad33170d04507a33" +
    "a85521abdf1cba64ecfb850458dbef0a8aea71575d060c7db3970f85a6e1e4c7" +
    "abf5ae8cdb0933d71e8c94e04a25619dcee3d2261ad2ee6bf12ffa06d98a0864" +
    "d87602733ec86a64521f2b18177b200cbbe117577a615d6c770988c0bad946e2" +
    "08e24fa074e5ab3143db5bfce0fd108e4b82d120a92108011a723c12a787e6d7" +
    "88719a10bdba5b2699c327186af4e23c1a946834b6150bda2583e9ca2ad44ce8" +
    "dbbbc2db04de8ef92e8efc141fbecaa6287c59474e6bc05d99b2964fa090c3a2" +
    "233ba186515be7ed1f612970cee2d7afb81bdd762170481cd0069127d5b05aa9" +
    "93b4ea988d8fddc186ffb7dc90a6c08f4df435c934063199ffffffffffffffff",
  "hex",
);

/** The generator of every group above. @dropbear dh_groups.c DH_G_VAL */
export const DH_G_VAL = 2;

const G_BYTES = Buffer.from([DH_G_VAL]);

/** One side's ephemeral DH values: the secret exponent and g^priv mod p (e or f). */
export interface DhKeypair {
  readonly priv: bigint;
  readonly pub: bigint;
}

/**
 * One DiffieHellman object per prime, made on first use: from Node 24 on, making one checks the
 * prime (a safe-prime test: 0.3 s for group 14, 4 s for group 16), so it is done once per
 * process, not twice per key exchange. Callers set the private key right before each use.
 */
const dhByPrime = new Map<string, DiffieHellman>();

function dhFor(dh_p: Uint8Array, priv: bigint): DiffieHellman {
  const key = Buffer.from(dh_p).toString("hex");
  let dh = dhByPrime.get(key);
  if (dh === undefined) {
    dh = createDiffieHellman(dh_p, G_BYTES);
    dhByPrime.set(key, dh);
  }
  dh.setPrivateKey(mpToBytes(priv));
  return dh;
}

/**
 * Make an ephemeral key pair in the group with prime dh_p: priv uniform in (0, q) with
 * q = (p-1)/2, as kex-dh.c's gen_kexdh_param picks it, and pub = g^priv mod p.
 */
export function dhGenerateKeypair(dh_p: Uint8Array): DhKeypair {
  const p = bytes_to_mp(dh_p);
  const priv = gen_random_mpint((p - 1n) >> 1n);
  const pub = bytes_to_mp(dhFor(dh_p, priv).generateKeys());
  return { priv, pub };
}

/**
 * The shared secret K = them^priv mod p. The peer's value must lie in [2, p-2] (1 and p-1
 * would force K into a subgroup of order 2); anything else ends the session with Dropbear's
 * "Diffie-Hellman error", as kex-dh.c's kexdh_comb_key does. Node 22's OpenSSL also refuses a
 * value outside the prime-order subgroup (no honest peer sends one): the same error then.
 */
export function dhSharedSecret(dh_p: Uint8Array, priv: bigint, dh_pub_them: bigint): bigint {
  const p = bytes_to_mp(dh_p);
  if (!(dh_pub_them > 1n && dh_pub_them < p - 1n)) {
    dropbear_exit("Diffie-Hellman error");
  }
  let secret: Buffer;
  try {
    secret = dhFor(dh_p, priv).computeSecret(mpToBytes(dh_pub_them));
  } catch {
    dropbear_exit("Diffie-Hellman error");
  }
  return bytes_to_mp(secret);
}

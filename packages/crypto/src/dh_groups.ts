import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";
import { dropbear_exit } from "@dropbear-ts/dbutil";

import { bytes_to_mp, mpToBytes } from "./bignum.js";
import { gen_random_mpint } from "./dbrandom.js";

// The MODP groups of RFC 3526 that Dropbear can offer. The arithmetic runs in OpenSSL through
// node:crypto's DH keys; only the private exponent is chosen here, the way kex-dh.c chooses it.

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

/** One side's ephemeral DH values: the secret exponent and g^priv mod p (e or f). */
export interface DhKeypair {
  readonly priv: bigint;
  readonly pub: bigint;
  /** priv as an OpenSSL key, kept so that the shared secret does not import it again. */
  readonly key: KeyObject;
}

/** PKCS #3's dhKeyAgreement (1.2.840.113549.1.3.1), the algorithm of a DH key's DER. */
const OID_DH_KEY_AGREEMENT = Buffer.from("06092a864886f70d010301", "hex");

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([Buffer.of(tag), derLength(b.length), b]);
}

/** A DER INTEGER of a non-negative value. */
function derInt(mp: bigint): Buffer {
  const b = mpToBytes(mp);
  return der(0x02, b.length === 0 || (b[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.of(0), b]) : b);
}

/** The AlgorithmIdentifier of a key in the group: dhKeyAgreement with DHParameter { p, g }. */
function dhAlgorithm(dh_p: Uint8Array): Buffer {
  return der(0x30, OID_DH_KEY_AGREEMENT, der(0x30, derInt(bytes_to_mp(dh_p)), derInt(BigInt(DH_G_VAL))));
}

/**
 * Our secret exponent as an OpenSSL key (PKCS #8), through which node:crypto does the
 * arithmetic. Not createDiffieHellman(p, g): from Node 24 on it tests the prime for safety
 * each time (0.3 s for group 14, 4-25 s for group 16), once in every process.
 */
function dhPrivateKey(dh_p: Uint8Array, priv: bigint): KeyObject {
  const pkcs8 = der(0x30, derInt(0n), dhAlgorithm(dh_p), der(0x04, derInt(priv)));
  return createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
}

/** The peer's value as an OpenSSL public key (SubjectPublicKeyInfo). */
function dhPublicKey(dh_p: Uint8Array, pub: bigint): KeyObject {
  const spki = der(0x30, dhAlgorithm(dh_p), der(0x03, Buffer.of(0), derInt(pub)));
  return createPublicKey({ key: spki, format: "der", type: "spki" });
}

/** Skip one DER element at `off`: the offset of its contents and of what follows it. */
function derSkip(b: Buffer, off: number): { body: number; end: number } {
  let len = b[off + 1]!;
  let body = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[body + i]!;
    body += n;
  }
  return { body, end: body + len };
}

/** g^priv mod p, as OpenSSL computed it for the key: the INTEGER inside the SPKI's BIT STRING. */
function dhPublicValue(key: KeyObject): bigint {
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  const outer = derSkip(spki, 0);
  const bits = derSkip(spki, derSkip(spki, outer.body).end);
  const y = derSkip(spki, bits.body + 1);
  return bytes_to_mp(spki.subarray(y.body, y.end));
}

/**
 * Make an ephemeral key pair in the group with prime dh_p: priv uniform in (0, q) with
 * q = (p-1)/2, as kex-dh.c's gen_kexdh_param picks it, and pub = g^priv mod p.
 */
export function dhGenerateKeypair(dh_p: Uint8Array): DhKeypair {
  const p = bytes_to_mp(dh_p);
  const priv = gen_random_mpint((p - 1n) >> 1n);
  const key = dhPrivateKey(dh_p, priv);
  return { priv, pub: dhPublicValue(key), key };
}

/**
 * The shared secret K = them^priv mod p, our side given as its exponent or as the pair
 * dhGenerateKeypair made (its key then used as it is). The peer's value must lie in [2, p-2]
 * (1 and p-1 would force K into a subgroup of order 2); anything else ends the session with
 * Dropbear's "Diffie-Hellman error", as kex-dh.c's kexdh_comb_key does. The running OpenSSL
 * may also refuse a value outside the prime-order subgroup (Node 20's does; no honest peer
 * sends one): the same error then.
 */
export function dhSharedSecret(dh_p: Uint8Array, ours: bigint | { readonly priv: bigint; readonly key?: KeyObject }, dh_pub_them: bigint): bigint {
  const p = bytes_to_mp(dh_p);
  if (!(dh_pub_them > 1n && dh_pub_them < p - 1n)) {
    dropbear_exit("Diffie-Hellman error");
  }
  const privateKey = typeof ours === "bigint" ? dhPrivateKey(dh_p, ours) : (ours.key ?? dhPrivateKey(dh_p, ours.priv));
  let secret: Buffer;
  try {
    secret = diffieHellman({ privateKey, publicKey: dhPublicKey(dh_p, dh_pub_them) });
  } catch {
    dropbear_exit("Diffie-Hellman error");
  }
  return bytes_to_mp(secret);
}

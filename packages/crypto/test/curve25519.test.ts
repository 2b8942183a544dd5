import { describe, expect, it } from "vitest";
import { DropbearExit } from "@dropbear-ts/dbutil";

import {
  CURVE25519_LEN,
  curve25519Keypair,
  curve25519SharedSecret,
  dropbear_curve25519_scalarmult,
  dropbear_ed25519_make_key,
  dropbear_ed25519_sign,
  dropbear_ed25519_verify,
  ed25519PrivateKey,
  ed25519PublicKey,
} from "../src/curve25519.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const BASEPOINT = hex("09".padEnd(64, "0"));

function scalarmult(n: Buffer, p: Buffer): Buffer {
  const q = Buffer.alloc(CURVE25519_LEN);
  dropbear_curve25519_scalarmult(q, n, p);
  return q;
}

describe("X25519", () => {
  it("RFC 7748 §5.2 test vectors", () => {
    expect(
      scalarmult(
        hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
        hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
      ),
    ).toEqual(hex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
    expect(
      scalarmult(
        hex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
        hex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"),
      ),
    ).toEqual(hex("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"));
  });

  it("RFC 7748 §5.2 iterated: 1 and 1000 iterations", () => {
    let k: Buffer = Buffer.from(BASEPOINT);
    let u: Buffer = Buffer.from(BASEPOINT);
    for (let i = 1; i <= 1000; i++) {
      const next = scalarmult(k, u);
      u = k;
      k = next;
      if (i === 1) {
        expect(k).toEqual(hex("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"));
      }
    }
    expect(k).toEqual(hex("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"));
  });

  it("RFC 7748 §6.1 Diffie-Hellman", () => {
    const alicePriv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const alicePub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const bobPriv = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    const bobPub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const K = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    expect(scalarmult(alicePriv, BASEPOINT)).toEqual(alicePub);
    expect(scalarmult(bobPriv, BASEPOINT)).toEqual(bobPub);
    expect(curve25519SharedSecret(alicePriv, bobPub)).toEqual(K);
    expect(curve25519SharedSecret(bobPriv, alicePub)).toEqual(K);
  });

  it("generated key pairs agree and match the base-point multiple", () => {
    const a = curve25519Keypair();
    const b = curve25519Keypair();
    expect(a.priv.length).toBe(32);
    expect(a.pub).toEqual(scalarmult(a.priv, BASEPOINT));
    expect(curve25519SharedSecret(a.priv, b.pub)).toEqual(curve25519SharedSecret(b.priv, a.pub));
  });

  it("a key pair's own key object (its first use) and one made from its bytes give the same secret", () => {
    const a = curve25519Keypair();
    const b = curve25519Keypair();
    const kept = curve25519SharedSecret(a.priv, b.pub);
    expect(curve25519SharedSecret(Buffer.from(a.priv), b.pub)).toEqual(kept);
    expect(curve25519SharedSecret(a.priv, b.pub)).toEqual(kept);
  });

  it("rejects low-order points (all-zero secret, RFC 8731) and wrong lengths with 'Bad curve25519'", () => {
    const { priv } = curve25519Keypair();
    const lowOrder = [
      Buffer.alloc(32),
      hex("0100000000000000000000000000000000000000000000000000000000000000"),
      hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
      hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];
    for (const p of lowOrder) {
      expect(scalarmult(priv, p)).toEqual(Buffer.alloc(32));
      expect(() => curve25519SharedSecret(priv, p)).toThrow(new DropbearExit(1, "Bad curve25519"));
    }
    expect(() => curve25519SharedSecret(priv, Buffer.alloc(31, 9))).toThrow(/Bad curve25519/);
    expect(() => curve25519SharedSecret(priv, Buffer.alloc(33, 9))).toThrow(/Bad curve25519/);
  });
});

describe("Ed25519", () => {
  // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
  const SK1 = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const PK1 = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const SIG1 = hex(`e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555
                    fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b`);
  const SK2 = hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  const PK2 = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  const SIG2 = hex(`92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
                    085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00`);

  it("RFC 8032 §7.1 TEST 1 and TEST 2: sign and verify", () => {
    for (const [sk, pk, msg, sig] of [
      [SK1, PK1, Buffer.alloc(0), SIG1],
      [SK2, PK2, hex("72"), SIG2],
    ] as const) {
      const s = Buffer.alloc(64);
      expect(dropbear_ed25519_sign(msg, msg.length, s, sk, pk)).toBe(64);
      expect(s).toEqual(sig);
      expect(dropbear_ed25519_verify(msg, msg.length, sig, 64, pk)).toBe(0);
    }
  });

  it("rejects a wrong message, a flipped bit, a short signature and a bad key", () => {
    expect(dropbear_ed25519_verify(hex("73"), 1, SIG2, 64, PK2)).toBe(-1);
    const bad = Buffer.from(SIG2);
    bad[10] ^= 1;
    expect(dropbear_ed25519_verify(hex("72"), 1, bad, 64, PK2)).toBe(-1);
    expect(dropbear_ed25519_verify(hex("72"), 1, SIG2, 63, PK2)).toBe(-1);
    expect(dropbear_ed25519_verify(hex("72"), 1, SIG2, 64, Buffer.alloc(32, 0xff))).toBe(-1);
  });

  it("refuses S + L and a public key whose y is not below p, as RFC 8032 and Dropbear 2026.94 do", () => {
    const le = (n: bigint): Buffer => {
      const b = Buffer.alloc(32);
      for (let i = 0; i < 32; i++, n >>= 8n) b[i] = Number(n & 0xffn);
      return b;
    };
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const p = (1n << 255n) - 19n;
    // S + L still satisfies the verification equation.
    const S = SIG2.subarray(32).reduceRight((n, b) => (n << 8n) | BigInt(b), 0n);
    expect(dropbear_ed25519_verify(hex("72"), 1, Buffer.concat([SIG2.subarray(0, 32), le(S + L)]), 64, PK2)).toBe(-1);
    // The neutral point (y = 1) as a key: R = the neutral point, S = 0 passes for any message
    // with Dropbear and OpenSSL 3.0 (Node 20; OpenSSL 3.5, Node 24's, refuses a key of small
    // order). Its other encoding, y = p + 1, OpenSSL 3.0 took too.
    const sig = Buffer.concat([le(1n), le(0n)]);
    expect(dropbear_ed25519_verify(hex("72"), 1, sig, 64, le(p + 1n))).toBe(-1);
    // The sign bit is not part of y: p + 1 with it set is refused too.
    const signed = le(p + 1n);
    signed[31] |= 0x80;
    expect(dropbear_ed25519_verify(hex("72"), 1, sig, 64, signed)).toBe(-1);
  });

  it("a stored public key that is not the seed's: the seed's own key signs (as from the seed alone)", () => {
    const s = Buffer.alloc(64);
    expect(dropbear_ed25519_sign(hex("72"), 1, s, SK2, PK1)).toBe(64);
    expect(s).toEqual(SIG2);
    expect(ed25519PrivateKey(SK2, PK1).export({ format: "jwk" }).x).toBe(PK2.toString("base64url"));
    expect(ed25519PublicKey(PK2).export({ format: "jwk" }).x).toBe(PK2.toString("base64url"));
  });

  it("make_key produces a working key pair", () => {
    const pk = Buffer.alloc(32);
    const sk = Buffer.alloc(32);
    dropbear_ed25519_make_key(pk, sk);
    expect(sk).not.toEqual(Buffer.alloc(32));
    const msg = Buffer.from("dropbear");
    const s = Buffer.alloc(64);
    dropbear_ed25519_sign(msg, msg.length, s, sk, pk);
    expect(dropbear_ed25519_verify(msg, msg.length, s, 64, pk)).toBe(0);
  });
});

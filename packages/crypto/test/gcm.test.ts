import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { gcm } from "@noble/ciphers/aes.js";

import { CRYPT_ERROR, CRYPT_OK, LTC_DECRYPT, LTC_ENCRYPT } from "../src/algo.js";
import { aes_desc } from "../src/cipher.js";
import { describeBackends } from "./backends.js";
import { GCM_NONCE_LEN, GHASH_LEN, dropbear_ghash, dropbear_mode_gcm } from "../src/gcm.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const mode = dropbear_mode_gcm;

describe("AES-GCM primitive", () => {
  // The GCM specification (McGrew & Viega, NIST's GCM submission), Test Case 4: AES-128 with AAD.
  it("matches the GCM specification's Test Case 4", () => {
    const key = hex("feffe9928665731c6d6a8f9467308308");
    const iv = hex("cafebabefacedbaddecaf888");
    const aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    const pt = hex(`d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                    1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39`);
    const c = createCipheriv("aes-128-gcm", key, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(pt), c.final()]);
    expect(ct).toEqual(
      hex(`42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
           21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091`),
    );
    expect(c.getAuthTag()).toEqual(hex("5bc94fbc3221a5db94fae95ae7121a47"));
  });
});

describeBackends("aes-gcm@openssh.com (dropbear_mode_gcm)", (backend) => {
  const key128 = hex("feffe9928665731c6d6a8f9467308308");
  const key256 = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const iv = hex("cafebabe 00000000000000ff");
  // A 32-byte SSH packet: length 28, padding 4, payload, padding.
  const packet = hex("0000001c 04 5e0000000000000000000b68656c6c6f20776f726c64 a1a2a3a4");

  function sealWithNoble(key: Buffer, nonce: Buffer, pkt: Buffer): Buffer {
    const body = gcm(key, nonce, pkt.subarray(0, 4)).encrypt(pkt.subarray(4));
    return Buffer.concat([pkt.subarray(0, 4), body]);
  }

  for (const [bits, key] of [
    [128, key128],
    [256, key256],
  ] as const) {
    it(`AES-${bits}: two packets use nonces fixed‖n and fixed‖n+1, with the length as clear AAD`, () => {
      const state = mode.start(aes_desc, iv, key, key.length, 0)!;
      const sealed1 = Buffer.alloc(packet.length + GHASH_LEN);
      const sealed2 = Buffer.alloc(packet.length + GHASH_LEN);
      expect(mode.aead_crypt(0, packet, sealed1, packet.length, GHASH_LEN, state, LTC_ENCRYPT)).toBe(
        CRYPT_OK,
      );
      expect(mode.aead_crypt(1, packet, sealed2, packet.length, GHASH_LEN, state, LTC_ENCRYPT)).toBe(
        CRYPT_OK,
      );

      // Checked against an independent GCM (@noble/ciphers); the counter carries into byte 10.
      expect(sealed1).toEqual(sealWithNoble(key, iv, packet));
      expect(sealed2).toEqual(sealWithNoble(key, hex("cafebabe 000000000000 0100"), packet));
      expect(sealed1.subarray(0, 4)).toEqual(packet.subarray(0, 4));
      expect(sealed1.subarray(4)).not.toEqual(sealed2.subarray(4));
      expect(mode.aead_getlength(0, sealed1, 16, state)).toBe(28);

      // The receiver opens them in order, in place.
      const rx = mode.start(aes_desc, iv, key, key.length, 0)!;
      for (const sealed of [sealed1, sealed2]) {
        expect(mode.aead_crypt(0, sealed, sealed, packet.length, GHASH_LEN, rx, LTC_DECRYPT)).toBe(CRYPT_OK);
        expect(sealed.subarray(0, packet.length)).toEqual(packet);
      }
    });
  }

  it("a packet opened with the wrong invocation counter fails", () => {
    const tx = mode.start(aes_desc, iv, key128, 16, 0)!;
    const sealed = Buffer.alloc(packet.length + GHASH_LEN);
    mode.aead_crypt(0, packet, sealed, packet.length, GHASH_LEN, tx, LTC_ENCRYPT);
    mode.aead_crypt(1, packet, sealed, packet.length, GHASH_LEN, tx, LTC_ENCRYPT);
    // The second packet, but a receiver still at the first nonce.
    const rx = mode.start(aes_desc, iv, key128, 16, 0)!;
    const copy = Buffer.from(sealed);
    expect(mode.aead_crypt(1, copy, copy, packet.length, GHASH_LEN, rx, LTC_DECRYPT)).toBe(CRYPT_ERROR);
    if (backend === "node") {
      expect(copy).toEqual(sealed); // nothing written on failure
    }
    // OpenSSL opens in place before it checks the tag: the body may hold garbage now (the
    // packet layer ends the session on CRYPT_ERROR). Either way the nonce did not advance.
    const first = Buffer.alloc(packet.length + GHASH_LEN);
    mode.aead_crypt(0, packet, first, packet.length, GHASH_LEN, mode.start(aes_desc, iv, key128, 16, 0)!, LTC_ENCRYPT);
    expect(mode.aead_crypt(0, first, first, packet.length, GHASH_LEN, rx, LTC_DECRYPT)).toBe(CRYPT_OK);
    expect(first.subarray(0, packet.length)).toEqual(packet);
  });

  it("the 64-bit invocation counter wraps without touching the fixed field", () => {
    const top = hex("cafebabe ffffffffffffffff");
    const state = mode.start(aes_desc, top, key128, 16, 0)!;
    const out = Buffer.alloc(packet.length + GHASH_LEN);
    mode.aead_crypt(0, packet, out, packet.length, GHASH_LEN, state, LTC_ENCRYPT);
    mode.aead_crypt(1, packet, out, packet.length, GHASH_LEN, state, LTC_ENCRYPT);
    expect(out).toEqual(sealWithNoble(key128, hex("cafebabe 0000000000000000"), packet));
  });

  it("rejects bad lengths and keys", () => {
    const state = mode.start(aes_desc, iv, key128, 16, 0)!;
    expect(mode.aead_crypt(0, packet, Buffer.alloc(64), 3, GHASH_LEN, state, LTC_ENCRYPT)).toBe(CRYPT_ERROR);
    expect(mode.aead_crypt(0, packet, Buffer.alloc(64), 32, 12, state, LTC_ENCRYPT)).toBe(CRYPT_ERROR);
    expect(mode.aead_crypt(0, packet, Buffer.alloc(40), 32, GHASH_LEN, state, LTC_ENCRYPT)).toBe(
      CRYPT_ERROR,
    );
    expect(mode.aead_crypt(0, packet, Buffer.alloc(64), 32, GHASH_LEN, state, LTC_DECRYPT)).toBe(
      CRYPT_ERROR,
    );
    expect(mode.aead_getlength(0, packet, 3, state)).toBe(-1);
    expect(mode.start(aes_desc, iv, key128, 24, 0)).toBeNull();
    expect(mode.start(aes_desc, iv.subarray(0, GCM_NONCE_LEN - 1), key128, 16, 0)).toBeNull();
  });

  it("implies a 16-byte MAC", () => {
    expect(mode.aead_mac).toBe(dropbear_ghash);
    expect(dropbear_ghash.hashsize).toBe(16);
    expect(mode.kind).toBe("aead");
  });
});

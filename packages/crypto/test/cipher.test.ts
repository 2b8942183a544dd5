import { describe, expect, it } from "vitest";

import { CRYPT_ERROR, CRYPT_OK } from "../src/algo.js";
import {
  aes_desc,
  dropbear_aes128,
  dropbear_aes256,
  dropbear_mode_ctr,
  dropbear_mode_none,
  dropbear_nocipher,
} from "../src/cipher.js";
import { describeBackends } from "./backends.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

// NIST SP 800-38A, Appendix F.5: CTR-AES128 / CTR-AES256, same counter block and plaintext.
const COUNTER = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
const PLAIN = hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                   30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`);
const F51_KEY = hex("2b7e151628aed2a6abf7158809cf4f3c");
const F51_CT = hex(`874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
                    5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee`);
const F55_KEY = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
const F55_CT = hex(`601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
                    2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6`);

describeBackends("AES-CTR (dropbear_mode_ctr)", () => {
  for (const [name, cipher, key, ct] of [
    ["F.5.1 CTR-AES128.Encrypt", dropbear_aes128, F51_KEY, F51_CT],
    ["F.5.5 CTR-AES256.Encrypt", dropbear_aes256, F55_KEY, F55_CT],
  ] as const) {
    it(`matches NIST SP 800-38A ${name}`, () => {
      const state = dropbear_mode_ctr.start(aes_desc, COUNTER, key, cipher.keysize, 0);
      expect(state).not.toBeNull();
      const out = Buffer.alloc(PLAIN.length);
      expect(dropbear_mode_ctr.encrypt(PLAIN, out, PLAIN.length, state!)).toBe(CRYPT_OK);
      expect(out).toEqual(ct);
    });

    it(`${name}: the keystream runs on across packets, in place`, () => {
      const state = dropbear_mode_ctr.start(aes_desc, COUNTER, key, cipher.keysize, 0)!;
      const buf = Buffer.from(ct);
      // Three "packets" of 16, 32 and 16 bytes, decrypted in place one after the other.
      for (const [from, to] of [
        [0, 16],
        [16, 48],
        [48, 64],
      ]) {
        const view = buf.subarray(from, to);
        expect(dropbear_mode_ctr.decrypt(view, view, view.length, state)).toBe(CRYPT_OK);
      }
      expect(buf).toEqual(PLAIN);
    });
  }

  it("refuses bad key lengths and short buffers", () => {
    expect(dropbear_mode_ctr.start(aes_desc, COUNTER, F51_KEY, 15, 0)).toBeNull();
    expect(dropbear_mode_ctr.start(aes_desc, COUNTER.subarray(0, 8), F51_KEY, 16, 0)).toBeNull();
    const state = dropbear_mode_ctr.start(aes_desc, COUNTER, F51_KEY, 16, 0)!;
    expect(dropbear_mode_ctr.encrypt(PLAIN, Buffer.alloc(8), 16, state)).toBe(CRYPT_ERROR);
  });

  it("is not an AEAD mode", () => {
    expect(dropbear_mode_ctr.kind).toBe("stream");
  });
});

describe("the none cipher", () => {
  it("copies, or leaves data in place", () => {
    const state = dropbear_mode_none.start(
      dropbear_nocipher.cipherdesc,
      Buffer.alloc(0),
      Buffer.alloc(0),
      0,
      0,
    )!;
    const out = Buffer.alloc(4);
    expect(dropbear_mode_none.encrypt(hex("01020304"), out, 4, state)).toBe(CRYPT_OK);
    expect(out).toEqual(hex("01020304"));
    expect(dropbear_mode_none.decrypt(out, out, 4, state)).toBe(CRYPT_OK);
    expect(out).toEqual(hex("01020304"));
  });

  it("has Dropbear's sizes", () => {
    expect(dropbear_nocipher).toEqual({ cipherdesc: null, keysize: 16, blocksize: 8 });
  });
});

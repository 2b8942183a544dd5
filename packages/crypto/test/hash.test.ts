import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";

import {
  computeMac,
  dropbear_nohash,
  freeKeyStates,
  macKey,
  dropbear_sha2_256,
  dropbear_sha2_512,
  sha256_desc,
  sha384_desc,
  sha512_desc,
  verifyMac,
} from "../src/hash.js";
import { evpLiveContexts } from "../src/openssl.js";
import { describeBackends } from "./backends.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

// RFC 4231 test cases 1 and 2. computeMac MACs uint32(seq) ‖ data, so the first four bytes of
// each test message are passed as the sequence number: "Hi T" = 0x48692054, "what" = 0x77686174.
const CASES = [
  {
    name: "RFC 4231 case 1",
    key: Buffer.alloc(20, 0x0b),
    seq: 0x48692054,
    data: Buffer.from("here"),
    sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    sha512: `87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854`,
  },
  {
    name: "RFC 4231 case 2",
    key: Buffer.from("Jefe"),
    seq: 0x77686174,
    data: Buffer.from(" do ya want for nothing?"),
    sha256: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    sha512: `164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737`,
  },
];

describeBackends("HMAC-SHA2 MACs (computeMac)", (backend) => {
  for (const c of CASES) {
    it(`${c.name}, hmac-sha2-256`, () => {
      const out = Buffer.alloc(32);
      computeMac(macKey(dropbear_sha2_256, Buffer.from(c.key)), c.seq, c.data, c.data.length, out);
      expect(out).toEqual(hex(c.sha256));
    });
    it(`${c.name}, hmac-sha2-512`, () => {
      const out = Buffer.alloc(64);
      computeMac(macKey(dropbear_sha2_512, Buffer.from(c.key)), c.seq, c.data, c.data.length, out);
      expect(out).toEqual(hex(c.sha512));
    });
  }

  it("MACs only `len` bytes of data and writes nothing for the none MAC", () => {
    const a = Buffer.alloc(32);
    const b = Buffer.alloc(32);
    computeMac(macKey(dropbear_sha2_256, Buffer.alloc(32, 1)), 5, Buffer.from("abcdef"), 3, a);
    computeMac(macKey(dropbear_sha2_256, Buffer.alloc(32, 1)), 5, Buffer.from("abc"), 3, b);
    expect(a).toEqual(b);
    const none = Buffer.alloc(4, 0xee);
    computeMac(macKey(dropbear_nohash, Buffer.alloc(16)), 0, Buffer.from("x"), 1, none);
    expect(none).toEqual(Buffer.alloc(4, 0xee));
  });

  it("one MAC key, many packets: one context, kept; another key its own; freeKeyStates frees each", () => {
    const key = Buffer.from(CASES[0]!.key);
    const ref = (name: string, seq: number, data: Buffer) => {
      const s = Buffer.alloc(4);
      s.writeUInt32BE(seq);
      return createHmac(name, key).update(s).update(data).digest();
    };
    const before = evpLiveContexts();
    const k256 = macKey(dropbear_sha2_256, key);
    for (let seq = 0; seq < 5; seq++) {
      const data = Buffer.alloc(100 * seq, seq);
      const out = Buffer.alloc(32);
      computeMac(k256, seq, data, data.length, out);
      expect(out).toEqual(ref("sha256", seq, data));
    }
    expect(evpLiveContexts()).toBe(before + (backend === "openssl" ? 1 : 0));
    const k512 = macKey(dropbear_sha2_512, key);
    const out = Buffer.alloc(64);
    computeMac(k512, 9, Buffer.from("x"), 1, out);
    expect(out).toEqual(ref("sha512", 9, Buffer.from("x")));
    expect(evpLiveContexts()).toBe(before + (backend === "openssl" ? 2 : 0));
    for (const k of [k256, k512]) {
      freeKeyStates({ cipher_state: {}, mac_state: k.mac_state });
    }
    expect(evpLiveContexts()).toBe(before);
  });

  it("verifyMac compares the first len bytes", () => {
    expect(verifyMac(hex("0102030405"), hex("01020304ff"), 4)).toBe(true);
    expect(verifyMac(hex("0102030405"), hex("01020304ff"), 5)).toBe(false);
    expect(verifyMac(hex("0102"), hex("0102"), 4)).toBe(false);
  });
});

describe("hash and MAC descriptors", () => {
  it("have Dropbear's sizes", () => {
    expect(dropbear_sha2_256).toEqual({ hash_desc: sha256_desc, keysize: 32, hashsize: 32 });
    expect(dropbear_sha2_512).toEqual({ hash_desc: sha512_desc, keysize: 64, hashsize: 64 });
    expect(dropbear_nohash).toEqual({ hash_desc: null, keysize: 16, hashsize: 0 });
  });

  it("name digests node:crypto knows, with the right lengths", () => {
    for (const d of [sha256_desc, sha384_desc, sha512_desc]) {
      expect(createHash(d.name).digest().length).toBe(d.hashsize);
    }
  });

});

import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Poly1305 } from "@noble/ciphers/_poly1305.js";

import { CRYPT_ERROR, CRYPT_OK, LTC_DECRYPT, LTC_ENCRYPT } from "../src/algo.js";
import {
  POLY1305_TAG_LEN,
  dropbear_chachapoly,
  dropbear_chachapoly_mac,
  dropbear_mode_chachapoly,
  dummy,
  poly1305_impl,
  poly1305_load,
} from "../src/chachapoly.js";
import { describeBackends } from "./backends.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const mode = dropbear_mode_chachapoly;

/** node:crypto ChaCha20 in the original DJB layout: 64-bit LE block counter ‖ 64-bit nonce. */
function djbChacha(key: Buffer, nonce: Buffer, counter: bigint, data: Buffer): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(counter, 0);
  nonce.copy(iv, 8);
  return createCipheriv("chacha20", key, iv).update(data);
}

describe("ChaCha20 keystream layout (counter ‖ nonce IV)", () => {
  // RFC 7539 Appendix A.1 test vectors 1 and 2 (also draft-agl-tls-chacha20poly1305 §7): the
  // all-zero key and nonce read the same in the IETF and the DJB layouts.
  it("RFC 7539 A.1 #1 and #2: all-zero key and nonce, blocks 0 and 1", () => {
    const zero = Buffer.alloc(64);
    expect(djbChacha(Buffer.alloc(32), Buffer.alloc(8), 0n, zero)).toEqual(
      hex(`76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7
           da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586`),
    );
    expect(djbChacha(Buffer.alloc(32), Buffer.alloc(8), 1n, zero)).toEqual(
      hex(`9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed
           29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f`),
    );
  });

  // RFC 7539 §2.4.2: its 96-bit nonce starts with four zero bytes, so the IETF IV
  // (counter32 ‖ nonce96) equals the DJB IV (counter64 ‖ nonce64) byte for byte.
  it("RFC 7539 §2.4.2 sunscreen text, counter 1", () => {
    const key = Buffer.from([...Array(32).keys()]);
    const pt = Buffer.from(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    expect(djbChacha(key, hex("0000004a00000000"), 1n, pt)).toEqual(
      hex(`6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b
           f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8
           07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736
           5af90bbf74a35be6b40b8eedf2785e42874d`),
    );
  });
});

describe("Poly1305", () => {
  it("RFC 8439 §2.5.2", () => {
    const key = hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
    const tag = new Poly1305(key).update(Buffer.from("Cryptographic Forum Research Group")).digest();
    expect(Buffer.from(tag)).toEqual(hex("a8061dc1305136c6c22b8baf0c0127a9"));
  });
});

describeBackends("chacha20-poly1305@openssh.com (dropbear_mode_chachapoly)", () => {
  // draft-ietf-sshm-chacha20-poly1305 (the IETF write-up of OpenSSH's
  // PROTOCOL.chacha20poly1305), Appendix A worked example: 64 bytes of key material,
  // sequence number 7, one packet in clear and the bytes sent on the wire.
  const KEY = hex(`8bbff6855fc102338c373e73aac0c914f076a905b2444a32eecaffeae22becc5
                   e9b7a7a5825a8249346ec1c28301cf394543fc7569887d76e168f37562ac0740`);
  const SEQ = 7;
  const PLAIN = hex(`00000048065e00000000000000384c6f72656d20697073756d20646f6c6f7220
                     73697420616d65742c20636f6e73656374657475722061646970697369636
                     96e6720656c69744e43e804dc6c`);
  const SENT = hex(`2c3ecce4a5bc05895bf07a7ba956b6c68829ac7c83b780b7000ecde745afc705
                    bbc378ce03a280236b87b53bed5839662302b164b6286a48cd1e097138e3cb90
                    9b8b2b829dd18d2a35ff82d995349e855bf02c298ef775f2d1a7e8b8`);
  const start = () => mode.start(dummy, Buffer.alloc(0), KEY, dropbear_chachapoly.keysize, 0)!;

  it("seals the draft's Appendix A packet to the draft's bytes", () => {
    const out = Buffer.alloc(PLAIN.length + POLY1305_TAG_LEN);
    expect(mode.aead_crypt(SEQ, PLAIN, out, PLAIN.length, POLY1305_TAG_LEN, start(), LTC_ENCRYPT)).toBe(
      CRYPT_OK,
    );
    expect(out).toEqual(SENT);
  });

  it("reads the length from the first block, then opens the packet in place", () => {
    const state = start();
    expect(mode.aead_getlength(SEQ, SENT.subarray(0, 8), 8, state)).toBe(0x48);
    const buf = Buffer.from(SENT);
    expect(mode.aead_crypt(SEQ, buf, buf, PLAIN.length, POLY1305_TAG_LEN, state, LTC_DECRYPT)).toBe(
      CRYPT_OK,
    );
    expect(buf.subarray(0, PLAIN.length)).toEqual(PLAIN);
  });

  it("opening takes the length getlength read only for the same packet's bytes", () => {
    const state = start();
    // getlength of other bytes (or of another packet), then the real packet: its own length.
    for (const [seq, first] of [[SEQ, Buffer.from("ffffffff", "hex")], [SEQ + 1, SENT.subarray(0, 4)]] as const) {
      mode.aead_getlength(seq, first, 4, state);
      const buf = Buffer.from(SENT);
      expect(mode.aead_crypt(SEQ, buf, buf, PLAIN.length, POLY1305_TAG_LEN, state, LTC_DECRYPT)).toBe(CRYPT_OK);
      expect(buf.subarray(0, PLAIN.length)).toEqual(PLAIN);
    }
  });

  it("seals in place too", () => {
    const buf = Buffer.alloc(PLAIN.length + POLY1305_TAG_LEN);
    PLAIN.copy(buf);
    expect(mode.aead_crypt(SEQ, buf, buf, PLAIN.length, POLY1305_TAG_LEN, start(), LTC_ENCRYPT)).toBe(
      CRYPT_OK,
    );
    expect(buf).toEqual(SENT);
  });

  it("rejects a tampered length, body or tag, or the wrong sequence number, writing nothing", () => {
    const state = start();
    for (const at of [0, 3, 4, PLAIN.length - 1, PLAIN.length, SENT.length - 1]) {
      const bad = Buffer.from(SENT);
      bad[at] ^= 0x01;
      const before = Buffer.from(bad);
      expect(mode.aead_crypt(SEQ, bad, bad, PLAIN.length, POLY1305_TAG_LEN, state, LTC_DECRYPT)).toBe(
        CRYPT_ERROR,
      );
      expect(bad).toEqual(before);
    }
    const copy = Buffer.from(SENT);
    expect(mode.aead_crypt(SEQ + 1, copy, copy, PLAIN.length, POLY1305_TAG_LEN, state, LTC_DECRYPT)).toBe(
      CRYPT_ERROR,
    );
  });

  it("uses the sequence number as a 64-bit big-endian nonce and K_1 (last 32 bytes) for the length", () => {
    const seq = 0xfedcba98;
    const out = Buffer.alloc(PLAIN.length + POLY1305_TAG_LEN);
    mode.aead_crypt(seq, PLAIN, out, PLAIN.length, POLY1305_TAG_LEN, start(), LTC_ENCRYPT);
    const nonce = hex("00000000fedcba98");
    const k2 = KEY.subarray(0, 32);
    const k1 = KEY.subarray(32);
    expect(out.subarray(0, 4)).toEqual(djbChacha(k1, nonce, 0n, PLAIN.subarray(0, 4)));
    expect(out.subarray(4, PLAIN.length)).toEqual(djbChacha(k2, nonce, 1n, PLAIN.subarray(4)));
    const polykey = djbChacha(k2, nonce, 0n, Buffer.alloc(32));
    expect(Buffer.from(new Poly1305(polykey).update(out.subarray(0, PLAIN.length)).digest())).toEqual(
      out.subarray(PLAIN.length),
    );
  });

  it("refuses bad lengths and keys", () => {
    const state = start();
    expect(mode.aead_crypt(SEQ, PLAIN, Buffer.alloc(200), 3, 16, state, LTC_ENCRYPT)).toBe(CRYPT_ERROR);
    expect(mode.aead_crypt(SEQ, PLAIN, Buffer.alloc(200), PLAIN.length, 12, state, LTC_ENCRYPT)).toBe(
      CRYPT_ERROR,
    );
    expect(
      mode.aead_crypt(SEQ, PLAIN, Buffer.alloc(PLAIN.length), PLAIN.length, 16, state, LTC_ENCRYPT),
    ).toBe(CRYPT_ERROR);
    expect(mode.aead_crypt(SEQ, PLAIN, Buffer.alloc(200), PLAIN.length, 16, state, LTC_DECRYPT)).toBe(
      CRYPT_ERROR,
    );
    expect(mode.aead_getlength(SEQ, SENT, 3, state)).toBe(-1);
    expect(mode.start(dummy, Buffer.alloc(0), KEY, 32, 0)).toBeNull();
  });

  it("gives the same bytes with @noble's Poly1305 (while libsodium loads) and with libsodium's", async () => {
    // A random 40 KB packet as well as the draft's: both tag paths over more than one block size.
    const big = Buffer.alloc(40_004);
    big.writeUInt32BE(40_000, 0);
    for (let i = 4; i < big.length; i++) big[i] = (i * 131) & 0xff;
    const seal = (p: Buffer) => {
      const out = Buffer.alloc(p.length + POLY1305_TAG_LEN);
      expect(mode.aead_crypt(SEQ, p, out, p.length, POLY1305_TAG_LEN, start(), LTC_ENCRYPT)).toBe(CRYPT_OK);
      return out;
    };
    const before = poly1305_impl();
    const sealedBefore = [seal(PLAIN), seal(big)];
    await poly1305_load();
    expect(poly1305_impl()).toBe("libsodium");
    const sealedAfter = [seal(PLAIN), seal(big)];
    expect(sealedAfter).toEqual(sealedBefore);
    expect(sealedAfter[0]).toEqual(SENT);
    // The length field through libsodium's ChaCha20, then opening with it; a flipped tag bit is
    // still refused.
    expect(mode.aead_getlength(SEQ, sealedAfter[1]!, 4, start())).toBe(40_000);
    const open = Buffer.from(sealedAfter[1]!);
    expect(mode.aead_crypt(SEQ, open, open, big.length, POLY1305_TAG_LEN, start(), LTC_DECRYPT)).toBe(CRYPT_OK);
    expect(open.subarray(0, big.length)).toEqual(big);
    const bad = Buffer.from(sealedAfter[1]!);
    bad[bad.length - 1] ^= 1;
    expect(mode.aead_crypt(SEQ, bad, bad, big.length, POLY1305_TAG_LEN, start(), LTC_DECRYPT)).toBe(CRYPT_ERROR);
    // Which one the first half used depends on test order; both ran by the end.
    expect(["noble", "libsodium"]).toContain(before);
  });

  it("has Dropbear's descriptor values", () => {
    expect(dropbear_chachapoly).toEqual({ cipherdesc: { name: null }, keysize: 64, blocksize: 8 });
    expect(dropbear_chachapoly_mac).toEqual({ hash_desc: null, keysize: 32, hashsize: 16 });
    expect(mode.aead_mac).toBe(dropbear_chachapoly_mac);
    expect(mode.kind).toBe("aead");
  });
});

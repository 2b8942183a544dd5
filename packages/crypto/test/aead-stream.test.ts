import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";

import { CRYPT_OK, LTC_DECRYPT, LTC_ENCRYPT, type dropbear_aead_mode, type dropbear_cipher } from "../src/algo.js";
import { dropbear_chachapoly, dropbear_mode_chachapoly } from "../src/chachapoly.js";
import { dropbear_aes128, dropbear_aes256 } from "../src/cipher.js";
import { dropbear_mode_gcm } from "../src/gcm.js";
import { describeBackends } from "./backends.js";

// aead_stream (algo.ts): a packet sealed or opened piece by piece, each piece from wherever its
// bytes are, must give what aead_crypt gives for the whole packet, and fail where it fails.

const MODES: Array<{ name: string; mode: dropbear_aead_mode; cipher: dropbear_cipher }> = [
  { name: "aes128-gcm@openssh.com", mode: dropbear_mode_gcm, cipher: dropbear_aes128 },
  { name: "aes256-gcm@openssh.com", mode: dropbear_mode_gcm, cipher: dropbear_aes256 },
  { name: "chacha20-poly1305@openssh.com", mode: dropbear_mode_chachapoly, cipher: dropbear_chachapoly },
];

/** Two states keyed alike, one to seal, one to open. */
function keyed(m: (typeof MODES)[number]) {
  const key = randomBytes(m.cipher.keysize);
  const iv = randomBytes(16);
  const start = () => m.mode.start(m.cipher.cipherdesc, iv, key, m.cipher.keysize, 0)!;
  return { tx: start(), rx: start() };
}

/** A sealing and an opening state keyed alike, and `count` sealed packets of `bodylen` body bytes. */
function sealed(m: (typeof MODES)[number], count: number, bodylen: number) {
  const { tx, rx } = keyed(m);
  const taglen = m.mode.aead_mac.hashsize;
  const packets = Array.from({ length: count }, (_, seq) => {
    const plain = randomBytes(4 + bodylen);
    plain.writeUInt32BE(bodylen, 0);
    const wire = Buffer.alloc(plain.length + taglen);
    expect(m.mode.aead_crypt(seq, plain, wire, plain.length, taglen, tx, LTC_ENCRYPT)).toBe(CRYPT_OK);
    return { plain, wire };
  });
  return { rx, taglen, packets };
}

describeBackends("aead_stream", (backend) => {
  for (const m of MODES) {
    const block = m.cipher.blocksize;
    if (backend === "node") {
      it(`${m.name}: none on node:crypto (packets are opened whole there)`, () => {
        const { rx } = sealed(m, 1, 2 * block);
        expect(m.mode.aead_stream?.(rx) ?? null).toBeNull();
      });
      continue;
    }

    it(`${m.name}: opens packets read in pieces, from apart and in place, as aead_crypt opens them whole`, () => {
      const bodylen = 40 * block - 4 + block;
      const { rx, taglen, packets } = sealed(m, 6, bodylen);
      const opener = m.mode.aead_stream!(rx)!;
      packets.forEach(({ plain, wire }, seq) => {
        const len = plain.length;
        expect(m.mode.aead_getlength(seq, wire, block, rx)).toBe(bodylen);
        const out = Buffer.alloc(wire.length);
        out.set(wire.subarray(0, block));
        expect(opener.begin(seq, out, block, LTC_DECRYPT)).toBe(true);
        // Pieces of odd sizes, alternately from a copy elsewhere and in place in `out`.
        let pos = block;
        for (let i = 0; pos < len; i++) {
          const n = Math.min(len - pos, 1 + ((seq * 7 + i * 13) % 97));
          if (i % 2 === 0) {
            expect(opener.update(Buffer.from(wire.subarray(pos, pos + n)), out.subarray(pos, pos + n), n)).toBe(true);
          } else {
            out.set(wire.subarray(pos, pos + n), pos);
            expect(opener.update(out.subarray(pos, pos + n), out.subarray(pos, pos + n), n)).toBe(true);
          }
          pos += n;
        }
        expect(opener.end(wire.subarray(len, len + taglen))).toBe(true);
        expect(out.subarray(0, len)).toEqual(plain);
      });
    });

    it(`${m.name}: seals packets in pieces, from apart and in place, to the bytes aead_crypt seals them to whole`, () => {
      const { tx, rx } = keyed(m);
      const taglen = m.mode.aead_mac.hashsize;
      const stream = m.mode.aead_stream!(tx)!;
      for (let seq = 0; seq < 6; seq++) {
        const bodylen = (10 + seq * 7) * block - 4 + block;
        const plain = randomBytes(4 + bodylen);
        plain.writeUInt32BE(bodylen, 0);
        const whole = Buffer.alloc(plain.length + taglen);
        expect(m.mode.aead_crypt(seq, plain, whole, plain.length, taglen, rx, LTC_ENCRYPT)).toBe(CRYPT_OK);
        const out = Buffer.alloc(plain.length + taglen);
        const head = 5 + seq;
        out.set(plain.subarray(0, head));
        expect(stream.begin(seq, out, head, LTC_ENCRYPT)).toBe(true);
        let pos = head;
        for (let i = 0; pos < plain.length; i++) {
          const n = Math.min(plain.length - pos, 1 + ((seq * 5 + i * 11) % 89));
          if (i % 2 === 0) {
            expect(stream.update(Buffer.from(plain.subarray(pos, pos + n)), out.subarray(pos, pos + n), n)).toBe(true);
          } else {
            out.set(plain.subarray(pos, pos + n), pos);
            expect(stream.update(out.subarray(pos, pos + n), out.subarray(pos, pos + n), n)).toBe(true);
          }
          pos += n;
        }
        expect(stream.end(out.subarray(plain.length, plain.length + taglen))).toBe(true);
        expect(out).toEqual(whole);
      }
    });

    it(`${m.name}: a flipped bit anywhere fails at end(), and GCM's next nonce is not used up`, () => {
      const { rx, taglen, packets } = sealed(m, 2, 4 * block - 4);
      const opener = m.mode.aead_stream!(rx)!;
      const { plain, wire } = packets[0]!;
      const len = plain.length;
      for (const at of [5, len - 1, len + taglen - 1]) {
        const bad = Buffer.from(wire);
        bad[at]! ^= 0x10;
        expect(opener.begin(0, bad, block, LTC_DECRYPT)).toBe(true);
        expect(opener.update(bad.subarray(block, len), bad.subarray(block, len), len - block)).toBe(true);
        expect(opener.end(bad.subarray(len, len + taglen))).toBe(false);
      }
      // The good packet still opens with the same sequence number and nonce.
      const good = Buffer.from(wire);
      expect(opener.begin(0, good, block, LTC_DECRYPT)).toBe(true);
      expect(opener.update(good.subarray(block, len), good.subarray(block, len), len - block)).toBe(true);
      expect(opener.end(good.subarray(len, len + taglen))).toBe(true);
      expect(good.subarray(0, len)).toEqual(plain);
    });
  }
});

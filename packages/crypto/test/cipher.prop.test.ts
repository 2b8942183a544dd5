import { expect, it } from "vitest";
import fc from "fast-check";
import { fuzzParams } from "../../../tests/helpers/fuzz.js";

import {
  CRYPT_ERROR,
  CRYPT_OK,
  LTC_DECRYPT,
  LTC_ENCRYPT,
  type dropbear_aead_mode,
  type dropbear_cipher,
  type dropbear_cipher_mode,
  type dropbear_stream_mode,
} from "../src/algo.js";
import { dropbear_aes128, dropbear_aes256, dropbear_mode_ctr } from "../src/cipher.js";
import { dropbear_chachapoly, dropbear_mode_chachapoly } from "../src/chachapoly.js";
import { dropbear_mode_gcm } from "../src/gcm.js";

interface CipherAlgorithm<M extends dropbear_cipher_mode> {
  name: string;
  cipher: dropbear_cipher;
  mode: M;
}

/** Every cipher/mode pair the algo tables offer, by name. */
const cipherAlgorithms: CipherAlgorithm<dropbear_cipher_mode>[] = [
  { name: "chacha20-poly1305@openssh.com", cipher: dropbear_chachapoly, mode: dropbear_mode_chachapoly },
  { name: "aes256-gcm@openssh.com", cipher: dropbear_aes256, mode: dropbear_mode_gcm },
  { name: "aes128-gcm@openssh.com", cipher: dropbear_aes128, mode: dropbear_mode_gcm },
  { name: "aes256-ctr", cipher: dropbear_aes256, mode: dropbear_mode_ctr },
  { name: "aes128-ctr", cipher: dropbear_aes128, mode: dropbear_mode_ctr },
];
import { describeBackends } from "./backends.js";
import { computeMac, dropbear_sha2_256, dropbear_sha2_512, macKey, verifyMac } from "../src/hash.js";

const ctrAlgos = cipherAlgorithms.filter((a): a is CipherAlgorithm<dropbear_stream_mode> => a.mode.kind === "stream");
const aeadAlgos = cipherAlgorithms.filter((a): a is CipherAlgorithm<dropbear_aead_mode> => a.mode.kind === "aead");

/** Key material of the right size, and an IV long enough for any mode. */
const keying = (keysize: number) =>
  fc.record({
    key: fc.uint8Array({ minLength: keysize, maxLength: keysize }),
    iv: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  });

/** A packet body: uint32 length (of what follows) then bytes, a whole number of blocks long. */
function packet(blocksize: number, aead: boolean): fc.Arbitrary<Buffer> {
  return fc.integer({ min: 1, max: 80 }).chain((blocks) => {
    // AEAD modes pad what follows the length field; others pad the whole packet.
    const len = aead ? 4 + blocks * blocksize : blocks * blocksize;
    return fc.uint8Array({ minLength: len, maxLength: len }).map((b) => {
      const buf = Buffer.from(b);
      buf.writeUInt32BE(len - 4, 0);
      return buf;
    });
  });
}

describeBackends("encrypt → decrypt round trips (fast-check)", () => {
  for (const algo of ctrAlgos) {
    it(`${algo.name} + HMAC: a run of packets comes back intact`, () => {
      fc.assert(
        fc.property(
          keying(algo.cipher.keysize),
          fc.array(packet(algo.cipher.blocksize, false), { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          ({ key, iv }, packets, sha512) => {
            const mac = sha512 ? dropbear_sha2_512 : dropbear_sha2_256;
            const mackey = macKey(mac, Buffer.alloc(mac.keysize, 7));
            const tx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0)!;
            const rx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0)!;
            packets.forEach((pkt, seq) => {
              // Encrypt-and-MAC, as packet.c does: MAC the clear packet, encrypt in place.
              const wire = Buffer.alloc(pkt.length + mac.hashsize);
              pkt.copy(wire);
              computeMac(mackey, seq, wire, pkt.length, wire.subarray(pkt.length));
              const body = wire.subarray(0, pkt.length);
              expect(algo.mode.encrypt(body, body, body.length, tx)).toBe(CRYPT_OK);
              if (pkt.length >= 16) {
                expect(body).not.toEqual(pkt);
              }
              expect(algo.mode.decrypt(body, body, body.length, rx)).toBe(CRYPT_OK);
              expect(body).toEqual(pkt);
              const check = Buffer.alloc(mac.hashsize);
              computeMac(mackey, seq, body, body.length, check);
              expect(verifyMac(check, wire.subarray(pkt.length), mac.hashsize)).toBe(true);
            });
          },
        ),
        fuzzParams(50),
      );
    });
  }

  for (const algo of aeadAlgos) {
    const taglen = algo.mode.aead_mac.hashsize;
    it(`${algo.name}: a run of packets comes back intact, lengths read ahead`, () => {
      fc.assert(
        fc.property(
          keying(algo.cipher.keysize),
          fc.array(packet(algo.cipher.blocksize, true), { minLength: 1, maxLength: 6 }),
          fc.nat(),
          ({ key, iv }, packets, seq0) => {
            const tx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0)!;
            const rx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0)!;
            packets.forEach((pkt, i) => {
              const seq = (seq0 + i) >>> 0;
              const wire = Buffer.alloc(pkt.length + taglen);
              expect(algo.mode.aead_crypt(seq, pkt, wire, pkt.length, taglen, tx, LTC_ENCRYPT)).toBe(
                CRYPT_OK,
              );
              expect(algo.mode.aead_getlength(seq, wire, algo.cipher.blocksize, rx)).toBe(pkt.length - 4);
              expect(algo.mode.aead_crypt(seq, wire, wire, pkt.length, taglen, rx, LTC_DECRYPT)).toBe(
                CRYPT_OK,
              );
              expect(wire.subarray(0, pkt.length)).toEqual(pkt);
            });
          },
        ),
        fuzzParams(50),
      );
    });

    it(`${algo.name}: any single flipped bit is rejected`, () => {
      fc.assert(
        fc.property(
          keying(algo.cipher.keysize),
          packet(algo.cipher.blocksize, true),
          fc.nat(),
          fc.nat(),
          ({ key, iv }, pkt, seq, where) => {
            const tx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0)!;
            const wire = Buffer.alloc(pkt.length + taglen);
            algo.mode.aead_crypt(seq, pkt, wire, pkt.length, taglen, tx, LTC_ENCRYPT);
            const bit = where % (wire.length * 8);
            wire[bit >> 3] ^= 1 << (bit & 7);
            const rx = algo.mode.start(algo.cipher.cipherdesc, iv, key, algo.cipher.keysize, 0)!;
            expect(algo.mode.aead_crypt(seq, wire, wire, pkt.length, taglen, rx, LTC_DECRYPT)).toBe(
              CRYPT_ERROR,
            );
          },
        ),
        fuzzParams(200),
      );
    });
  }
});

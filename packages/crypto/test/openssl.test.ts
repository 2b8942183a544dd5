import { spawnSync } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { fuzzParams } from "../../../tests/helpers/fuzz.js";

import {
  CRYPT_ERROR,
  CRYPT_OK,
  LTC_DECRYPT,
  LTC_ENCRYPT,
  type cipher_state,
  type dropbear_aead_mode,
  type dropbear_cipher,
  type dropbear_stream_mode,
} from "../src/algo.js";
import { dropbear_chachapoly, dropbear_mode_chachapoly } from "../src/chachapoly.js";
import { aes_desc, dropbear_aes128, dropbear_aes256, dropbear_mode_ctr } from "../src/cipher.js";
import { dropbear_mode_gcm } from "../src/gcm.js";
import { EvpCipher, EvpPoly1305, cryptoBackend, evpLiveContexts, freeCipherState } from "../src/openssl.js";

// The OpenSSL path against the node:crypto path: same keys, same packets, same bytes on the
// wire, and each opens what the other sealed. (Buffer.equals: vitest's deep equality walks
// 40 KB packets byte by byte, slowly.)

// Each test starts on OpenSSL whatever the environment asks; startOn switches per key.
const saved = process.env.DROPBEAR_TS_CRYPTO;
beforeEach(() => {
  delete process.env.DROPBEAR_TS_CRYPTO;
});
afterAll(() => {
  if (saved !== undefined) process.env.DROPBEAR_TS_CRYPTO = saved;
});

/** mode.start on the given backend. */
function startOn<S>(backend: "openssl" | "node", start: () => S): S {
  if (backend === "node") process.env.DROPBEAR_TS_CRYPTO = "node";
  else delete process.env.DROPBEAR_TS_CRYPTO;
  expect(cryptoBackend()).toBe(backend);
  return start();
}

const AEADS: { name: string; cipher: dropbear_cipher; mode: dropbear_aead_mode }[] = [
  { name: "chacha20-poly1305", cipher: dropbear_chachapoly, mode: dropbear_mode_chachapoly },
  { name: "aes128-gcm", cipher: dropbear_aes128, mode: dropbear_mode_gcm },
  { name: "aes256-gcm", cipher: dropbear_aes256, mode: dropbear_mode_gcm },
];
const STREAMS: { name: string; cipher: dropbear_cipher; mode: dropbear_stream_mode }[] = [
  { name: "aes128-ctr", cipher: dropbear_aes128, mode: dropbear_mode_ctr },
  { name: "aes256-ctr", cipher: dropbear_aes256, mode: dropbear_mode_ctr },
];

/** `len` pseudo-random bytes from a seed (fast-check draws the seed: big arrays drawn bytewise are slow). */
function bytesFrom(seed: number, len: number): Buffer {
  const k = Buffer.alloc(16);
  k.writeUInt32BE(seed >>> 0, 0);
  return createCipheriv("aes-128-ctr", k, Buffer.alloc(16)).update(Buffer.alloc(len));
}

/** Packets of whole blocks after the length field, up to ~40 KB (past one Poly1305/GCM chunk). */
const aeadPacket = (blocksize: number) =>
  fc.tuple(fc.integer({ min: 1, max: 40_000 / blocksize }), fc.nat()).map(([blocks, seed]) => {
    const p = bytesFrom(seed, 4 + blocks * blocksize);
    p.writeUInt32BE(p.length - 4, 0);
    return p;
  });

describe("OpenSSL and node:crypto paths agree", () => {
  for (const a of AEADS) {
    const taglen = a.mode.aead_mac.hashsize;
    it(`${a.name}: same wire bytes both ways, across sequence-number and invocation-counter wraparound`, () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: a.cipher.keysize, maxLength: a.cipher.keysize }),
          fc.uint8Array({ minLength: 12, maxLength: 12 }),
          // Start a few packets before the 32-bit sequence number (and with it the 64-bit GCM
          // counter's low word, or all of it) wraps, or anywhere.
          fc.oneof(fc.integer({ min: 0xfffffff8, max: 0xffffffff }), fc.nat()),
          fc.boolean(),
          fc.array(aeadPacket(a.cipher.blocksize), { minLength: 1, maxLength: 12 }),
          (key, fixed, seq0, topCounter, packets) => {
            // GCM's IV: 4 fixed bytes, then the 8-byte counter, here near its 64-bit top.
            const iv = Buffer.alloc(16);
            Buffer.from(fixed).copy(iv);
            if (topCounter) iv.fill(0xff, 4, 11);
            iv.writeUInt32BE(seq0, 8);
            const st = (b: "openssl" | "node") => startOn(b, () => a.mode.start(a.cipher.cipherdesc, iv, key, a.cipher.keysize, 0)!);
            const [txO, rxO, txN, rxN] = [st("openssl"), st("openssl"), st("node"), st("node")];
            packets.forEach((pkt, i) => {
              const seq = (seq0 + i) >>> 0;
              const wireO = Buffer.alloc(pkt.length + taglen);
              const wireN = Buffer.alloc(pkt.length + taglen);
              expect(a.mode.aead_crypt(seq, pkt, wireO, pkt.length, taglen, txO, LTC_ENCRYPT)).toBe(CRYPT_OK);
              expect(a.mode.aead_crypt(seq, pkt, wireN, pkt.length, taglen, txN, LTC_ENCRYPT)).toBe(CRYPT_OK);
              expect(wireO.equals(wireN)).toBe(true);
              // Each opens the other's, in place, after reading the length ahead.
              expect(a.mode.aead_getlength(seq, wireN, a.cipher.blocksize, rxO)).toBe(pkt.length - 4);
              expect(a.mode.aead_getlength(seq, wireO, a.cipher.blocksize, rxN)).toBe(pkt.length - 4);
              expect(a.mode.aead_crypt(seq, wireN, wireN, pkt.length, taglen, rxO, LTC_DECRYPT)).toBe(CRYPT_OK);
              expect(a.mode.aead_crypt(seq, wireO, wireO, pkt.length, taglen, rxN, LTC_DECRYPT)).toBe(CRYPT_OK);
              expect(wireN.subarray(0, pkt.length).equals(pkt)).toBe(true);
              expect(wireO.subarray(0, pkt.length).equals(pkt)).toBe(true);
            });
            for (const s of [txO, rxO]) freeCipherState(s);
          },
        ),
        fuzzParams(25),
      );
    });
  }

  for (const s of STREAMS) {
    it(`${s.name}: the same keystream, run on across packets, in place or not`, () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: s.cipher.keysize, maxLength: s.cipher.keysize }),
          fc.uint8Array({ minLength: 16, maxLength: 16 }),
          fc.array(fc.integer({ min: 1, max: 2500 }), { minLength: 1, maxLength: 8 }),
          (key, iv, blockCounts) => {
            const o = startOn("openssl", () => s.mode.start(aes_desc, iv, key, s.cipher.keysize, 0)!);
            const n = startOn("node", () => s.mode.start(aes_desc, iv, key, s.cipher.keysize, 0)!);
            for (const [i, blocks] of blockCounts.entries()) {
              const pt = randomBytes(blocks * 16);
              const inPlace = Buffer.from(pt);
              const apart = Buffer.alloc(pt.length);
              expect(s.mode.encrypt(pt, apart, pt.length, n)).toBe(CRYPT_OK);
              const mode = i % 2 === 0 ? s.mode.encrypt : s.mode.decrypt;
              expect(mode(inPlace, inPlace, inPlace.length, o)).toBe(CRYPT_OK);
              expect(inPlace.equals(apart)).toBe(true);
            }
            freeCipherState(o);
          },
        ),
        fuzzParams(25),
      );
    });
  }
});

describe("EvpPoly1305", () => {
  it("RFC 8439 §2.5.2, and the same context re-keyed for the next message", () => {
    const p = EvpPoly1305.open()!;
    const key = Buffer.from("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b", "hex");
    const msg = Buffer.from("Cryptographic Forum Research Group");
    const tag = Buffer.alloc(16);
    for (let i = 0; i < 2; i++) {
      expect(p.mac(key, msg, msg.length, tag)).toBe(true);
      expect(tag.toString("hex")).toBe("a8061dc1305136c6c22b8baf0c0127a9");
    }
    p.free();
  });
});

describe("EvpCipher and EvpPoly1305 guard every foreign call", () => {
  it("partly overlapping input and output come out as with separate buffers", () => {
    const key = randomBytes(16);
    const iv = randomBytes(16);
    const data = randomBytes(1000);
    for (const shift of [-17, -1, 1, 16, 99]) {
      const c = EvpCipher.open("AES-128-CTR", key, iv)!;
      const buf = Buffer.from(data);
      const from = shift < 0 ? -shift : 0;
      const to = shift < 0 ? 0 : shift;
      expect(c.crypt(buf.subarray(from, from + 900), buf.subarray(to, to + 900), 900)).toBe(true);
      const src = Buffer.from(data.subarray(from, from + 900));
      expect(buf.subarray(to, to + 900)).toEqual(createCipheriv("aes-128-ctr", key, iv).update(src));
      c.free();
    }
  });

  it("refuses lengths past the views, short keys and IVs, and any use after free", () => {
    const key = randomBytes(32);
    const c = EvpCipher.open("AES-256-GCM", key, randomBytes(12))!;
    const small = Buffer.alloc(8);
    expect(c.crypt(small, Buffer.alloc(16), 9)).toBe(false);
    expect(c.crypt(Buffer.alloc(16), small, 9)).toBe(false);
    expect(c.crypt(small, small, -1)).toBe(false);
    expect(c.crypt(small, small, 1.5)).toBe(false);
    expect(c.aad(small, 9)).toBe(false);
    expect(c.setIv(Buffer.alloc(11), true)).toBe(false);
    expect(c.setTag(Buffer.alloc(15), 16)).toBe(false);
    expect(c.setTag(Buffer.alloc(16), 12)).toBe(false);
    expect(c.getTag(Buffer.alloc(15), 16)).toBe(false);
    expect(EvpCipher.open("AES-256-GCM", key.subarray(0, 31), randomBytes(12))).toBeNull();
    expect(EvpCipher.open("ChaCha20", key, randomBytes(15))).toBeNull();
    const p = EvpPoly1305.open()!;
    expect(p.mac(key.subarray(0, 31), small, 8, Buffer.alloc(16))).toBe(false);
    expect(p.mac(key, small, 9, Buffer.alloc(16))).toBe(false);
    expect(p.mac(key, small, 8, Buffer.alloc(15))).toBe(false);
    expect(p.equal(small, Buffer.alloc(4), 8)).toBe(false);
    expect(p.equal(small, Buffer.alloc(8), 8)).toBe(true);
    c.free();
    p.free();
    c.free(); // twice is harmless
    expect(c.setIv(Buffer.alloc(12), true)).toBe(false);
    expect(c.crypt(small, small, 8)).toBe(false);
    expect(c.final()).toBe(false);
    expect(p.mac(key, small, 8, Buffer.alloc(16))).toBe(false);
  });

  it("a freed cipher state fails cleanly, and freeing returns its contexts", () => {
    const before = evpLiveContexts();
    const states: [cipher_state, () => number][] = [];
    for (const a of AEADS) {
      const st = startOn("openssl", () => a.mode.start(a.cipher.cipherdesc, randomBytes(16), randomBytes(a.cipher.keysize), a.cipher.keysize, 0)!);
      const pkt = Buffer.alloc(36 + a.mode.aead_mac.hashsize);
      states.push([st, () => a.mode.aead_crypt(0, pkt, pkt, 36, a.mode.aead_mac.hashsize, st, LTC_ENCRYPT)]);
    }
    const ctr = startOn("openssl", () => dropbear_mode_ctr.start(aes_desc, randomBytes(16), randomBytes(16), 16, 0)!);
    states.push([ctr, () => dropbear_mode_ctr.encrypt(Buffer.alloc(16), Buffer.alloc(16), 16, ctr)]);
    // chacha: 2 ciphers + 1 MAC; each GCM and CTR: 1.
    expect(evpLiveContexts()).toBe(before + 6);
    for (const [st, use] of states) {
      expect(use()).toBe(CRYPT_OK);
      freeCipherState(st);
      expect(use()).toBe(CRYPT_ERROR);
    }
    expect(dropbear_mode_chachapoly.aead_getlength(0, Buffer.alloc(8), 8, states[0]![0])).toBe(-1);
    expect(evpLiveContexts()).toBe(before);
    // States of the node:crypto path hold nothing to free.
    freeCipherState(startOn("node", () => dropbear_mode_gcm.start(aes_desc, randomBytes(12), randomBytes(16), 16, 0)!));
    expect(evpLiveContexts()).toBe(before);
  });
});

describe("without a reachable OpenSSL", () => {
  it("a process where koffi cannot load keys every mode on node:crypto, once, and they work", () => {
    // The built package, in a fresh process where koffi's binary does not load, straight or
    // through koffi's loader (as on a platform koffi has no build for).
    const dist = fileURLToPath(new URL("../dist/index.js", import.meta.url));
    const script = `
      const Module = require("node:module");
      const load = Module._load;
      const dlopen = process.dlopen;
      let tries = 0;
      process.dlopen = function (mod, file, ...rest) {
        if (file.endsWith("koffi.node")) throw new Error("no koffi build here");
        return dlopen.call(this, mod, file, ...rest);
      };
      Module._load = function (request, ...rest) {
        if (request === "koffi") { tries++; throw new Error("no koffi here"); }
        return load.call(this, request, ...rest);
      };
      import(${JSON.stringify(dist)}).then((c) => {
        const out = [c.cryptoBackend()];
        const pkt = Buffer.alloc(36 + 16);
        pkt.writeUInt32BE(32, 0);
        for (const [cipher, mode] of [[c.dropbear_aes128, c.dropbear_mode_gcm], [c.dropbear_chachapoly, c.dropbear_mode_chachapoly]]) {
          const key = Buffer.alloc(cipher.keysize, 3), iv = Buffer.alloc(16, 4);
          const tx = mode.start(cipher.cipherdesc, iv, key, cipher.keysize, 0);
          const rx = mode.start(cipher.cipherdesc, iv, key, cipher.keysize, 0);
          const wire = Buffer.from(pkt);
          out.push(mode.aead_crypt(5, wire, wire, 36, 16, tx, 0), mode.aead_crypt(5, wire, wire, 36, 16, rx, 1), wire.subarray(0, 36).equals(pkt.subarray(0, 36)) ? "same" : "differs");
        }
        out.push(c.cryptoBackend(), "koffi asked " + tries);
        console.log(out.join(" "));
      });
    `;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, DROPBEAR_TS_CRYPTO: "" } });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("node 0 0 same 0 0 same node koffi asked 1");
  });
});

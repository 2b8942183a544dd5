import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { buf_getmpint, buf_new, buf_putmpint, buf_setpos } from "@dropbear-ts/buffer";

import { bytes_to_mp, hash_process_mp, mpToBytes } from "../src/bignum.js";
import { gen_random_mpint, genrandom } from "../src/dbrandom.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("bignum", () => {
  it("bytes_to_mp reads big-endian unsigned bytes", () => {
    expect(bytes_to_mp(hex(""))).toBe(0n);
    expect(bytes_to_mp(hex("0000ff"))).toBe(255n);
    expect(bytes_to_mp(hex("80000000"))).toBe(0x80000000n);
    expect(bytes_to_mp(hex("01020304"), 2)).toBe(0x0102n);
    expect(bytes_to_mp(hex("ff01020304").subarray(1), 4)).toBe(0x01020304n);
  });

  it("mpToBytes gives minimal or fixed-length encodings", () => {
    expect(mpToBytes(0n)).toEqual(hex(""));
    expect(mpToBytes(0x80n)).toEqual(hex("80"));
    expect(mpToBytes(0x123n)).toEqual(hex("0123"));
    expect(mpToBytes(0x123n, 4)).toEqual(hex("00000123"));
    expect(() => mpToBytes(0x123456n, 2)).toThrow(/bignum too large/);
    expect(() => mpToBytes(-1n)).toThrow(/negative bignum/);
  });

  // RFC 4251 §5 mpint examples, hashed as hash_process_mp feeds them into the exchange hash.
  it("hash_process_mp hashes the RFC 4251 mpint encoding", () => {
    for (const [mp, enc] of [
      [0n, "00000000"],
      [0x9a378f9b2e332a7n, "0000000809a378f9b2e332a7"],
      [0x80n, "000000020080"],
    ] as const) {
      const h = createHash("sha256");
      hash_process_mp(h, mp);
      expect(h.digest()).toEqual(createHash("sha256").update(hex(enc)).digest());
    }
  });

  it("round-trips through bytes and the buffer's mpint", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 4096n) - 1n }), (n) => {
        expect(bytes_to_mp(mpToBytes(n))).toBe(n);
        const buf = buf_new(600);
        buf_putmpint(buf, n);
        buf_setpos(buf, 0);
        expect(buf_getmpint(buf)).toBe(n);
      }),
    );
  });
});

describe("dbrandom", () => {
  it("genrandom fills exactly len bytes", () => {
    const buf = Buffer.alloc(64);
    genrandom(buf, 32);
    expect(buf.subarray(32)).toEqual(Buffer.alloc(32));
    expect(buf.subarray(0, 32)).not.toEqual(Buffer.alloc(32));
    expect(() => genrandom(Buffer.alloc(4), 5)).toThrow();
  });

  it("small requests (served from a pool) never repeat, across many refills, and big ones bypass it", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.alloc(16);
      genrandom(b, 16);
      seen.add(b.toString("hex"));
    }
    expect(seen.size).toBe(3000);
    const big = Buffer.alloc(5000);
    genrandom(big);
    expect(big.subarray(4990)).not.toEqual(Buffer.alloc(10));
  });

  it("gen_random_mpint stays in (0, max) and reaches both ends", () => {
    expect(gen_random_mpint(2n)).toBe(1n);
    const seen = new Set<bigint>();
    for (let i = 0; i < 400; i++) {
      const r = gen_random_mpint(5n);
      expect(r >= 1n && r <= 4n).toBe(true);
      seen.add(r);
    }
    expect(seen.size).toBe(4);
    fc.assert(
      fc.property(fc.bigInt({ min: 2n, max: 1n << 2100n }), (max) => {
        const r = gen_random_mpint(max);
        expect(r > 0n && r < max).toBe(true);
      }),
    );
    expect(() => gen_random_mpint(1n)).toThrow(/bad range/);
  });
});

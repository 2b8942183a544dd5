import { createHash, randomInt } from "node:crypto";
import { describe, expect, it } from "vitest";

import {
  crypto_kem_sntrup761_BYTES as SS,
  crypto_kem_sntrup761_CIPHERTEXTBYTES as CT,
  crypto_kem_sntrup761_PUBLICKEYBYTES as PK,
  crypto_kem_sntrup761_SECRETKEYBYTES as SK,
  crypto_kem_sntrup761_dec,
  crypto_kem_sntrup761_enc,
  crypto_kem_sntrup761_keypair,
  sntrup761_desc,
} from "../src/sntrup761.js";
import { sntrup761WasmBase64 } from "../src/sntrup761_wasm.js";
import { NistKatDrbg } from "./nist-drbg.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex").toUpperCase();

/**
 * The NIST PQC known-answer file, as liboqs's tests/kat_kem.c prints it: a DRBG seeded with
 * bytes 0..47 hands out one 48-byte seed per entry; each entry reseeds the DRBG with its seed
 * and runs keypair then enc; dec must agree. Returns the text and checks dec on the way.
 */
function katText(count: number): string {
  const outer = new NistKatDrbg(Uint8Array.from({ length: 48 }, (_, i) => i));
  const seed = new Uint8Array(48);
  const pk = new Uint8Array(PK);
  const sk = new Uint8Array(SK);
  const ct = new Uint8Array(CT);
  const ss = new Uint8Array(SS);
  const ss2 = new Uint8Array(SS);
  const entries: string[] = [];
  for (let n = 0; n < count; n++) {
    outer.randombytes(seed);
    const drbg = new NistKatDrbg(seed);
    crypto_kem_sntrup761_keypair(pk, sk, drbg.randombytes);
    crypto_kem_sntrup761_enc(ct, ss, pk, drbg.randombytes);
    crypto_kem_sntrup761_dec(ss2, ct, sk);
    expect(hex(ss2)).toBe(hex(ss));
    entries.push(
      `count = ${n}\nseed = ${hex(seed)}\npk = ${hex(pk)}\nsk = ${hex(sk)}\nct = ${hex(ct)}\nss = ${hex(ss)}\n`,
    );
  }
  return entries.join("\n");
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

describe("sntrup761 known-answer tests", () => {
  it("drives the NIST DRBG as the KAT generator does (first seed of every NIST KAT file)", () => {
    const drbg = new NistKatDrbg(Uint8Array.from({ length: 48 }, (_, i) => i));
    const seed = new Uint8Array(48);
    drbg.randombytes(seed);
    expect(hex(seed)).toBe(
      "061550234D158C5EC95595FE04EF7A25767F2E24CC2BC479D09D86DC9ABCFDE7056A8C266F9EF97ED08541DBD2E1FFA1",
    );
  });

  // SHA-256 of the KAT text, from liboqs tests/KATs/kem/kats.json ("sntrup761"): "single" is
  // count 0 alone, "all" the 100 entries of the submission's PQCkemKAT file.
  it("reproduces KAT entry 0 (liboqs kats.json sntrup761 'single')", () => {
    expect(sha256(katText(1))).toBe("afc42c3a5b10f4ef69654250097ebda9b9564570f4086744b24a6daf2bd1f89a");
  });

  it("reproduces KAT entries 0..99 (liboqs kats.json sntrup761 'all')", () => {
    expect(sha256(katText(100))).toBe("36e1e53d4e6e295e8fb804449958ad9a3719aa350e91933c65791b9117382d57");
  });
});

describe("sntrup761 decapsulation", () => {
  function keyAndCiphertext(): { pk: Uint8Array; sk: Uint8Array; ct: Uint8Array; ss: Uint8Array } {
    const pk = Buffer.alloc(PK);
    const sk = Buffer.alloc(SK);
    const ct = Buffer.alloc(CT);
    const ss = Buffer.alloc(SS);
    expect(sntrup761_desc.kem_gen(pk, sk)).toBe(0);
    expect(sntrup761_desc.kem_enc(ct, ss, pk)).toBe(0);
    return { pk, sk, ct, ss };
  }

  /** The implicit-rejection key: Hash_prefix(0, Hash_prefix(3, rho) ‖ c), rho from sk. */
  function rejectionKey(sk: Uint8Array, ct: Uint8Array): Buffer {
    const rho = sk.subarray(382 + PK, 382 + PK + 191);
    const inner = createHash("sha512").update(Uint8Array.of(3)).update(rho).digest().subarray(0, 32);
    return createHash("sha512").update(Uint8Array.of(0)).update(inner).update(ct).digest().subarray(0, 32);
  }

  it("round-trips through the desc with Buffers", () => {
    const { sk, ct, ss } = keyAndCiphertext();
    const k = Buffer.alloc(SS);
    expect(sntrup761_desc.kem_dec(k, ct, sk)).toBe(0);
    expect(k).toEqual(ss);
    expect(ss).not.toEqual(Buffer.alloc(SS));
  });

  it("gives the implicit-rejection key for a tampered ciphertext, not an exception", () => {
    const { sk, ct, ss } = keyAndCiphertext();
    for (const at of [0, 500, CT - 32, CT - 1]) {
      const bad = Buffer.from(ct);
      bad[at]! ^= 0x01;
      const k = Buffer.alloc(SS);
      expect(crypto_kem_sntrup761_dec(k, bad, sk)).toBe(0);
      expect(k).not.toEqual(ss);
      expect(k).toEqual(rejectionKey(sk, bad));
    }
    // An honest ciphertext is never confused with a rejection.
    const k = Buffer.alloc(SS);
    crypto_kem_sntrup761_dec(k, ct, sk);
    expect(k).not.toEqual(rejectionKey(sk, ct));
  });

  it("rejects garbage of the right length the same way", () => {
    const { sk } = keyAndCiphertext();
    for (const fill of [0x00, 0xff, 0x5a]) {
      const bad = Buffer.alloc(CT, fill);
      const k = Buffer.alloc(SS);
      expect(crypto_kem_sntrup761_dec(k, bad, sk)).toBe(0);
      expect(k).toEqual(rejectionKey(sk, bad));
    }
  });

  it("exits cleanly on short buffers", () => {
    expect(() => crypto_kem_sntrup761_dec(Buffer.alloc(SS), Buffer.alloc(CT - 1), Buffer.alloc(SK))).toThrow(
      /Bad sntrup761/,
    );
    expect(() => crypto_kem_sntrup761_enc(Buffer.alloc(CT), Buffer.alloc(SS), Buffer.alloc(100))).toThrow(
      /Bad sntrup761/,
    );
  });
});

describe("sntrup761 WebAssembly kernels", () => {
  const p = 761;
  const q = 4591;
  type Exports = {
    memory: { buffer: ArrayBuffer };
    IN0: { value: number };
    IN1: { value: number };
    OUT: { value: number };
    burn(): void;
    R3_mult(): void;
    Rq_mult_small(): void;
    R3_recip(): number;
    Rq_recip3(): number;
    crypto_sort_uint32(): void;
    Rq_encode(): number;
    Rq_decode(): void;
  };
  const wasm = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => { exports: object } } }).WebAssembly;
  const k = new wasm.Instance(new wasm.Module(Buffer.from(sntrup761WasmBase64, "base64")), {}).exports as Exports;
  const area = (a: { value: number }): Int32Array => new Int32Array(k.memory.buffer, a.value, p);
  const [in0, in1, out] = [area(k.IN0), area(k.IN1), area(k.OUT)];
  const mod = (x: number, m: number): number => ((x % m) + m) % m;
  /** a * b in Z_m[x]/(x^p - x - 1), coefficients in [0, m). */
  const ringMul = (a: ArrayLike<number>, b: ArrayLike<number>, m: number): number[] => {
    const c = new Array<number>(2 * p - 1).fill(0);
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) c[i + j] += a[i]! * b[j]!;
    for (let i = 2 * p - 2; i >= p; i--) {
      c[i - p] += c[i]!;
      c[i - p + 1] += c[i]!;
    }
    return c.slice(0, p).map((x) => mod(x, m));
  };
  const small = (): number[] => Array.from({ length: p }, () => randomInt(3) - 1);
  const isOne = (c: number[]): boolean => c.every((x, i) => x === (i === 0 ? 1 : 0));
  const run = (f: () => number | void, a: number[], b?: number[]): { r: number | void; out: number[] } => {
    k.burn();
    in0.set(a);
    if (b) in1.set(b);
    const r = f();
    const o = Array.from(out);
    k.burn();
    return { r, out: o };
  };

  it("invert in R/q (times 3) and R/3, and multiply by a small polynomial, as the ring says", () => {
    for (let n = 0; n < 4; n++) {
      const f = small();
      const g = small();
      const rq = run(() => k.Rq_recip3(), f);
      expect(rq.r).toBe(0);
      expect(rq.out.every((x) => Math.abs(x) <= (q - 1) / 2)).toBe(true);
      expect(isOne(ringMul(f.map((x) => 3 * x), rq.out, q))).toBe(true);
      const r3 = run(() => k.R3_recip(), g);
      if (r3.r === 0) {
        expect(r3.out.every((x) => Math.abs(x) <= 1)).toBe(true);
        expect(isOne(ringMul(g, r3.out, 3))).toBe(true);
      } else {
        expect(r3.r).toBe(-1);
      }
      const h = Array.from({ length: p }, () => randomInt(q) - (q - 1) / 2);
      const hg = run(() => k.Rq_mult_small(), h, g);
      expect(hg.out.every((x) => Math.abs(x) <= (q - 1) / 2)).toBe(true);
      expect(hg.out.map((x) => mod(x, q))).toEqual(ringMul(h, g, q));
      const fg = run(() => k.R3_mult(), f, g);
      expect(fg.out.every((x) => Math.abs(x) <= 1)).toBe(true);
      expect(fg.out.map((x) => mod(x, 3))).toEqual(ringMul(f, g, 3));
    }
  });

  it("sort unsigned 32-bit values (those with the top bit set last), duplicates kept", () => {
    for (const draw of [() => randomInt(2 ** 32 - 1) | 0, () => randomInt(4) * 0x40000000]) {
      const x = Array.from({ length: p }, draw);
      const want = x.map((v) => v >>> 0).sort((a, b) => a - b);
      expect(run(() => k.crypto_sort_uint32(), x).out.map((v) => v >>> 0)).toEqual(want);
    }
  });

  it("leave nothing in their memory once burn() has run", () => {
    const memory = new Uint8Array(k.memory.buffer);
    k.burn();
    in0.set(small());
    in1.set(small());
    k.Rq_recip3();
    k.R3_recip();
    k.Rq_mult_small();
    k.crypto_sort_uint32();
    k.Rq_encode();
    k.Rq_decode();
    expect(memory.some((x) => x !== 0)).toBe(true);
    k.burn();
    expect(memory.every((x) => x === 0)).toBe(true);
  });

  it("say when there is no inverse, and invert 1 to 1 (R/3) and 1/3 (R/q)", () => {
    expect(run(() => k.R3_recip(), new Array<number>(p).fill(0)).r).toBe(-1);
    expect(run(() => k.Rq_recip3(), new Array<number>(p).fill(0)).r).toBe(-1);
    const one = new Array<number>(p).fill(0);
    one[0] = 1;
    expect(run(() => k.R3_recip(), one)).toEqual({ r: 0, out: one });
    const third = run(() => k.Rq_recip3(), one);
    expect(third.r).toBe(0);
    expect(mod(3 * third.out[0]!, q)).toBe(1);
    expect(third.out.slice(1).every((x) => x === 0)).toBe(true);
  });

  it("reduce every value they form mod q exactly (their Fq_freeze on |x| <= 2^24; i32.mul wraps as Math.imul does)", () => {
    const [q12, q16, q20, q28] = [2295, 14, 228, 58470];
    expect([Math.floor((0x10000 + q12) / q), Math.floor((0x100000 + q12) / q), Math.floor((0x10000000 + q12) / q)]).toEqual([q16, q20, q28]);
    let bad = 0;
    for (let x0 = -(2 ** 24); x0 <= 2 ** 24; x0++) {
      let x = x0 - q * (Math.imul(q16, x0) >> 16);
      x -= q * (Math.imul(q20, x) >> 20);
      x -= q * ((Math.imul(q28, x) + 0x8000000) >> 28);
      if (x < -q12 || x > q12 || (x - x0) % q !== 0) bad++;
    }
    expect(bad).toBe(0);
  });
});

// liboqs-js (liboqs compiled to WebAssembly) was the implementation before this port. While it is
// still installed somewhere in node_modules, check that each side opens what the other sealed.
type Oqs = {
  generateKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(pk: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(ct: Uint8Array, sk: Uint8Array): Uint8Array;
};
const oqs: Oqs | null = await import("@oqs/liboqs-js/kem" as string)
  .then((m: { createSntrup761(): Promise<Oqs> }) => m.createSntrup761())
  .catch(() => null);

describe.skipIf(oqs === null)("sntrup761 against liboqs-js", () => {
  it("our keys and encapsulation, their decapsulation, and back", () => {
    for (let n = 0; n < 5; n++) {
      // Ours -> theirs.
      const pk = new Uint8Array(PK);
      const sk = new Uint8Array(SK);
      crypto_kem_sntrup761_keypair(pk, sk);
      const theirs = oqs!.encapsulate(pk);
      const k = new Uint8Array(SS);
      crypto_kem_sntrup761_dec(k, theirs.ciphertext, sk);
      expect(hex(k)).toBe(hex(theirs.sharedSecret));
      // Theirs -> ours.
      const keys = oqs!.generateKeyPair();
      const ct = new Uint8Array(CT);
      const ss = new Uint8Array(SS);
      crypto_kem_sntrup761_enc(ct, ss, keys.publicKey);
      expect(hex(oqs!.decapsulate(ct, keys.secretKey))).toBe(hex(ss));
      // Their secret key decapsulates with our code too (same layout), rejections included.
      const k2 = new Uint8Array(SS);
      crypto_kem_sntrup761_dec(k2, ct, keys.secretKey);
      expect(hex(k2)).toBe(hex(ss));
      const bad = Uint8Array.from(ct);
      bad[7]! ^= 0x40;
      crypto_kem_sntrup761_dec(k2, bad, keys.secretKey);
      expect(hex(k2)).toBe(hex(oqs!.decapsulate(bad, keys.secretKey)));
    }
  });
});

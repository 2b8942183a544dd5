import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { DropbearExit } from "@dropbear-ts/dbutil";

import type { dropbear_kem_desc } from "../src/algo.js";
import {
  MLKEM768_ENC_SEED_LEN,
  MLKEM768_KEYGEN_SEED_LEN,
  crypto_kem_mlkem768_dec,
  mlkem768EncFromSeed,
  mlkem768KeypairFromSeed,
  mlkem768_desc,
} from "../src/mlkem768.js";
import { crypto_kem_sntrup761_keypair, sntrup761_desc } from "../src/sntrup761.js";

function roundTrip(kem: dropbear_kem_desc): void {
  const pk = Buffer.alloc(kem.public_len);
  const sk = Buffer.alloc(kem.secret_len);
  const c = Buffer.alloc(kem.ciphertext_len);
  const k1 = Buffer.alloc(kem.output_len);
  const k2 = Buffer.alloc(kem.output_len);
  expect(kem.kem_gen(pk, sk)).toBe(0);
  expect(kem.kem_enc(c, k1, pk)).toBe(0);
  expect(kem.kem_dec(k2, c, sk)).toBe(0);
  expect(k2).toEqual(k1);
  expect(k1).not.toEqual(Buffer.alloc(kem.output_len));
  // A different ciphertext gives a different (implicitly rejected) secret, not an error.
  c[0] ^= 1;
  const k3 = Buffer.alloc(kem.output_len);
  expect(kem.kem_dec(k3, c, sk)).toBe(0);
  expect(k3).not.toEqual(k1);
}

describe("ML-KEM-768 (mlkem768_desc)", () => {
  beforeAll(() => mlkem768_desc.kemLoad());

  it("has the FIPS 203 sizes", () => {
    expect([
      mlkem768_desc.public_len,
      mlkem768_desc.secret_len,
      mlkem768_desc.ciphertext_len,
      mlkem768_desc.output_len,
    ]).toEqual([1184, 2400, 1088, 32]);
  });

  it("round-trips, into Buffers", () => roundTrip(mlkem768_desc));

  // The accumulated test of Go's crypto/mlkem (TestAccumulated, ML-KEM-768, the 100-vector
  // "short" run): one SHAKE-128 stream of the empty string supplies, per round, the seed d ‖ z,
  // the encapsulation message m and a random ciphertext; ek, ct, K and the implicit-rejection K
  // of the random ciphertext are absorbed into a second SHAKE-128, whose first 32 bytes are known.
  it("matches Go crypto/mlkem's accumulated vectors (100 rounds, final FIPS 203)", () => {
    const rounds = 100;
    const per = MLKEM768_KEYGEN_SEED_LEN + MLKEM768_ENC_SEED_LEN + mlkem768_desc.ciphertext_len;
    const stream = createHash("shake128", { outputLength: rounds * per }).digest();
    const acc = createHash("shake128", { outputLength: 32 });
    const pk = Buffer.alloc(1184);
    const sk = Buffer.alloc(2400);
    const ct = Buffer.alloc(1088);
    const k = Buffer.alloc(32);
    const kk = Buffer.alloc(32);
    let off = 0;
    const take = (n: number): Buffer => stream.subarray(off, (off += n));
    for (let i = 0; i < rounds; i++) {
      mlkem768KeypairFromSeed(pk, sk, take(MLKEM768_KEYGEN_SEED_LEN));
      acc.update(pk);
      mlkem768EncFromSeed(ct, k, pk, take(MLKEM768_ENC_SEED_LEN));
      acc.update(ct);
      acc.update(k);
      crypto_kem_mlkem768_dec(kk, ct, sk);
      expect(kk).toEqual(k);
      crypto_kem_mlkem768_dec(kk, take(1088), sk);
      acc.update(kk);
    }
    expect(acc.digest("hex")).toBe("1114b1b6699ed191734fa339376afa7e285c9e6acf6ff0177d346696ce564415");
  });

  it("ends the session on a public key that fails the modulus check", () => {
    const pk = Buffer.alloc(1184, 0xff);
    expect(() => mlkem768_desc.kem_enc(Buffer.alloc(1088), Buffer.alloc(32), pk)).toThrow(
      new DropbearExit(1, "Bad mlkem768"),
    );
    expect(() => mlkem768_desc.kem_enc(Buffer.alloc(1088), Buffer.alloc(32), Buffer.alloc(100))).toThrow(
      /Bad mlkem768/,
    );
  });
});

describe("sntrup761 (sntrup761_desc)", () => {
  it("needs no loading: kemLoad resolves at once, and keygen works before it", async () => {
    expect(crypto_kem_sntrup761_keypair(Buffer.alloc(1158), Buffer.alloc(1763))).toBe(0);
    await Promise.all([sntrup761_desc.kemLoad(), sntrup761_desc.kemLoad()]);
    expect(sntrup761_desc.kemLoad()).toBe(sntrup761_desc.kemLoad());
  });

  it("has sizes pk 1158 / sk 1763 / ct 1039 / ss 32", () => {
    expect([
      sntrup761_desc.public_len,
      sntrup761_desc.secret_len,
      sntrup761_desc.ciphertext_len,
      sntrup761_desc.output_len,
    ]).toEqual([1158, 1763, 1039, 32]);
  });

  it("round-trips, into Buffers", () => roundTrip(sntrup761_desc));
});

import * as nodeCrypto from "node:crypto";
import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DropbearExit } from "@dropbear-ts/dbutil";
import { IN_CI } from "../../../tests/helpers/peers.js";

import type { dropbear_kem_desc } from "../src/algo.js";
import {
  MLKEM768_ENC_SEED_LEN,
  MLKEM768_KEYGEN_SEED_LEN,
  crypto_kem_mlkem768_dec,
  crypto_kem_mlkem768_keypair,
  mlkem768EncFromSeed,
  mlkem768KeypairFromSeed,
  mlkem768_desc,
} from "../src/mlkem768.js";
import { mlkem768WasmBase64 } from "../src/mlkem768_wasm.js";
import { sntrup761_desc } from "../src/sntrup761.js";

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
  it("rejects a ciphertext implicitly with SHAKE256(z ‖ c), z the secret key's last 32 bytes", () => {
    const pk = Buffer.alloc(1184);
    const sk = Buffer.alloc(2400);
    crypto_kem_mlkem768_keypair(pk, sk);
    const c = randomBytes(1088);
    const k = Buffer.alloc(32);
    crypto_kem_mlkem768_dec(k, c, sk);
    const z = sk.subarray(2400 - 32);
    expect(k).toEqual(createHash("shake256", { outputLength: 32 }).update(z).update(c).digest());
  });

  it("leaves nothing in the module's memory but its constant tables", () => {
    type Exports = {
      memory: { buffer: ArrayBuffer };
      SEED: { value: number };
      PK: { value: number };
      SK: { value: number };
      CT: { value: number };
      keypair(): void;
      enc(): number;
      dec(): void;
      burn(): void;
    };
    const wasm = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => { exports: object } } }).WebAssembly;
    const m = new wasm.Instance(new wasm.Module(Buffer.from(mlkem768WasmBase64, "base64")), {}).exports as Exports;
    const memory = new Uint8Array(m.memory.buffer);
    const fresh = Uint8Array.from(memory);
    const area = (a: { value: number }, n: number): Uint8Array => memory.subarray(a.value, a.value + n);
    area(m.SEED, 64).set(randomBytes(64));
    m.keypair();
    const pk = Uint8Array.from(area(m.PK, 1184));
    area(m.SEED, 32).set(randomBytes(32));
    expect(m.enc()).toBe(0);
    m.dec();
    const same = (): boolean => Buffer.from(memory.buffer).equals(Buffer.from(fresh.buffer));
    expect(same()).toBe(false);
    m.burn();
    expect(same()).toBe(true);
    expect(pk).not.toEqual(new Uint8Array(1184));
  });
});

// Node 24 (OpenSSL 3.5) has ML-KEM in node:crypto: an independent implementation to check ours
// against, both ways, including keys made from the same seed. Node 20 and 22 have none (CI runs
// the suite on Node 24 too).
type NodeKem = {
  encapsulate(key: KeyObject): { sharedKey: Buffer; ciphertext: Buffer };
  decapsulate(key: KeyObject, ciphertext: Uint8Array): Buffer;
  generateKeyPairSync(type: string): unknown;
};
// Not in the type declarations this repository builds against (Node 20's).
const nodeKem = nodeCrypto as unknown as Partial<NodeKem>;
const opensslMlkem = ((): NodeKem | null => {
  if (nodeKem.encapsulate === undefined || nodeKem.decapsulate === undefined) return null;
  try {
    nodeKem.generateKeyPairSync!("ml-kem-768");
    return nodeKem as NodeKem;
  } catch {
    return null;
  }
})();

// In CI on Node 24 the check must run, not skip.
const opensslMlkemDue = IN_CI && Number(process.versions.node.split(".")[0]) >= 24;

describe.skipIf(opensslMlkem === null && !opensslMlkemDue)("ML-KEM-768 against OpenSSL's (node:crypto, Node 24)", () => {
  it("makes the same keys from a seed, and each side opens what the other sealed, implicit rejections included", () => {
    expect(opensslMlkem, "node:crypto has no ML-KEM-768").not.toBeNull();
    const kem = opensslMlkem!;
    const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64url");
    for (let i = 0; i < 20; i++) {
      const seed = randomBytes(64);
      const pk = Buffer.alloc(1184);
      const sk = Buffer.alloc(2400);
      mlkem768KeypairFromSeed(pk, sk, seed);
      const priv = createPrivateKey({ key: { kty: "AKP", alg: "ML-KEM-768", priv: b64(seed), pub: b64(pk) }, format: "jwk" });
      expect(Buffer.from(createPublicKey(priv).export({ format: "jwk" }).pub as string, "base64url")).toEqual(pk);
      // Theirs sealed, ours opens.
      const theirs = kem.encapsulate(createPublicKey(priv));
      const k = Buffer.alloc(32);
      crypto_kem_mlkem768_dec(k, theirs.ciphertext, sk);
      expect(k).toEqual(theirs.sharedKey);
      // Ours sealed, theirs opens.
      const c = Buffer.alloc(1088);
      mlkem768EncFromSeed(c, k, pk, randomBytes(32));
      expect(kem.decapsulate(priv, c)).toEqual(k);
      // A ciphertext neither sealed: the same implicit-rejection secret.
      const junk = randomBytes(1088);
      crypto_kem_mlkem768_dec(k, junk, sk);
      expect(kem.decapsulate(priv, junk)).toEqual(k);
    }
  });
});

describe("sntrup761 (sntrup761_desc)", () => {
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

import { describe, expect, it } from "vitest";
import { buf_new, buf_putbytes } from "@dropbear-ts/buffer";
import { DropbearExit, setLogHandler } from "@dropbear-ts/dbutil";
import {
  buf_get_ecc_raw_pubkey,
  dropbear_ecc_shared_secret,
  ecc_curve_nistp256,
  ecc_curve_nistp384,
  ecc_curve_nistp521,
  ecc_key,
  gen_ecdsa_priv_key,
  eccPointBytes,
  type dropbear_ecc_curve,
} from "../src/index.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const big = (b: Buffer): bigint => BigInt(`0x${b.toString("hex")}`);

/** The point as the kex reads it: the SEC1 bytes of the peer's string. */
function readPoint(bytes: Buffer, curve: dropbear_ecc_curve): ecc_key | null {
  const b = buf_new(bytes.length);
  buf_putbytes(b, bytes);
  return buf_get_ecc_raw_pubkey(b, curve);
}

describe("ECDH as kex-ecdh.c uses it (ecc.c)", () => {
  it("RFC 5903 §8.1 P-256 test vector", () => {
    const dp = ecc_curve_nistp256.dp;
    const gi = hex(`dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180
                    5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3`);
    const gr = hex(`04 d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63
                       56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab`);
    const i = big(hex("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433"));
    const alice = new ecc_key(dp, big(gi.subarray(0, 32)), big(gi.subarray(32)), i);
    const bob = readPoint(gr, ecc_curve_nistp256)!;
    expect(dropbear_ecc_shared_secret(bob, alice)).toBe(big(hex("d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de")));
  });

  for (const [curve, bits] of [
    [ecc_curve_nistp256, 256],
    [ecc_curve_nistp384, 384],
    [ecc_curve_nistp521, 521],
  ] as const) {
    it(`${curve.name}: fresh keys agree; bad points are refused`, () => {
      const a = gen_ecdsa_priv_key(bits);
      const b = gen_ecdsa_priv_key(bits);
      const k = dropbear_ecc_shared_secret(readPoint(eccPointBytes(b), curve)!, a);
      expect(k).toBe(dropbear_ecc_shared_secret(readPoint(eccPointBytes(a), curve)!, b));
      const good = eccPointBytes(b);
      const offCurve = Buffer.from(good);
      offCurve[offCurve.length - 1]! ^= 1;
      const prev = setLogHandler(() => undefined);
      try {
        for (const bad of [offCurve, Buffer.from([0]), Buffer.concat([Buffer.from([4]), Buffer.alloc(good.length - 1)]), good.subarray(0, good.length - 1)]) {
          let r: ecc_key | null = null;
          try {
            r = readPoint(bad, curve);
          } catch (e) {
            expect(e).toBeInstanceOf(DropbearExit);
          }
          expect(r).toBeNull();
        }
      } finally {
        setLogHandler(prev);
      }
    });
  }
});

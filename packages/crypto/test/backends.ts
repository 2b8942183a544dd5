import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { cryptoBackend } from "../src/openssl.js";

/** The two ways the cipher modes run: Node's OpenSSL through koffi, or node:crypto (+ libsodium). */
export const BACKENDS = ["openssl", "node"] as const;
export type Backend = (typeof BACKENDS)[number];

/**
 * Run `body` as two describe blocks, one per backend: DROPBEAR_TS_CRYPTO is set for the block,
 * so every mode.start() inside picks that backend. The OpenSSL block fails (never skips) where
 * the runtime offers no OpenSSL: CI's Node 20 and 24 both must.
 */
export function describeBackends(title: string, body: (backend: Backend) => void): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend}]`, () => {
      let saved: string | undefined;
      beforeAll(() => {
        saved = process.env.DROPBEAR_TS_CRYPTO;
        if (backend === "node") {
          process.env.DROPBEAR_TS_CRYPTO = "node";
        } else {
          delete process.env.DROPBEAR_TS_CRYPTO;
        }
      });
      afterAll(() => {
        if (saved === undefined) {
          delete process.env.DROPBEAR_TS_CRYPTO;
        } else {
          process.env.DROPBEAR_TS_CRYPTO = saved;
        }
      });
      it(`keys ciphers on ${backend}`, () => {
        expect(cryptoBackend()).toBe(backend);
      });
      body(backend);
    });
  }
}

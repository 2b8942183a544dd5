import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cryptoBackend, evpLiveContexts } from "@dropbear-ts/crypto";
import { fullKex, kexPair, only, pump, sendTest, TEST_MSG, type KexPair } from "./harness.js";

// The ciphers' and MACs' OpenSSL contexts (per direction: one for GCM, three for
// chacha20-poly1305, the cipher's and the HMAC's for CTR) are freed when switch_keys drops the
// old keys: however many rekeys, a session holds only its current ones.

const pairs: KexPair[] = [];
afterEach(() => {
  while (pairs.length) pairs.pop()!.close();
});

const REKEYS = 25;

// On OpenSSL whatever the environment asks (DROPBEAR_TS_CRYPTO=node would leave nothing to count).
const saved = process.env.DROPBEAR_TS_CRYPTO;
beforeAll(() => {
  delete process.env.DROPBEAR_TS_CRYPTO;
});
afterAll(() => {
  if (saved !== undefined) process.env.DROPBEAR_TS_CRYPTO = saved;
});

describe("rekeying frees the old keys' OpenSSL contexts", () => {
  it("runs on OpenSSL here", () => {
    expect(cryptoBackend()).toBe("openssl");
  });

  for (const [cipher, perDirection] of [
    ["aes128-gcm@openssh.com", 1],
    ["chacha20-poly1305@openssh.com", 3],
    ["aes256-ctr", 2],
  ] as const) {
    it(`${cipher}: ${REKEYS} key exchanges, the live context count stays at the current keys'`, async () => {
      const before = evpLiveContexts();
      const k = await kexPair({ setup: (cli) => only(cli.algos.sshciphers, [cipher]) });
      pairs.push(k);
      // Two sessions, two directions each. (At most: the GC may free other tests' contexts
      // meanwhile, never add any.)
      const current = before + 4 * perDirection;
      for (let i = 0; i < REKEYS; i++) {
        await fullKex(k);
        expect(evpLiveContexts()).toBeLessThanOrEqual(current);
        sendTest(k.cli, Buffer.from(`ping ${i}`));
        await pump(k, () => k.got.get(k.svr)!.length === i + 1);
      }
      expect(k.got.get(k.svr)!.map((b) => b.subarray(1).toString())).toEqual(Array.from({ length: REKEYS }, (_, i) => `ping ${i}`));
      expect(k.got.get(k.svr)![0]![0]).toBe(TEST_MSG);
    });
  }
});

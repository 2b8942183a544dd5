import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import { generatePrivateKey, generateX25519Jwk } from "../src/keygen.js";

describe("generatePrivateKey", () => {
  it("makes each kind of key", () => {
    expect(generatePrivateKey("ed25519").asymmetricKeyType).toBe("ed25519");
    expect(generatePrivateKey("ec", { namedCurve: "P-384" }).asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(generatePrivateKey("rsa", { modulusLength: 1024 }).asymmetricKeyDetails?.modulusLength).toBe(1024);
  });

  it("generateX25519Jwk gives a pair whose halves belong together", () => {
    const a = generateX25519Jwk();
    const b = generateX25519Jwk();
    expect(Buffer.from(a.d, "base64url")).toHaveLength(32);
    expect(Buffer.from(a.x, "base64url")).toHaveLength(32);
    expect(a.d).not.toBe(b.d);
    const priv = (k: typeof a) => createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: k.d, x: k.x }, format: "jwk" });
    const pub = (k: typeof a) => createPublicKey({ key: { kty: "OKP", crv: "X25519", x: k.x }, format: "jwk" });
    // The public half is the private half's: both sides of an exchange agree.
    expect(diffieHellman({ privateKey: priv(a), publicKey: pub(b) })).toEqual(diffieHellman({ privateKey: priv(b), publicKey: pub(a) }));
  });

  // Exporting a key that Node's generation job still owns deadlocks when a GC collects the job
  // mid-export (two of three runs of 2000 x25519 keys hung here). Our keys must not.
  it("survives thousands of generate+export rounds with garbage collections inside exports", () => {
    const child = fileURLToPath(new URL("./fixtures/keygen-stress.mjs", import.meta.url));
    const r = spawnSync(process.execPath, ["--max-semi-space-size=1", child, "3000"], { encoding: "utf8", timeout: 30_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("done\n");
  });
});

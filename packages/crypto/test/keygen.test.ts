import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { generatePrivateKey } from "../src/keygen.js";

describe("generatePrivateKey", () => {
  it("makes each kind of key", () => {
    expect(generatePrivateKey("x25519").asymmetricKeyType).toBe("x25519");
    expect(generatePrivateKey("ed25519").asymmetricKeyType).toBe("ed25519");
    expect(generatePrivateKey("ec", { namedCurve: "P-384" }).asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(generatePrivateKey("rsa", { modulusLength: 1024 }).asymmetricKeyDetails?.modulusLength).toBe(1024);
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

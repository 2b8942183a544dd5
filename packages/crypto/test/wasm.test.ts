import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

import { pqKemsUsable } from "../src/wasm.js";

describe("the WebAssembly modules", () => {
  it("are usable in this Node", () => {
    expect(pqKemsUsable()).toBe(true);
  });

  // Where the tables offer neither (--jitless), reaching one anyway ends the exchange with a reason.
  it.each([
    ["sntrup761", "crypto_kem_sntrup761_keypair(new Uint8Array(1158), new Uint8Array(1763))"],
    ["mlkem768", "crypto_kem_mlkem768_keypair(new Uint8Array(1184), new Uint8Array(2400))"],
  ])("in a Node without WebAssembly (--jitless), %s ends a key exchange with a reason", (name, call) => {
    const dist = new URL(`../dist/${name}.js`, import.meta.url).href;
    const script = `import(${JSON.stringify(dist)}).then((m) => { m.${call}; }).catch((e) => console.log(e.message))`;
    const r = spawnSync(process.execPath, ["--jitless", "-e", script], { encoding: "utf8" });
    expect(r.stdout.trim()).toBe(`${name} needs WebAssembly, which this Node has switched off (--jitless?)`);
  });

  it("are what assembly/ compiles to (sntrup761.ts, mlkem768.ts)", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const r = spawnSync(process.execPath, ["tools/build-wasm.mjs", "--check"], { cwd: root, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 60_000);
});

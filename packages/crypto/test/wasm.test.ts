import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

import { pqKemsUsable } from "../src/wasm.js";

describe("the WebAssembly modules", () => {
  it("are usable in this Node", () => {
    expect(pqKemsUsable()).toBe(true);
  });

  it("are what assembly/ compiles to (sntrup761.ts, mlkem768.ts)", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const r = spawnSync(process.execPath, ["tools/build-wasm.mjs", "--check"], { cwd: root, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 60_000);
});

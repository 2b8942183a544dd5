import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { threadIdSetters } from "../src/libc.js";

const root = process.getuid?.() === 0;

describe("threadIdSetters", () => {
  it("is there on Linux x64 and arm64", () => {
    const known = process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64");
    expect(threadIdSetters() !== null).toBe(known);
  });

  // Node's own seteuid/setegid move every thread (glibc signals each one); these move only the
  // calling thread, as a single-threaded C program's calls do.
  it.runIf(root && threadIdSetters() !== null)("switches the calling thread's effective ids alone, and back", () => {
    const child = fileURLToPath(new URL("./fixtures/thread-ids.mjs", import.meta.url));
    const r = spawnSync(process.execPath, [child], { encoding: "utf8", timeout: 20_000 });
    expect(r.stderr).toBe("");
    const { during, after } = JSON.parse(r.stdout) as { during: { threads: number[][]; euid: number; egid: number }; after: number[][] };
    expect(during.euid).toBe(1234);
    expect(during.egid).toBe(4321);
    expect(during.threads[0]).toEqual([1234, 4321]);
    expect(during.threads.length).toBeGreaterThan(1);
    for (const t of during.threads.slice(1)) expect(t).toEqual([0, 0]);
    for (const t of after) expect(t).toEqual([0, 0]);
  });
});

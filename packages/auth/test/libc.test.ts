import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
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

describe("svrAuthWarmUp", () => {
  // initgroups at login asks every module the group database names; the spare loads them first.
  it("loads the NSS modules of nsswitch.conf's group line that are installed", () => {
    const line = /^group:\s*(.*)$/m.exec(existsSync("/etc/nsswitch.conf") ? readFileSync("/etc/nsswitch.conf", "utf8") : "")?.[1] ?? "files";
    const installed = line
      .split(/\s+/)
      // glibc builds "files" and "dns" in (2.34 on); the others are libraries loaded when first asked.
      .filter((w) => /^[a-z0-9]+$/.test(w) && w !== "files" && w !== "dns")
      .filter((svc) => ["/lib", "/usr/lib"].some((d) => existsSync(`${d}/${process.arch === "x64" ? "x86_64" : "aarch64"}-linux-gnu/libnss_${svc}.so.2`)))
      .map((svc) => `libnss_${svc}`);
    const child = fileURLToPath(new URL("./fixtures/warmup-nss.mjs", import.meta.url));
    const r = spawnSync(process.execPath, [child], { encoding: "utf8", timeout: 20_000 });
    expect(r.stderr).toBe("");
    const { after } = JSON.parse(r.stdout) as { before: string[]; after: string[] };
    for (const lib of installed) expect(after).toContain(lib);
  });
});

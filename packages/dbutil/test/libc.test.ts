import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cleantext, fsync_parent_dir } from "../src/dbutil.js";
import { cstring, errnoCode, strerror, strerror_code, strerror_errno } from "../src/libc.js";

describe("strerror", () => {
  it("gives the C library's text for an errno number and for a Node error's code", () => {
    expect(strerror_errno(2)).toBe("No such file or directory");
    expect(strerror_code("ECONNREFUSED")).toBe("Connection refused");
    expect(strerror_code("ENOTANERRNO", "fallback")).toBe("fallback");
    expect(strerror_code(undefined)).toBe("Unknown error");
  });

  it("reads a thrown error: its code's text, else its message", () => {
    const enoent = Object.assign(new Error("ENOENT: no such file, open '/x'"), { code: "ENOENT" });
    expect(errnoCode(enoent)).toBe("ENOENT");
    expect(strerror(enoent)).toBe("No such file or directory");
    expect(errnoCode(new Error("plain"))).toBe("");
    expect(strerror(new Error("plain"))).toBe("plain");
    expect(strerror("text")).toBe("text");
  });
});

describe("cstring", () => {
  it("stops at the first NUL and ends with one", () => {
    expect([...cstring("ab\0cd")]).toEqual([0x61, 0x62, 0]);
    expect([...cstring(new Uint8Array([0x78]))]).toEqual([0x78, 0]);
  });
});

describe("cleantext", () => {
  it("keeps printable ASCII, drops controls and high bytes, and stops at a NUL as C does", () => {
    const dirty = Buffer.from("a\x1b[2Jb\tc\nd\xffe\0hidden", "latin1");
    expect(cleantext(dirty, false)).toBe("a[2Jbcde");
    expect(cleantext(dirty, true)).toBe("a[2Jb\tc\nde");
  });
});

describe("fsync_parent_dir", () => {
  it("syncs an existing directory and only traces a missing one", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-fsync-"));
    try {
      expect(() => fsync_parent_dir(join(dir, "key"))).not.toThrow();
      expect(() => fsync_parent_dir(join(dir, "missing", "key"))).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("malloc_trim", () => {
  it("gives the C heap's freed pages back to the kernel", () => {
    // In a process of its own: 32 MiB of small blocks, written, then freed all but the last,
    // which keeps glibc from trimming the heap's top by itself.
    const script = `
      const { koffi, libcFunc, malloc_trim } = await import(${JSON.stringify(new URL("../dist/libc.js", import.meta.url).href)});
      koffi();
      const malloc = libcFunc("void *malloc(size_t size)");
      const memset = libcFunc("void *memset(void *s, int c, size_t n)");
      const free = libcFunc("void free(void *p)");
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"))[1]);
      const blocks = [];
      for (let i = 0; i < 8192; i++) { const p = malloc(4096); memset(p, 1, 4096); blocks.push(p); }
      for (const p of blocks.slice(0, -1)) free(p);
      const before = rss();
      malloc_trim();
      console.log(before - rss());
    `;
    const r = spawnSync(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${script} })()`], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(Number(r.stdout)).toBeGreaterThan(24 * 1024);
  });
});

describe("koffi", () => {
  it("loads koffi's own binary straight, without its JavaScript loader, on glibc Linux x64 and arm64", () => {
    // In a process of its own: what has been loaded, and from where, after the first koffi().
    const script = `
      const { koffi, strerror_errno } = await import(${JSON.stringify(new URL("../dist/libc.js", import.meta.url).href)});
      const k = koffi();
      const loaders = Object.keys(require.cache).filter((f) => /[\\\\/]koffi[\\\\/]/.test(f));
      console.log(JSON.stringify({ version: k.version, loaders, text: strerror_errno(2) }));
    `;
    const r = spawnSync(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${script} })()`], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { version: string; loaders: string[]; text: string };
    expect(out.text).toBe("No such file or directory");
    expect(out.version).toBe((createRequire(import.meta.url)("koffi") as { version: string }).version);
    if (process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64")) {
      expect(out.loaders).toEqual([]);
    }
  });
});

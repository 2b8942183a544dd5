import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FgetcFile, buf_getline, buf_new, fileLines } from "../src/index.js";

/** The line buffer's size here (svr-authpubkey's MAX_AUTHKEYS_LINE). */
const LINE_SIZE = 3000;

describe("buf_getline", () => {
  function lines(content: Buffer | string, max = 400): (string | null)[] {
    const dir = mkdtempSync(join(tmpdir(), "dbts-getline-"));
    const f = join(dir, "f");
    writeFileSync(f, content);
    const fd = openSync(f, "r");
    try {
      const file = new FgetcFile(fd);
      const line = buf_new(LINE_SIZE);
      const out: (string | null)[] = [];
      for (let i = 0; i < max; i++) {
        if (!buf_getline(line, file)) {
          out.push(null);
          break;
        }
        out.push(line.data.subarray(0, line.len).toString("latin1"));
      }
      return out;
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  }

  it("splits at LF and CR, and reads a last line without a newline", () => {
    expect(lines("a\nb\r\nc")).toEqual(["a", "b", "", "c", null]);
    expect(lines("a\n")).toEqual(["a", null]);
    expect(lines("")).toEqual([null]);
  });

  it("returns an over-long line as empty and goes on", () => {
    expect(lines(`${"x".repeat(LINE_SIZE + 1)}\nnext\n`)).toEqual(["", "next", null]);
    expect(lines(`${"x".repeat(LINE_SIZE)}\n`)[0]).toHaveLength(LINE_SIZE);
  });

  it("stops at a line of 10000 bytes or more", () => {
    expect(lines(`${"x".repeat(10000)}\nnext\n`)).toEqual([null]);
    expect(lines(`${"x".repeat(9999)}\nnext\n`)).toEqual(["", "next", null]);
  });
});

describe("fileLines", () => {
  it("gives a file's lines as buf_getline reads them, and never reads on past a line of 10000 bytes", () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-filelines-"));
    try {
      const f = join(dir, "f");
      writeFileSync(f, `a\r\n${"x".repeat(20)}\nb`);
      expect([...fileLines(f, 10)]).toEqual(["a", "", "", "b"]);
      // A file of NULs, as a sparse file or /dev/zero reads: one endless line, so nothing at all.
      writeFileSync(f, Buffer.alloc(1 << 20));
      expect([...fileLines(f, 10)]).toEqual([]);
      expect([...fileLines("/dev/zero", 10)]).toEqual([]);
      expect(() => fileLines(join(dir, "missing"), 10)).toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

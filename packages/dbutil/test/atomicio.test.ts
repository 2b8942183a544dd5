import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { atomicio, type atomicio_f } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "atomicio-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** f, but moving at most `most` bytes a call, as a pipe or a signal can cut a transfer short. */
function short(f: atomicio_f, most: number): atomicio_f {
  return (fd, buffer, offset, length, position) => f(fd, buffer, offset, Math.min(length, most), position);
}

describe("atomicio", () => {
  it("writes every byte over short writes, and reads them back over short reads", () => {
    const file = join(dir, "whole");
    const data = Buffer.from("0123456789abcdefghij");
    const w = openSync(file, "w");
    expect(atomicio(short(writeSync, 3), w, data)).toBe(data.length);
    closeSync(w);
    expect(readFileSync(file)).toEqual(data);
    const r = openSync(file, "r");
    const back = Buffer.alloc(data.length);
    expect(atomicio(short(readSync, 7), r, back)).toBe(data.length);
    closeSync(r);
    expect(back).toEqual(data);
  });

  it("stops short where a read meets the end of the file", () => {
    const file = join(dir, "short");
    writeFileSync(file, "abc");
    const r = openSync(file, "r");
    const into = Buffer.alloc(10);
    expect(atomicio(short(readSync, 2), r, into, 10)).toBe(3);
    closeSync(r);
    expect(into.subarray(0, 3).toString()).toBe("abc");
  });

  it("advances a position with the bytes done (pwrite), leaving the rest of the file", () => {
    const file = join(dir, "positional");
    writeFileSync(file, "..........");
    const fd = openSync(file, "r+");
    expect(atomicio(short(writeSync, 2), fd, Buffer.from("XYZW"), 4, 3)).toBe(4);
    closeSync(fd);
    expect(readFileSync(file, "latin1")).toBe("...XYZW...");
  });

  it("throws the call's error (EBADF), as node:fs does", () => {
    expect(() => atomicio(writeSync, 1_000_000, Buffer.from("x"))).toThrow(/EBADF/);
  });
});

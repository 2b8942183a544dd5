import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { DropbearExit } from "@dropbear-ts/dbutil";
import {
  MAX_CBUF_SIZE,
  cbuf_free,
  cbuf_getavail,
  cbuf_getused,
  cbuf_incrread,
  cbuf_incrwrite,
  cbuf_new,
  cbuf_readptrs,
  cbuf_writelen,
  cbuf_writeptr,
  circbuffer,
} from "../src/circbuffer.js";

function exits(fn: () => unknown, msg: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(DropbearExit);
  if (typeof msg === "string") expect((caught as DropbearExit).exitmsg).toBe(msg);
  else expect((caught as DropbearExit).exitmsg).toMatch(msg);
}

/** Write `bytes` through writeptr/incrwrite, in as many contiguous pieces as needed. */
function put(c: circbuffer, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    const n = Math.min(cbuf_writelen(c), bytes.length - off);
    cbuf_writeptr(c, n).set(bytes.subarray(off, off + n));
    cbuf_incrwrite(c, n);
    off += n;
  }
}

function contents(c: circbuffer): string {
  const { p1, p2 } = cbuf_readptrs(c);
  return Buffer.concat([p1, p2]).toString("hex");
}

const BAD_UINTS = [-1, 1.5, Number.NaN, Infinity, 2 ** 32];

describe("circbuffer.c", () => {
  it("cbuf_new checks the size and allocates lazily", () => {
    const c = cbuf_new(8);
    expect(c).toBeInstanceOf(circbuffer);
    expect([c.size, c.used, c.readpos, c.writepos, c.data]).toEqual([8, 0, 0, 0, null]);
    expect(cbuf_new(MAX_CBUF_SIZE).data).toBeNull();
    exits(() => cbuf_new(MAX_CBUF_SIZE + 1), "Bad cbuf size");
    for (const bad of BAD_UINTS) exits(() => cbuf_new(bad), "Bad cbuf size");
    const { p1, p2 } = cbuf_readptrs(c);
    expect([p1.length, p2.length]).toEqual([0, 0]);
    cbuf_writeptr(c, 0);
    expect(c.data?.length).toBe(8);
  });

  it("tracks used/avail/writelen through a wrap", () => {
    const c = cbuf_new(8);
    expect([cbuf_getused(c), cbuf_getavail(c), cbuf_writelen(c)]).toEqual([0, 8, 8]);
    put(c, Buffer.from("0102030405", "hex"));
    expect([cbuf_getused(c), cbuf_getavail(c), cbuf_writelen(c)]).toEqual([5, 3, 3]);
    cbuf_incrread(c, 4);
    expect([cbuf_getused(c), cbuf_getavail(c), cbuf_writelen(c)]).toEqual([1, 7, 3]);
    put(c, Buffer.from("060708", "hex"));
    expect(c.writepos).toBe(0);
    expect(cbuf_writelen(c)).toBe(4);
    put(c, Buffer.from("090a", "hex"));
    expect(contents(c)).toBe("05060708090a");
    const { p1, p2 } = cbuf_readptrs(c);
    expect([p1.toString("hex"), p2.toString("hex")]).toEqual(["05060708", "090a"]);
    put(c, Buffer.from("0b0c", "hex"));
    expect([cbuf_getused(c), cbuf_getavail(c), cbuf_writelen(c)]).toEqual([8, 0, 0]);
    cbuf_incrread(c, 8);
    expect([c.used, c.readpos, c.writepos]).toEqual([0, 4, 4]);
    expect(cbuf_writelen(c)).toBe(4);
  });

  it("writeptr and incrwrite refuse more than writelen", () => {
    const c = cbuf_new(4);
    put(c, Buffer.from([1, 2, 3]));
    cbuf_incrread(c, 2);
    exits(() => cbuf_writeptr(c, 2), "Bad cbuf write");
    exits(() => cbuf_incrwrite(c, 2), "Bad cbuf write");
    for (const bad of BAD_UINTS) {
      exits(() => cbuf_writeptr(c, bad), "Bad cbuf write");
      exits(() => cbuf_incrwrite(c, bad), "Bad cbuf write");
    }
    expect(cbuf_writeptr(c, 1).length).toBe(1);
  });

  it("incrread refuses more than used", () => {
    const c = cbuf_new(4);
    put(c, Buffer.from([1]));
    exits(() => cbuf_incrread(c, 2), /Failed assertion/);
    for (const bad of BAD_UINTS) exits(() => cbuf_incrread(c, bad), /Failed assertion/);
    expect(c.used).toBe(1);
  });

  it("writelen catches inconsistent positions", () => {
    const c = cbuf_new(4);
    c.used = 5;
    exits(() => cbuf_writelen(c), /Failed assertion/);
    c.used = 1;
    exits(() => cbuf_writelen(c), /Failed assertion/);
  });

  it("a 0-sized ring is always full and never divides by zero", () => {
    const c = cbuf_new(0);
    expect(cbuf_writelen(c)).toBe(0);
    cbuf_incrwrite(c, 0);
    cbuf_incrread(c, 0);
    expect([c.readpos, c.writepos]).toEqual([0, 0]);
    exits(() => cbuf_writeptr(c, 1), "Bad cbuf write");
  });

  it("cbuf_free burns the data and leaves an unusable ring", () => {
    const c = cbuf_new(4);
    put(c, Buffer.from([9, 9, 9]));
    const data = c.data!;
    cbuf_free(c);
    expect(data.every((x) => x === 0)).toBe(true);
    expect([c.data, c.size, c.used]).toEqual([null, 0, 0]);
    exits(() => cbuf_writeptr(c, 1), "Bad cbuf write");
    cbuf_free(cbuf_new(4));
  });

  it("matches an array model under random writes and reads (wrap-around included)", () => {
    type Op = { write: boolean; n: number; fill: number; split: boolean };
    const op = fc.record({
      write: fc.boolean(),
      n: fc.integer({ min: 0, max: 20 }),
      fill: fc.integer({ min: 0, max: 255 }),
      split: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.array(op, { maxLength: 60 }), (size, ops: Op[]) => {
        const c = cbuf_new(size);
        const model: number[] = [];
        let counter = 0;
        for (const o of ops) {
          if (o.write) {
            const wl = cbuf_writelen(c);
            expect(wl).toBeLessThanOrEqual(size - model.length);
            if (o.n > wl) {
              exits(() => cbuf_writeptr(c, o.n), "Bad cbuf write");
              exits(() => cbuf_incrwrite(c, o.n), "Bad cbuf write");
              continue;
            }
            const bytes = Array.from({ length: o.n }, () => (o.fill + counter++) & 0xff);
            const w = cbuf_writeptr(c, o.n);
            expect(w.length).toBe(o.n);
            w.set(bytes);
            // Committing in two steps must equal one step.
            if (o.split && o.n > 1) {
              cbuf_incrwrite(c, 1);
              cbuf_incrwrite(c, o.n - 1);
            } else {
              cbuf_incrwrite(c, o.n);
            }
            model.push(...bytes);
          } else if (o.n > model.length) {
            exits(() => cbuf_incrread(c, o.n), /Failed assertion/);
          } else {
            cbuf_incrread(c, o.n);
            model.splice(0, o.n);
          }
          expect(cbuf_getused(c)).toBe(model.length);
          expect(cbuf_getavail(c)).toBe(size - model.length);
          expect(c.readpos).toBeLessThan(size);
          expect(c.writepos).toBeLessThan(size);
          const { p1, p2 } = cbuf_readptrs(c);
          expect([...p1, ...p2]).toEqual(model);
          if (p2.length > 0) expect(p1.byteOffset + p1.length).toBe(c.data!.byteOffset + size);
          // The free space is writelen now, plus the wrapped remainder.
          const wl = cbuf_writelen(c);
          expect(wl === 0 ? model.length === size : wl <= size - model.length).toBe(true);
        }
      }),
    );
  });
});

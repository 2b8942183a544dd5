import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { fuzzParams } from "../../../tests/helpers/fuzz.js";
import { DropbearExit } from "@dropbear-ts/dbutil";
import { MAX_NAME_LEN, MAX_PROPOSED_ALGO, MAX_STRING_LEN } from "@dropbear-ts/options";
import {
  BUF_MAX_MPINT,
  buf_decrpos,
  buf_eatstring,
  buf_getbool,
  buf_getbuf,
  buf_getbyte,
  buf_getint,
  buf_getmpint,
  buf_getptr,
  buf_getptrcopy,
  buf_getstring,
  buf_getstringbuf,
  buf_getwriteptr,
  buf_incrlen,
  buf_incrpos,
  buf_incrwritepos,
  buf_new,
  buf_putbyte,
  buf_putbytes,
  buf_putint,
  buf_putmpint,
  buf_putstring,
  buf_resize,
  buf_setlen,
  buf_setpos,
  bufGetNameList,
  bufPutNameList,
  buffer,
} from "../src/buffer.js";

function wrap(bytes: Uint8Array): buffer {
  const b = buf_new(bytes.length);
  buf_putbytes(b, bytes);
  buf_setpos(b, 0);
  return b;
}

function invariants(b: buffer): void {
  expect(b.pos).toBeGreaterThanOrEqual(0);
  expect(b.pos).toBeLessThanOrEqual(b.len);
  expect(b.len).toBeLessThanOrEqual(b.size);
  expect(b.data.length).toBe(b.size);
}

/** Run fn; a DropbearExit is an allowed outcome (returns undefined), anything else fails. */
function parseOrExit<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof DropbearExit)) throw e;
    return undefined;
  }
}

const NAME = fc.stringMatching(new RegExp(`^[\\x21-\\x2b\\x2d-\\x7e]{1,${MAX_NAME_LEN}}$`));

describe("round trips", () => {
  it("uint32", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 0xffffffff })), (vals) => {
        const b = buf_new(vals.length * 4);
        for (const v of vals) buf_putint(b, v);
        buf_setpos(b, 0);
        for (const v of vals) expect(buf_getint(b)).toBe(v);
        expect(b.pos).toBe(b.len);
      }),
      fuzzParams(100),
    );
  });

  it("strings (bytes and UTF-8 text)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: "grapheme", maxLength: 50 }), (bytes, text) => {
        const b = buf_new(8 + bytes.length + Buffer.byteLength(text));
        buf_putstring(b, bytes);
        buf_putstring(b, text);
        buf_setpos(b, 0);
        expect(buf_getstring(b).equals(Buffer.from(bytes))).toBe(true);
        expect(buf_getstring(b).toString("utf8")).toBe(text);
        expect(b.pos).toBe(b.len);
        buf_setpos(b, 0);
        const s = buf_getstringbuf(b);
        expect(s.data.equals(Buffer.from(bytes))).toBe(true);
        const w = buf_getbuf(b);
        expect(w.data.equals(b.data.subarray(4 + bytes.length))).toBe(true);
        buf_setpos(b, 0);
        buf_eatstring(b);
        buf_eatstring(b);
        expect(b.pos).toBe(b.len);
      }),
      fuzzParams(100),
    );
  });

  it("raw bytes", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
        const total = chunks.reduce((n, c) => n + c.length, 0);
        const b = buf_new(total);
        for (const c of chunks) buf_putbytes(b, c);
        buf_setpos(b, 0);
        for (const c of chunks) {
          expect(buf_getptrcopy(b, c.length).data.equals(Buffer.from(c))).toBe(true);
          expect(buf_getptr(b, c.length).equals(Buffer.from(c))).toBe(true);
          buf_incrpos(b, c.length);
        }
        expect(b.pos).toBe(b.len);
      }),
      fuzzParams(100),
    );
  });

  it("mpint, with the RFC 4251 minimal two's complement encoding", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 8232n) - 1n }), (n) => {
        const b = buf_new(4 + BUF_MAX_MPINT);
        buf_putmpint(b, n);
        const len = b.data.readUInt32BE(0);
        expect(b.len).toBe(4 + len);
        const body = b.data.subarray(4, 4 + len);
        if (n === 0n) {
          expect(len).toBe(0);
        } else {
          expect(body[0]! & 0x80).toBe(0); // positive
          // minimal: a leading zero only to keep the next byte's top bit from meaning "negative"
          if (body[0] === 0) expect(body[1]! & 0x80).toBe(0x80);
          let v = 0n;
          for (const x of body) v = (v << 8n) | BigInt(x);
          expect(v).toBe(n);
        }
        buf_setpos(b, 0);
        expect(buf_getmpint(b)).toBe(n);
        expect(b.pos).toBe(b.len);
      }),
      fuzzParams(100),
    );
  });

  it("name-lists", () => {
    fc.assert(
      fc.property(fc.array(NAME, { maxLength: MAX_PROPOSED_ALGO }), (names) => {
        const b = buf_new(4 + MAX_STRING_LEN);
        bufPutNameList(b, names);
        buf_setpos(b, 0);
        expect(bufGetNameList(b)).toEqual(names);
        expect(b.pos).toBe(b.len);
      }),
      fuzzParams(100),
    );
  });
});

type Reader = [string, (b: buffer) => void];

const readers: Reader[] = [
  ["getbyte", (b) => expect(buf_getbyte(b)).toBeLessThan(256)],
  ["getbool", (b) => expect([0, 1]).toContain(buf_getbool(b))],
  [
    "getint",
    (b) => {
      const v = buf_getint(b);
      expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
    },
  ],
  [
    "getstring",
    (b) => {
      const start = b.pos;
      const s = buf_getstring(b);
      expect(s.length).toBeLessThanOrEqual(MAX_STRING_LEN);
      expect(s.equals(b.data.subarray(start + 4, b.pos))).toBe(true);
    },
  ],
  ["getstringbuf", (b) => invariants(buf_getstringbuf(b))],
  ["getbuf", (b) => invariants(buf_getbuf(b))],
  ["eatstring", (b) => buf_eatstring(b)],
  [
    "getmpint",
    (b) => {
      const v = buf_getmpint(b);
      if (v !== null) {
        expect(v >= 0n).toBe(true);
        expect(v < 1n << BigInt(8 * BUF_MAX_MPINT)).toBe(true);
      }
    },
  ],
  [
    "namelist",
    (b) => {
      const names = bufGetNameList(b);
      expect(names.length).toBeLessThanOrEqual(MAX_PROPOSED_ALGO);
      for (const n of names) expect(n).not.toMatch(/[,\x00]/);
    },
  ],
  ["getptr3", (b) => expect(buf_getptr(b, 3).length).toBe(3)],
  ["getptrcopy2", (b) => expect(buf_getptrcopy(b, 2).len).toBe(2)],
];

/** Bytes that often look like plausible length-prefixed data. */
const wireBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc
    .tuple(fc.constantFrom(0, 1, 2, 3, 5, 9, 0x80, 0xffffffff, MAX_STRING_LEN, BUF_MAX_MPINT + 1), fc.uint8Array({ maxLength: 64 }))
    .map(([n, rest]) => {
      const b = Buffer.alloc(4 + rest.length);
      b.writeUInt32BE(n >>> 0, 0);
      b.set(rest, 4);
      return new Uint8Array(b);
    }),
  fc.array(NAME, { maxLength: 5 }).map((names) => {
    const s = Buffer.from(names.join(","), "latin1");
    const b = Buffer.alloc(4 + s.length);
    b.writeUInt32BE(s.length, 0);
    b.set(s, 4);
    return new Uint8Array(b);
  }),
);

describe("every reader on arbitrary bytes parses or exits, never overruns", () => {
  for (const [name, read] of readers) {
    it(name, () => {
      fc.assert(
        fc.property(wireBytes, (bytes) => {
          const b = wrap(bytes);
          // Keep reading until the input is exhausted or a reader exits.
          for (let i = 0; i < 70; i++) {
            const before = b.pos;
            const ok = parseOrExit(() => {
              read(b);
              return true;
            });
            invariants(b);
            if (!ok || b.pos === before) break;
          }
        }),
        fuzzParams(100),
      );
    });
  }

  it("any mix of readers", () => {
    fc.assert(
      fc.property(wireBytes, fc.array(fc.nat({ max: readers.length - 1 }), { maxLength: 20 }), (bytes, picks) => {
        const b = wrap(bytes);
        for (const p of picks) {
          if (parseOrExit(() => (readers[p]![1](b), true)) === undefined) break;
          invariants(b);
        }
        invariants(b);
      }),
      fuzzParams(100),
    );
  });
});

describe("cursor and length functions under arbitrary numbers", () => {
  const num = fc.oneof(
    fc.integer({ min: -3, max: 40 }),
    fc.constantFrom(Number.NaN, 0.5, -0.5, Infinity, 2 ** 32, 2 ** 32 - 1, 1e9, 1e9 + 1),
  );
  const ops: [string, (b: buffer, n: number) => void][] = [
    ["setlen", buf_setlen],
    ["incrlen", buf_incrlen],
    ["setpos", buf_setpos],
    ["incrpos", buf_incrpos],
    ["decrpos", buf_decrpos],
    ["incrwritepos", buf_incrwritepos],
    ["getptr", (b, n) => void buf_getptr(b, n)],
    ["getwriteptr", (b, n) => void buf_getwriteptr(b, n)],
    ["putbyte", buf_putbyte],
    ["putint", buf_putint],
    ["resize", (b, n) => void buf_resize(b, n)],
    ["putbytes", (b, n) => buf_putbytes(b, Buffer.alloc(8), n)],
  ];

  it("keep pos <= len <= size and only ever exit", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 32 }),
        fc.array(fc.tuple(fc.nat({ max: ops.length - 1 }), num), { maxLength: 40 }),
        (size, steps) => {
          const b = buf_new(size);
          for (const [i, n] of steps) {
            parseOrExit(() => ops[i]![1](b, n));
            invariants(b);
          }
        },
      ),
      fuzzParams(100),
    );
  });
});

import { describe, expect, it } from "vitest";
import { DropbearExit } from "@dropbear-ts/dbutil";
import { MAX_NAME_LEN, MAX_PROPOSED_ALGO, MAX_STRING_LEN } from "@dropbear-ts/options";
import {
  BUF_MAX_INCR,
  BUF_MAX_MPINT,
  BUF_MAX_SIZE,
  buf_burn_free,
  buf_decrpos,
  buf_eatstring,
  buf_free,
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
  bufNewUnzeroed,
  buf_newcopy,
  buf_putbufstring,
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

function exits(fn: () => unknown, msg: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(DropbearExit);
  expect((caught as DropbearExit).exitmsg).toBe(msg);
}

/** A buffer holding exactly `hex`, pos 0. */
function fromHex(hex: string): buffer {
  const bytes = Buffer.from(hex.replace(/\s/g, ""), "hex");
  const b = buf_new(bytes.length);
  buf_putbytes(b, bytes);
  buf_setpos(b, 0);
  return b;
}

/** The used bytes of b as hex. */
function hexOf(b: buffer): string {
  return b.data.toString("hex", 0, b.len);
}

const BAD_UINTS = [-1, 1.5, Number.NaN, Infinity, 2 ** 32, -0.5];

describe("buf_new / buf_resize / buf_free / buf_burn_free / buf_newcopy", () => {
  it("allocates a zeroed buffer of the requested size", () => {
    const b = buf_new(16);
    expect(b).toBeInstanceOf(buffer);
    expect([b.size, b.len, b.pos, b.data.length]).toEqual([16, 0, 0, 16]);
    expect(b.data.every((x) => x === 0)).toBe(true);
    expect(buf_new(0).size).toBe(0);
  });

  it("refuses sizes over BUF_MAX_SIZE or not an unsigned int", () => {
    exits(() => buf_new(BUF_MAX_SIZE + 1), "buf->size too big");
    for (const bad of BAD_UINTS) exits(() => buf_new(bad), "buf->size too big");
    // The packet layer's allocation: same checks and starting state, memory left as it is.
    const u = bufNewUnzeroed(33);
    expect([u.size, u.len, u.pos, u.data.length]).toEqual([33, 0, 0, 33]);
    exits(() => bufNewUnzeroed(BUF_MAX_SIZE + 1), "buf->size too big");
    for (const bad of BAD_UINTS) exits(() => bufNewUnzeroed(bad), "buf->size too big");
  });

  it("resize keeps contents when growing and clamps len/pos when shrinking", () => {
    const b = buf_new(4);
    buf_putbytes(b, Buffer.from([1, 2, 3, 4]));
    const same = buf_resize(b, 8);
    expect(same).toBe(b);
    expect([b.size, b.len, b.pos, b.data.length]).toEqual([8, 4, 4, 8]);
    expect(hexOf(b)).toBe("01020304");
    buf_putbytes(b, Buffer.from([5, 6]));
    buf_resize(b, 3);
    expect([b.size, b.len, b.pos, b.data.length]).toEqual([3, 3, 3, 3]);
    expect(hexOf(b)).toBe("010203");
    buf_resize(b, 3);
    expect(b.size).toBe(3);
  });

  it("resize refuses bad sizes", () => {
    const b = buf_new(1);
    exits(() => buf_resize(b, BUF_MAX_SIZE + 1), "buf->size too big");
    for (const bad of BAD_UINTS) exits(() => buf_resize(b, bad), "buf->size too big");
  });

  it("free turns later use into a bounds failure", () => {
    const b = fromHex("0102");
    buf_free(b);
    expect([b.size, b.len, b.pos]).toEqual([0, 0, 0]);
    exits(() => buf_getbyte(b), "Bad buf_getbyte");
    exits(() => buf_putbyte(b, 1), "Bad buf_incrlen");
  });

  it("burn_free zeroes the whole allocation, not just len", () => {
    const b = buf_new(8);
    b.data.fill(0xaa);
    buf_putbytes(b, Buffer.from([1, 2]));
    const data = b.data;
    buf_burn_free(b);
    expect(data.every((x) => x === 0)).toBe(true);
    expect(b.size).toBe(0);
  });

  it("newcopy copies the used bytes into a buffer of size len", () => {
    const b = buf_new(10);
    buf_putbytes(b, Buffer.from("hello"));
    const c = buf_newcopy(b);
    expect([c.size, c.len, c.pos]).toEqual([5, 5, 0]);
    expect(c.data.toString()).toBe("hello");
    b.data[0] = 0x4a;
    expect(c.data.toString()).toBe("hello");
    expect(buf_newcopy(buf_new(3)).size).toBe(0);
  });
});

describe("length and position", () => {
  it("setlen within size, pulling pos back", () => {
    const b = buf_new(10);
    buf_setlen(b, 8);
    buf_setpos(b, 6);
    buf_setlen(b, 4);
    expect([b.len, b.pos]).toEqual([4, 4]);
    buf_setlen(b, 10);
    expect(b.pos).toBe(4);
    exits(() => buf_setlen(b, 11), "Bad buf_setlen");
    for (const bad of BAD_UINTS) exits(() => buf_setlen(b, bad), "Bad buf_setlen");
  });

  it("incrlen within size and BUF_MAX_INCR", () => {
    const b = buf_new(10);
    buf_incrlen(b, 0);
    buf_incrlen(b, 7);
    expect(b.len).toBe(7);
    exits(() => buf_incrlen(b, 4), "Bad buf_incrlen");
    exits(() => buf_incrlen(b, BUF_MAX_INCR + 1), "Bad buf_incrlen");
    for (const bad of BAD_UINTS) exits(() => buf_incrlen(b, bad), "Bad buf_incrlen");
    expect(b.len).toBe(7);
  });

  it("setpos within len", () => {
    const b = buf_new(10);
    buf_setlen(b, 5);
    buf_setpos(b, 5);
    expect(b.pos).toBe(5);
    exits(() => buf_setpos(b, 6), "Bad buf_setpos");
    for (const bad of BAD_UINTS) exits(() => buf_setpos(b, bad), "Bad buf_setpos");
  });

  it("incrpos within len", () => {
    const b = buf_new(10);
    buf_setlen(b, 5);
    buf_incrpos(b, 3);
    buf_incrpos(b, 2);
    expect(b.pos).toBe(5);
    exits(() => buf_incrpos(b, 1), "Bad buf_incrpos");
    exits(() => buf_incrpos(b, BUF_MAX_INCR + 1), "Bad buf_incrpos");
    for (const bad of BAD_UINTS) exits(() => buf_incrpos(b, bad), "Bad buf_incrpos");
  });

  it("decrpos down to 0", () => {
    const b = buf_new(10);
    buf_setlen(b, 5);
    buf_setpos(b, 4);
    buf_decrpos(b, 3);
    expect(b.pos).toBe(1);
    exits(() => buf_decrpos(b, 2), "Bad buf_decrpos");
    for (const bad of BAD_UINTS) exits(() => buf_decrpos(b, bad), "Bad buf_decrpos");
    buf_decrpos(b, 1);
    expect(b.pos).toBe(0);
  });

  it("incrwritepos within size, extending len", () => {
    const b = buf_new(10);
    buf_incrwritepos(b, 6);
    expect([b.len, b.pos]).toEqual([6, 6]);
    buf_setpos(b, 2);
    buf_incrwritepos(b, 1);
    expect([b.len, b.pos]).toEqual([6, 3]);
    exits(() => buf_incrwritepos(b, 8), "Bad buf_incrwritepos");
    exits(() => buf_incrwritepos(b, BUF_MAX_INCR + 1), "Bad buf_incrwritepos");
    for (const bad of BAD_UINTS) exits(() => buf_incrwritepos(b, bad), "Bad buf_incrwritepos");
  });
});

describe("bytes", () => {
  it("getbyte reads up to len and no further", () => {
    const b = fromHex("00ff");
    expect(buf_getbyte(b)).toBe(0);
    expect(buf_getbyte(b)).toBe(0xff);
    exits(() => buf_getbyte(b), "Bad buf_getbyte");
  });

  it("getbool maps nonzero to 1", () => {
    const b = fromHex("00 01 02 ff");
    expect([buf_getbool(b), buf_getbool(b), buf_getbool(b), buf_getbool(b)]).toEqual([0, 1, 1, 1]);
    exits(() => buf_getbool(b), "Bad buf_getbyte");
  });

  it("putbyte overwrites inside len, extends at the end, truncates to 8 bits", () => {
    const b = buf_new(3);
    buf_putbyte(b, 1);
    buf_putbyte(b, 0x1ff);
    expect(hexOf(b)).toBe("01ff");
    buf_setpos(b, 0);
    buf_putbyte(b, 9);
    expect([b.len, b.pos]).toEqual([2, 1]);
    expect(hexOf(b)).toBe("09ff");
    buf_setpos(b, 2);
    buf_putbyte(b, -1);
    expect(hexOf(b)).toBe("09ffff");
    exits(() => buf_putbyte(b, 0), "Bad buf_incrlen");
  });

  it("getptr is a checked view of used bytes; pos unchanged", () => {
    const b = fromHex("01020304");
    buf_setpos(b, 1);
    const p = buf_getptr(b, 3);
    expect(p.toString("hex")).toBe("020304");
    p[0] = 0x99;
    expect(b.data[1]).toBe(0x99);
    expect(b.pos).toBe(1);
    expect(buf_getptr(b, 0).length).toBe(0);
    exits(() => buf_getptr(b, 4), "Bad buf_getptr");
    exits(() => buf_getptr(b, BUF_MAX_INCR + 1), "Bad buf_getptr");
    for (const bad of BAD_UINTS) exits(() => buf_getptr(b, bad), "Bad buf_getptr");
  });

  it("getwriteptr allows past len but not past size", () => {
    const b = buf_new(6);
    buf_setlen(b, 2);
    buf_setpos(b, 2);
    const w = buf_getwriteptr(b, 4);
    expect(w.length).toBe(4);
    w.fill(7);
    expect(b.data[5]).toBe(7);
    expect(b.len).toBe(2);
    exits(() => buf_getwriteptr(b, 5), "Bad buf_getwriteptr");
    exits(() => buf_getwriteptr(b, BUF_MAX_INCR + 1), "Bad buf_getwriteptr");
    for (const bad of BAD_UINTS) exits(() => buf_getwriteptr(b, bad), "Bad buf_getwriteptr");
  });

  it("putbytes copies len bytes (default all) and checks room and source", () => {
    const b = buf_new(5);
    buf_putbytes(b, new Uint8Array([1, 2, 3]));
    buf_putbytes(b, Buffer.from([4, 5, 6]), 1);
    expect(hexOf(b)).toBe("01020304");
    exits(() => buf_putbytes(b, Buffer.from([1, 2])), "Bad buf_getwriteptr");
    exits(() => buf_putbytes(b, Buffer.from([1]), 2), "Bad buf_getwriteptr");
    exits(() => buf_putbytes(buf_new(9), Buffer.from([1]), 2), "Bad buf_putbytes");
    for (const bad of BAD_UINTS) exits(() => buf_putbytes(buf_new(9), Buffer.from([1]), bad), "Bad buf_getwriteptr");
    expect(b.len).toBe(4);
  });

  it("putbytes from an overlapping view of the same data behaves like memmove", () => {
    const b = fromHex("0102030400");
    buf_setpos(b, 1);
    buf_putbytes(b, b.data.subarray(0, 4));
    expect(hexOf(b)).toBe("0101020304");
  });

  it("getptrcopy copies without advancing", () => {
    const b = fromHex("0a0b0c");
    buf_setpos(b, 1);
    const c = buf_getptrcopy(b, 2);
    expect([c.size, c.len, c.pos]).toEqual([2, 2, 0]);
    expect(hexOf(c)).toBe("0b0c");
    expect(b.pos).toBe(1);
    exits(() => buf_getptrcopy(b, 3), "Bad buf_getptr");
  });
});

describe("uint32", () => {
  it("reads and writes big-endian", () => {
    const b = buf_new(12);
    buf_putint(b, 0);
    buf_putint(b, 0x01020304);
    buf_putint(b, 0xffffffff);
    expect(hexOf(b)).toBe("0000000001020304ffffffff");
    buf_setpos(b, 0);
    expect([buf_getint(b), buf_getint(b), buf_getint(b)]).toEqual([0, 0x01020304, 0xffffffff]);
    exits(() => buf_getint(b), "Bad buf_getptr");
  });

  it("getint on 3 bytes exits without moving", () => {
    const b = fromHex("010203");
    exits(() => buf_getint(b), "Bad buf_getptr");
    expect(b.pos).toBe(0);
  });

  it("putint reduces integers modulo 2^32 like C and refuses non-integers", () => {
    const b = buf_new(8);
    buf_putint(b, -1);
    buf_putint(b, 2 ** 32 + 5);
    expect(hexOf(b)).toBe("ffffffff00000005");
    for (const bad of [1.5, Number.NaN, Infinity]) exits(() => buf_putint(buf_new(4), bad), "Bad buf_putint");
    exits(() => buf_putint(b, 1), "Bad buf_getwriteptr");
    exits(() => buf_putint(buf_new(3), 1), "Bad buf_getwriteptr");
  });
});

describe("strings", () => {
  it("getstring returns an independent binary copy", () => {
    const b = fromHex("00000003 00ff41 00000000");
    const s = buf_getstring(b);
    expect(s.toString("hex")).toBe("00ff41");
    s[0] = 9;
    expect(b.data[4]).toBe(0);
    expect(buf_getstring(b).length).toBe(0);
    expect(b.pos).toBe(b.len);
  });

  it("getstring exits on truncation and on MAX_STRING_LEN", () => {
    exits(() => buf_getstring(fromHex("00000004 010203")), "Bad buf_getptr");
    exits(() => buf_getstring(fromHex("000001")), "Bad buf_getptr");
    const big = buf_new(4 + MAX_STRING_LEN + 1);
    buf_putstring(big, Buffer.alloc(MAX_STRING_LEN + 1));
    buf_setpos(big, 0);
    exits(() => buf_getstring(big), "String too long");
    const max = buf_new(4 + MAX_STRING_LEN);
    buf_putstring(max, Buffer.alloc(MAX_STRING_LEN, 1));
    buf_setpos(max, 0);
    expect(buf_getstring(max).length).toBe(MAX_STRING_LEN);
  });

  it("getstringbuf and getbuf: new buffers at pos 0, with/without the length", () => {
    const b = fromHex("00000002 abcd 00000001 ef");
    const s = buf_getstringbuf(b);
    expect([s.size, s.len, s.pos, hexOf(s)]).toEqual([2, 2, 0, "abcd"]);
    const w = buf_getbuf(b);
    expect([w.size, w.len, w.pos, hexOf(w)]).toEqual([5, 5, 0, "00000001ef"]);
    exits(() => buf_getstringbuf(fromHex("00000002 ab")), "Bad buf_getptr");
    exits(() => buf_getbuf(fromHex("00000002 ab")), "Bad buf_getptr");
    exits(() => buf_getbuf(fromHex("ffffffff")), "String too long");
    exits(() => buf_getstringbuf(fromHex("00002329")), "String too long");
  });

  it("eatstring skips a string of any length that fits", () => {
    const b = fromHex("00000002 abcd 01");
    buf_eatstring(b);
    expect(buf_getbyte(b)).toBe(1);
    exits(() => buf_eatstring(fromHex("00000003 abcd")), "Bad buf_incrpos");
    exits(() => buf_eatstring(fromHex("ffffffff")), "Bad buf_incrpos");
    exits(() => buf_eatstring(fromHex("00")), "Bad buf_getptr");
  });

  it("putstring takes bytes, UTF-8 text, and an explicit length", () => {
    const b = buf_new(64);
    buf_putstring(b, "hé");
    buf_putstring(b, new Uint8Array([0, 1]));
    buf_putstring(b, Buffer.from("abcdef"), 2);
    buf_putstring(b, "xyz", 1);
    expect(hexOf(b)).toBe("0000000368c3a9" + "000000020001" + "000000026162" + "0000000178");
    exits(() => buf_putstring(buf_new(64), Buffer.from("ab"), 3), "Bad buf_putbytes");
    exits(() => buf_putstring(buf_new(64), "ab", -1), "Bad buf_putbytes");
    exits(() => buf_putstring(buf_new(5), "ab"), "Bad buf_getwriteptr");
    exits(() => buf_putstring(buf_new(5), Buffer.from("ab")), "Bad buf_getwriteptr");
    exits(() => buf_putstring(buf_new(3), "a"), "Bad buf_getwriteptr");
  });

  it("putbufstring writes all used bytes, ignoring pos", () => {
    const src = fromHex("0102");
    buf_setpos(src, 2);
    const b = buf_new(6);
    buf_putbufstring(b, src);
    expect(hexOf(b)).toBe("000000020102");
  });
});

describe("mpint (RFC 4251 §5)", () => {
  const put = (n: bigint): string => {
    const b = buf_new(2000);
    buf_putmpint(b, n);
    return hexOf(b);
  };

  it("encodes the RFC examples", () => {
    expect(put(0n)).toBe("00000000");
    expect(put(0x9a378f9b2e332a7n)).toBe("0000000809a378f9b2e332a7");
    expect(put(0x80n)).toBe("000000020080");
    expect(put(0x7fn)).toBe("000000017f");
    expect(put(0xffn)).toBe("0000000200ff");
    expect(put(0x100n)).toBe("000000020100");
  });

  it("refuses negatives and lack of room", () => {
    exits(() => put(-0x1234n), "negative bignum");
    exits(() => put(-1n), "negative bignum");
    exits(() => buf_putmpint(buf_new(4), 0x80n), "Bad buf_incrlen");
    exits(() => buf_putmpint(buf_new(5), 0x80n), "Bad buf_getwriteptr");
    exits(() => buf_putmpint(buf_new(5), 0x1234n), "Bad buf_getwriteptr");
    exits(() => buf_putmpint(buf_new(3), 0n), "Bad buf_getwriteptr");
  });

  it("decodes values, including redundant leading zeros like Dropbear", () => {
    expect(buf_getmpint(fromHex("00000000"))).toBe(0n);
    expect(buf_getmpint(fromHex("0000000809a378f9b2e332a7"))).toBe(0x9a378f9b2e332a7n);
    expect(buf_getmpint(fromHex("000000020080"))).toBe(0x80n);
    expect(buf_getmpint(fromHex("00000003000001"))).toBe(1n);
  });

  it("returns null for negatives and over-long values", () => {
    expect(buf_getmpint(fromHex("00000002edcc"))).toBeNull();
    expect(buf_getmpint(fromHex("00000001ff"))).toBeNull();
    const long = buf_new(4 + BUF_MAX_MPINT + 1);
    buf_putint(long, BUF_MAX_MPINT + 1);
    buf_incrwritepos(long, BUF_MAX_MPINT + 1);
    buf_setpos(long, 0);
    expect(buf_getmpint(long)).toBeNull();
    expect(long.pos).toBe(4);
    const max = buf_new(4 + BUF_MAX_MPINT);
    buf_putint(max, BUF_MAX_MPINT);
    max.data.fill(0x7f, 4);
    buf_incrwritepos(max, BUF_MAX_MPINT);
    buf_setpos(max, 0);
    expect(buf_getmpint(max)).toBe(BigInt("0x" + "7f".repeat(BUF_MAX_MPINT)));
    expect(max.pos).toBe(max.len);
  });

  it("exits on truncated input", () => {
    exits(() => buf_getmpint(fromHex("000000")), "Bad buf_getptr");
    exits(() => buf_getmpint(fromHex("00000001")), "Bad buf_getptr");
    exits(() => buf_getmpint(fromHex("0000000301")), "Bad buf_getptr");
  });
});

describe("name-lists", () => {
  const enc = (s: string): buffer => {
    const b = buf_new(4 + Buffer.byteLength(s));
    buf_putstring(b, s);
    buf_setpos(b, 0);
    return b;
  };

  it("round-trips, with the empty string as the empty list", () => {
    const b = buf_new(100);
    bufPutNameList(b, ["curve25519-sha256", "aes128-ctr@x.org"]);
    bufPutNameList(b, []);
    expect(hexOf(b).slice(0, 8)).toBe("00000022");
    buf_setpos(b, 0);
    expect(bufGetNameList(b)).toEqual(["curve25519-sha256", "aes128-ctr@x.org"]);
    expect(bufGetNameList(b)).toEqual([]);
    expect(b.pos).toBe(b.len);
  });

  it("reads like get_algolist: odd names are kept (they never match), NUL and huge lists exit", () => {
    expect(bufGetNameList(enc("a,,b"))).toEqual(["a", "", "b"]);
    expect(bufGetNameList(enc(","))).toEqual(["", ""]);
    expect(bufGetNameList(enc("a b,é"))).toEqual(["a b", "\xc3\xa9"]);
    expect(bufGetNameList(enc("a".repeat(MAX_NAME_LEN + 1)))).toEqual(["a".repeat(MAX_NAME_LEN + 1)]);
    exits(() => bufGetNameList(enc("a\x00b")), "Bad name-list");
    exits(() => bufGetNameList(enc("a".repeat(MAX_PROPOSED_ALGO * (MAX_NAME_LEN + 1) + 1))), "Bad name-list");
    expect(bufGetNameList(enc("!~+-"))).toEqual(["!~+-"]);
  });

  it("limits the count like get_algolist", () => {
    const many = (n: number): string => Array.from({ length: n }, (_, i) => `n${i}`).join(",");
    expect(bufGetNameList(enc(many(MAX_PROPOSED_ALGO)))).toHaveLength(MAX_PROPOSED_ALGO);
    exits(() => bufGetNameList(enc(many(MAX_PROPOSED_ALGO + 1))), "Too many remote algorithms");
    expect(bufGetNameList(enc(many(3)), 3)).toHaveLength(3);
    exits(() => bufGetNameList(enc(many(3)), 2), "Too many remote algorithms");
    exits(() => bufGetNameList(enc("a"), -1), "Bad name-list count");
  });

  it("exits on truncation and on MAX_STRING_LEN", () => {
    exits(() => bufGetNameList(fromHex("00000005 6162")), "Bad buf_getptr");
    exits(() => bufGetNameList(fromHex("00002329")), "String too long");
  });

  it("put refuses names that break RFC 4251 and over-long lists", () => {
    const b = buf_new(100000);
    for (const name of ["", "a,b", "a b", "é", "\n", "a".repeat(MAX_NAME_LEN + 1)]) {
      exits(() => bufPutNameList(b, [name]), "Bad name-list");
    }
    const names = Array.from({ length: MAX_PROPOSED_ALGO + 1 }, () => "x");
    exits(() => bufPutNameList(b, names), "Too many names in name-list");
    exits(() => bufPutNameList(b, ["x"], 1.5), "Bad name-list count");
    bufPutNameList(b, names, names.length);
    const huge = Array.from({ length: 200 }, () => "a".repeat(MAX_NAME_LEN));
    exits(() => bufPutNameList(b, huge, 1000), "String too long");
    exits(() => bufPutNameList(buf_new(5), ["ab"]), "Bad buf_getwriteptr");
  });
});

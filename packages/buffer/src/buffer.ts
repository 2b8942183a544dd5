import { TRACE2, dropbear_exit, m_burn } from "@dropbear-ts/dbutil";
import { MAX_NAME_LEN, MAX_PROPOSED_ALGO, MAX_STRING_LEN } from "@dropbear-ts/options";

/** Backstop against overflowing pos/len arithmetic: no single step may exceed this. @dropbear buffer.c BUF_MAX_INCR */
export const BUF_MAX_INCR = 1000000000;
/** Largest buffer buf_new/buf_resize will allocate. @dropbear buffer.c BUF_MAX_SIZE */
export const BUF_MAX_SIZE = 1000000000;
/** Largest mpint buf_getmpint accepts, in bytes (a little over 8192 bits). @dropbear buffer.c BUF_MAX_MPINT */
export const BUF_MAX_MPINT = 8240 / 8;

/**
 * A linear byte buffer: `data` holds `size` bytes, of which `len` are in use; `pos` is the
 * read/write cursor. Invariant kept by every function here: pos <= len <= size == data.length.
 * @dropbear buffer.h buffer
 */
export class buffer {
  data: Buffer;
  /** Bytes in use. */
  len = 0;
  pos = 0;
  /** Bytes allocated. */
  size: number;

  constructor(size: number, data?: Buffer) {
    // Zero-filled like Dropbear's m_malloc (calloc), so unwritten bytes never leak old memory.
    this.data = data ?? Buffer.alloc(size);
    this.size = size;
  }
}

/** The C struct tag, for code that spells it `struct buf`. @dropbear buffer.h buf */
export type buf = buffer;

const EMPTY = Buffer.alloc(0);

/**
 * True unless x is what a C `unsigned int` parameter could hold. A negative length in C
 * would wrap to a huge value and fail the range check, so callers treat "bad" as "too big".
 */
function badUint(x: number): boolean {
  return x >>> 0 !== x;
}

/** Allocate a zeroed buffer of `size` bytes. @dropbear buffer.c buf_new */
export function buf_new(size: number): buffer {
  if (badUint(size) || size > BUF_MAX_SIZE) {
    dropbear_exit("buf->size too big");
  }
  return new buffer(size);
}

/**
 * Like buf_new, but the memory is not zeroed first: only for a buffer whose every byte up to its
 * `len` is written before it is read or sent, as the packet layer's are (a packet is about to be
 * filled by the socket or by the cipher). There, zeroing each 32 KiB packet would be work done
 * twice per packet on the hot path.
 */
export function bufNewUnzeroed(size: number): buffer {
  if (badUint(size) || size > BUF_MAX_SIZE) {
    dropbear_exit("buf->size too big");
  }
  return new buffer(size, Buffer.allocUnsafeSlow(size));
}

/**
 * Change the allocation to `newsize`, keeping the leading bytes and clamping len/pos.
 * Returns the same object (its `data` is replaced), mirroring realloc's return.
 * @dropbear buffer.c buf_resize
 */
export function buf_resize(buf: buffer, newsize: number): buffer {
  if (badUint(newsize) || newsize > BUF_MAX_SIZE) {
    dropbear_exit("buf->size too big");
  }
  if (newsize !== buf.size) {
    const data = Buffer.alloc(newsize);
    buf.data.copy(data, 0, 0, Math.min(newsize, buf.size));
    buf.data = data;
  }
  buf.size = newsize;
  buf.len = Math.min(newsize, buf.len);
  buf.pos = Math.min(newsize, buf.pos);
  return buf;
}

/**
 * Release the buffer. JS frees memory itself; emptying it turns any later use into a bounds
 * failure instead of a silent use-after-free. @dropbear buffer.c buf_free
 */
export function buf_free(buf: buffer): void {
  buf.data = EMPTY;
  buf.size = 0;
  buf.len = 0;
  buf.pos = 0;
}

/** Zero the whole allocation (secrets), then free. @dropbear buffer.c buf_burn_free */
export function buf_burn_free(buf: buffer): void {
  m_burn(buf.data, buf.size);
  buf_free(buf);
}

/** New buffer sized to `buf.len` holding a copy of its used bytes, pos 0. @dropbear buffer.c buf_newcopy */
export function buf_newcopy(buf: buffer): buffer {
  const ret = buf_new(buf.len);
  ret.len = buf.len;
  buf.data.copy(ret.data, 0, 0, buf.len);
  return ret;
}

/** Set the used length (at most size); pos is pulled back if past it. @dropbear buffer.c buf_setlen */
export function buf_setlen(buf: buffer, len: number): void {
  if (badUint(len) || len > buf.size) {
    dropbear_exit("Bad buf_setlen");
  }
  buf.len = len;
  buf.pos = Math.min(buf.pos, len);
}

/** Grow the used length by `incr`, within size. @dropbear buffer.c buf_incrlen */
export function buf_incrlen(buf: buffer, incr: number): void {
  if (badUint(incr) || incr > BUF_MAX_INCR || buf.len + incr > buf.size) {
    dropbear_exit("Bad buf_incrlen");
  }
  buf.len += incr;
}

/** Move the cursor to `pos`, at most len. @dropbear buffer.c buf_setpos */
export function buf_setpos(buf: buffer, pos: number): void {
  if (badUint(pos) || pos > buf.len) {
    dropbear_exit("Bad buf_setpos");
  }
  buf.pos = pos;
}

/** Advance the cursor after writing `incr` bytes, extending len if needed. @dropbear buffer.c buf_incrwritepos */
export function buf_incrwritepos(buf: buffer, incr: number): void {
  if (badUint(incr) || incr > BUF_MAX_INCR || buf.pos + incr > buf.size) {
    dropbear_exit("Bad buf_incrwritepos");
  }
  buf.pos += incr;
  if (buf.pos > buf.len) {
    buf.len = buf.pos;
  }
}

/** Advance the cursor over `incr` used bytes. @dropbear buffer.c buf_incrpos */
export function buf_incrpos(buf: buffer, incr: number): void {
  if (badUint(incr) || incr > BUF_MAX_INCR || buf.pos + incr > buf.len) {
    dropbear_exit("Bad buf_incrpos");
  }
  buf.pos += incr;
}

/** Move the cursor back by `decr`. @dropbear buffer.c buf_decrpos */
export function buf_decrpos(buf: buffer, decr: number): void {
  if (badUint(decr) || decr > buf.pos) {
    dropbear_exit("Bad buf_decrpos");
  }
  buf.pos -= decr;
}

/** Read one byte. @dropbear buffer.c buf_getbyte */
export function buf_getbyte(buf: buffer): number {
  // >= rather than == so a broken pos > len invariant is caught too.
  if (buf.pos >= buf.len) {
    dropbear_exit("Bad buf_getbyte");
  }
  return buf.data[buf.pos++];
}

/** Read one byte as a boolean: 0 stays 0, anything else is 1. @dropbear buffer.c buf_getbool */
export function buf_getbool(buf: buffer): 0 | 1 {
  return buf_getbyte(buf) !== 0 ? 1 : 0;
}

/**
 * Write one byte at pos, extending len when at the end. `val` is truncated to 8 bits like a
 * C `unsigned char` argument. @dropbear buffer.c buf_putbyte
 */
export function buf_putbyte(buf: buffer, val: number): void {
  if (buf.pos >= buf.len) {
    buf_incrlen(buf, 1);
  }
  buf.data[buf.pos] = val;
  buf.pos++;
}

function checkgetptr(buf: buffer, len: number): void {
  if (badUint(len) || len > BUF_MAX_INCR || buf.pos + len > buf.len) {
    dropbear_exit("Bad buf_getptr");
  }
}

function checkwriteptr(buf: buffer, len: number): void {
  if (badUint(len) || len > BUF_MAX_INCR || buf.pos + len > buf.size) {
    dropbear_exit("Bad buf_getwriteptr");
  }
}

/**
 * A view of the next `len` used bytes at pos (no copy, pos unchanged).
 * @dropbear buffer.c buf_getptr
 */
export function buf_getptr(buf: buffer, len: number): Buffer {
  checkgetptr(buf, len);
  return buf.data.subarray(buf.pos, buf.pos + len);
}

/**
 * A view of `len` bytes at pos to write into: bounded by size rather than len.
 * @dropbear buffer.c buf_getwriteptr
 */
export function buf_getwriteptr(buf: buffer, len: number): Buffer {
  checkwriteptr(buf, len);
  return buf.data.subarray(buf.pos, buf.pos + len);
}

function checkstringlen(len: number): void {
  if (len > MAX_STRING_LEN) {
    dropbear_exit("String too long");
  }
}

/**
 * Read an SSH string (uint32 length + bytes) as a copy. SSH strings are binary, so this is a
 * Buffer, not text; its length is the C `retlen`. @dropbear buffer.c buf_getstring
 */
export function buf_getstring(buf: buffer): Buffer {
  const len = buf_getint(buf);
  checkstringlen(len);
  const ret = Buffer.from(buf_getptr(buf, len));
  buf_incrpos(buf, len);
  return ret;
}

/** Copy an SSH string into a new buffer, with or without its length prefix. @dropbear buffer.c buf_getstringbuf_int */
function buf_getstringbuf_int(buf: buffer, incllen: boolean): buffer {
  const len = buf_getint(buf);
  checkstringlen(len);
  const ret = buf_new(len + (incllen ? 4 : 0));
  if (incllen) {
    buf_putint(ret, len);
  }
  checkgetptr(buf, len);
  buf.data.copy(ret.data, ret.pos, buf.pos, buf.pos + len);
  buf_incrpos(buf, len);
  buf_incrlen(ret, len);
  buf_setpos(ret, 0);
  return ret;
}

/** Read an SSH string's contents into a new buffer (pos 0). @dropbear buffer.c buf_getstringbuf */
export function buf_getstringbuf(buf: buffer): buffer {
  return buf_getstringbuf_int(buf, false);
}

/** Read an SSH string into a new buffer, length prefix included (pos 0). @dropbear buffer.c buf_getbuf */
export function buf_getbuf(buf: buffer): buffer {
  return buf_getstringbuf_int(buf, true);
}

/** Copy the next `len` used bytes into a new buffer (pos unchanged here). @dropbear buffer.c buf_getptrcopy */
export function buf_getptrcopy(buf: buffer, len: number): buffer {
  const src = buf_getptr(buf, len);
  const ret = buf_new(len);
  buf_putbytes(ret, src, len);
  buf_setpos(ret, 0);
  return ret;
}

/** Skip an SSH string without copying it (no MAX_STRING_LEN limit, as in C). @dropbear buffer.c buf_eatstring */
export function buf_eatstring(buf: buffer): void {
  buf_incrpos(buf, buf_getint(buf));
}

/** Read a big-endian uint32 (0..0xFFFFFFFF). @dropbear buffer.c buf_getint */
export function buf_getint(buf: buffer): number {
  checkgetptr(buf, 4);
  const ret = buf.data.readUInt32BE(buf.pos);
  buf.pos += 4;
  return ret;
}

/**
 * Write a big-endian uint32. Integers are reduced modulo 2^32 as C's `unsigned int` parameter
 * would; a non-integer (NaN, fraction) is a caller bug and exits. @dropbear buffer.c buf_putint
 */
export function buf_putint(buf: buffer, val: number): void {
  if (!Number.isInteger(val)) {
    dropbear_exit("Bad buf_putint");
  }
  checkwriteptr(buf, 4);
  buf.data.writeUInt32BE(val >>> 0, buf.pos);
  buf_incrwritepos(buf, 4);
}

/**
 * Write an SSH string. A JS string is encoded as UTF-8; `len`, if given, takes only the first
 * `len` bytes (of the encoded form) as C's explicit length does. @dropbear buffer.c buf_putstring
 */
export function buf_putstring(buf: buffer, str: Uint8Array | string, len?: number): void {
  if (typeof str === "string") {
    if (len === undefined) {
      // Encode straight into the buffer: no temporary copy.
      const n = Buffer.byteLength(str, "utf8");
      buf_putint(buf, n);
      checkwriteptr(buf, n);
      buf.data.write(str, buf.pos, n, "utf8");
      buf_incrwritepos(buf, n);
      return;
    }
    str = Buffer.from(str, "utf8");
  }
  const n = len ?? str.length;
  checksrclen(str, n);
  buf_putint(buf, n);
  buf_putbytes(buf, str, n);
}

/** Write all of `buf_str`'s used bytes (its pos ignored) as an SSH string. @dropbear buffer.c buf_putbufstring */
export function buf_putbufstring(buf: buffer, buf_str: buffer): void {
  buf_putstring(buf, buf_str.data, buf_str.len);
}

/** C would read past the source; here that is a caller bug and exits. */
function checksrclen(bytes: Uint8Array, len: number): void {
  if (badUint(len) || len > bytes.length) {
    dropbear_exit("Bad buf_putbytes");
  }
}

/** Copy `len` (default all) bytes in at pos, extending len if needed. @dropbear buffer.c buf_putbytes */
export function buf_putbytes(buf: buffer, bytes: Uint8Array, len: number = bytes.length): void {
  checkwriteptr(buf, len);
  checksrclen(bytes, len);
  // TypedArray#set copies like memmove, so a source overlapping buf.data is safe.
  buf.data.set(len === bytes.length ? bytes : bytes.subarray(0, len), buf.pos);
  buf_incrwritepos(buf, len);
}

/**
 * Write a non-negative bigint as an SSH mpint (RFC 4251 §5): minimal big-endian bytes with a
 * 0x00 prefix when the top bit is set; 0 is an empty string. Negative numbers exit, as
 * Dropbear never sends them. @dropbear buffer.c buf_putmpint
 */
export function buf_putmpint(buf: buffer, mp: bigint): void {
  TRACE2("enter buf_putmpint");
  if (mp < 0n) {
    dropbear_exit("negative bignum");
  }
  if (mp === 0n) {
    buf_putint(buf, 0);
  } else {
    let hex = mp.toString(16);
    if (hex.length & 1) {
      hex = "0" + hex;
    }
    const nbytes = hex.length >>> 1;
    // A leading nibble >= 8 means the top bit is set: pad so it is not read as negative.
    const pad = hex.charCodeAt(0) >= 0x38 /* '8' */ ? 1 : 0;
    buf_putint(buf, nbytes + pad);
    if (pad) {
      buf_putbyte(buf, 0x00);
    }
    checkwriteptr(buf, nbytes);
    buf.data.write(hex, buf.pos, nbytes, "hex");
    buf_incrwritepos(buf, nbytes);
  }
  TRACE2("leave buf_putmpint");
}

/**
 * Read an SSH mpint as a bigint. Returns null where Dropbear returns DROPBEAR_FAILURE: a
 * negative value or one longer than BUF_MAX_MPINT bytes (the length word is then already
 * consumed, as in C). Truncated input exits. Like Dropbear, redundant leading zero bytes
 * are accepted. @dropbear buffer.c buf_getmpint
 */
export function buf_getmpint(buf: buffer): bigint | null {
  const len = buf_getint(buf);
  if (len === 0) {
    return 0n;
  }
  if (len > BUF_MAX_MPINT) {
    return null;
  }
  checkgetptr(buf, 1);
  if (buf.data[buf.pos] & 0x80) {
    return null;
  }
  checkgetptr(buf, len);
  const ret = BigInt("0x" + buf.data.toString("hex", buf.pos, buf.pos + len));
  buf_incrpos(buf, len);
  return ret;
}

// One name we send: printable US-ASCII (0x21-0x7E) except ',' (RFC 4251 §5 and §6).
const NAME_RE = new RegExp(`^[\\x21-\\x2b\\x2d-\\x7e]{1,${MAX_NAME_LEN}}$`);

function checkmaxcount(maxCount: number): void {
  if (badUint(maxCount)) {
    dropbear_exit("Bad name-list count");
  }
}

/**
 * Read an RFC 4251 name-list; an empty string is the empty list. As lenient as Dropbear's
 * get_algolist: a name that breaks the RFC (empty, too long, odd bytes) is kept and simply never
 * matches ours. What get_algolist turns into "no algorithms" — a NUL byte, or a list longer than
 * MAX_PROPOSED_ALGO*(MAX_NAME_LEN+1) — ends the session here, as the failed match would there;
 * more than `maxCount` names exits with Dropbear's "Too many remote algorithms".
 */
export function bufGetNameList(buf: buffer, maxCount: number = MAX_PROPOSED_ALGO): string[] {
  checkmaxcount(maxCount);
  const len = buf_getint(buf);
  checkstringlen(len);
  checkgetptr(buf, len);
  const raw = buf.data.subarray(buf.pos, buf.pos + len);
  buf_incrpos(buf, len);
  if (len === 0) {
    return [];
  }
  if (len > MAX_PROPOSED_ALGO * (MAX_NAME_LEN + 1) || raw.includes(0)) {
    dropbear_exit("Bad name-list");
  }
  const names = raw.toString("latin1").split(",");
  if (names.length > maxCount) {
    dropbear_exit("Too many remote algorithms");
  }
  return names;
}

/**
 * Write an RFC 4251 name-list, refusing (exit) what bufGetNameList would refuse: bad names,
 * more than `maxCount` names, or a list longer than MAX_STRING_LEN.
 */
export function bufPutNameList(
  buf: buffer,
  names: readonly string[],
  maxCount: number = MAX_PROPOSED_ALGO,
): void {
  checkmaxcount(maxCount);
  if (names.length > maxCount) {
    dropbear_exit("Too many names in name-list");
  }
  for (const name of names) {
    if (!NAME_RE.test(name)) {
      dropbear_exit("Bad name-list");
    }
  }
  const text = names.join(",");
  checkstringlen(text.length);
  buf_putstring(buf, text);
}

import { TRACE, dropbear_assert, dropbear_exit, m_burn } from "@dropbear-ts/dbutil";

/** Largest ring cbuf_new accepts. @dropbear circbuffer.c MAX_CBUF_SIZE */
export const MAX_CBUF_SIZE = 100000000;

/**
 * A ring buffer of `size` bytes: `used` bytes wait at `readpos`, new data goes at
 * `writepos`. `data` stays null until the first cbuf_writeptr, as in Dropbear, so idle
 * channels cost no memory. @dropbear circbuffer.h circbuffer
 */
export class circbuffer {
  size: number;
  readpos = 0;
  writepos = 0;
  used = 0;
  data: Buffer | null = null;

  constructor(size: number) {
    this.size = size;
  }
}

/** The C struct tag, for code that spells it `struct circbuf`. @dropbear circbuffer.h circbuf */
export type circbuf = circbuffer;

const EMPTY = Buffer.alloc(0);

/** Create an empty ring of `size` bytes (storage comes later). @dropbear circbuffer.c cbuf_new */
export function cbuf_new(size: number): circbuffer {
  if (size >>> 0 !== size || size > MAX_CBUF_SIZE) {
    dropbear_exit("Bad cbuf size");
  }
  return new circbuffer(size);
}

/**
 * Zero any stored bytes and release the ring; it is left empty and of size 0 so later
 * writes fail. @dropbear circbuffer.c cbuf_free
 */
export function cbuf_free(cbuf: circbuffer): void {
  if (cbuf.data) {
    m_burn(cbuf.data, cbuf.size);
    cbuf.data = null;
  }
  cbuf.size = 0;
  cbuf.used = 0;
  cbuf.readpos = 0;
  cbuf.writepos = 0;
}

/** Bytes waiting to be read. @dropbear circbuffer.c cbuf_getused */
export function cbuf_getused(cbuf: circbuffer): number {
  return cbuf.used;
}

/** Bytes that can still be written in total (maybe in two pieces). @dropbear circbuffer.c cbuf_getavail */
export function cbuf_getavail(cbuf: circbuffer): number {
  return cbuf.size - cbuf.used;
}

/** Longest single contiguous write possible now. @dropbear circbuffer.c cbuf_writelen */
export function cbuf_writelen(cbuf: circbuffer): number {
  const { size, used, readpos, writepos } = cbuf;
  dropbear_assert(used <= size, "used <= size");
  // The positions must agree with `used` modulo size (a 0-sized ring has nothing to check;
  // C would divide by zero there, but Dropbear never makes one).
  if (size > 0) {
    dropbear_assert((2 * size + writepos - readpos) % size === used % size, "writepos - readpos == used");
    dropbear_assert(
      (2 * size + readpos - writepos) % size === (size - used) % size,
      "readpos - writepos == size - used",
    );
  }

  if (used === size) {
    TRACE("cbuf_writelen: full buffer");
    return 0;
  }
  if (writepos < readpos) {
    return readpos - writepos;
  }
  return size - writepos;
}

/**
 * The stored bytes in order as up to two views: p1 from readpos, p2 the wrapped part from
 * the start (empty when nothing wraps). @dropbear circbuffer.c cbuf_readptrs
 */
export function cbuf_readptrs(cbuf: circbuffer): { p1: Buffer; p2: Buffer } {
  const data = cbuf.data ?? EMPTY;
  const len1 = Math.min(cbuf.used, cbuf.size - cbuf.readpos);
  const p1 = data.subarray(cbuf.readpos, cbuf.readpos + len1);
  const p2 = len1 < cbuf.used ? data.subarray(0, cbuf.used - len1) : EMPTY;
  return { p1, p2 };
}

/**
 * A view of `len` contiguous bytes at writepos to fill, allocating storage on first use;
 * commit them with cbuf_incrwrite. @dropbear circbuffer.c cbuf_writeptr
 */
export function cbuf_writeptr(cbuf: circbuffer, len: number): Buffer {
  if (len >>> 0 !== len || len > cbuf_writelen(cbuf)) {
    dropbear_exit("Bad cbuf write");
  }
  if (!cbuf.data) {
    cbuf.data = Buffer.alloc(cbuf.size);
  }
  return cbuf.data.subarray(cbuf.writepos, cbuf.writepos + len);
}

/** Commit `len` bytes written at writepos. @dropbear circbuffer.c cbuf_incrwrite */
export function cbuf_incrwrite(cbuf: circbuffer, len: number): void {
  if (len >>> 0 !== len || len > cbuf_writelen(cbuf)) {
    dropbear_exit("Bad cbuf write");
  }
  cbuf.used += len;
  dropbear_assert(cbuf.used <= cbuf.size, "used <= size");
  // len <= size - writepos here, so one subtraction is the modulo (and a 0-sized ring stays 0).
  const w = cbuf.writepos + len;
  cbuf.writepos = w >= cbuf.size ? w - cbuf.size : w;
}

/** Drop `len` bytes that have been consumed from the front. @dropbear circbuffer.c cbuf_incrread */
export function cbuf_incrread(cbuf: circbuffer, len: number): void {
  dropbear_assert(len >>> 0 === len && cbuf.used >= len, "used >= len");
  cbuf.used -= len;
  // readpos < size and len <= size, so one subtraction is the modulo.
  const r = cbuf.readpos + len;
  cbuf.readpos = r >= cbuf.size ? r - cbuf.size : r;
}

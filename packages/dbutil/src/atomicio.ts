/** The read or write a whole transfer is made of: node:fs's readSync or writeSync. */
export type atomicio_f = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null) => number;

/**
 * Move all n bytes of s through f (readSync or writeSync), over short reads and writes; the
 * count moved, short only where a read met the end of the file. Errors are thrown as node:fs
 * throws them (libuv has already retried EINTR), where C returns 0 with errno set. A position
 * makes it a positional transfer (pread/pwrite), advanced with the bytes done.
 * @dropbear atomicio.c atomicio
 */
export function atomicio(f: atomicio_f, fd: number, s: Uint8Array, n: number = s.length, position: number | null = null): number {
  let pos = 0;
  while (n > pos) {
    const res = f(fd, s, pos, n - pos, position === null ? null : position + pos);
    if (res === 0) {
      break;
    }
    pos += res;
  }
  return pos;
}

// dbutil.c's file helpers that take a buffer. They live here rather than in @dropbear-ts/dbutil
// because dbutil sits below buffer in the package order.
import { closeSync, constants, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { LOG_ERR, dropbear_log, errnoCode, fsPath, strerror } from "@dropbear-ts/dbutil";
import { DROPBEAR_MAX_LINE_LENGTH } from "@dropbear-ts/options";
import { type buffer, buf_getptr, buf_getwriteptr, buf_incrpos, buf_incrwritepos, buf_new, buf_putbyte, buf_setlen, buf_setpos } from "./buffer.js";

/**
 * Read `filename` into `buf` from its position until the file ends or the buffer is full.
 * @dropbear dbutil.c buf_readfile
 */
export function buf_readfile(buf: buffer, filename: string): boolean {
  let fd: number;
  try {
    fd = openSync(fsPath(filename), constants.O_RDONLY);
  } catch {
    return false;
  }
  try {
    for (;;) {
      const maxlen = buf.size - buf.pos;
      if (maxlen === 0) {
        break;
      }
      const len = readSync(fd, buf_getwriteptr(buf, maxlen), 0, maxlen, null);
      buf_incrwritepos(buf, len);
      if (len === 0) {
        break;
      }
    }
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Create `filename` (never replacing a file or following a symlink: O_EXCL, O_NOFOLLOW,
 * mode 0600) and write the buffer from its position to its end, then fsync. An existing
 * file counts as success when `skip_exist` is set. @dropbear dbutil.c buf_writefile
 */
export function buf_writefile(buf: buffer, filename: string, skip_exist: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(fsPath(filename), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    // Another connection generating the same key at once is not an error.
    if (skip_exist && errnoCode(err) === "EEXIST") {
      return true;
    }
    dropbear_log(LOG_ERR, `Couldn't create new file ${filename}: ${strerror(err)}`);
    return false;
  }
  let ret = false;
  try {
    while (buf.pos !== buf.len) {
      const n = writeSync(fd, buf_getptr(buf, buf.len - buf.pos));
      if (n <= 0) {
        break;
      }
      buf_incrpos(buf, n);
    }
    ret = buf.pos === buf.len;
  } catch (err) {
    dropbear_log(LOG_ERR, `Failed writing file ${filename}: ${strerror(err)}`);
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    dropbear_log(LOG_ERR, `fsync of ${filename} failed: ${strerror(err)}`);
  }
  closeSync(fd);
  return ret;
}

/** What fgetc(3) needs from a FILE: one byte at a time from a buffered fd, -1 at the end. */
export class FgetcFile {
  private readonly chunk = Buffer.alloc(4096);
  private pos = 0;
  private len = 0;
  private eof = false;

  constructor(private readonly fd: number) {}

  /** The next byte, or -1 at end of file or on an error (EAGAIN on an empty FIFO included). */
  fgetc(): number {
    if (this.pos >= this.len) {
      if (this.eof) {
        return -1;
      }
      let n = 0;
      try {
        n = readSync(this.fd, this.chunk, 0, this.chunk.length, null);
      } catch {
        n = 0;
      }
      if (n <= 0) {
        this.eof = true;
        return -1;
      }
      this.pos = 0;
      this.len = n;
    }
    return this.chunk[this.pos++];
  }
}

/**
 * Read one line (ended by LF, CR or EOF) into `line`. A line longer than the buffer reads as
 * empty; one longer than DROPBEAR_MAX_LINE_LENGTH, or EOF with nothing read, fails, and the
 * caller stops. @dropbear dbutil.c buf_getline
 */
export function buf_getline(line: buffer, file: FgetcFile): boolean {
  let c = -1;
  let truncated = false;
  buf_setlen(line, 0);
  let pos = 0;
  for (; pos < DROPBEAR_MAX_LINE_LENGTH; pos++) {
    c = file.fgetc();
    if (c === -1 || c === 0x0a || c === 0x0d) {
      break;
    }
    if (!truncated && line.len < line.size) {
      buf_putbyte(line, c);
    } else {
      truncated = true;
      buf_setlen(line, 0);
    }
  }
  if (pos >= DROPBEAR_MAX_LINE_LENGTH) {
    // Still mid-line: what follows cannot be read as lines.
    return false;
  }
  if (c === -1 && line.pos === 0) {
    return false;
  }
  buf_setpos(line, 0);
  return true;
}

/**
 * The lines of `filename` (latin1) as Dropbear's loops of buf_getline into a buffer of `size`
 * bytes read them: a longer line comes as empty, and one of DROPBEAR_MAX_LINE_LENGTH or more
 * ends the file, so neither a huge file nor /dev/zero is read whole. The file is opened now
 * (throwing as openSync does) and closed when the lines run out or the loop over them ends.
 */
export function fileLines(filename: string, size: number): Generator<string> {
  const fd = openSync(fsPath(filename), constants.O_RDONLY);
  return readLines(fd, size);
}

function* readLines(fd: number, size: number): Generator<string> {
  try {
    const file = new FgetcFile(fd);
    const line = buf_new(size);
    while (buf_getline(line, file)) {
      yield line.data.toString("latin1", 0, line.len);
    }
  } finally {
    closeSync(fd);
  }
}

// dbutil.c's file helpers that take a buffer. They live here rather than in @dropbear-ts/dbutil
// because dbutil sits below buffer in the package order.
import { closeSync, constants, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { LOG_ERR, dropbear_log, errnoCode, strerror } from "@dropbear-ts/dbutil";
import { type buffer, buf_getptr, buf_getwriteptr, buf_incrpos, buf_incrwritepos } from "./buffer.js";

/**
 * Read `filename` into `buf` from its position until the file ends or the buffer is full.
 * @dropbear dbutil.c buf_readfile
 */
export function buf_readfile(buf: buffer, filename: string): boolean {
  let fd: number;
  try {
    fd = openSync(filename, constants.O_RDONLY);
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
    fd = openSync(filename, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
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

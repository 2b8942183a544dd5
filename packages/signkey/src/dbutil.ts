// TODO(dbutil): these dbutil.c file helpers belong in @dropbear-ts/dbutil (or buffer, since
// they take a buffer); they live here until that package grows them.
import { closeSync, constants, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { LOG_ERR, TRACE, dropbear_log } from "@dropbear-ts/dbutil";
import { type buffer, buf_getptr, buf_getwriteptr, buf_incrpos, buf_incrwritepos } from "@dropbear-ts/buffer";

// glibc's strerror() text for the errors key files meet, so log lines read as Dropbear's do.
const STRERROR: Record<string, string> = {
  EACCES: "Permission denied",
  EEXIST: "File exists",
  EISDIR: "Is a directory",
  ELOOP: "Too many levels of symbolic links",
  ENOENT: "No such file or directory",
  ENOSPC: "No space left on device",
  ENOSYS: "Function not implemented",
  ENOTDIR: "Not a directory",
  EPERM: "Operation not permitted",
  EROFS: "Read-only file system",
  EXDEV: "Invalid cross-device link",
  EMLINK: "Too many links",
};

/** The errno code ("EEXIST") of a failed fs call, or "" for anything else. */
export function errnoCode(err: unknown): string {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string"
    ? (err as { code: string }).code
    : "";
}

/** strerror(errno) for a failed fs call. */
export function strerror(err: unknown): string {
  const code = errnoCode(err);
  return STRERROR[code] ?? (err instanceof Error ? err.message : String(err));
}

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

/**
 * fsync the directory holding `fn`, so a new name in it survives a power cut (else a host
 * key file can come back empty). Failures are only traced. @dropbear dbutil.c fsync_parent_dir
 */
export function fsync_parent_dir(fn: string): void {
  const dir = dirname(fn);
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY);
  } catch (err) {
    TRACE(`error opening directory ${dir} for fsync: ${strerror(err)}`);
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    TRACE(`fsync of directory ${dir} failed: ${strerror(err)}`);
  } finally {
    closeSync(fd);
  }
}

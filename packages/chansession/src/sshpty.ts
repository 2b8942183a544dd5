import { chmodSync, chownSync, statSync } from "node:fs";
import { LOG_ERR, LOG_WARNING, O_RDWR, dropbear_exit, dropbear_log, getgrnam_gid, libcErrno, libcFunc, strerror_code, strerror_errno, type SpawnChild } from "@dropbear-ts/dbutil";
import type { PasswdEntry } from "@dropbear-ts/auth";
import { set_winsize } from "./termios.js";

// sshpty.c (from OpenSSH): allocate a pty, hand it to the user, make it the child's controlling
// terminal, resize it, give it back. Only the openpty() branch is ported: it is the one Linux
// builds use. The C library does the work through koffi (Node has no pty calls).

/** A pty pair from pty_allocate: master and slave descriptors and the slave's path. */
export interface PtyPair {
  ptyfd: number;
  ttyfd: number;
  /** "/dev/pts/N". */
  name: string;
}

/** Longest name C keeps (its buffer is 64 bytes with the NUL): strlcpy truncates. */
const NAMEBUF_LEN = 64;

/**
 * Open a new pty. Returns null (C's 0) if none could be had; a pty whose slave has no name
 * ends the session, as in C. @dropbear sshpty.c pty_allocate
 */
export function pty_allocate(): PtyPair | null {
  const master = new Int32Array(1);
  const slave = new Int32Array(1);
  const openpty = libcFunc<(m: Int32Array, s: Int32Array, name: null, t: null, w: null) => number>(
    "int openpty(_Out_ int32_t *amaster, _Out_ int32_t *aslave, void *name, void *termp, void *winp)",
  );
  if (openpty(master, slave, null, null, null) < 0) {
    dropbear_log(LOG_WARNING, `pty_allocate: openpty: ${strerror_errno(libcErrno())}`);
    return null;
  }
  const name = libcFunc<(fd: number) => string | null>("const char *ttyname(int fd)")(slave[0]!);
  if (name === null) {
    dropbear_exit("ttyname fails for openpty device");
  }
  return { ptyfd: master[0]!, ttyfd: slave[0]!, name: Buffer.from(name).subarray(0, NAMEBUF_LEN - 1).toString() };
}

/** errno name of a Node fs error. */
function errcode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/**
 * Give the tty back: owner root, mode 0666. A tty already gone (ENOENT) is fine. The connection
 * process no longer runs as root here (svr_switch_user after auth), so the kernel refuses the
 * chown of a pts that still exists and C's log line follows, as it does for Dropbear's
 * DROPBEAR_SVR_DROP_PRIVS build; the pts normally vanishes with its master first.
 * @dropbear sshpty.c pty_release
 */
export function pty_release(tty_name: string): void {
  try {
    chownSync(tty_name, 0, 0);
  } catch (e) {
    if (errcode(e) !== "ENOENT") {
      dropbear_log(LOG_ERR, `chown ${tty_name.slice(0, 100)} 0 0 failed: ${strerror_code(errcode(e))}`);
    }
  }
  try {
    chmodSync(tty_name, 0o666);
  } catch (e) {
    if (errcode(e) !== "ENOENT") {
      dropbear_log(LOG_ERR, `chmod ${tty_name.slice(0, 100)} 0666 failed: ${strerror_code(errcode(e))}`);
    }
  }
}

/**
 * Make the tty the child's controlling terminal. C does it in the forked child: TIOCNOTTY on
 * the old terminal, setsid(), TIOCSCTTY on the slave, then an open of the tty by name. Here the
 * same happens in the spawned child before its exec: posix_spawn's POSIX_SPAWN_SETSID makes it a
 * session leader with no controlling terminal, and the open file action of the tty as its fd 0
 * (without O_NOCTTY) then makes the tty its controlling terminal, as Linux does for the first
 * terminal a session leader opens. The caller dup2s fd 0 onto 1 and 2.
 * @dropbear sshpty.c pty_make_controlling_tty
 */
export function pty_make_controlling_tty(child: SpawnChild, tty_name: string): void {
  // As C's child does first (for the TIOCNOTTY of a background process), and keeps through exec.
  child.ignored.push("SIGTTOU");
  child.setsid = true;
  child.actions.push({ op: "open", fd: 0, path: tty_name, oflag: O_RDWR, mode: 0 });
}

/** Set the pty's window size (each value truncated to 16 bits). @dropbear sshpty.c pty_change_window_size */
export function pty_change_window_size(ptyfd: number, row: number, col: number, xpixel: number, ypixel: number): void {
  set_winsize(ptyfd, { ws_row: row, ws_col: col, ws_xpixel: xpixel, ws_ypixel: ypixel });
}

const S_IRUSR = 0o400;
const S_IWUSR = 0o200;
const S_IWGRP = 0o020;
const S_IWOTH = 0o002;
const S_IRGRP = 0o040;
const S_IROTH = 0o004;

/**
 * Make the tty the user's: owner the user, group "tty" with mode 0620 (or the user's group and
 * 0622 where there is no tty group). The connection process already is the user (svr_switch_user
 * ran after auth, Dropbear's DROPBEAR_SVR_DROP_PRIVS build), so openpty() made the pts with the
 * user's uid, and with group tty or the user's group as the devpts mount says: both are accepted
 * as they are, no chown is needed, and only the mode may have to change (an owner may chmod).
 * A failing chown or chmod ends the session, except on a read-only file system. @dropbear sshpty.c pty_setowner
 */
export function pty_setowner(pw: PasswdEntry, tty_name: string): void {
  let gid: number;
  let mode: number;
  const ttygid = getgrnam_gid("tty");
  if (ttygid !== null) {
    gid = ttygid;
    mode = S_IRUSR | S_IWUSR | S_IWGRP;
  } else {
    gid = pw.pw_gid;
    mode = S_IRUSR | S_IWUSR | S_IWGRP | S_IWOTH;
  }
  let st;
  try {
    st = statSync(tty_name);
  } catch (e) {
    dropbear_exit(`pty_setowner: stat(${tty_name.slice(0, 101)}) failed: ${strerror_code(errcode(e)).slice(0, 100)}`);
  }
  // Allow either the "tty" gid or the user's own gid: with openpty() on Linux it depends on the
  // devpts mount options.
  if (st.uid !== pw.pw_uid || !(st.gid === gid || st.gid === pw.pw_gid)) {
    try {
      chownSync(tty_name, pw.pw_uid, gid);
    } catch (e) {
      const msg = `chown(${tty_name.slice(0, 100)}, ${pw.pw_uid}, ${gid}) failed: ${strerror_code(errcode(e)).slice(0, 100)}`;
      if (errcode(e) === "EROFS" && (st.uid === pw.pw_uid || st.uid === 0)) {
        dropbear_log(LOG_ERR, msg);
      } else {
        dropbear_exit(msg);
      }
    }
  }
  if ((st.mode & 0o777) !== mode) {
    try {
      chmodSync(tty_name, mode);
    } catch (e) {
      const msg = `chmod(${tty_name.slice(0, 100)}, 0${mode.toString(8)}) failed: ${strerror_code(errcode(e)).slice(0, 100)}`;
      if (errcode(e) === "EROFS" && (st.mode & (S_IRGRP | S_IROTH)) === 0) {
        dropbear_log(LOG_ERR, msg);
      } else {
        dropbear_exit(msg);
      }
    }
  }
}

import { closeSync, openSync, statSync, writeSync, constants as fsConstants } from "node:fs";
import { getpwnam } from "@dropbear-ts/auth";
import { LOG_INFO, LOG_WARNING, atomicio, dropbear_exit, dropbear_log, libcFunc, strerror_code } from "@dropbear-ts/dbutil";

// loginrec.c (from OpenSSH): the utmp, wtmp and lastlog records of a pty login, so that `who`
// lists the session while it runs and `last` shows it afterwards. Only the Linux path is
// ported. Dropbear's Linux build goes through libutil's login()/logout()/logwtmp(), which take
// the tty from the caller's own stdin and the pid from getpid(): that only works in the forked
// child. Our child is started by posix_spawn, so the parent writes the records, through the C
// library's utmpx calls (setutxent/pututxline/endutxent for utmp, updwtmpx for wtmp) with the
// child's pid and tty filled in by construct_utmpx — loginrec.c's own USE_UTMPX/USE_WTMPX
// path — and lastlog as loginrec.c writes it (USE_LASTLOG). The utmp entry also goes in once
// before the spawn (login_utmp_only), so that the command never runs without it.

/** login or logout. @dropbear loginrec.h LTYPE_LOGIN */
export const LTYPE_LOGIN = 7;
/** @dropbear loginrec.h LTYPE_LOGOUT */
export const LTYPE_LOGOUT = 8;

/** Sizes of logininfo's strings (C char arrays, NUL included). @dropbear loginrec.h LINFO_LINESIZE */
export const LINFO_LINESIZE = 64;
export const LINFO_NAMESIZE = 64;
export const LINFO_HOSTSIZE = 256;

/** glibc's file names (paths.h): _PATH_UTMP is pututxline's default, _PATH_WTMP, _PATH_LASTLOG. */
export const WTMPX_FILE = "/var/log/wtmp";
export const LASTLOG_FILE = "/var/log/lastlog";

/** What a login record needs, system-independent. @dropbear loginrec.h logininfo */
export class logininfo {
  /** LTYPE_LOGIN or LTYPE_LOGOUT. */
  type = 0;
  pid = 0;
  uid = 0;
  /** The tty, "/dev/pts/N" (line_fullname). */
  line = "";
  username = "";
  hostname = "";
  tv_sec = 0;
  tv_usec = 0;
}

/** A C string truncated as strlcpy(dst, src, size) would: at most size-1 bytes. */
function strlcpy(src: string, size: number): string {
  const b = Buffer.from(src, "utf8");
  return b.length < size ? src : b.subarray(0, size - 1).toString("utf8");
}

/** Record a login. @dropbear loginrec.c login_login */
export function login_login(li: logininfo): void {
  li.type = LTYPE_LOGIN;
  login_write(li);
}

/** Record a logout. @dropbear loginrec.c login_logout */
export function login_logout(li: logininfo): void {
  li.type = LTYPE_LOGOUT;
  login_write(li);
}

/**
 * Put or take away the utmp entry alone, with no wtmp or lastlog record: `type` is LTYPE_LOGIN
 * or LTYPE_LOGOUT. C's child writes its login before its exec; ours cannot, as its pid is known
 * only once it runs, so ptycommand puts the entry first under its own pid and login_login
 * rewrites it with the child's (pututxline finds it by the tty's ut_id).
 */
export function login_utmp_only(li: logininfo, type: number): void {
  li.type = type;
  login_set_current_time(li);
  utmpx_write_entry(li);
}

/** A new logininfo filled by login_init_entry. @dropbear loginrec.c login_alloc_entry */
export function login_alloc_entry(pid: number, username: string | null, hostname: string | null, line: string | null): logininfo {
  const newli = new logininfo();
  login_init_entry(newli, pid, username, hostname, line);
  return newli;
}

/** Nothing to free in JS; kept for the C call sites. @dropbear loginrec.c login_free_entry */
export function login_free_entry(_li: logininfo): void {
  // Garbage collected.
}

/**
 * Fill a logininfo: pid, the tty's full name, the user (whose uid is looked up: an unknown
 * user ends the session) and the remote host. @dropbear loginrec.c login_init_entry
 */
export function login_init_entry(li: logininfo, pid: number, username: string | null, hostname: string | null, line: string | null): number {
  Object.assign(li, new logininfo());
  li.pid = pid;
  if (line !== null) {
    li.line = line_fullname(line, LINFO_LINESIZE);
  }
  if (username !== null) {
    li.username = strlcpy(username, LINFO_NAMESIZE);
    const pw = getpwnam(li.username);
    if (pw === null) {
      dropbear_exit(`login_init_entry: Cannot find user "${li.username}"`);
    }
    li.uid = pw.pw_uid;
  }
  if (hostname !== null) {
    li.hostname = strlcpy(hostname, LINFO_HOSTSIZE);
  }
  return 1;
}

/** The time now, to the microsecond. @dropbear loginrec.c login_set_current_time */
export function login_set_current_time(li: logininfo): void {
  // Date.now() keeps only milliseconds; C's gettimeofday gives the wall clock's microseconds.
  const tv = Buffer.alloc(16);
  libcFunc<(tv: Buffer, tz: null) => number>("int gettimeofday(_Out_ uint8_t *tv, void *tz)")(tv, null);
  li.tv_sec = Number(tv.readBigInt64LE(0));
  li.tv_usec = Number(tv.readBigInt64LE(8));
}

/** Time-stamp the record and write it everywhere this system keeps one. @dropbear loginrec.c login_write */
export function login_write(li: logininfo): void {
  login_set_current_time(li);
  if (li.type === LTYPE_LOGIN) {
    lastlog_write_entry(li);
  }
  utmpx_write_entry(li);
  wtmpx_write_entry(li);
}

/** "/dev/" + src unless it already starts so. @dropbear loginrec.c line_fullname */
export function line_fullname(src: string, dstsize: number): string {
  if (src.startsWith("/dev/") || dstsize < Buffer.byteLength(src) + 5) {
    return strlcpy(src, dstsize);
  }
  return strlcpy(`/dev/${src}`, dstsize);
}

/** src without a leading "/dev/". @dropbear loginrec.c line_stripname */
export function line_stripname(src: string, dstsize: number): string {
  return strlcpy(src.startsWith("/dev/") ? src.slice(5) : src, dstsize);
}

/**
 * The last dstsize bytes of the name without "/dev/" ("/dev/pts/1" → "ts/1" for ut_id), not
 * NUL-terminated when full (strncpy). @dropbear loginrec.c line_abbrevname
 */
export function line_abbrevname(src: string, dstsize: number): Buffer {
  const dst = Buffer.alloc(dstsize);
  let s = Buffer.from(src.startsWith("/dev/") ? src.slice(5) : src, "utf8");
  if (s.length > 0) {
    if (s.length - dstsize > 0) {
      s = s.subarray(s.length - dstsize);
    }
    s.copy(dst, 0, 0, Math.min(s.length, dstsize));
  }
  return dst;
}

// struct utmpx as glibc lays it out on x86_64 (384 bytes).
const SIZEOF_UTMPX = 384;
const UT_TYPE = 0; // short
const UT_PID = 4; // pid_t
const UT_LINE = 8; // char[32]
const UT_LINESIZE = 32;
const UT_ID = 40; // char[4]
const UT_IDSIZE = 4;
const UT_USER = 44; // char[32]
const UT_NAMESIZE = 32;
const UT_HOST = 76; // char[256]
const UT_HOSTSIZE = 256;
const UT_TV_SEC = 340; // int32_t (x86_64 keeps the 32-bit layout)
const UT_TV_USEC = 344; // int32_t

/** ut_type values (utmpx.h). */
const USER_PROCESS = 7;
const DEAD_PROCESS = 8;

/** strncpy into a fixed field: at most `size` bytes, NUL-padded, not necessarily terminated. */
function putField(buf: Buffer, off: number, size: number, s: string | Buffer): void {
  const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
  b.copy(buf, off, 0, Math.min(b.length, size));
}

/** ut_tv from the logininfo's time. @dropbear loginrec.c set_utmpx_time */
function set_utmpx_time(li: logininfo, utx: Buffer): void {
  utx.writeInt32LE(li.tv_sec | 0, UT_TV_SEC);
  utx.writeInt32LE(li.tv_usec | 0, UT_TV_USEC);
}

/**
 * A struct utmpx for the record: id, type, line, time, pid and user always; the host only for
 * a login. @dropbear loginrec.c construct_utmpx
 */
export function construct_utmpx(li: logininfo): Buffer {
  const utx = Buffer.alloc(SIZEOF_UTMPX);
  line_abbrevname(li.line, UT_IDSIZE).copy(utx, UT_ID);
  switch (li.type) {
    case LTYPE_LOGIN:
      utx.writeInt16LE(USER_PROCESS, UT_TYPE);
      break;
    case LTYPE_LOGOUT:
      utx.writeInt16LE(DEAD_PROCESS, UT_TYPE);
      break;
  }
  putField(utx, UT_LINE, UT_LINESIZE, line_stripname(li.line, UT_LINESIZE));
  set_utmpx_time(li, utx);
  utx.writeInt32LE(li.pid | 0, UT_PID);
  putField(utx, UT_USER, UT_NAMESIZE, li.username);
  if (li.type === LTYPE_LOGOUT) {
    return utx;
  }
  putField(utx, UT_HOST, UT_HOSTSIZE, li.hostname);
  return utx;
}

/** Write a utmpx entry with the C library's help. @dropbear loginrec.c utmpx_write_library */
function utmpx_write_library(_li: logininfo, utx: Buffer): number {
  libcFunc<() => void>("void setutxent(void)")();
  libcFunc<(u: Buffer) => unknown>("void *pututxline(const uint8_t *ut)")(utx);
  libcFunc<() => void>("void endutxent(void)")();
  return 1;
}

/** @dropbear loginrec.c utmpx_perform_login */
function utmpx_perform_login(li: logininfo): number {
  const utx = construct_utmpx(li);
  if (!utmpx_write_library(li, utx)) {
    dropbear_log(LOG_WARNING, "utmpx_perform_login: utmp_write_library() failed");
    return 0;
  }
  return 1;
}

/** @dropbear loginrec.c utmpx_perform_logout */
function utmpx_perform_logout(li: logininfo): number {
  const utx = construct_utmpx(li);
  line_abbrevname(li.line, UT_IDSIZE).copy(utx, UT_ID);
  utx.writeInt16LE(DEAD_PROCESS, UT_TYPE);
  utmpx_write_library(li, utx);
  return 1;
}

/** The utmp record (who is logged in now). @dropbear loginrec.c utmpx_write_entry */
export function utmpx_write_entry(li: logininfo): number {
  switch (li.type) {
    case LTYPE_LOGIN:
      return utmpx_perform_login(li);
    case LTYPE_LOGOUT:
      return utmpx_perform_logout(li);
    default:
      dropbear_log(LOG_WARNING, "utmpx_write_entry: invalid type field");
      return 0;
  }
}

/**
 * Append the record to wtmp. C opens the file O_APPEND and writes; glibc's updwtmpx does the
 * same under the file lock its own writers (login, sshd) take. @dropbear loginrec.c wtmpx_write
 */
function wtmpx_write(_li: logininfo, utx: Buffer): number {
  libcFunc<(file: string, u: Buffer) => void>("void updwtmpx(const char *wtmpx_file, const uint8_t *utmpx)")(WTMPX_FILE, utx);
  return 1;
}

/** @dropbear loginrec.c wtmpx_perform_login */
function wtmpx_perform_login(li: logininfo): number {
  return wtmpx_write(li, construct_utmpx(li));
}

/** @dropbear loginrec.c wtmpx_perform_logout */
function wtmpx_perform_logout(li: logininfo): number {
  return wtmpx_write(li, construct_utmpx(li));
}

/** The wtmp record (login history, `last`). @dropbear loginrec.c wtmpx_write_entry */
export function wtmpx_write_entry(li: logininfo): number {
  switch (li.type) {
    case LTYPE_LOGIN:
      return wtmpx_perform_login(li);
    case LTYPE_LOGOUT:
      return wtmpx_perform_logout(li);
    default:
      dropbear_log(LOG_WARNING, "wtmpx_write_entry: invalid type field");
      return 0;
  }
}

// struct lastlog as glibc lays it out on x86_64 (292 bytes): int32_t ll_time, ll_line[32], ll_host[256].
const SIZEOF_LASTLOG = 292;
const LL_TIME = 0;
const LL_LINE = 4;
const LL_HOST = 36;
const LL_HOSTSIZE = 256;

const LL_FILE = 1;
const LL_DIR = 2;
const LL_OTHER = 3;

/** A struct lastlog for the record. @dropbear loginrec.c lastlog_construct */
function lastlog_construct(li: logininfo): Buffer {
  const last = Buffer.alloc(SIZEOF_LASTLOG);
  putField(last, LL_LINE, UT_LINESIZE, line_stripname(li.line, UT_LINESIZE));
  putField(last, LL_HOST, LL_HOSTSIZE, strlcpy(li.hostname, LL_HOSTSIZE));
  last.writeInt32LE(li.tv_sec | 0, LL_TIME);
  return last;
}

/** Whether lastlog is a file (one record per uid) or a directory (a file per user). @dropbear loginrec.c lastlog_filetype */
function lastlog_filetype(filename: string): number {
  let st;
  try {
    st = statSync(filename);
  } catch (e) {
    dropbear_log(LOG_WARNING, `lastlog_perform_login: Couldn't stat ${filename}: ${strerror_code((e as NodeJS.ErrnoException).code)}`);
    return 0;
  }
  if (st.isDirectory()) {
    return LL_DIR;
  }
  return st.isFile() ? LL_FILE : LL_OTHER;
}

/**
 * Open lastlog and say where this user's record goes: [fd, offset], or null (logged).
 * @dropbear loginrec.c lastlog_openseek
 */
function lastlog_openseek(li: logininfo, filemode: number): [number, number] | null {
  let lastlog_file: string;
  const type = lastlog_filetype(LASTLOG_FILE);
  switch (type) {
    case LL_FILE:
      lastlog_file = LASTLOG_FILE;
      break;
    case LL_DIR:
      lastlog_file = `${LASTLOG_FILE}/${li.username}`;
      break;
    default:
      dropbear_log(LOG_WARNING, `lastlog_openseek: ${LASTLOG_FILE.slice(0, 100)} is not a file or directory!`);
      return null;
  }
  let fd: number;
  try {
    fd = openSync(lastlog_file, filemode, 0o600);
  } catch (e) {
    dropbear_log(LOG_INFO, `lastlog_openseek: Couldn't open ${lastlog_file}: ${strerror_code((e as NodeJS.ErrnoException).code)}`);
    return null;
  }
  // The record for this uid sits at uid * sizeof(struct lastlog) in the single file.
  const offset = type === LL_FILE ? li.uid * SIZEOF_LASTLOG : 0;
  return [fd, offset];
}

/** @dropbear loginrec.c lastlog_perform_login */
function lastlog_perform_login(li: logininfo): number {
  const last = lastlog_construct(li);
  const opened = lastlog_openseek(li, fsConstants.O_RDWR | fsConstants.O_CREAT);
  if (opened === null) {
    return 0;
  }
  const [fd, offset] = opened;
  try {
    atomicio(writeSync, fd, last, last.length, offset);
  } catch (e) {
    closeSync(fd);
    dropbear_log(LOG_WARNING, `lastlog_write_filemode: Error writing to ${LASTLOG_FILE}: ${strerror_code((e as NodeJS.ErrnoException).code)}`);
    return 0;
  }
  closeSync(fd);
  return 1;
}

/** The lastlog record (a user's last login, `lastlog`). @dropbear loginrec.c lastlog_write_entry */
export function lastlog_write_entry(li: logininfo): number {
  switch (li.type) {
    case LTYPE_LOGIN:
      return lastlog_perform_login(li);
    default:
      dropbear_log(LOG_WARNING, "lastlog_write_entry: Invalid type field");
      return 0;
  }
}
